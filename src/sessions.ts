/**
 * Session tickets for 0-RTT reconnects. A peer we dialed hands us tickets;
 * the next dial of the same key with `earlyData: true` resumes with one and
 * can send idempotent messages before the handshake completes.
 *
 * A ticket holds resumption secrets: persist it like a private key. It is
 * only ever used for the key it is stored under, and the native side checks
 * that the certificate inside it carries that key before offering it.
 */
import { InvalidArgumentError } from './errors';
import { assertKey } from './keys';

/** Largest ticket accepted (quiche's are well under 2 KiB). */
const MAX_TICKET = 16 * 1024;

/** Where a socket keeps session tickets, by the peer's public key. */
export interface SessionStore {
  /** The ticket for `publicKey`, if any. */
  get(publicKey: Uint8Array): Uint8Array | undefined;
  /** Stores (replaces) the ticket for `publicKey`. */
  set(publicKey: Uint8Array, ticket: Uint8Array): void;
  /** Forgets the ticket for `publicKey`. */
  delete(publicKey: Uint8Array): void;
}

/** One stored ticket, as `export()` gives it and `import()` takes it. */
export interface SessionEntry {
  publicKey: Uint8Array;
  ticket: Uint8Array;
}

function hex(k: Uint8Array): string {
  return Buffer.from(k.buffer, k.byteOffset, k.byteLength).toString('hex');
}

/** The default store: in memory, the least recently stored dropped beyond `max`. */
export class MemorySessionStore implements SessionStore {
  readonly #max: number;
  readonly #tickets = new Map<string, SessionEntry>();

  constructor(opts: { max?: number } = {}) {
    const max = opts.max ?? 1024;
    if (!Number.isInteger(max) || max < 1) throw new InvalidArgumentError('max must be a positive integer');
    this.#max = max;
  }

  /** Tickets held. */
  get size(): number {
    return this.#tickets.size;
  }

  get(publicKey: Uint8Array): Uint8Array | undefined {
    return this.#tickets.get(hex(assertKey(publicKey, 'publicKey')))?.ticket;
  }

  set(publicKey: Uint8Array, ticket: Uint8Array): void {
    const k = assertKey(publicKey, 'publicKey');
    if (!(ticket instanceof Uint8Array) || ticket.length === 0 || ticket.length > MAX_TICKET) {
      throw new InvalidArgumentError(`ticket must be a Uint8Array of 1..${MAX_TICKET} bytes`);
    }
    const id = hex(k);
    this.#tickets.delete(id);
    this.#tickets.set(id, { publicKey: new Uint8Array(k), ticket: new Uint8Array(ticket) });
    if (this.#tickets.size > this.#max) this.#tickets.delete(this.#tickets.keys().next().value!);
  }

  delete(publicKey: Uint8Array): void {
    this.#tickets.delete(hex(assertKey(publicKey, 'publicKey')));
  }

  /** Copies of every ticket, for an application to persist. */
  export(): SessionEntry[] {
    return [...this.#tickets.values()].map((e) => ({ publicKey: new Uint8Array(e.publicKey), ticket: new Uint8Array(e.ticket) }));
  }

  /** Stores tickets exported earlier (checked like `set`). */
  import(entries: Iterable<SessionEntry>): void {
    for (const e of entries) this.set(e.publicKey, e.ticket);
  }
}
