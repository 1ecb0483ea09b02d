#!/usr/bin/env bash
# Every test of the project: formatting, lints, the Rust tests (unit, property, golden,
# crash), then the end-to-end tests that drive the real binary with the real AWS CLI and
# boto3. Bounded for CI; long runs are behind TRAILVAULT_LONG=1.
set -euo pipefail
cd "$(dirname "$0")/.."

venv_bin=$(scripts/test-env.sh)
export PATH="$venv_bin:$PATH"
export TRAILVAULT_TEST_VENV="$venv_bin"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo build"
cargo build --workspace --quiet
echo "== cargo test"
cargo test --workspace --quiet
echo "== fuzz targets (bounded)"
scripts/fuzz.sh
echo "== end-to-end (AWS CLI, boto3)"
python3_bin="$venv_bin/python"
"$python3_bin" -m pytest -q tests/e2e
