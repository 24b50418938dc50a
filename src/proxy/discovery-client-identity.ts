/**
 * The proxy's half of the certificate flow: an ECDSA P-256 key made here (it never leaves the
 * process) and a PKCS#10 request whose only name is the proxy's SPIFFE URI, for the
 * controller's CA to sign over the discovery stream.
 *
 * Written with node:crypto and a few lines of DER rather than @peculiar/x509 (which the CA
 * uses): loading that library costs every proxy process ~17 MB of RSS (measured with
 * bench/discovery), for one fixed structure. The CA's tests parse and verify these requests
 * with @peculiar/x509, so the two stay in agreement.
 */
import { generateKeyPair, sign, type KeyObject } from 'node:crypto';

export interface KeyAndCsr {
  /** PKCS#8 PEM (`PRIVATE KEY`), as node:tls takes it. */
  privateKeyPem: string;
  /** PKCS#10 PEM. */
  csrPem: string;
}

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [40 * a + b];
  for (const n of rest) {
    const groups = [n & 0x7f];
    for (let v = n >>> 7; v > 0; v >>>= 7) groups.unshift((v & 0x7f) | 0x80);
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

const SEQUENCE = 0x30;
const SET = 0x31;
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';
const OID_ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';

/** The DER CertificationRequestInfo: empty subject, the key, and a SAN extension request. */
function requestInfo(publicKey: KeyObject, spiffeId: string): Buffer {
  const uri = tlv(0x86, Buffer.from(spiffeId, 'ascii')); // [6] IMPLICIT IA5String
  const san = tlv(SEQUENCE, oid(OID_SUBJECT_ALT_NAME), tlv(0x04, tlv(SEQUENCE, uri)));
  const extensionRequest = tlv(SEQUENCE, oid(OID_EXTENSION_REQUEST), tlv(SET, tlv(SEQUENCE, san)));
  return tlv(
    SEQUENCE,
    tlv(0x02, Buffer.from([0])), // version 0
    tlv(SEQUENCE), // empty subject
    publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa0, extensionRequest), // [0] IMPLICIT attributes
  );
}

/** A fresh P-256 key and a CSR for `spiffeId` (one URI SAN, empty subject), signed with it. */
export async function generateKeyAndCsr(spiffeId: string): Promise<KeyAndCsr> {
  if (!/^[\x21-\x7e]+$/.test(spiffeId)) throw new Error(`not a URI: ${JSON.stringify(spiffeId)}`);
  const { publicKey, privateKey } = await new Promise<{
    publicKey: KeyObject;
    privateKey: KeyObject;
  }>((resolve, reject) =>
    generateKeyPair('ec', { namedCurve: 'prime256v1' }, (err, pub, priv) =>
      err ? reject(err) : resolve({ publicKey: pub, privateKey: priv }),
    ),
  );
  const info = requestInfo(publicKey, spiffeId);
  const signature = sign('sha256', info, privateKey); // DER ECDSA-Sig-Value
  const csr = tlv(
    SEQUENCE,
    info,
    tlv(SEQUENCE, oid(OID_ECDSA_WITH_SHA256)),
    tlv(0x03, Buffer.from([0]), signature),
  );
  const b64 = csr.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    csrPem: `-----BEGIN CERTIFICATE REQUEST-----\n${b64}\n-----END CERTIFICATE REQUEST-----\n`,
  };
}
