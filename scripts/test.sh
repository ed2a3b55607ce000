#!/usr/bin/env bash
# Everything CI checks, in order:
#   env       .venv (scripts/env.sh; quick when nothing changed)
#   chromium  Debian's Chromium for the browser tests (installed where we are root on Debian)
#   ruff      ruff check .
#   unit      pytest tests -m "not browser", plus the docstring examples (--doctest-modules inwhale)
#   notebooks every book/**/*.ipynb executed with nbmake, in a staged copy of the book
#             (outside the repository, see STAGE below), outputs written there, never into
#             the working tree; per-notebook times and the ten slowest
#   book      jupyter-book build -W -n --keep-going of the staged copy, execution off,
#             HTML in _build/html (the same pages build_book.sh makes, figures included)
#   browser   pytest tests -m browser (headless Chromium against _build/html)
# Exits non-zero if any step failed; prints a summary line with timings at the end.
#
# Usage: bash scripts/test.sh [STEP ...]   (default: all steps; env always runs), e.g.
#        bash scripts/test.sh notebooks book browser
# Knobs: INWHALE_NB_TIMEOUT (per-cell seconds, default 600), INWHALE_NB_WORKERS
# (parallel notebooks, default min(2, nproc, #notebooks)), INWHALE_UNIT_WORKERS (default 2),
# INWHALE_STAGE_DIR (where the executed copy of the book goes).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
STEPS=" ${*:-chromium ruff unit notebooks book browser} "
want() { [[ "$STEPS" == *" $1 "* ]]; }
# The staged copy lives outside the repository: nbmake refuses any notebook whose path
# contains a "_build" folder, and a copy inside the tree could be committed by accident.
STAGE="${INWHALE_STAGE_DIR:-${TMPDIR:-/tmp}/inwhale-stage-$(echo "$ROOT" | sha256sum | cut -c1-12)}"
T_ALL=$(date +%s)
SUMMARY=()
FAILED=()

run_step() {  # run_step NAME CMD...: time a step, remember the result, never exit
    local name="$1"; shift
    local t0=$(date +%s) rc
    echo
    echo "=============================== [$name] ==============================="
    "$@"
    rc=$?
    local dt=$(( $(date +%s) - t0 ))
    STEP_TIMES+=("$name" "$dt.0")
    if [ $rc -eq 0 ]; then
        SUMMARY+=("$name ${dt}s")
    else
        SUMMARY+=("$name FAILED(${rc}) ${dt}s")
        FAILED+=("$name")
    fi
    echo "[$name] exit $rc after ${dt}s"
    return $rc
}

STEP_TIMES=()
finish() {
    local total=$(( $(date +%s) - T_ALL ))
    # Step times for benchmarks/run.py: _build/timings/test_steps.json
    mkdir -p _build/timings
    {
        echo "{"
        [ ${#STEP_TIMES[@]} -gt 0 ] && printf '  "%s": %s,\n' "${STEP_TIMES[@]}"
        echo "  \"total\": $total.0"
        echo "}"
    } > _build/timings/test_steps.json
    local line
    line=$(IFS='|'; echo "${SUMMARY[*]}" | sed 's/|/ | /g')
    echo
    if [ ${#FAILED[@]} -eq 0 ]; then
        echo "[test.sh] ALL STEPS OK in ${total}s: $line"
        exit 0
    fi
    echo "[test.sh] FAILED (${FAILED[*]}) after ${total}s: $line"
    exit 1
}

pytest_allow_empty() {  # pytest, treating exit 5 (no tests collected) as success
    python -m pytest "$@"
    local rc=$?
    if [ $rc -eq 5 ]; then
        echo "(no tests collected for: $*)"
        return 0
    fi
    return $rc
}

# --------------------------------------------------------------------------- env
t0=$(date +%s)
echo "=============================== [env] ==============================="
# shellcheck disable=SC1091
if ! source scripts/env.sh; then
    SUMMARY+=("env FAILED $(( $(date +%s) - t0 ))s"); FAILED+=(env); finish
fi
SUMMARY+=("env $(( $(date +%s) - t0 ))s")
STEP_TIMES+=(env "$(( $(date +%s) - t0 )).0")
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export PYDEVD_DISABLE_FILE_VALIDATION=1 TOKENIZERS_PARALLELISM=false
# No MPLBACKEND for the kernels: ipykernel installs matplotlib's inline backend only when
# MPLBACKEND is unset, and under "Agg" every plt.show() in a chapter shows nothing (no figure
# in the built book, no plot under a live slider). The unit step sets Agg itself.
unset MPLBACKEND

want chromium && run_step chromium bash scripts/ensure_chromium.sh
python scripts/make_toc.py
python scripts/make_api.py

# --------------------------------------------------------------------------- lint + unit
want ruff && run_step ruff ruff check .
unit_step() {
    # Two workers, whole files per worker (module fixtures such as a loaded model stay
    # in one process); one BLAS thread each so they do not fight over 2 cores.
    local cores workers threads
    cores=$(nproc 2>/dev/null || echo 2)
    workers=${INWHALE_UNIT_WORKERS:-$(( cores < 2 ? 1 : 2 ))}
    threads=$(( cores / workers )); [ "$threads" -lt 1 ] && threads=1
    local xdist=()
    [ "$workers" -gt 1 ] && xdist=(-n "$workers" --dist loadfile)
    MPLBACKEND=Agg OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads \
        pytest_allow_empty tests inwhale --doctest-modules -m "not browser" \
        -p no:cacheprovider -q -rs "${xdist[@]}" --durations=10
}
want unit && run_step unit unit_step

# --------------------------------------------------------------------------- notebooks
notebooks_step() {
    python scripts/stage_book.py --dest "$STAGE" || return 1
    # Order matters with two workers (pytest-xdist hands out notebooks in this order): the
    # LLM chapters of Part VI first (the longest, so the two workers finish together), the
    # closing results chapter last (it reuses the rows those chapters stored; see
    # inwhale.llm.results), everything else in between.
    mapfile -t nbs < <(find "$STAGE/book" -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' \
        | sort | awk '/\/part6\/09_results/ {last=$0; next} /\/part6\// {print; next}
                      {rest[n++]=$0} END {for (i = 0; i < n; i++) print rest[i]; if (last) print last}')
    if [ ${#nbs[@]} -eq 0 ]; then
        echo "[notebooks] no notebooks under book/ yet"
        return 0
    fi
    local cores workers threads
    cores=$(nproc 2>/dev/null || echo 2)
    workers=${INWHALE_NB_WORKERS:-$(( cores < 2 ? 1 : 2 ))}
    [ "$workers" -gt ${#nbs[@]} ] && workers=${#nbs[@]}
    threads=$(( cores / workers )); [ "$threads" -lt 1 ] && threads=1
    local xdist=()
    [ "$workers" -gt 1 ] && xdist=(-n "$workers")
    echo "[notebooks] ${#nbs[@]} notebook(s), $workers worker(s) x $threads thread(s)," \
         "timeout ${INWHALE_NB_TIMEOUT:-600}s per cell"
    rm -f _build/nbmake-junit.xml
    # -p nbclient_poll: kernel replies are polled in one-second slices (a missed wake-up
    # once held a chapter idle for the whole 600 s cell timeout; scripts/nbclient_poll.py).
    PYTHONPATH="$ROOT/scripts${PYTHONPATH:+:$PYTHONPATH}" \
    OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads \
        python -m pytest -p nbclient_poll --nbmake --nbmake-timeout="${INWHALE_NB_TIMEOUT:-600}" --overwrite \
        -p no:cacheprovider "${xdist[@]}" -q --junitxml=_build/nbmake-junit.xml \
        "${nbs[@]}"
    local rc=$?
    python scripts/nb_report.py _build/nbmake-junit.xml --json _build/timings/notebooks.json \
        --executed "$STAGE" --status-page "$STAGE/book/status.md"
    return $rc
}
want notebooks && run_step notebooks notebooks_step

# --------------------------------------------------------------------------- book
book_step() {
    rm -rf _build/html _build/.doctrees
    # The staged _config.yml has execute_notebooks: 'off'; the outputs come from nbmake.
    jupyter-book build -W -n --keep-going --path-output "$ROOT" "$STAGE" || return 1
    echo "[book] $ROOT/_build/html/index.html"
}
if want book; then
    if [ -d "$STAGE/book" ]; then
        run_step book book_step
    else
        SUMMARY+=("book SKIPPED"); FAILED+=("book(no staged copy: run the notebooks step)")
    fi
fi

# --------------------------------------------------------------------------- browser
browser_tests() {
    # The built pages (test_browser_book/widgets) and the live test (test_browser_live: a
    # chapter run in JupyterLab, its slider moved with a running kernel). One BLAS thread.
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
        pytest_allow_empty tests -m browser -p no:cacheprovider -v
}

if want browser; then
    if [ -f _build/html/index.html ]; then
        run_step browser browser_tests
    else
        echo "[browser] no built book, browser tests not run"
        SUMMARY+=("browser SKIPPED"); FAILED+=("browser(no book)")
    fi
fi

finish
