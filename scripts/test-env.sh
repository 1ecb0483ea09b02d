#!/usr/bin/env bash
# Installs what the tests drive from outside the workspace: a Python virtualenv with the real
# AWS CLI, boto3, pytest, DuckDB, moto (S3 server) and cryptography. Idempotent; prints the
# venv's bin directory. Override the location with TRAILVAULT_VENV.
set -euo pipefail
venv=${TRAILVAULT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/trailvault/venv}
stamp="$venv/.trailvault-deps-v1"
if [ ! -f "$stamp" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --upgrade pip >&2
  "$venv/bin/pip" install --quiet awscli boto3 pytest duckdb 'moto[server]' cryptography >&2
  touch "$stamp"
fi
# Headless Chromium for the HTML report test (trailvault-report). Debian's package; only when
# it is missing and apt-get is there (as root, or through sudo without a password).
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; fi
  { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium; } >&2 \
    || echo "test-env: could not install chromium; the report browser test will skip" >&2
fi
echo "$venv/bin"
