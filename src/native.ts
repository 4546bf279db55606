/**
 * The only importer of the generated napi loader. Everything native crosses
 * here; callers convert thrown errors with `errorFromNative`.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
import binding = require('../native/binding.js');

/** The per-packet calls (see the binding's hot.rs), bound to one endpoint. */
export interface HotMethods {
  /** Feeds one received datagram (decrypted in place). */
  recv(data: Uint8Array, address: string, port: number): void;
  /** Feeds one datagram received on another local socket (index from `addLocalAddress`). */
  recvOn(data: Uint8Array, address: string, port: number, local: number): void;
  /** Writes pending datagrams into `out`; see `flush` in the binding for `meta`. */
  flush(out: Uint8Array, meta: Uint32Array): number;
  /** Drains events as numbers into `out`; datagram payloads into `dgramBuf`. */
  pollEvents(dgramBuf: Uint8Array, out: Float64Array): number;
  /** `2n + fin`, -1 when blocked, -2 when reset. */
  streamRecv(conn: number, stream: number, buf: Uint8Array): number;
  /** Bytes taken, or -1 when the peer stopped the stream. */
  streamSend(conn: number, stream: number, data: Uint8Array, fin: boolean): number;
}

export type NativeEndpoint = binding.NativeEndpoint & HotMethods;

const hot = binding.hotApi();
export type NativeEvent = binding.NativeEvent;
export type NativeOptions = binding.NativeOptions;
export type NativeConnInfo = binding.NativeConnInfo;
export type NativeStats = binding.NativeStats;

/** Creates the native endpoint for one socket. */
export function createNativeEndpoint(
  secretKey: Uint8Array,
  address: string,
  port: number,
  options: NativeOptions,
): NativeEndpoint {
  const ep = new binding.NativeEndpoint(secretKey, address, port, options);
  const h = ep.hotHandle();
  const methods: HotMethods = {
    recv: (data, address, port) => {
      hot.recv(h, data, address, port);
    },
    recvOn: (data, address, port, local) => {
      hot.recvOn(h, data, address, port, local);
    },
    flush: (out, meta) => hot.flush(h, out, meta),
    pollEvents: (dgramBuf, out) => hot.pollEvents(h, dgramBuf, out),
    streamRecv: (conn, stream, buf) => hot.streamRecv(h, conn, stream, buf),
    streamSend: (conn, stream, data, fin) => hot.streamSend(h, conn, stream, data, fin),
  };
  return Object.assign(ep, methods);
}
