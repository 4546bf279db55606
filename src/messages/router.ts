/**
 * The per-socket half of the dispatch layer: owns the messages channel of
 * every connection and routes envelopes to Dispatchers by protocol.
 *
 * Wire use per connection: small reliable messages share one outgoing
 * unidirectional "lane" stream, batched into one write per event-loop turn;
 * a message over LARGE bytes gets a unidirectional stream of its own (so it
 * never blocks small ones); a conversation owns a bidirectional stream;
 * unreliable messages ride in QUIC datagrams.
 */
import type { PeerConnection } from '../connection';
import { InvalidArgumentError, NoHandlerError, StreamLimitError, closeError, type PeersockError } from '../errors';
import type { ChannelHandler } from '../channels';
import { PeerReadStream, type IncomingStream, type PeerStream } from '../stream';
import { CHANNEL_MESSAGES, type MessageHost } from './host';
import { MessageTooLargeError } from './errors';
import { Deadlines } from './deadlines';
import { LaneWriter, decodeEnvelope } from './codec';
import { FrameReader, frame, varintLength, writeVarint } from './framing';
import { peersock } from './generated/envelope';

export const Envelope = peersock.messages.Envelope;
export type EnvelopeData = peersock.messages.IEnvelope;
export const Control = peersock.messages.Control;

/** Send urgency (0 first .. 7 last) of the small-message lane and of big messages' own streams; QUIC's default is 3. */
export const PRIORITY_LANE = 1;
export const PRIORITY_LARGE = 6;
/** Messages bigger than this (framed) get their own stream. */
export const LARGE = 64 * 1024;
/** Envelope fields around the payload, at most. */
export const ENVELOPE_OVERHEAD = 1024;
/** QUIC application error code for a message over the receiver's limit. */
export const CODE_MESSAGE_TOO_LARGE = 0x4d01;
/** QUIC application error code for a malformed frame or envelope stream. */
export const CODE_MALFORMED = 0x4d02;

/** What a Dispatcher implements to receive from the router. */
export interface Endpoint {
  readonly protocol: string;
  readonly maxMessageSize: number;
  /** A request or one-way message (no in-reply-to, no conversation). */
  _onMessage(conn: PeerConnection, env: peersock.messages.Envelope): void;
  /** A peer opened a conversation: `first` is its OPEN envelope. */
  _onConversation(conn: PeerConnection, stream: PeerStream, reader: FrameReader, first: peersock.messages.Envelope, rest: Buffer[]): void;
  /** Counts something dropped. */
  _count(what: 'malformed' | 'tooLarge' | 'droppedReplies'): void;
}

/** Counters `send` bumps for the path it took. */
export interface SendCounts {
  sentReliable: number;
  sentUnreliable: number;
  fellBackToReliable: number;
}

/** A request waiting for its reply. */
export interface Waiter {
  protocol: string;
  settle(env: peersock.messages.Envelope | null, err?: PeersockError): void;
}

/** Per-connection state of the messages channel. */
export interface ConnMessages {
  nextId: number;
  lane: PeerStream | undefined;
  /** Framed envelopes queued for the lane's next write. */
  out: LaneWriter;
  flushScheduled: boolean;
  /** The connection (to flush its lane before the socket sends). */
  conn: PeerConnection;
  /** Resolvers of sends waiting for the lane to drain. */
  drainWaiters: Array<() => void>;
  /** The one promise every send waiting for this drain gets (none while the lane takes more). */
  drained?: Promise<void> | undefined;
  waiters: Map<number, Waiter>;
  closed: boolean;
  /** When opening a new lane was first refused for the peer's stream limit. */
  blockedSince?: number | undefined;
}

/** While the peer's stream limit refuses a new lane: retry this often… */
const LANE_RETRY_MS = 25;
/** …for this long, then drop what is queued. */
const LANE_GIVE_UP_MS = 2000;

/** Tag of the Envelope's `payload` field (6, length-delimited). */
const PAYLOAD_TAG = (6 << 3) | 2;

/**
 * The start of a framed envelope whose payload is sent separately: the frame
 * length, every other field, then the payload's tag and length. Followed by
 * the payload's bytes it is the frame `encodeDelimited` makes (protobuf
 * fields may come in any order).
 */
export function largeHead(env: EnvelopeData, payloadLength: number): Buffer {
  const rest = Envelope.encode({ ...env, payload: undefined }).finish();
  const fields = rest.length + 1 + varintLength(payloadLength);
  const body = fields + payloadLength;
  const head = Buffer.allocUnsafe(varintLength(body) + fields);
  let off = writeVarint(head, 0, body);
  head.set(rest, off);
  off += rest.length;
  head[off++] = PAYLOAD_TAG;
  writeVarint(head, off, payloadLength);
  return head;
}

const routers = new WeakMap<MessageHost, MessageRouter>();

/** One per socket (host); created by the first Dispatcher, it claims the messages channel. */
export class MessageRouter implements ChannelHandler {
  readonly #dispatchers = new Map<string, Endpoint>();
  readonly #conns = new WeakMap<PeerConnection, ConnMessages>();
  /** Connections with queued lane frames, written just before the socket flushes. */
  #dirty: ConnMessages[] = [];
  /** Envelopes dropped before reaching a dispatcher (undecodable, or of a protocol nobody here speaks). */
  malformed = 0;
  /** Request timeouts of every dispatcher on the socket. */
  readonly deadlines = new Deadlines();

  /** The host's router, installed on first use (it claims CHANNEL_MESSAGES and a before-flush hook). */
  static for(host: MessageHost): MessageRouter {
    const existing = routers.get(host);
    if (existing !== undefined) return existing;
    const r = new MessageRouter();
    host.claimChannel(CHANNEL_MESSAGES, r);
    host.onBeforeFlush(() => r.beforeFlush());
    routers.set(host, r);
    return r;
  }

  add(d: Endpoint): void {
    if (this.#dispatchers.has(d.protocol)) throw new InvalidArgumentError(`a dispatcher for protocol "${d.protocol}" already exists on this socket`);
    this.#dispatchers.set(d.protocol, d);
  }

  remove(d: Endpoint): void {
    if (this.#dispatchers.get(d.protocol) === d) this.#dispatchers.delete(d.protocol);
  }

  /** Largest frame any dispatcher on this socket accepts. */
  get maxFrame(): number {
    let max = 0;
    for (const d of this.#dispatchers.values()) max = Math.max(max, d.maxMessageSize);
    return max + ENVELOPE_OVERHEAD;
  }

  /** The connection's messages state (created on first use). */
  state(conn: PeerConnection): ConnMessages {
    let st = this.#conns.get(conn);
    if (st === undefined) {
      const created: ConnMessages = { nextId: 1, conn, lane: undefined, out: new LaneWriter(), flushScheduled: false, drainWaiters: [], waiters: new Map(), closed: false };
      st = created;
      this.#conns.set(conn, created);
      void conn.closed.then((info) => {
        created.closed = true;
        // The connection's own error, PeerClosedError (the peer's code and
        // reason) or ClosedError: what its streams fail with too.
        const err = closeError(info);
        for (const w of created.waiters.values()) w.settle(null, err);
        created.waiters.clear();
        created.drained = undefined;
        for (const r of created.drainWaiters.splice(0)) r();
      });
    }
    return st;
  }

  /** A new message id, unique per sender and connection. */
  nextId(conn: PeerConnection): number {
    return this.state(conn).nextId++;
  }

  /**
   * Sends an encoded envelope. Unreliable ones that fit a datagram go as
   * one; everything else reliably. Resolves once handed to QUIC (waiting
   * while the lane is backed up).
   */
  send(conn: PeerConnection, env: EnvelopeData, reliable: boolean, counts?: SendCounts): Promise<void> | undefined {
    if (!reliable) {
      const bytes = Envelope.encode(env).finish();
      if (bytes.length <= conn.maxDatagramSize) {
        if (counts) counts.sentUnreliable++;
        conn._sendChannelDatagram(CHANNEL_MESSAGES, bytes);
        return undefined;
      }
      if (counts) counts.fellBackToReliable++;
    }
    if (counts) counts.sentReliable++;
    const payload = env.payload;
    if (payload !== undefined && payload !== null && payload.length > LARGE) {
      const s = conn._openChannelStream(CHANNEL_MESSAGES, true);
      s.on('error', () => {});
      // Big messages yield to the lane and to conversations, and go one after
      // another rather than interleaved (each finishes sooner).
      s.setPriority(PRIORITY_LARGE, false);
      // The payload is written as it is, after the frame's head: copying
      // megabytes into one buffer would stall the event loop (and every
      // small message) for milliseconds.
      const head = largeHead(env, payload.length);
      return new Promise<void>((resolve, reject) => {
        s.write(head);
        s.end(payload, () => (s.errored ? reject(s.errored) : resolve()));
      });
    }
    // Length-prefixed, appended to what the lane writes next.
    const st = this.state(conn);
    st.out.append(env);
    if (!st.flushScheduled) {
      // Batched: written once per socket turn, just before it sends, so a
      // reply made while handling a request leaves with that request's ACK.
      st.flushScheduled = true;
      this.#dirty.push(st);
      conn.kick();
    }
    if (st.lane !== undefined && st.lane.writableNeedDrain) {
      // One promise for all senders waiting on this drain: a backed-up lane
      // costs no allocation per message.
      st.drained ??= new Promise((resolve) => st.drainWaiters.push(resolve));
      return st.drained;
    }
    return undefined;
  }

  /** @internal Called by the host right before it flushes datagrams (writes the batched lanes). */
  beforeFlush(): void {
    if (this.#dirty.length === 0) return;
    const dirty = this.#dirty;
    this.#dirty = [];
    for (const st of dirty) this.#flushLane(st.conn, st);
  }

  #flushLane(conn: PeerConnection, st: ConnMessages): void {
    st.flushScheduled = false;
    if (st.out.length === 0 || st.closed || conn.closeInfo !== undefined) {
      st.out.clear();
      return;
    }
    if (st.lane === undefined || st.lane.destroyed) {
      let lane: PeerStream;
      try {
        lane = conn._openChannelStream(CHANNEL_MESSAGES, true);
      } catch (e) {
        // The peer grants no stream now (it stopped our lanes and has not
        // released them yet): try again shortly, for a while. This runs
        // inside the socket's flush, so nothing may be thrown from here.
        if (e instanceof StreamLimitError && this.#retryLane(st)) return;
        st.out.clear();
        st.blockedSince = undefined;
        return;
      }
      st.blockedSince = undefined;
      lane.on('error', () => {});
      lane.setPriority(PRIORITY_LANE);
      const release = (): void => {
        st.drained = undefined;
        for (const r of st.drainWaiters.splice(0)) r();
      };
      lane.on('drain', release);
      // A lane the peer stopped never drains: its waiting senders go on.
      lane.on('close', release);
      st.lane = lane;
    }
    st.lane._writeNow(st.out.take());
  }

  /**
   * Schedules another flush of `st` in LANE_RETRY_MS while a new lane has
   * been refused for less than LANE_GIVE_UP_MS; false once it is time to
   * drop the queued messages (their requests then time out).
   */
  #retryLane(st: ConnMessages): boolean {
    const now = Date.now();
    st.blockedSince ??= now;
    if (now - st.blockedSince >= LANE_GIVE_UP_MS) return false;
    setTimeout(() => {
      if (st.flushScheduled || st.closed || st.conn.closeInfo !== undefined) return;
      st.flushScheduled = true;
      this.#dirty.push(st);
      st.conn.kick();
    }, LANE_RETRY_MS).unref();
    return true;
  }

  /** Settles the waiter of a reply; false if nobody waits for it. */
  reply(conn: PeerConnection, env: peersock.messages.Envelope): boolean {
    const st = this.state(conn);
    const w = st.waiters.get(env.inReplyTo);
    if (w === undefined || w.protocol !== env.protocol) return false;
    st.waiters.delete(env.inReplyTo);
    w.settle(env);
    return true;
  }

  /** Decodes and routes one envelope: `buf[start..end]`, a stream frame or a datagram. */
  #route(conn: PeerConnection, buf: Buffer, start: number, end: number): void {
    let env: peersock.messages.Envelope;
    try {
      env = decodeEnvelope(buf, start, end);
    } catch {
      this.malformed++;
      return;
    }
    const d = this.#dispatchers.get(env.protocol);
    if (env.inReplyTo !== 0) {
      // A reply nobody waits for: counted by its protocol's dispatcher, or
      // here when no dispatcher speaks it (every dropped envelope counts once).
      if (!this.reply(conn, env)) {
        if (d !== undefined) d._count('droppedReplies');
        else this.malformed++;
      }
      return;
    }
    if (d === undefined) {
      this.malformed++;
      if (!env.oneway && env.id !== 0 && env.inRegardsTo === 0) {
        void this.send(conn, { id: this.nextId(conn), protocol: env.protocol, inReplyTo: env.id, error: { code: NoHandlerError.remote, message: `no dispatcher for protocol "${env.protocol}"` } }, true);
      }
      return;
    }
    if (env.inRegardsTo !== 0 || env.id === 0) {
      // Conversation messages travel on their own streams, never here. Ids
      // are never 0: such a request could not be answered (its reply, with
      // in-reply-to 0, would reach the peer as a request).
      d._count('malformed');
      return;
    }
    d._onMessage(conn, env);
  }

  /** @internal A peer stream on the messages channel. */
  stream(conn: PeerConnection, stream: IncomingStream): void {
    const reader = new FrameReader(this.maxFrame);
    stream.on('error', () => {});
    if (stream instanceof PeerReadStream) {
      const route = (buf: Buffer, start: number, end: number): void => this.#route(conn, buf, start, end);
      stream._sinkTo((chunk: Buffer) => {
        try {
          reader.each(chunk, route);
        } catch (e) {
          // Only the reader throws (#route keeps what it meets to itself):
          // a frame over the limit, or a malformed length.
          this.#refuse(stream, e);
        }
      });
      return;
    }
    // A conversation: its first frame must be an OPEN envelope.
    const onData = (chunk: Buffer): void => {
      let frames: Buffer[];
      try {
        frames = reader.push(chunk);
      } catch (e) {
        this.#refuse(stream, e);
        return;
      }
      if (frames.length === 0) return;
      stream.off('data', onData);
      stream.pause();
      let env: peersock.messages.Envelope;
      try {
        env = Envelope.decode(frames[0]!);
      } catch {
        this.malformed++;
        stream.destroy(Object.assign(new Error('malformed'), { appCode: CODE_MALFORMED }));
        return;
      }
      const d = this.#dispatchers.get(env.protocol);
      if (d === undefined || env.control !== Control.OPEN || env.inRegardsTo === 0) {
        this.malformed++;
        const msg = d === undefined ? `no dispatcher for protocol "${env.protocol}"` : 'a conversation must start with OPEN';
        stream.end(frame(Envelope.encode({ protocol: env.protocol, inRegardsTo: env.inRegardsTo, control: Control.END, error: { code: NoHandlerError.remote, message: msg } }).finish()));
        return;
      }
      // Frames that arrived with the first one are handed over with it.
      d._onConversation(conn, stream, reader, env, frames.slice(1));
    };
    stream.on('data', onData);
  }

  #refuse(stream: IncomingStream, e: unknown): void {
    const code = e instanceof MessageTooLargeError ? CODE_MESSAGE_TOO_LARGE : CODE_MALFORMED;
    if (e instanceof MessageTooLargeError) {
      for (const d of this.#dispatchers.values()) d._count('tooLarge');
    } else this.malformed++;
    stream.destroy(Object.assign(new Error('refused message stream'), { appCode: code }));
  }

  /** @internal A datagram on the messages channel. */
  datagram(conn: PeerConnection, data: Uint8Array): void {
    // Decoded from a Buffer like stream frames are, so a payload decodes the
    // same whichever way it came (protobufjs reads strings of a Buffer with
    // Node's UTF-8 decoder, of a plain Uint8Array with its own, which
    // garbles invalid UTF-8 differently) and raw payloads are Buffers too.
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.#route(conn, buf, 0, buf.length);
  }
}
