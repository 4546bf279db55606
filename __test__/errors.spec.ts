import { inspect } from 'node:util';
import test from 'ava';
import {
  AbortError,
  CertificateError,
  ClosedError,
  ConnectionRefusedError,
  DatagramTooLargeError,
  HandshakeTimeoutError,
  IdentityMismatchError,
  IdleTimeoutError,
  InternalError,
  InvalidArgumentError,
  PeerClosedError,
  PeerRejectedError,
  PeersockError,
  SocketError,
  StreamLimitError,
  StreamResetError,
  StreamStoppedError,
  TransportError,
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
