/**
 * The EndpointDriver: the I/O pump of one native endpoint. Datagram in →
 * native recv → one turn per event-loop poll phase (events drained in
 * batches) → one flush at the end of the task → one timer for the earliest
 * deadline, re-armed after every flush. PeerSocket is a facade over it; a
 * second driver (the native I/O driver, which owns the socket and batches
 * with recvmmsg/sendmmsg) plugs in here with the same small surface:
 * `feed`, `feedLocal`, `kick`, `flushNow`, `stop`.
 */
import {
  EV_DATAGRAM,
  EV_DETAIL,
  EV_READABLE,
  EV_SLOTS,
  EV_STOPPED,
  EV_WRITABLE,
  FLUSH_ALL_SENT,
  FLUSH_EVENTS,
  META_HEAD,
  NO_TIMEOUT,
  type NativeEndpoint,
  type NativeEvent,
} from './native';
import type { DatagramTransport } from './transport';

/** Where a connection's common events go (a PeerConnection). */
export interface ConnectionEvents {
  /** A stream has data, a FIN or a reset to read (new peer streams first appear so). */
  _onReadable(stream: number): void;
  /** A stream whose write was cut short can take more. */
  _onWritable(stream: number): void;
  /** The peer sent STOP_SENDING on a stream. */
  _onStopped(stream: number, code: number): void;
  /** A datagram: `buf[offset]` is its channel tag, the payload follows (valid during the call). */
  _onDatagram(buf: Buffer, offset: number, length: number): void;
}

/** What the driver needs from its socket. */
export interface DriverHost {
  /** The connection of a native handle, for its common events. */
  connection(handle: number): ConnectionEvents | undefined;
  /** A rare event (incoming, connected, closed, session, path) as a full object. */
  onDetail(ev: NativeEvent): void;
  /** The transport datagrams of local socket `local` leave from (0: the socket's own). */
  transportFor(local: number): DatagramTransport;
  /** Runs right before each flush (the socket's before-flush hooks). */
  beforeFlush(): void;
  /** A send failed: a lost packet, reported to the connections to that address. */
  sendFailed(err: Error, address: string, port: number): void;
}

/** A send batch buffer, reused once every datagram in it has been sent. */
interface Batch {
  buf: Buffer;
  inFlight: number;
}

const BATCH_DATAGRAMS = 64;
/**
 * Bytes of a send batch buffer for datagrams of at most `maxPayload`: 64 of
 * Ethernet size plus room for one of the largest (a loopback peer's packets
 * reach 16383 bytes), so a socket's pooled batches (up to 8) stay under 1 MiB
 * instead of 8 MiB once big packets have filled them.
 */
const batchBytes = (maxPayload: number): number => Math.min(maxPayload * BATCH_DATAGRAMS, 1452 * BATCH_DATAGRAMS + maxPayload);
/**
 * Datagrams sent per drain before yielding to the event loop: a whole
 * congestion window can be thousands of packets, and sending them in one go
 * would keep incoming packets (small requests, ACKs) waiting behind it.
 * 64 (one batch) rather than 256: a request's p50 while 16 MiB messages
 * stream fell from 0.78-0.88 ms to 0.49-0.69 ms (idle 0.22-0.30 ms), bulk
 * throughput the same within noise (3 interleaved runs each).
 */
const MAX_PER_DRAIN = 64;

/**
 * What PeerSocket needs from an I/O driver: this one (node:dgram) or the
 * native one (native-driver.ts).
 */
export interface Driver {
  /** Something was queued for sending: flush at the end of this task. */
  kick(): void;
  /** Sends what is pending now (the close frames of `destroy`). */
  flushNow(): void;
  /** Stops: no more turns, flushes or timer. */
  stop(): void;
  /** A QUIC datagram from the socket's transport chain (relay frames unwrapped, say). */
  feed(data: Uint8Array, address: string, port: number): void;
  /** A QUIC datagram that arrived on local socket `local` (see migrate). */
  feedLocal(data: Buffer, address: string, port: number, local: number): void;
}

/** Events per `pollEvents` call (the slots array holds EV_SLOTS numbers for each). */
export const EV_BATCH = 256;

/** The pump, timer and event decoding of one native endpoint, over node:dgram. */
export class EndpointDriver implements Driver {
  readonly #native: NativeEndpoint;
  readonly #host: DriverHost;
  readonly #addrCache = new Map<number, [string, number, DatagramTransport]>();
  #addrGeneration = 0;
  readonly #freeBatches: Batch[] = [];
  readonly #meta = new Uint32Array(META_HEAD + 2 * BATCH_DATAGRAMS);
  /** What the last flush said: FLUSH_* flags, and µs until the timer is due. */
  #flushFlags = 0;
  #flushTimeout = NO_TIMEOUT;
  readonly #dgramBuf = Buffer.allocUnsafe(256 * 1024);
  readonly #evSlots = new Float64Array(EV_SLOTS * EV_BATCH);
  #polling = false;
  readonly #maxPayload: number;
  #flushScheduled = false;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #closedFlag = false;
  /** A flush is queued for the end of the current task (after its microtasks). */
  #flushDeferred = false;
  readonly #onImmediate = (): void => {
    this.#flushScheduled = false;
    this.#turn();
  };
  readonly #onMicrotask = (): void => {
    process.nextTick(this.#onTick);
  };
  readonly #onTick = (): void => this.#process();
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (this.#closedFlag) return;
    this.#native.onTimeout();
    this.#turn();
  };

  /** Drives `native` for `host`. */
  constructor(native: NativeEndpoint, host: DriverHost) {
    this.#native = native;
    this.#host = host;
    this.#maxPayload = native.maxUdpPayload();
  }

  /** Something was queued for sending: flush at the end of this task. */
  kick(): void {
    this.#kick();
  }

  /** Sends what is pending now (the close frames of `destroy`). */
  flushNow(): void {
    this.#drain();
  }

  /** Stops: no more turns, flushes or timer. */
  stop(): void {
    this.#closedFlag = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Something was queued for sending: flush once the current task and its
   * microtasks are done, so everything queued in this task (a reply made by
   * an async handler, the next request after an awaited reply) leaves in
   * as few packets as possible, together with the pending ACKs.
   */
  #kick(): void {
    if (this.#flushDeferred || this.#closedFlag) return;
    this.#flushDeferred = true;
    // The microtask runs after the ones already queued; its nextTick runs
    // once the whole microtask queue (and what it adds) is empty.
    queueMicrotask(this.#onMicrotask);
  }

  /** A QUIC datagram that arrived on local socket `local` (see migrate). */
  feedLocal(data: Buffer, address: string, port: number, local: number): void {
    if (this.#closedFlag || data.length === 0 || (data[0]! & 0x40) === 0) return;
    try {
      this.#native.recvOn(data, address, port, local);
    } catch {
      return;
    }
    this.#scheduleTurn();
  }

  /** A QUIC datagram that arrived on the socket's own transport: into the core, then a turn. */
  feed(data: Uint8Array, address: string, port: number): void {
    try {
      this.#native.recv(data, address, port);
    } catch {
      // An address the core cannot represent (e.g. scoped IPv6): drop.
      return;
    }
    this.#scheduleTurn();
  }

  /**
   * Received datagrams are batched per event-loop turn: all that arrive in
   * one poll phase (on any local socket) are handled by one turn.
   */
  #scheduleTurn(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(this.#onImmediate);
  }

  /** Handles pending events, then flushes at the end of the task. */
  #turn(): void {
    if (this.#closedFlag) return;
    this.#poll();
    this.#kick();
  }

  /** The end of a task: flush, handle what that decided, repeat; re-arm the timer. */
  #process(): void {
    if (this.#closedFlag) {
      this.#flushDeferred = false;
      return;
    }
    // Kicks while this loop runs (lane writes in #drain, handlers) are
    // covered by the loop itself, so the flag stays set until it ends.
    // After a complete drain only handling events can queue more to send,
    // and the last flush says whether there are any (and when the timer is
    // due): the usual task is one flush and no further native call.
    let quiet = false;
    let more = false;
    for (let round = 0; round < 16 && !quiet && !more; round++) {
      this.#drain();
      const flags = this.#flushFlags;
      more = (flags & FLUSH_ALL_SENT) === 0;
      // Sending can itself decide things (a close frame out means closed).
      const events = (flags & FLUSH_EVENTS) !== 0 ? this.#poll() : 0;
      quiet = !more && events === 0;
    }
    this.#flushDeferred = false;
    if (more) {
      // Let received datagrams in before sending the rest of the window.
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(this.#onImmediate);
      }
    } else if (!quiet) this.#kick();
    if (quiet) {
      const us = this.#flushTimeout;
      this.#armAt(us === NO_TIMEOUT ? undefined : us / 1000);
    } else this.#arm();
  }

  /** Writes every pending datagram to the transport; returns how many. */
  #drain(): number {
    this.#host.beforeFlush();
    let total = 0;
    for (;;) {
      const batch = this.#freeBatches.pop() ?? { buf: Buffer.allocUnsafe(batchBytes(this.#maxPayload)), inFlight: 0 };
      const meta = this.#meta;
      const count = this.#native.flush(batch.buf, meta);
      const flags = meta[1]!;
      this.#flushFlags = flags;
      this.#flushTimeout = meta[2]!;
      if (count === 0) {
        this.#freeBatches.push(batch);
        return total;
      }
      total += count;
      if (meta[0] !== this.#addrGeneration) {
        this.#addrGeneration = meta[0]!;
        this.#addrCache.clear();
      }
      let off = 0;
      batch.inFlight = count;
      const done = (): void => {
        if (--batch.inFlight === 0 && this.#freeBatches.length < 8) this.#freeBatches.push(batch);
      };
      for (let i = 0; i < count; i++) {
        const len = meta[META_HEAD + 2 * i]!;
        const id = meta[META_HEAD + 1 + 2 * i]!;
        let dest = this.#addrCache.get(id);
        if (dest === undefined) {
          const a = this.#native.address(id);
          if (a === null || a === undefined) {
            done();
            off += len;
            continue;
          }
          // a[3]: the local socket to send from (0: the main one; see migrate).
          dest = [a[0], a[1], this.#host.transportFor(a[3])];
          this.#addrCache.set(id, dest);
        }
        const [address, port, from] = dest;
        from.send(batch.buf.subarray(off, off + len), port, address, (err) => {
          if (err) this.#host.sendFailed(err, address, port);
          done();
        });
        off += len;
      }
      if ((flags & FLUSH_ALL_SENT) !== 0 || total >= MAX_PER_DRAIN) return total;
    }
  }

  #arm(): void {
    this.#armAt(this.#native.timeout() ?? undefined);
  }

  /** Arms the one timer for `t` ms from now (none when undefined). */
  #armAt(t: number | undefined): void {
    // Lazy: a timer already due no later than needed stays armed and, if
    // it fires early, finds nothing due (onTimeout is harmless then) and
    // re-arms. Only an earlier deadline re-arms now. Deadlines move with
    // every packet (loss-probe timer armed by a send, dropped by the ACK),
    // and clearing and setting a timer per packet costs more than the
    // occasional early wake-up.
    if (t === undefined) return;
    const at = Date.now() + t;
    if (this.#timer !== undefined) {
      if (this.#timerAt <= at + 1) return;
      clearTimeout(this.#timer);
    }
    this.#timerAt = at;
    this.#timer = setTimeout(this.#onTimer, Math.max(0, Math.ceil(t)));
  }

  /** Takes the core's pending events and acts on them; returns how many. */
  #poll(): number {
    if (this.#polling) return 0; // never re-entered: the slots would be overwritten
    this.#polling = true;
    try {
      return drainEvents(this.#native, this.#host, this.#dgramBuf, this.#evSlots);
    } finally {
      this.#polling = false;
    }
  }
}

/**
 * Takes the core's pending events and acts on them; returns how many.
 * Common events arrive as numbers (see the binding's `pollEvents`) and go
 * to the connection's methods; the rare ones as full objects. `buf` and
 * `slots` are the caller's (datagram payloads, and EV_SLOTS numbers per
 * event); the caller must not re-enter while this runs.
 */
export function drainEvents(native: NativeEndpoint, host: Pick<DriverHost, 'connection' | 'onDetail'>, buf: Buffer, slots: Float64Array): number {
  let total = 0;
  const batch = slots.length / EV_SLOTS;
  for (;;) {
    const n = native.pollEvents(buf, slots);
    for (let i = 0; i < n; i++) {
      const o = i * EV_SLOTS;
      const kind = slots[o]!;
      if (kind === EV_DETAIL) {
        const detail = native.eventDetail(slots[o + 4]!);
        if (detail !== null && detail !== undefined) host.onDetail(detail);
        continue;
      }
      const conn = host.connection(slots[o + 1]!);
      if (conn === undefined) continue;
      switch (kind) {
        case EV_READABLE:
          conn._onReadable(slots[o + 2]!);
          break;
        case EV_WRITABLE:
          conn._onWritable(slots[o + 2]!);
          break;
        case EV_STOPPED:
          conn._onStopped(slots[o + 2]!, slots[o + 3]!);
          break;
        case EV_DATAGRAM:
          conn._onDatagram(buf, slots[o + 4]!, slots[o + 5]!);
          break;
        default:
          break;
      }
    }
    total += n;
    if (n < batch) return total;
  }
}
