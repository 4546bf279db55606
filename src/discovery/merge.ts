/**
 * One lookup over several sources (LAN, DHT): their answers interleaved as
 * they arrive, each address once, until every source ends, the time limit
 * passes, the caller's signal aborts, discovery closes or MAX_LOOKUP_PEERS
 * addresses were found.
 */
import type { PeerAddress } from './record';

/** Distinct addresses one lookup yields at most; the lookup ends when it has found them. */
export const MAX_LOOKUP_PEERS = 4096;

export interface MergeControl {
  /** The caller's signal. */
  outer: AbortSignal | undefined;
  /** Ends this lookup (discovery's close aborts it through `track`). */
  own: AbortController;
  /** ms until the lookup ends. */
  timeout: number;
  /** The set of running lookups, for close(). */
  track: Set<AbortController>;
}

export async function* mergeLookups(sources: Array<(s: AbortSignal) => AsyncIterable<PeerAddress>>, c: MergeControl): AsyncGenerator<PeerAddress> {
  if (c.outer?.aborted) return;
  const { own } = c;
  c.track.add(own);
  const onAbort = (): void => own.abort();
  c.outer?.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(() => own.abort(), c.timeout);
  const queue: PeerAddress[] = [];
  const seen = new Set<string>();
  let running = sources.length;
  let wake: (() => void) | undefined;
  const poke = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  own.signal.addEventListener('abort', poke, { once: true });
  for (const source of sources) {
    void (async () => {
      try {
        for await (const p of source(own.signal)) {
          if (own.signal.aborted) break;
          const id = `${p.host}|${p.port}`;
          if (seen.has(id)) continue;
          seen.add(id);
          queue.push({ host: p.host, port: p.port });
          // Nothing more can be yielded: end every source now, not at the deadline (what is queued is still yielded).
          if (seen.size >= MAX_LOOKUP_PEERS) own.abort();
          poke();
        }
      } catch {
        // A failed source ends; the others carry on.
      } finally {
        running--;
        poke();
      }
    })();
  }
  try {
    for (;;) {
      while (queue.length > 0) yield queue.shift()!;
      if (running === 0 || own.signal.aborted) return;
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    clearTimeout(timer);
    c.outer?.removeEventListener('abort', onAbort);
    own.abort();
    c.track.delete(own);
  }
}
