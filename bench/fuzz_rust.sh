#!/bin/sh
# The long property-fuzz campaign of the core's parsers, in Rust (src/fuzz.rs): capture
# reader, L2..L4, TLS stream and hellos, HTTP, DNS (+ TCP framing), passive DNS, DHCP,
# Stratum V2, JSON-lines framing, reassembly and the whole engine, each fed CASES inputs
# (default 10^6): mutations of the real bytes in pcaps/ and random bytes. CI runs the same
# properties with proptest's default 256 cases (`cargo test`).
#
#   bench/fuzz_rust.sh [CASES]
#
# Prints each property's result and the wall time; exits non-zero on the first failure
# (proptest then prints the minimal failing input).
set -eu
cases=${1:-1000000}
cd "$(dirname "$0")/.."
# The fast release profile: fat LTO would cost minutes of build for no fuzzing benefit.
export CARGO_PROFILE_RELEASE_LTO=off CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16
cargo test --release --lib --no-run -q
start=$(date +%s)
PROPTEST_CASES=$cases cargo test --release --lib -q fuzz:: -- --test-threads 1
echo "fuzz_rust: $cases inputs per property, 12 properties, $(( $(date +%s) - start )) s"
