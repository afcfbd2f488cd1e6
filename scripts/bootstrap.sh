#!/usr/bin/env bash
# Installs what netdetect needs on Debian 12 (as root): system packages, then a virtualenv
# in .venv with the package and its test dependencies. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(python3-venv mosquitto mosquitto-clients tshark tcpreplay libndpi-bin libpcap0.8 tcpdump iproute2 openssl procps logrotate gcc libc6-dev chromium fonts-dejavu-core)
# UPX packs the lab's disguised miner as real campaigns pack XMRig; Debian 12 ships it only
# in bookworm-backports.
BACKPORTS_PACKAGES=(upx-ucl)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: missing system packages: ${missing[*]} (run as root, or install them)" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
bp_missing=()
for pkg in "${BACKPORTS_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || bp_missing+=("$pkg")
done
if ((${#bp_missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap: missing system packages: ${bp_missing[*]} (run as root, or install them)" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      > /etc/apt/sources.list.d/bookworm-backports.sources
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends -t bookworm-backports "${bp_missing[@]}" >/dev/null
fi
# The packaged broker must not hold port 1883 or run with its default config: tests and the
# demo start their own Mosquitto on a free loopback port.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mosquitto 2>/dev/null; then
  systemctl stop mosquitto || true
fi

# The compiled core is built from source by maturin: a Rust toolchain (rustup's, >= 1.80)
# must be on PATH or in ~/.cargo/bin.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "bootstrap: no Rust toolchain (cargo) found; install one with rustup (https://rustup.rs)" >&2
  exit 2
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e ".[sensor,test]"
