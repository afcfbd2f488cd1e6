#!/usr/bin/env bash
# Installs netdetect into .venv and replays the bundled demo capture: prints the alerts.
# Installs only what replay needs (python3-venv when missing, the package with its compiled
# core and runtime dependencies); no test tools, and it starts, stops or reconfigures no system service.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if ! "$PY" -c 'import venv, ensurepip' 2>/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "demo: python3-venv is missing (run as root, or install it)" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi
# The compiled core is built from source by maturin: it needs a Rust toolchain (rustup's).
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "demo: no Rust toolchain (cargo) found; install one with rustup (https://rustup.rs)" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[sensor]"
exec .venv/bin/netdetect replay pcaps/demo.pcap --eve - "$@"
