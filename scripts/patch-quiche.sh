#!/usr/bin/env bash
# Prepares the patched quiche that the workspace's [patch.crates-io] entry
# points at (.quiche/quiche-<version>, not in git): the crates.io release,
# checked against the checksum Cargo.lock pinned before the patch, with the
# patches in patches/ applied. Runs before any cargo command in a fresh clone
# (.ci/setup, npm run build:native, .ci/build-addon, the CI workflow); does
# nothing when the tree is already prepared for the current patches.
#
# Why (bench/RELIABILITY.md has both): quiche 0.29.3 never declares lost the
# packets still in flight on a path it leaves (bug A), which stalls a transfer
# when the peer's NAT mapping changes mid-flight; and it does not count the
# padding of Initial datagrams against a server's anti-amplification budget
# (bug B: ~4.5 x instead of 3 x). A third patch keys receive-window
# auto-tuning to the path's minimum RTT instead of the smoothed one, which
# counts the queue the window itself builds (so windows grew to their cap
# on any path, and small messages waited behind a big one's queue). A fourth
# makes a FIN that first arrives on a retransmission of data already read
# readable (bug C: quiche recorded the final size and dropped the frame as
# duplicate, so the stream never ended for the reader). A fifth keeps
# ordinary packets within 16383 bytes while path MTU discovery searches
# above that: quiche writes STREAM/CRYPTO/DATAGRAM frame lengths as 2-byte
# varints, and a bigger packet's frame got a truncated length that the peer
# answered with PROTOCOL_VIOLATION (README "Packet size"). A sixth skips
# PADDING in 64-byte chunks instead of a byte at a time: a 16383-byte path
# MTU probe took ~8 us to parse, now ~0.3 us (every short connection
# receives one or two). The patches are ours; they should go upstream, and this script goes away when
# a quiche release has the fixes.
#
#   bash scripts/patch-quiche.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
version=0.29.3
sha256=61166d27591eb7cb1310eec2b8fc6ae0e0686e9e4ed742a3ffc6317171175e7d
dest=".quiche/quiche-$version"
patches=(patches/quiche-"$version"-*.patch)

stamp="$(cat "${patches[@]}" | cksum | cut -d' ' -f1)"
if [ -f "$dest/.peersock-patched" ] && [ "$(cat "$dest/.peersock-patched")" = "$stamp" ]; then
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
crate="$tmp/quiche-$version.crate"
# Cargo's download cache first (no network needed), then crates.io.
cached="$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/quiche-"$version".crate 2>/dev/null | head -n 1 || true)"
url="https://static.crates.io/crates/quiche/quiche-$version.crate"
if [ -n "$cached" ]; then
  cp "$cached" "$crate"
elif command -v curl >/dev/null 2>&1; then
  curl -fsSL --retry 3 -o "$crate" "$url"
else
  wget -q -O "$crate" "$url"
fi
# sha256sum (GNU, busybox, Git for Windows) or shasum (macOS).
if command -v sha256sum >/dev/null 2>&1; then
  got="$(sha256sum "$crate" | cut -d' ' -f1)"
else
  got="$(shasum -a 256 "$crate" | cut -d' ' -f1)"
fi
if [ "$got" != "$sha256" ]; then
  echo "patch-quiche: quiche-$version.crate has sha256 $got, not the crates.io release's $sha256" >&2
  exit 1
fi
tar -xzf "$crate" -C "$tmp"
for p in "${patches[@]}"; do
  patch -s -p1 -d "$tmp/quiche-$version" <"$PWD/$p"
done
echo "$stamp" >"$tmp/quiche-$version/.peersock-patched"
rm -rf "$dest"
mkdir -p .quiche
mv "$tmp/quiche-$version" "$dest"
echo "patch-quiche: $dest ready (${#patches[@]} patch(es) applied)"
