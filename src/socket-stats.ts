/** The socket's endpoint counters, as `PeerSocket.stats()` reports them. */
import type { NativeEndpoint, NativeIoStats } from './native';

/** Endpoint counters; each only grows, except `connections`. */
export interface SocketStats {
  /** Live connections now, in any state (the one counter that also falls). */
  connections: number;
  /** Datagrams handed to the core. */
  datagramsIn: number;
  /** Datagrams dropped without an answer (garbage, unknown connection, bad retry token). */
  dropped: number;
  /** Incoming handshakes started. */
  accepted: number;
  /** Incoming handshakes refused, all reasons (the sum of `refusals`); each refusal is sent to the dialer. */
  refused: number;
  /** Refusals by reason, with the QUIC error code the dialer receives. */
  refusals: {
    /** No common ALPN (0x178 no_application_protocol). */
    alpn: number;
    /** No Ed25519 signature algorithm offered (0x128 handshake_failure). */
    signature: number;
    /** No client certificate (0x174 certificate_required). */
    noCertificate: number;
    /** Not one Ed25519 certificate, or signed by another key (0x12a bad_certificate, 0x133 decrypt_error). */
    badCertificate: number;
    /** The accept hook said no, or the socket was closing (0x2 CONNECTION_REFUSED). */
    application: number;
    /** `maxConnections` reached (0x2 CONNECTION_REFUSED, "server busy"). */
    busy: number;
    /** `maxPendingHandshakes` reached (0x2 CONNECTION_REFUSED). */
    pending: number;
    /** Any other handshake error of ours (a protocol violation, another TLS alert). */
    other: number;
  };
  /** Stateless resets sent. */
  resetsSent: number;
  /** Retry packets sent (`retry: true`). */
  retriesSent: number;
  /** Initials dropped at the token check (`retry: true`): forged, expired or moved tokens. Also counted in `dropped`. */
  invalidTokens: number;
  /**
   * The native I/O driver's counters (`io: 'native'` only): receive and
   * send system calls against datagrams moved, calls into JavaScript,
   * failed sends, and the batch sizes the kernel takes (GSO/GRO segments;
   * 1 where it has neither).
   */
  io?: NativeIoStats;
}

/** Reads the endpoint's counters from the native side (one call). */
export function socketStats(native: NativeEndpoint): SocketStats {
    const s = native.stats();
    const io = native.ioStats();
    return {
      connections: s.connections,
      datagramsIn: s.datagramsIn,
      dropped: s.dropped,
      accepted: s.accepted,
      refused: s.refused,
      refusals: {
        alpn: s.refusedAlpn,
        signature: s.refusedSignature,
        noCertificate: s.refusedNoCert,
        badCertificate: s.refusedBadCert,
        application: s.refusedByApp,
        busy: s.refusedBusy,
        pending: s.refusedPending,
        other: s.refusedOther,
      },
      resetsSent: s.resetsSent,
      retriesSent: s.retriesSent,
      invalidTokens: s.invalidTokens,
      ...(io !== null ? { io } : {}),
    };
}
