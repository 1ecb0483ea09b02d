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
echo "$venv/bin"
