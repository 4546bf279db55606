#!/usr/bin/env bash
# Checks a built Linux addon (ELF .node) and prints its figures:
#   - exports: only the Node-API entry points (no BoringSSL/OpenSSL or Rust symbols leak);
#   - shared libraries it needs: only the C runtime (BoringSSL is linked in statically);
#   - glibc floor: the highest GLIBC_x.y symbol version it references (none on musl);
#   - Electron: it imports no Node-API external-buffer constructor (V8's memory cage
#     in Electron forbids external buffers), and it does import other napi_create_*
#     functions, which shows that the import list is where such a call would appear;
#   - size.
# Exits non-zero, saying why, when a check fails.
#
#   bash scripts/check-binary.sh [--max-glibc 2.28] [file.node]
#   bash scripts/check-binary.sh --self-test
# Without a file: native/peersock.linux-<arch>-<gnu|musl>.node of this machine.
# --self-test builds a small library that leaks a BoringSSL-like symbol and imports
# napi_create_external_buffer, and passes only if the checks reject it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

max_glibc=""
file=""
self_test=0
while [ $# -gt 0 ]; do
  case "$1" in
    --max-glibc) max_glibc="$2"; shift 2 ;;
    --self-test) self_test=1; shift ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) file="$1"; shift ;;
  esac
done

if [ "$self_test" -eq 1 ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  cat >"$tmp/bad.c" <<'C'
/* What a leaking, Electron-unsafe addon would look like to the checks. */
int napi_create_object(void *env, void **result);
int napi_create_external_buffer(void *env, unsigned long n, void *data, void *fin, void *hint, void **result);
int SSL_new(void) { return 0; }
int napi_register_module_v1(void *env, void *exports) {
  void *o;
  napi_create_object(env, &o);
  return napi_create_external_buffer(env, 0, 0, 0, 0, &o);
}
C
  cc -shared -fPIC -o "$tmp/bad.node" "$tmp/bad.c"
  set +e
  out="$(bash "$0" "$tmp/bad.node" 2>&1)"
  rc=$?
  set -e
  printf '%s\n' "$out" | sed 's/^/  | /'
  if [ "$rc" -ne 0 ] &&
    printf '%s\n' "$out" | grep -q 'FAIL: unexpected exports (1): SSL_new' &&
    printf '%s\n' "$out" | grep -q 'FAIL: imports napi_create_external_buffer'; then
    printf 'check-binary self-test: OK (the checks reject a leaking, external-buffer addon)\n'
    exit 0
  fi
  printf 'check-binary self-test: FAILED (the checks accepted a bad addon, exit %s)\n' "$rc"
  exit 1
fi

if [ -z "$file" ]; then
  case "$(uname -m)" in x86_64) arch=x64 ;; aarch64) arch=arm64 ;; *) arch="$(uname -m)" ;; esac
  if ldd --version 2>&1 | grep -qi musl; then libc=musl; else libc=gnu; fi
  file="native/peersock.linux-$arch-$libc.node"
fi
[ -f "$file" ] || { echo "check-binary: $file does not exist (build it: npm run build:native)" >&2; exit 1; }
if ! command -v nm >/dev/null || ! command -v readelf >/dev/null; then
  echo "check-binary: nm and readelf (binutils) are required" >&2
  exit 1
fi

failed=0
fail() { printf '  FAIL: %s\n' "$*"; failed=1; }

printf 'check-binary: %s\n' "$file"

# --- size ------------------------------------------------------------------------
size=$(wc -c <"$file" | tr -d ' ')
printf '  size: %s bytes (%s MiB)\n' "$size" "$(awk -v s="$size" 'BEGIN { printf "%.2f", s / 1048576 }')"

# --- exports ---------------------------------------------------------------------
# Node looks up napi_register_module_v1 (and, if present, node_api_module_get_api_version_v1).
mapfile -t exported < <(nm -D --defined-only "$file" | awk '{ print $NF }' | sed 's/@.*//' | sort -u)
printf '  exported dynamic symbols: %d (%s)\n' "${#exported[@]}" "${exported[*]}"
unexpected=()
for s in "${exported[@]}"; do
  case "$s" in
    napi_register_module_v1|node_api_module_get_api_version_v1) ;;
    *) unexpected+=("$s") ;;
  esac
done
crypto_like=$(printf '%s\n' "${exported[@]}" | grep -c -E '^(SSL|EVP|BIO|X509|CRYPTO|OPENSSL|ERR|RSA|EC|ED25519|BN|PEM|RAND|HMAC|SHA[0-9]*|AES)_' || true)
printf '  of which BoringSSL/OpenSSL-like: %d\n' "$crypto_like"
[ "${#exported[@]}" -gt 0 ] || fail "no exported symbols at all: not a Node-API addon?"
printf '%s\n' "${exported[@]}" | grep -qx napi_register_module_v1 || fail "napi_register_module_v1 is not exported"
[ "${#unexpected[@]}" -eq 0 ] || fail "unexpected exports (${#unexpected[@]}): ${unexpected[*]:0:20}"

# --- shared libraries --------------------------------------------------------------
mapfile -t needed < <(readelf -d "$file" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p')
printf '  needed libraries: %s\n' "${needed[*]}"
for lib in "${needed[@]}"; do
  case "$lib" in
    libc.so.*|libm.so.*|libdl.so.*|libpthread.so.*|librt.so.*|libgcc_s.so.*|ld-linux*|libc.musl-*|ld-musl-*) ;;
    *) fail "needs $lib (only the C runtime is expected; BoringSSL must be linked in statically)" ;;
  esac
done

# --- glibc floor -------------------------------------------------------------------
floor=$( { nm -D "$file" | grep -o 'GLIBC_[0-9][0-9.]*' || true; } | sed 's/GLIBC_//' | sort -uV | tail -n1)
if [ -n "$floor" ]; then
  printf '  glibc floor: %s (highest GLIBC_ symbol version referenced)\n' "$floor"
  printf '  symbols at the floor: %s\n' "$(nm -D "$file" | grep "@GLIBC_$floor\$" | awk '{ print $NF }' | sed 's/@.*//' | paste -sd' ' -)"
  if [ -n "$max_glibc" ] && [ "$(printf '%s\n%s\n' "$floor" "$max_glibc" | sort -V | tail -n1)" != "$max_glibc" ]; then
    fail "glibc floor $floor is above the allowed $max_glibc"
  fi
else
  printf '  glibc floor: none (no GLIBC_ symbol versions: musl or static)\n'
fi

# --- Electron: no external buffers --------------------------------------------------
mapfile -t napi_imports < <(nm -D --undefined-only "$file" | awk '{ print $NF }' | sed 's/@.*//' | grep -E '^(napi|node_api)_' | sort -u)
creators=$(printf '%s\n' "${napi_imports[@]}" | grep '^napi_create_' | paste -sd' ' - || true)
printf '  Node-API imports: %d; napi_create_*: %s\n' "${#napi_imports[@]}" "$creators"
printf '%s\n' "${napi_imports[@]}" | grep -qx napi_create_object ||
  fail "napi_create_object is not an undefined import: Node-API calls are not visible here, so the external-buffer check would prove nothing"
external=$(printf '%s\n' "${napi_imports[@]}" | grep -E 'external_(array)?buffer' | paste -sd' ' - || true)
if [ -n "$external" ]; then
  fail "imports $external (Electron's V8 memory cage forbids external buffers)"
else
  printf '  external-buffer imports: none (napi_create_external_buffer, napi_create_external_arraybuffer)\n'
fi

if [ "$failed" -ne 0 ]; then
  printf 'check-binary: FAILED\n'
  exit 1
fi
printf 'check-binary: OK\n'
