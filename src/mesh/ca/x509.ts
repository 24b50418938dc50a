/**
 * @peculiar/x509 set up for Node: its 2.x line needs a Reflect polyfill loaded before it,
 * and a WebCrypto provider. Import x509 from here, never from the package directly.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

/** ECDSA P-256 with SHA-256: the only key and signature algorithm the CA issues and accepts. */
export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export { x509, webcrypto };
