/**
 * A self-signed Ed25519 certificate built at run time with node:crypto alone
 * (no openssl CLI needed): a minimal X.509 v3 DER, signed with its own key.
 */
import { X509Certificate, generateKeyPairSync, randomBytes, sign } from 'node:crypto';

/** PEM key and certificate for node:tls. */
export interface Cert {
  key: string;
  cert: string;
}

/** DER tag-length-value. */
function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  const len = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

const seq = (...parts: Buffer[]): Buffer => tlv(0x30, Buffer.concat(parts));
const ED25519 = seq(Buffer.from([0x06, 0x03, 0x2b, 0x65, 0x70])); // AlgorithmIdentifier 1.3.101.112

/** UTCTime YYMMDDHHMMSSZ. */
function utcTime(d: Date): Buffer {
  const s = d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  return tlv(0x17, Buffer.from(s, 'ascii'));
}

/** Generates a fresh key and a one-day self-signed certificate for CN=`name`. */
export function selfSigned(name = 'peersock-bench'): Cert {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const cn = tlv(0x0c, Buffer.from(name, 'utf8'));
  const dn = seq(tlv(0x31, seq(Buffer.from([0x06, 0x03, 0x55, 0x04, 0x03]), cn)));
  const serial = randomBytes(8);
  serial[0] = serial[0]! & 0x7f; // positive INTEGER
  const now = Date.now();
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))), // version v3
    tlv(0x02, serial),
    ED25519,
    dn,
    seq(utcTime(new Date(now - 3600_000)), utcTime(new Date(now + 86400_000))),
    dn,
    publicKey.export({ type: 'spki', format: 'der' }),
  );
  const sig = sign(null, tbs, privateKey);
  const der = seq(tbs, ED25519, tlv(0x03, Buffer.concat([Buffer.from([0]), sig])));
  const x = new X509Certificate(der);
  if (!x.verify(publicKey)) throw new Error('self-signed certificate does not verify');
  return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), cert: x.toString() };
}
