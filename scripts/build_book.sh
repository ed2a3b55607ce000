#!/usr/bin/env bash
# Build the book: the project's environment (.venv), then Jupyter Book with every notebook
# executed during the build (execute_notebooks: force in _config.yml). HTML: _build/html.
# Notebooks in book/ are not modified; their outputs exist only in the built pages.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
T0=$(date +%s)

# shellcheck disable=SC1091
source scripts/env.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export PYDEVD_DISABLE_FILE_VALIDATION=1 TOKENIZERS_PARALLELISM=false
unset MPLBACKEND  # ipykernel's inline backend draws the figures only when MPLBACKEND is unset

python scripts/make_toc.py
python scripts/make_api.py
# A fresh build, so that -W sees every warning (Sphinx only re-reports changed pages).
rm -rf _build/html _build/.doctrees _build/.jupyter_cache
T1=$(date +%s)
jupyter-book build -W -n --keep-going .
T2=$(date +%s)

mkdir -p _build/timings   # read by benchmarks/run.py
printf '{\n  "environment": %s.0,\n  "book": %s.0,\n  "total": %s.0\n}\n' \
    $(( T1 - T0 )) $(( T2 - T1 )) $(( T2 - T0 )) > _build/timings/build_book.json
echo
echo "[build_book] open $PWD/_build/html/index.html"
echo "[build_book] done in $(( T2 - T0 ))s (environment $(( T1 - T0 ))s, book $(( T2 - T1 ))s)"
