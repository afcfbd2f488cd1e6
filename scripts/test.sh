#!/usr/bin/env bash
# Installs everything the tests need, then runs the quality gates and the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
# Beside the clone, ../shared holds what the suite reads but the repository does not ship:
# the labelled third-party capture corpus (shared/corpus, with labels.json) and Suricata's
# EVE schema (shared/schemas), which every EVE line the tests produce is checked against.
missing_shared=()
[ -f ../shared/corpus/labels.json ] || missing_shared+=("../shared/corpus/labels.json")
[ -f ../shared/schemas/suricata-eve.schema.json ] || missing_shared+=("../shared/schemas/suricata-eve.schema.json")
if ((${#missing_shared[@]})); then
  echo "test.sh: missing ${missing_shared[*]} (resolved from $(pwd))." >&2
  echo "test.sh: the suite needs the shared/ folder (corpus and schemas) next to this" >&2
  echo "test.sh: repository's folder; put it there and run again." >&2
  exit 2
fi
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
