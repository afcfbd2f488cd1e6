#!/usr/bin/env bash
# Installs everything the tests need, then runs the quality gates and the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"
ruff check netdetect tests bench tools
echo "== mypy --strict"
mypy --strict netdetect tests bench tools
echo "== pytest"
pytest -q -p no:cacheprovider "$@"
