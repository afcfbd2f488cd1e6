#!/usr/bin/env bash
# Installs everything the tests need, then runs the quality gates and the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$HOME/.cargo/bin:$PATH"
echo "== cargo fmt --check, clippy -D warnings, cargo test (the compiled core)"
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo clippy --all-targets --features python -- -D warnings
cargo test -q
echo "== ruff"
ruff check netdetect tests bench tools
echo "== mypy --strict"
mypy --strict netdetect tests bench tools
echo "== pytest"
pytest -q -p no:cacheprovider "$@"
