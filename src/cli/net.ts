/**
 * Sockets for the `peersock` commands: binding with CLI-friendly errors,
 * the dial string a listener prints, dialing with one-line failures, and
 * stopping cleanly on SIGINT/SIGTERM.
 */
import { isIP } from 'node:net';

import { Discovery, encodeKey, PeerSocket, PeersockError, type AcceptHook, type KeyPair, type PeerConnection, type SocketExtension } from '../index';
import type { DialAddress } from './args';
import { CliError, ExitCode, toCliError } from './exit';

/** Dialers send a keep-alive this often, so a quiet interactive session outlives the idle timeout. */
const KEEP_ALIVE_MS = 10_000;

/** Writes `host:port`, with brackets around an IPv6 host. */
export function hostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Options of `bindSocket`. */
export interface BindFor {
  keyPair?: KeyPair | undefined;
  host: string;
  port: number;
  accept?: AcceptHook;
  /** This socket dials: keep its connections alive while quiet. */
  dialer?: boolean;
  /** Extensions to install (finding peers needs NAT traversal). */
  extensions?: SocketExtension[];
}

/** Binds a PeerSocket; a bind failure (port in use, address not local) becomes a one-line CliError. */
export async function bindSocket(opts: BindFor): Promise<PeerSocket> {
  try {
    return await PeerSocket.bind({
      host: opts.host,
      port: opts.port,
      ...(opts.keyPair === undefined ? {} : { keyPair: opts.keyPair }),
      ...(opts.accept === undefined ? {} : { accept: opts.accept }),
      ...(opts.dialer === true ? { keepAlive: KEEP_ALIVE_MS } : {}),
      ...(opts.extensions === undefined ? {} : { extensions: opts.extensions }),
    });
  } catch (e) {
    const sys = (e as { syscallCode?: unknown }).syscallCode;
    if (e instanceof PeersockError && typeof sys === 'string') {
      throw new CliError(`cannot bind UDP ${hostPort(opts.host, opts.port)}: ${sys}${sys === 'EADDRINUSE' ? ' (port in use)' : ''}`, ExitCode.Failure);
    }
    throw toCliError(e);
  }
}

/**
 * The address peers should dial, as `<key>@<host>:<port>`. A wildcard bind
 * (0.0.0.0 or ::) names this machine's first external address the socket
 * can use, of its own family first (Discovery.localHosts, the addresses
 * discovery publishes), or loopback when it has none.
 */
export function dialString(socket: PeerSocket): string {
  const { address, port } = socket.address();
  const host = Discovery.localHosts(socket)[0] ?? (address === '::' ? '::1' : '127.0.0.1');
  return `${encodeKey(socket.publicKey)}@${hostPort(host, port)}`;
}

/**
 * The local address a dialer binds for `target`: loopback for a loopback
 * target (nothing is exposed beyond this machine), else every address of the
 * target's family.
 */
export function localHostFor(target: string): string {
  if (isIP(target) === 6) return target === '::1' ? '::1' : '::';
  if (isIP(target) === 4 && target.startsWith('127.')) return '127.0.0.1';
  return '0.0.0.0';
}

/** Dials `to`; a failed dial (wrong key, no answer, refused...) becomes a CliError with its exit code. */
export async function dial(socket: PeerSocket, to: DialAddress, timeoutMs: number): Promise<PeerConnection> {
  try {
    return await socket.connect({ publicKey: to.publicKey, host: to.host, port: to.port }, { timeout: timeoutMs });
  } catch (e) {
    throw toCliError(e, { where: hostPort(to.host, to.port), timeoutMs });
  }
}

/**
 * Calls `onSignal` once on the first SIGINT or SIGTERM; a second signal
 * exits at once. Returns a function that removes the handlers.
 */
export function onInterrupt(onSignal: (signal: NodeJS.Signals) => void): () => void {
  let seen = false;
  const handler = (signal: NodeJS.Signals): void => {
    if (seen) process.exit(ExitCode.Interrupted);
    seen = true;
    onSignal(signal);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
