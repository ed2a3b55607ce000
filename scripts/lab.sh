#!/usr/bin/env bash
# Optional: the project's environment, then JupyterLab on the book's notebooks
# (live kernels, so the ipywidgets sliders respond). Extra arguments go to jupyter lab.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/env.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
unset MPLBACKEND  # ipykernel draws figures inline only when MPLBACKEND is unset
ROOT_FLAG=()
[ "$(id -u)" -eq 0 ] && ROOT_FLAG=(--allow-root)  # containers often run as root
exec jupyter lab "${ROOT_FLAG[@]}" book/ "$@"
