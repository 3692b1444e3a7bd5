#!/bin/sh
# Applying then re-planning N record sets (default 200; A, TXT, MX) by cairn and by octoDNS with
# octodns-bind's Rfc2136Provider, against the same kind of local BIND9 (started by the bench on
# loopback, a fresh zone per run). Prints cairn's own timings, then a table of medians of 3 runs
# with the ratios. Installs octoDNS (PyPI) into .test-tools/octodns on first use.
# Usage: engine/dns/bench/octodns.sh [N]
set -eu
cd "$(dirname "$0")/../../.."
VENV=.test-tools/octodns
if [ ! -x "$VENV/bin/octodns-sync" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q octodns octodns-bind
fi
"$VENV/bin/octodns-sync" --version
exec cargo run --release -q -p cairn-dns --example bench-dns -- "${1:-200}" --octodns "$PWD/$VENV"
