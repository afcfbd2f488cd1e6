#!/bin/sh
# The long property-fuzz campaign of the core's parsers, in Rust (src/fuzz.rs): capture
# reader, L2..L4, TLS stream, hellos, certificates and record shape, HTTP, DNS (+ TCP
# framing), passive DNS, DHCP, Stratum V2, JSON-lines framing, SOCKS4/4a/5, WebSocket,
# reassembly and the whole engine, each fed CASES inputs (default 10^6): mutations of the
# real bytes in pcaps/, of generated valid framing, and random bytes. CI runs the same
# properties with proptest's default 256 cases (`cargo test`).
#
#   bench/fuzz_rust.sh [CASES [FILTER...]]
#
# FILTERs narrow the run to the properties whose names contain one of them (e.g.
# fuzz::fuzz_ws fuzz::fuzz_socks; default: every fuzz:: property). Prints each property's result and the
# wall time; exits non-zero on the first failure (proptest then prints the minimal input).
set -eu
cases=${1:-1000000}
[ $# -gt 0 ] && shift
[ $# -eq 0 ] && set -- fuzz::
cd "$(dirname "$0")/.."
# The fast release profile: fat LTO would cost minutes of build for no fuzzing benefit.
export CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
cargo test --release --lib --no-run -q
n=$(cargo test --release --lib -q -- --list "$@" 2>/dev/null | grep -c ': test$')
start=$(date +%s)
PROPTEST_CASES=$cases cargo test --release --lib -q -- --test-threads 1 "$@"
echo "fuzz_rust: $cases inputs per property, $n properties, $(( $(date +%s) - start )) s"
