#!/usr/bin/env bash
# Installs netdetect and replays the bundled demo capture: prints the alerts it finds.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
exec .venv/bin/netdetect replay pcaps/demo.pcap --eve - "$@"
