#!/usr/bin/env bash
# Fuzzes peersock-core with cargo-fuzz (libFuzzer): the endpoint's datagram
# input path (endpoint_recv), retry tokens (retry_token) and the verify
# callback's certificate parsing (certificate). For each target it first
# replays the committed corpus (fuzz/corpus/<target>/), then fuzzes for a
# bounded time; new inputs go to a scratch directory, crashes to
# fuzz/artifacts/<target>/. Exits non-zero on the first crash.
#
#   bash scripts/fuzz.sh            # 20 s per target
#   FUZZ_SECONDS=300 bash scripts/fuzz.sh endpoint_recv
#
# Needs cargo-fuzz (installed here when missing) and a nightly compiler:
# `+nightly` when rustup has one, otherwise stable with RUSTC_BOOTSTRAP=1.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
seconds="${FUZZ_SECONDS:-20}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(endpoint_recv retry_token certificate)

cargo_env="${CARGO_HOME:-$HOME/.cargo}/env"
if ! command -v cargo >/dev/null 2>&1 && [ -f "$cargo_env" ]; then
  # shellcheck disable=SC1090
  . "$cargo_env"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi

# The fuzz build compiles BoringSSL once more (other flags); keep it beside
# the workspace's build so it is reused.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/fuzz}"

cd fuzz
status=0
for t in "${targets[@]}"; do
  scratch="$(mktemp -d -t "peersock-fuzz-$t.XXXXXX")"
  mkdir -p "artifacts/$t"
  echo "==> $t: replaying $(find "corpus/$t" -type f | wc -l) corpus inputs"
  if ! cargo "${toolchain[@]}" fuzz run "$t" "corpus/$t" -- -runs=0 -artifact_prefix="artifacts/$t/"; then
    status=1
  else
    echo "==> $t: fuzzing for ${seconds} s"
    if ! cargo "${toolchain[@]}" fuzz run "$t" "$scratch" "corpus/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 \
      -artifact_prefix="artifacts/$t/" -print_final_stats=1; then
      status=1
    fi
  fi
  rm -rf "$scratch"
  [ "$status" -eq 0 ] || { echo "==> $t FAILED: see fuzz/artifacts/$t/"; break; }
done
exit "$status"
