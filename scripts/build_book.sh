#!/usr/bin/env bash
# Build the book: the project's environment (.venv), every chapter executed as the test
# command does (nbmake, two workers, in a staged copy outside the tree), chapters whose inputs
# have not changed reused from _build/nbcache (scripts/nb_cache.py: keyed by the notebook,
# the inwhale/ sources, requirements.txt, pyproject.toml and the torch version), then
# Jupyter Book with execution off, then the whole-book PDF. HTML: _build/html.
# Notebooks in book/ are not modified; their outputs exist only in the built pages.
#
# Usage: bash scripts/build_book.sh        (INWHALE_NO_CACHE=1: execute every chapter;
#                                           INWHALE_NO_PDF=1: skip the PDF)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
T0=$(date +%s)

# shellcheck disable=SC1091
source scripts/env.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export PYDEVD_DISABLE_FILE_VALIDATION=1 TOKENIZERS_PARALLELISM=false
unset MPLBACKEND  # ipykernel's inline backend draws the figures only when MPLBACKEND is unset

python scripts/make_toc.py
python scripts/make_api.py
STAGE="${INWHALE_BOOK_STAGE:-${TMPDIR:-/tmp}/inwhale-book-$(echo "$ROOT" | sha256sum | cut -c1-12)}"
python scripts/stage_book.py --dest "$STAGE"
[ "${INWHALE_NO_CACHE:-0}" = 1 ] && rm -rf _build/nbcache
T1=$(date +%s)

# Chapters to execute: those without a stored result. Same order as scripts/test.sh (Part VI
# first, the results chapter last), two workers, one BLAS thread per worker per core.
mapfile -t todo < <(python scripts/nb_cache.py restore "$STAGE" \
    | awk '/\/part6\/09_results/ {last=$0; next} /\/part6\// {print; next}
           {rest[n++]=$0} END {for (i = 0; i < n; i++) print rest[i]; if (last) print last}')
mkdir -p _build/timings
rm -f _build/nbmake-junit.xml
rc=0
if [ ${#todo[@]} -gt 0 ]; then
    cores=$(nproc 2>/dev/null || echo 2)
    workers=${INWHALE_NB_WORKERS:-$(( cores < 2 ? 1 : 2 ))}
    [ "$workers" -gt ${#todo[@]} ] && workers=${#todo[@]}
    threads=$(( cores / workers )); [ "$threads" -lt 1 ] && threads=1
    xdist=(); [ "$workers" -gt 1 ] && xdist=(-n "$workers")
    echo "[build_book] executing ${#todo[@]} chapter(s) with $workers worker(s)"
    PYTHONPATH="$ROOT/scripts${PYTHONPATH:+:$PYTHONPATH}" \
    OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads \
        python -m pytest -p nbclient_poll --nbmake --nbmake-timeout="${INWHALE_NB_TIMEOUT:-600}" \
        --overwrite -p no:cacheprovider "${xdist[@]}" -q --junitxml=_build/nbmake-junit.xml \
        "${todo[@]}" || rc=$?
else
    echo "[build_book] every chapter reused from _build/nbcache"
fi
python scripts/nb_cache.py save "$STAGE" _build/nbmake-junit.xml
# A failed chapter is not stored and fails the command at the end, but the pages are still
# built (the status page shows the failure), as scripts/test.sh does.
[ $rc -ne 0 ] && echo "[build_book] a chapter failed (see above): building the pages anyway"
T2=$(date +%s)

# The pages depend only on the staged copy (sources, executed notebooks, config, _static,
# the Sphinx extensions) and the inwhale docstrings: when none changed, keep the last build.
build_hash=$( (cd "$STAGE" && find . -type f -not -name '.nbcache-keys.json' -print0 | sort -z \
    | xargs -0 sha256sum; find "$ROOT/inwhale" -name '*.py' -print0 | sort -z | xargs -0 sha256sum) \
    | sha256sum | cut -c1-32)
if [ -f _build/html/.inwhale-build-hash ] && [ "$(cat _build/html/.inwhale-build-hash)" = "$build_hash" ] \
    && { [ "${INWHALE_NO_PDF:-0}" = 1 ] || [ -f _build/html/inwhale.pdf ]; }; then
    echo "[build_book] nothing changed since the last build: _build/html kept"
    T3=$(date +%s)
else
    rm -rf _build/html _build/.doctrees
    jupyter-book build -W -n --keep-going --path-output "$ROOT" "$STAGE" || rc=$?
    T3=$(date +%s)
    [ "${INWHALE_NO_PDF:-0}" = 1 ] || python scripts/make_pdf.py
    [ $rc -eq 0 ] && echo "$build_hash" > _build/html/.inwhale-build-hash
fi
T4=$(date +%s)
# Explorers, controls and page weight per chapter (a table; _build/timings/pages.json)
python scripts/page_report.py _build/html --json _build/timings/pages.json || true

printf '{\n  "environment": %s.0,\n  "notebooks": %s.0,\n  "book": %s.0,\n  "pdf": %s.0,\n  "total": %s.0\n}\n' \
    $(( T1 - T0 )) $(( T2 - T1 )) $(( T3 - T2 )) $(( T4 - T3 )) $(( T4 - T0 )) \
    > _build/timings/build_book.json   # read by benchmarks/run.py
echo
echo "[build_book] open $PWD/_build/html/index.html"
echo "[build_book] done in $(( T4 - T0 ))s (environment $(( T1 - T0 ))s, notebooks $(( T2 - T1 ))s," \
     "book $(( T3 - T2 ))s, pdf $(( T4 - T3 ))s)"
exit $rc
