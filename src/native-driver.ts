/**
 * The native I/O driver (`bind({ io: 'native' })`): the addon owns the UDP
 * socket, reads and writes it in batches on Node's own loop, runs the
 * core's timers, and calls JavaScript once per batch when there is work
 * (crates/peersock-node/src/netio.rs). This side handles that work: the
 * core's events (as the dgram driver does), non-QUIC datagrams for the
 * transport chain (hole punching, relay frames), datagrams the driver
 * routes back because a JavaScript transport owns their destination (the
 * NAT path layer's virtual addresses, migrated connections' local
 * sockets), and failed sends. Whatever JavaScript queues (stream writes,
 * messages) is flushed once at the end of the task, by the addon.
 */
import { EV_BATCH, drainEvents, type Driver, type DriverHost } from './endpoint-driver';
import { EV_SLOTS, WORK_ERRORS, WORK_EVENTS, WORK_RAW, WORK_ROUTED, type NativeEndpoint } from './native';
import type { NativeUdpTransport } from './native-transport';

/** Datagrams taken per `ioTakeRaw` / `ioTakeRouted` call. */
const TAKE_BATCH = 64;
/** Rounds of "flush, handle" per task before yielding to the loop's I/O. */
const MAX_ROUNDS = 16;

/** The JavaScript half of the native driver. */
export class NativeIoDriver implements Driver {
  readonly #native: NativeEndpoint;
  readonly #host: DriverHost;
  readonly #transport: NativeUdpTransport;
  readonly #dgramBuf = Buffer.allocUnsafe(256 * 1024);
  readonly #evSlots = new Float64Array(EV_SLOTS * EV_BATCH);
  readonly #takeBuf: Buffer;
  readonly #takeMeta = new Uint32Array(2 * TAKE_BATCH);
  #closed = false;
  #busy = false;
  #resumeScheduled = false;
  readonly #onImmediate = (): void => {
    this.#resumeScheduled = false;
    this.#flush();
  };
  #deferred = false;
  readonly #onMicrotask = (): void => {
    process.nextTick(this.#onTick);
  };
  readonly #onTick = (): void => {
    this.#deferred = false;
    this.#flush();
  };

  constructor(native: NativeEndpoint, host: DriverHost, transport: NativeUdpTransport) {
    this.#native = native;
    this.#host = host;
    this.#transport = transport;
    this.#takeBuf = Buffer.allocUnsafe(native.maxUdpPayload() * TAKE_BATCH);
    transport.onWork = (work) => this.#work(work);
  }

  kick(): void {
    if (this.#deferred || this.#closed) return;
    this.#deferred = true;
    queueMicrotask(this.#onMicrotask);
  }

  flushNow(): void {
    if (!this.#closed) this.#native.ioFlush();
  }

  stop(): void {
    this.#closed = true;
    this.#transport.onWork = () => {};
  }

  feed(data: Uint8Array, address: string, port: number): void {
    try {
      this.#native.recv(data, address, port);
    } catch {
      return; // an address the core cannot represent: drop
    }
    this.kick();
  }

  feedLocal(data: Buffer, address: string, port: number, local: number): void {
    if (this.#closed || data.length === 0 || (data[0]! & 0x40) === 0) return;
    try {
      this.#native.recvOn(data, address, port, local);
    } catch {
      return;
    }
    this.kick();
  }

  /**
   * The addon has work for JavaScript (`work`: WORK_* bits): handle it now,
   * and flush at the end of the task (after the microtasks it started), so
   * what handlers queue (a reply, the next request after an awaited one)
   * leaves together with the ACKs, in as few packets as possible.
   */
  #work(work: number): void {
    if (this.#closed || this.#busy) return;
    this.#handle(work);
    this.kick();
  }

  /** The end of a task: flush; while the addon has more, handle it and flush again (bounded). */
  #flush(): void {
    if (this.#closed || this.#busy) return;
    // Kicks while this runs (the before-flush hooks write the message
    // lanes; handlers answer) are covered by its own flushes: a kick from
    // a before-flush hook is followed by the flush, and one from handling
    // by the next round or the resume below. Without this, every batched
    // lane write queued a second, empty flush.
    this.#deferred = true;
    let work = 0;
    try {
      for (let round = 0; round < MAX_ROUNDS && !this.#closed; round++) {
        this.#host.beforeFlush();
        work = this.#native.ioFlush();
        if (work === 0) break;
        this.#handle(work);
      }
    } finally {
      this.#deferred = false;
    }
    // Still work after the last round: come back after the loop's I/O (the
    // addon only calls again when a datagram or the timer wakes it).
    if (work !== 0 && !this.#closed && !this.#resumeScheduled) {
      this.#resumeScheduled = true;
      setImmediate(this.#onImmediate);
    }
  }

  /** What `work` (WORK_* bits) says: events, non-QUIC datagrams, datagrams to send through JavaScript, failed sends. */
  #handle(work: number): void {
    this.#busy = true;
    try {
      if ((work & WORK_EVENTS) !== 0) drainEvents(this.#native, this.#host, this.#dgramBuf, this.#evSlots);
      if ((work & WORK_RAW) !== 0) this.#takeRaw();
      if ((work & WORK_ROUTED) !== 0) this.#takeRouted();
      if ((work & WORK_ERRORS) !== 0) for (const e of this.#native.ioErrors()) this.#host.sendFailed(new Error(e.message), e.address, e.port);
    } finally {
      this.#busy = false;
    }
  }

  /** Non-QUIC datagrams (and relay frames) to the transport chain's handler. */
  #takeRaw(): void {
    const buf = this.#takeBuf;
    const meta = this.#takeMeta;
    for (;;) {
      const n = this.#native.ioTakeRaw(buf, meta);
      let off = 0;
      for (let i = 0; i < n; i++) {
        const len = meta[2 * i]!;
        const a = this.#native.address(meta[2 * i + 1]!);
        // A copy: handlers may keep it (the dgram path hands out fresh Buffers too).
        if (a !== null) this.#transport._deliver(Buffer.from(buf.subarray(off, off + len)), a[0], a[1]);
        off += len;
      }
      if (n < TAKE_BATCH) return;
    }
  }

  /** Datagrams whose destination a JavaScript transport owns, sent through it. */
  #takeRouted(): void {
    const buf = this.#takeBuf;
    const meta = this.#takeMeta;
    for (;;) {
      const n = this.#native.ioTakeRouted(buf, meta);
      let off = 0;
      for (let i = 0; i < n; i++) {
        const len = meta[2 * i]!;
        const a = this.#native.address(meta[2 * i + 1]!);
        if (a !== null) {
          const [address, port, , local] = a;
          const data = Buffer.from(buf.subarray(off, off + len));
          this.#host.transportFor(local).send(data, port, address, (err) => {
            if (err) this.#host.sendFailed(err, address, port);
          });
        }
        off += len;
      }
      if (n < TAKE_BATCH) return;
    }
  }
}
