/**
 * Probe sockets of the NAT path layer (L0): extra UDP sockets opened for one
 * route while punching from behind a port-randomising NAT (each gets its own
 * mapping, so some land on ports the far side's punches reach: a bounded
 * birthday attempt; see punch.ts). The route keeps the probe its direct
 * path runs on, if any; the others close when punching ends.
 */
import { UdpTransport } from '../transport';
import type { Route } from './route';

/** Probe sockets open at once per socket, at most. */
export const MAX_PROBES = 512;

/** What a probe socket received: bytes and sender, with the probe it came in on. */
export type ProbeHandler = (probe: UdpTransport, data: Buffer, address: string, port: number) => void;

/** The probe sockets of one NAT path layer, counted against MAX_PROBES. */
export class ProbeSockets {
  #count = 0;

  /** Probe sockets open now. */
  get count(): number {
    return this.#count;
  }

  /**
   * Opens up to `count` sockets on `host` for `r` (fewer when the bound is
   * reached or binds fail); a probe opened after `live()` turned false is
   * closed at once. What they receive goes to `onDatagram`.
   */
  async open(r: Route, count: number, host: string, live: () => boolean, onDatagram: ProbeHandler): Promise<UdpTransport[]> {
    const n = Math.max(0, Math.min(count, MAX_PROBES - this.#count));
    this.#count += n;
    const opened = await Promise.all(Array.from({ length: n }, () => UdpTransport.bind({ host, port: 0, bufferSize: 256 * 1024 }).catch(() => undefined)));
    const list: UdpTransport[] = [];
    for (const p of opened) {
      if (p === undefined) {
        this.#count--;
        continue;
      }
      if (!live()) {
        this.#count--;
        void p.close();
        continue;
      }
      p.onDatagram((d, address, port) => onDatagram(p, d, address, port));
      p.onError(() => {});
      r.probes.push(p);
      list.push(p);
    }
    return list;
  }

  /** Closes `r`'s probe sockets except the one its direct path uses. */
  close(r: Route): void {
    const keep = r.probe;
    for (const p of r.probes) {
      if (p === keep) continue;
      this.#count--;
      void p.close();
    }
    r.probes = keep !== undefined ? [keep] : [];
  }
}
