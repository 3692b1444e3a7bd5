#!/bin/sh
# One issuance (app + wildcard) by cairn and by Debian's certbot + certbot-dns-rfc2136, against
# the same local Pebble + BIND9 (started by the bench on loopback). Prints both times and the
# ratio. Needs: apt-get install -y certbot python3-certbot-dns-rfc2136 (and bind9, pebble).
set -eu
cd "$(dirname "$0")/../../.."
command -v certbot >/dev/null || { echo "certbot is missing: apt-get install -y certbot python3-certbot-dns-rfc2136" >&2; exit 1; }
exec cargo run --release -q -p cairn-acme --example bench-acme -- "${1:-5}" --certbot
