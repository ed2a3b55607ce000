#!/usr/bin/env bash
# Make sure Debian's Chromium (for the browser tests) is at /usr/bin/chromium.
# Installs it with apt-get only where apt-get exists and we are root; otherwise it prints a
# loud message and returns 0, and the browser tests skip (or fail when CI=true).
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "[chromium] installing Debian chromium + chromium-driver (browser tests)"
    t0=$(date +%s)
    export DEBIAN_FRONTEND=noninteractive
    if apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; then
        echo "[chromium] installed in $(( $(date +%s) - t0 ))s: $(/usr/bin/chromium --version 2>/dev/null)"
        exit 0
    fi
    echo "[chromium] ERROR: apt-get install chromium failed" >&2
    exit 1
fi
cat >&2 <<'MSG'
############################################################################
#  Chromium not found at /usr/bin/chromium and cannot be installed here     #
#  (needs Debian's apt-get and root). Browser tests will be SKIPPED.         #
#  Install it yourself, e.g.: sudo apt-get install chromium chromium-driver  #
############################################################################
MSG
exit 0
