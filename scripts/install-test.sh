#!/usr/bin/env bash
# Proves the install path a user takes: packs the main package and this
# machine's platform package (with the built addon copied in by `napi
# artifacts`, as the release does) into tarballs, installs both into a fresh
# project outside the source tree, with no Rust toolchain on PATH and (where
# `unshare` works, e.g. as root) the source tree hidden behind an empty mount,
# then runs a handshake, a stream echo and a Dispatcher request/reply from an
# ES module (.mjs) and from CommonJS (.cjs), and type-checks a TypeScript file
# against the installed typings (plus one that must not type-check).
# Any failure exits non-zero with the reason.
#
#   bash scripts/install-test.sh        (after npm run build)
set -euo pipefail

say() { printf '==> install-test: %s\n' "$*"; }
die() { printf 'install-test: FAIL: %s\n' "$*" >&2; exit 1; }

# --- stage 2: inside the fresh project (maybe in a mount namespace) -------------------
if [ "${1:-}" = "--in-project" ]; then
  work="$2" src="$3" platform="$4" ts_version="$5" types_node_version="$6"
  if [ "${7:-}" = "hide" ]; then
    mount -t tmpfs -o size=1m,mode=0755 peersock-hidden "$src"
    [ -z "$(ls -A "$src")" ] || die "could not hide the source tree"
    say "source tree hidden: $src is an empty tmpfs in this mount namespace"
  fi
  cd "$work/app"

  # No Rust: drop every PATH entry that holds cargo, rustc or rustup.
  clean_path=""
  IFS=: read -r -a path_dirs <<<"$PATH"
  for d in "${path_dirs[@]}"; do
    [ -n "$d" ] || continue
    if [ -x "$d/cargo" ] || [ -x "$d/rustc" ] || [ -x "$d/rustup" ]; then continue; fi
    clean_path="${clean_path:+$clean_path:}$d"
  done
  export PATH="$clean_path"
  unset CARGO_HOME RUSTUP_HOME NAPI_RS_NATIVE_LIBRARY_PATH NODE_PATH
  if command -v cargo >/dev/null 2>&1 || command -v rustc >/dev/null 2>&1; then die "cargo/rustc still on PATH"; fi
  say "no cargo/rustc on PATH; node $(node --version), npm $(npm --version 2>/dev/null)"

  say "npm install the two tarballs (+ dependencies and typescript from the registry)"
  npm install --no-audit --no-fund --ignore-scripts=false \
    "$work/tarballs/peersock-main.tgz" "$work/tarballs/peersock-platform.tgz" \
    "typescript@$ts_version" "@types/node@$types_node_version" </dev/null
  [ -d node_modules/peersock ] || die "peersock is not in node_modules"
  [ -f "node_modules/peersock-$platform/peersock.$platform.node" ] || die "peersock-$platform has no addon"
  if find node_modules/peersock -name '*.node' | grep -q .; then die "the main package contains a .node file"; fi

  for entry in esm.mjs cjs.cjs; do
    say "node $entry"
    node "$entry" "$platform" "$src" || die "$entry failed"
  done

  say "tsc --noEmit types.ts (the installed typings)"
  npx --no-install tsc --noEmit -p tsconfig.json || die "types.ts does not type-check against the installed typings"
  say "tsc --noEmit bad.ts (must be rejected: the typings are not 'any')"
  if out="$(npx --no-install tsc --noEmit -p tsconfig.bad.json 2>&1)"; then
    die "bad.ts type-checked; the typings accept anything"
  fi
  printf '%s\n' "$out" | sed 's/^/    /'
  [ "$(printf '%s\n' "$out" | grep -c 'error TS')" -eq 3 ] || die "bad.ts: expected exactly 3 type errors"

  if [ -f node_modules/peersock/dist/cli.js ]; then
    say "node_modules/.bin/peersock --help"
    node_modules/.bin/peersock --help >/dev/null || die "the installed peersock bin does not run"
  fi
  exit 0
fi

# --- stage 1: pack, in the source tree ------------------------------------------------
self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)/$(basename "${BASH_SOURCE[0]}")"
cd "$(dirname "$self")/.."
src="$(pwd -P)"
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) arch=x64 ;;
  Linux-aarch64) arch=arm64 ;;
  *) die "this test runs on Linux x64/arm64 (found $(uname -s)-$(uname -m))" ;;
esac
if ldd --version 2>&1 | grep -qi musl; then libc=musl; else libc=gnu; fi
platform="linux-$arch-$libc"
triple="$(uname -m)-unknown-linux-$libc"
addon="native/peersock.$platform.node"
[ -f "$addon" ] || die "$addon is missing (npm run build:native)"
[ -f dist/index.js ] && [ -f dist/index.mjs ] || die "dist/ is not built (npm run build:ts)"

work="$(mktemp -d -t peersock-install.XXXXXX)"
trap 'rm -rf "$work"' EXIT
case "$work/" in "$src"/*) die "the temporary directory $work is inside the source tree" ;; esac
mkdir -p "$work/tarballs" "$work/stage/artifacts" "$work/app"

say "npm pack (main package)"
main_tgz="$(npm pack --ignore-scripts --pack-destination "$work/tarballs" 2>/dev/null | tail -n1)"
mv "$work/tarballs/$main_tgz" "$work/tarballs/peersock-main.tgz"

say "napi artifacts: $addon -> npm/$platform (in a copy, this target only), then npm pack"
# `napi artifacts` insists on every configured target; the copy configures only this one.
node -e '
  const [from, to, triple] = process.argv.slice(1);
  const pkg = JSON.parse(require("fs").readFileSync(from, "utf8"));
  if (!pkg.napi.targets.includes(triple)) throw new Error(`${triple} is not in napi.targets`);
  pkg.napi.targets = [triple];
  require("fs").writeFileSync(to, JSON.stringify(pkg, null, 2));
' package.json "$work/stage/package.json" "$triple"
cp -R npm "$work/stage/npm"
cp "$addon" "$work/stage/artifacts/"
npx --no-install napi artifacts --cwd "$work/stage" --output-dir artifacts --npm-dir npm
[ -f "$work/stage/npm/$platform/peersock.$platform.node" ] || die "napi artifacts did not place the addon in npm/$platform"
plat_tgz="$(cd "$work/stage/npm/$platform" && npm pack --ignore-scripts --pack-destination "$work/tarballs" 2>/dev/null | tail -n1)"
mv "$work/tarballs/$plat_tgz" "$work/tarballs/peersock-platform.tgz"
plat_files="$(tar -tzf "$work/tarballs/peersock-platform.tgz" | sort | paste -sd' ' -)"
say "platform tarball: $plat_files"
[ "$plat_files" = "package/README.md package/package.json package/peersock.$platform.node" ] ||
  die "unexpected platform package contents: $plat_files"

ts_version="$(node -p 'require("typescript/package.json").version')"
types_node_version="$(node -p 'require("@types/node/package.json").version')"

# --- the fresh project's files ----------------------------------------------------------
cat >"$work/app/package.json" <<'JSON'
{ "name": "peersock-install-test", "version": "1.0.0", "private": true, "type": "commonjs" }
JSON

# One scenario for both module systems; only how `peersock` is obtained differs.
scenario='
const { PeerSocket, Dispatcher, encodeKey, keysEqual, PeersockError } = peersock;
const [platform, sourceTree] = process.argv.slice(2);

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

async function main() {
  const watchdog = setTimeout(() => { console.error("timed out"); process.exit(1); }, 30000);
  check(typeof PeerSocket.bind === "function" && typeof Dispatcher === "function", "exports");
  check(new peersock.ClosedError() instanceof PeersockError, "error classes");

  const a = await PeerSocket.bind({ host: "127.0.0.1", port: 0 });
  const b = await PeerSocket.bind({ host: "127.0.0.1", port: 0 });
  a.on("connection", (conn) => conn.on("stream", (stream) => stream.pipe(stream)));
  const server = new Dispatcher(a, { protocol: "install-test/1" });
  server.handle("reverse", (bytes) => Uint8Array.from(bytes).reverse());

  const t0 = performance.now();
  const conn = await b.connect(`${encodeKey(a.publicKey)}@127.0.0.1:${a.address().port}`, { timeout: 10000 });
  const handshakeMs = performance.now() - t0;
  check(keysEqual(conn.remotePublicKey, a.publicKey), "the dialed key is the proven key");

  const payload = new Uint8Array(1 << 20).map((_, i) => (i * 7919) % 251);
  const stream = conn.openStream();
  stream.end(payload);
  const chunks = [];
  for await (const chunk of stream) chunks.push(chunk);
  const echoed = Buffer.concat(chunks);
  check(echoed.length === payload.length && echoed.equals(Buffer.from(payload)), "1 MiB stream echo");

  const client = new Dispatcher(b, { protocol: "install-test/1" });
  const reply = await client.request(conn, new TextEncoder().encode("peersock"), { type: "reverse", timeout: 10000 });
  check(Buffer.from(reply).toString() === "kcosreep", "request/reply");

  await conn.close({ code: 0, reason: "done" });
  await a.close();
  await b.close();
  clearTimeout(watchdog);

  // Which addon did the loader map? It must be the platform package, and
  // nothing may come from the source tree.
  const maps = require("node:fs").readFileSync("/proc/self/maps", "utf8");
  const addons = [...new Set(maps.split("\n").map((l) => l.split(/\s+/)[5]).filter((p) => p && p.endsWith(".node")))];
  check(addons.length === 1 && addons[0].endsWith(`/node_modules/peersock-${platform}/peersock.${platform}.node`), `addon loaded from the platform package: ${addons}`);
  const fromSource = Object.keys(require.cache).concat(addons).filter((p) => p.startsWith(sourceTree + "/"));
  check(fromSource.length === 0, `modules loaded from the source tree: ${fromSource}`);

  console.log(`OK (${MODULE_KIND}): handshake ${handshakeMs.toFixed(1)} ms, 1 MiB echoed, request/reply; addon ${addons[0]}`);
}

main().catch((err) => { console.error(err); process.exit(1); });
'
{
  printf '%s\n' "// ES module entry: named and namespace imports of peersock." \
    "import * as peersock from 'peersock';" \
    "import { PeerSocket as Named } from 'peersock';" \
    "import { createRequire } from 'node:module';" \
    "const require = createRequire(import.meta.url);" \
    "const MODULE_KIND = 'esm';" \
    "if (Named !== peersock.PeerSocket) throw new Error('named export differs from namespace export');"
  printf '%s\n' "$scenario"
} >"$work/app/esm.mjs"
{
  printf '%s\n' "// CommonJS entry." "const peersock = require('peersock');" "const MODULE_KIND = 'cjs';"
  printf '%s\n' "$scenario"
} >"$work/app/cjs.cjs"

cat >"$work/app/types.ts" <<'TS'
// Uses the API through its published typings; tsc --noEmit must accept it.
import { Dispatcher, PeerSocket, encodeKey, keyPair, type PeerConnection, type PeerStream } from 'peersock';

export async function roundTrip(): Promise<string> {
  const a: PeerSocket = await PeerSocket.bind({ host: '127.0.0.1', port: 0, keyPair: keyPair() });
  const b = await PeerSocket.bind({ host: '127.0.0.1', port: 0, idleTimeout: 5000 });
  new Dispatcher(a, { protocol: 'p/1' }).handle('echo', (bytes: Uint8Array) => bytes);
  const conn: PeerConnection = await b.connect(`${encodeKey(a.publicKey)}@127.0.0.1:${a.address().port}`);
  const stream: PeerStream = conn.openStream();
  stream.end('hi');
  const reply = await new Dispatcher(b, { protocol: 'p/1' }).request<Uint8Array>(conn, new Uint8Array([1]), { type: 'echo' });
  const port: number = a.address().port;
  await Promise.all([a.close(), b.close()]);
  return `${reply.length} ${port} ${conn.closeInfo?.code ?? ''}`;
}
TS
cat >"$work/app/bad.ts" <<'TS'
// Three deliberate type errors: the typings must reject each.
import { PeerSocket, encodeKey } from 'peersock';

export async function wrong(): Promise<void> {
  encodeKey('not bytes');
  const s = await PeerSocket.bind({ port: 'any' });
  s.connectTo('x');
}
TS
tsconfig='{ "compilerOptions": { "strict": true, "module": "node16", "moduleResolution": "node16", "target": "ES2022", "types": ["node"], "noEmit": true }, "files": ["FILE"] }'
printf '%s\n' "${tsconfig/FILE/types.ts}" >"$work/app/tsconfig.json"
printf '%s\n' "${tsconfig/FILE/bad.ts}" >"$work/app/tsconfig.bad.json"

# --- stage 2 --------------------------------------------------------------------------
args=("$work" "$src" "$platform" "$ts_version" "$types_node_version")
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null 2>&1 && unshare -m true 2>/dev/null; then
  unshare -m bash "$self" --in-project "${args[@]}" hide
else
  say "unshare is not available: the source tree stays visible; the loaded files are checked instead"
  bash "$self" --in-project "${args[@]}"
fi
say "PASS"
