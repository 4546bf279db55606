import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { inspect } from 'node:util';
import test from 'ava';

import * as api from '../src/index';
import {
  AbortError,
  BusyError,
  CertificateError,
  ClosedError,
  ConnectionRefusedError,
  ConversationEndedError,
  DatagramTooLargeError,
  DecodeError,
  HandlerFailedError,
  HandshakeTimeoutError,
  IdentityMismatchError,
  IdleTimeoutError,
  InternalError,
  IntroductionError,
  InvalidArgumentError,
  MessageTooLargeError,
  NoHandlerError,
  NoPathError,
  NotConnectedError,
  PeerClosedError,
  PeerRejectedError,
  PeersockError,
  RemoteError,
  RequestTimeoutError,
  SocketError,
  StreamLimitError,
  StreamResetError,
  StreamStoppedError,
  TransportError,
  closeError,
  errorFromCode,
  PeerNotFoundError,
  PeerUnreachableError,
  DiscoveryTimeoutError,
  PublishError,
  DhtError,
  errorFromNative,
} from '../src/errors';

/** What the binding throws: a plain Error whose `code` is the core's stable string. */
const nativeError = (code: unknown, message = 'native failure'): Error => Object.assign(new Error(message), { code });

const cases: Array<[PeersockError, Function, string]> = [
  [new InvalidArgumentError('x'), InvalidArgumentError, 'ERR_PEERSOCK_INVALID_ARGUMENT'],
  [new IdentityMismatchError(), IdentityMismatchError, 'ERR_PEERSOCK_IDENTITY_MISMATCH'],
  [new CertificateError(), CertificateError, 'ERR_PEERSOCK_BAD_CERTIFICATE'],
  [new PeerRejectedError(), PeerRejectedError, 'ERR_PEERSOCK_PEER_REJECTED_CREDENTIALS'],
  [new HandshakeTimeoutError(), HandshakeTimeoutError, 'ERR_PEERSOCK_HANDSHAKE_TIMEOUT'],
  [new ConnectionRefusedError(), ConnectionRefusedError, 'ERR_PEERSOCK_CONNECTION_REFUSED'],
  [new PeerClosedError('x', { appCode: 1 }), PeerClosedError, 'ERR_PEERSOCK_PEER_CLOSED'],
  [new IdleTimeoutError(), IdleTimeoutError, 'ERR_PEERSOCK_IDLE_TIMEOUT'],
  [new TransportError('x', { errorCode: 1, local: true }), TransportError, 'ERR_PEERSOCK_TRANSPORT'],
  [new StreamResetError('x', { appCode: 1 }), StreamResetError, 'ERR_PEERSOCK_STREAM_RESET'],
  [new StreamStoppedError('x', { appCode: 1 }), StreamStoppedError, 'ERR_PEERSOCK_STREAM_STOPPED'],
  [new DatagramTooLargeError(), DatagramTooLargeError, 'ERR_PEERSOCK_DATAGRAM_TOO_LARGE'],
  [new ClosedError(), ClosedError, 'ERR_PEERSOCK_CLOSED'],
  [new StreamLimitError(), StreamLimitError, 'ERR_PEERSOCK_STREAM_LIMIT'],
  [new AbortError(), AbortError, 'ERR_PEERSOCK_ABORTED'],
  [new SocketError('x'), SocketError, 'ERR_PEERSOCK_SOCKET'],
  [new InternalError(), InternalError, 'ERR_PEERSOCK_INTERNAL'],
  [new NotConnectedError(), NotConnectedError, 'ERR_PEERSOCK_NOT_CONNECTED'],
  [new BusyError(), BusyError, 'ERR_PEERSOCK_BUSY'],
  [new HandlerFailedError(), HandlerFailedError, 'ERR_PEERSOCK_HANDLER_FAILED'],
  [new MessageTooLargeError('x', { size: 2, limit: 1 }), MessageTooLargeError, 'ERR_PEERSOCK_MESSAGE_TOO_LARGE'],
  [new RemoteError('ERR_X', 'x'), RemoteError, 'ERR_PEERSOCK_REMOTE'],
  [new RequestTimeoutError(), RequestTimeoutError, 'ERR_PEERSOCK_REQUEST_TIMEOUT'],
  [new DecodeError('x'), DecodeError, 'ERR_PEERSOCK_DECODE'],
  [new ConversationEndedError(), ConversationEndedError, 'ERR_PEERSOCK_CONVERSATION_ENDED'],
  [new NoPathError('x', { reason: 'relay-off' }), NoPathError, 'ERR_PEERSOCK_NO_PATH'],
  [new IntroductionError('x'), IntroductionError, 'ERR_PEERSOCK_INTRODUCTION_FAILED'],
  [new PeerNotFoundError(), PeerNotFoundError, 'ERR_PEERSOCK_PEER_NOT_FOUND'],
  [new PeerUnreachableError('x'), PeerUnreachableError, 'ERR_PEERSOCK_PEER_UNREACHABLE'],
  [new DiscoveryTimeoutError(), DiscoveryTimeoutError, 'ERR_PEERSOCK_DISCOVERY_TIMEOUT'],
  [new PublishError(), PublishError, 'ERR_PEERSOCK_PUBLISH_FAILED'],
  [new DhtError('x'), DhtError, 'ERR_PEERSOCK_DHT'],
];

test('every error class has its stable code, its name and the right prototype chain', (t) => {
  const codes = new Set<string>();
  for (const [err, ctor, code] of cases) {
    t.is(err.code, code);
    t.is((ctor as unknown as { code: string }).code, code);
    t.is(err.name, ctor.name);
    t.true(err instanceof ctor);
    t.true(err instanceof PeersockError);
    t.true(err instanceof Error);
    t.true(err.stack?.startsWith(`${ctor.name}: `), err.stack);
    t.regex(inspect(err), new RegExp(`^${ctor.name}: `));
    t.false(Object.keys(err).includes('name'), 'name lives on the prototype');
    codes.add(code);
  }
  t.is(codes.size, cases.length, 'codes are unique');
});

test('the base class carries any code and an optional cause', (t) => {
  const cause = new Error('low level');
  const err = new PeersockError('ERR_PEERSOCK_CUSTOM', 'custom', { cause });
  t.is(err.code, 'ERR_PEERSOCK_CUSTOM');
  t.is(err.name, 'PeersockError');
  t.is(err.cause, cause);
  t.false('cause' in new PeersockError('ERR_PEERSOCK_CUSTOM', 'no cause'));
});

test('errors carry their extra fields', (t) => {
  const expected = new Uint8Array(32).fill(1);
  const actual = new Uint8Array(32).fill(2);
  const mismatch = new IdentityMismatchError(undefined, { expected, actual });
  t.is(mismatch.expected, expected);
  t.is(mismatch.actual, actual);
  t.is(new IdentityMismatchError().expected, undefined);

  t.is(new ConnectionRefusedError('no', { reason: 'busy' }).reason, 'busy');
  t.is(new ConnectionRefusedError().reason, '');

  const closed = new PeerClosedError('bye', { appCode: 42, reason: 'done' });
  t.is(closed.appCode, 42);
  t.is(closed.reason, 'done');

  const transport = new TransportError('proto', { errorCode: 0x0a, reason: 'bad frame', local: false });
  t.deepEqual([transport.errorCode, transport.reason, transport.local], [0x0a, 'bad frame', false]);

  t.is(new StreamResetError('reset', { appCode: 7 }).appCode, 7);
  t.is(new StreamStoppedError('stopped', { appCode: 8 }).appCode, 8);
  t.is(new DatagramTooLargeError('big', { maxSize: 1200 }).maxSize, 1200);
});

test('SocketError takes syscallCode from its cause unless given', (t) => {
  const cause = Object.assign(new Error('bind EADDRINUSE'), { code: 'EADDRINUSE', syscall: 'bind' });
  const err = new SocketError('bind failed', { cause });
  t.is(err.cause, cause);
  t.is(err.syscallCode, 'EADDRINUSE');
  t.is(new SocketError('x', { syscallCode: 'EACCES', cause }).syscallCode, 'EACCES');
  t.is(new SocketError('x').syscallCode, undefined);
});

test('AbortError keeps the abort reason as cause', (t) => {
  const controller = new AbortController();
  controller.abort();
  const err = new AbortError(undefined, { cause: controller.signal.reason });
  t.is(err.cause, controller.signal.reason);
  t.is(err.code, 'ERR_PEERSOCK_ABORTED');
});

test('errorFromNative maps every core code to its class, keeping message and cause', (t) => {
  const mapping: Array<[string, Function, string]> = [
    ['INVALID_ARGUMENT', InvalidArgumentError, 'ERR_PEERSOCK_INVALID_ARGUMENT'],
    ['UNKNOWN_CONNECTION', ClosedError, 'ERR_PEERSOCK_CLOSED'],
    ['CLOSED', ClosedError, 'ERR_PEERSOCK_CLOSED'],
    ['STREAM_STATE', ClosedError, 'ERR_PEERSOCK_CLOSED'],
    ['STREAM_LIMIT', StreamLimitError, 'ERR_PEERSOCK_STREAM_LIMIT'],
    ['DATAGRAM_TOO_LARGE', DatagramTooLargeError, 'ERR_PEERSOCK_DATAGRAM_TOO_LARGE'],
    ['DATAGRAM_DISABLED', InvalidArgumentError, 'ERR_PEERSOCK_INVALID_ARGUMENT'],
    ['TLS', InternalError, 'ERR_PEERSOCK_INTERNAL'],
    ['INTERNAL', InternalError, 'ERR_PEERSOCK_INTERNAL'],
  ];
  for (const [nativeCode, ctor, code] of mapping) {
    const raw = nativeError(nativeCode, `message for ${nativeCode}`);
    const err = errorFromNative(raw);
    t.true(err instanceof ctor, nativeCode);
    t.is(err.code, code);
    t.is(err.message, `message for ${nativeCode}`);
    t.is(err.cause, raw);
  }
});

test('errorFromNative decides by code, never by message', (t) => {
  const err = errorFromNative(nativeError('INVALID_ARGUMENT', 'CLOSED STREAM_LIMIT TLS'));
  t.true(err instanceof InvalidArgumentError);
  t.true(errorFromNative(nativeError(undefined, 'CLOSED')) instanceof InternalError);
});

test('errorFromNative fills maxSize from the caller context', (t) => {
  const err = errorFromNative(nativeError('DATAGRAM_TOO_LARGE'), { maxDatagramSize: 1150 });
  t.true(err instanceof DatagramTooLargeError);
  t.is((err as DatagramTooLargeError).maxSize, 1150);
  t.is((errorFromNative(nativeError('DATAGRAM_TOO_LARGE')) as DatagramTooLargeError).maxSize, undefined);
});

test('errorFromNative turns unknown codes and non-errors into InternalError', (t) => {
  for (const raw of [nativeError('SOMETHING_NEW'), nativeError(42), new TypeError('boom'), 'a string', null, undefined, 7]) {
    const err = errorFromNative(raw);
    t.true(err instanceof InternalError);
    t.is(err.code, 'ERR_PEERSOCK_INTERNAL');
    t.is(err.cause, raw);
    t.not(err.message, '');
  }
  t.is(errorFromNative(new TypeError('boom')).message, 'boom');
});

test('errorFromNative passes PeersockErrors through unchanged', (t) => {
  const original = new ClosedError('already closed');
  t.is(errorFromNative(original), original);
});

// ---- every code comes with its class -----------------------------------------

/** Every .ts file under `dir`, recursively (src/ holds a few dozen). */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** The error classes the package exports, by the code they carry (`static code`) or report (`static remote`). */
function exportedClasses(): Map<string, Function> {
  const byCode = new Map<string, Function>();
  for (const value of Object.values(api)) {
    if (typeof value !== 'function' || !(value.prototype instanceof PeersockError || value === PeersockError)) continue;
    // A subclass's own static, not one inherited from its parent.
    for (const key of ['code', 'remote']) {
      if (Object.hasOwn(value, key)) byCode.set((value as unknown as Record<string, string>)[key]!, value);
    }
  }
  return byCode;
}

test('every ERR_PEERSOCK_* code written in src/ has a class exported from the package whose static code is that code', (t) => {
  const src = join(__dirname, '..', 'src');
  const byCode = exportedClasses();
  const seen = new Map<string, string[]>();
  for (const file of tsFiles(src)) {
    for (const m of readFileSync(file, 'utf8').matchAll(/ERR_PEERSOCK_[A-Z0-9_]+/g)) {
      const where = seen.get(m[0]) ?? [];
      where.push(relative(src, file));
      seen.set(m[0], where);
    }
  }
  t.true(seen.size >= 20, `only ${seen.size} codes found: is the scan reading src/?`);
  const bare = [...seen].filter(([code]) => !byCode.has(code)).map(([code, files]) => `${code} (in ${[...new Set(files)].join(', ')})`);
  t.deepEqual(bare, [], 'codes without an exported class');
  for (const [code, ctor] of byCode) {
    if (Object.hasOwn(ctor, 'remote')) continue; // a remoteCode: instances carry their parent's code
    t.is((ctor as unknown as { code: string }).code, code);
  }
  // Codes are unique: no two classes share one.
  const classes = [...byCode.values()];
  t.is(new Set(classes).size, classes.length);
});

test('the package exports every error class, each with its name and a doc-visible static code', (t) => {
  const byCode = exportedClasses();
  for (const [code, ctor] of byCode) {
    t.is((api as Record<string, unknown>)[ctor.name], ctor, code);
    t.regex(code, /^ERR_PEERSOCK_[A-Z0-9_]+$/);
    t.is(ctor.prototype.name, ctor.name);
  }
  for (const ctor of [NotConnectedError, BusyError, HandlerFailedError]) t.is(byCode.get(ctor.code), ctor);
  t.is(byCode.get('ERR_PEERSOCK_NO_HANDLER'), NoHandlerError);
});

/** Classes with fields the wire does not carry: their codes come back as a plain PeersockError. */
const structured = new Set<Function>([PeerClosedError, TransportError, StreamResetError, StreamStoppedError, MessageTooLargeError, NoPathError, RemoteError]);

test('errorFromCode rebuilds the class of a known code that crossed the wire, keeping message and cause', (t) => {
  const cause = new Error('the reply');
  for (const [code, ctor] of exportedClasses()) {
    if (ctor === PeersockError) continue;
    const err = errorFromCode(code, `message of ${code}`, { cause });
    t.is(err.message, `message of ${code}`);
    t.is(err.cause, cause);
    if (structured.has(ctor)) {
      t.is(Object.getPrototypeOf(err), PeersockError.prototype, code);
      t.is(err.code, code);
      continue;
    }
    t.true(err instanceof ctor, code);
    if (err instanceof NoHandlerError) t.is(err.remoteCode, code);
    else t.is(err.code, code);
  }
  t.is((errorFromCode(ConnectionRefusedError.code, 'refused by accept hook') as ConnectionRefusedError).reason, 'refused by accept hook');
  const unknown = errorFromCode('ERR_APP_SOMETHING', 'app');
  t.is(Object.getPrototypeOf(unknown), PeersockError.prototype);
  t.is(unknown.code, 'ERR_APP_SOMETHING');
  t.false('cause' in unknown);
});

test('closeError: what pending work fails with when its connection ends', (t) => {
  const local = closeError({ code: 0, reason: '', remote: false });
  t.true(local instanceof ClosedError);
  const peer = closeError({ code: 5, reason: 'bye', remote: true });
  t.true(peer instanceof PeerClosedError);
  t.is((peer as PeerClosedError).appCode, 5);
  t.is((peer as PeerClosedError).reason, 'bye');
  t.regex(peer.message, /code 5: bye/);
  const failure = new IdleTimeoutError();
  t.is(closeError({ code: 0, reason: '', remote: false, error: failure }), failure);
});
