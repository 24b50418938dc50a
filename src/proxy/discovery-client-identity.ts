/**
 * The proxy's half of the certificate flow: an ECDSA P-256 key made here (it never leaves the
 * process) and a PKCS#10 request whose only name is the proxy's SPIFFE URI, for the controller's
 * CA to sign over the discovery stream.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface KeyAndCsr {
  /** PKCS#8 PEM (`PRIVATE KEY`), as node:tls takes it. */
  privateKeyPem: string;
  /** PKCS#10 PEM. */
  csrPem: string;
}

/** A fresh P-256 key and a CSR for `spiffeId` (one URI SAN, empty subject). */
export async function generateKeyAndCsr(spiffeId: string): Promise<KeyAndCsr> {
  const keys = (await webcrypto.subtle.generateKey(EC_P256, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: EC_P256,
    extensions: [new x509.SubjectAlternativeNameExtension([{ type: 'url', value: spiffeId }])],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return {
    privateKeyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'),
    csrPem: csr.toString('pem'),
  };
}
