/**
 * The proxy's workload identity: its certificate chain, private key and trust bundle, and
 * the TLS contexts built from them. `set` validates new material and swaps it in whole:
 * connections already established keep the context they were made with; new handshakes,
 * inbound and outbound, use the new one. Invalid material is rejected and the previous
 * identity stays.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { IdentityInvalidError } from './errors.js';

/** Identity material as the discovery stream (or the bootstrap's files) delivers it. */
export interface IdentityMaterial {
  /** PEM: the workload certificate first, then any intermediates. */
  certChainPem?: string;
  /** The same, under the discovery client's name (WorkloadCertificate); one of the two. */
  certificateChainPem?: string;
  /** PEM PKCS#8 (or SEC1/PKCS#1) private key matching the certificate. */
  privateKeyPem: string;
  /** PEM roots trusted for peers' certificates (one bundle, or one PEM per root). */
  trustBundlePem: string | readonly string[];
  /** Expected SPIFFE id of the certificate; absent: taken from the certificate. */
  spiffeId?: string;
}

/** A peer (or this workload) as its SPIFFE id names it. */
export interface PeerIdentity {
  /** `spiffe://<td>/ns/<ns>/sa/<sa>`. */
  readonly spiffeId: string;
  /** The id without `spiffe://`: what AuthorizationPolicy principals name. */
  readonly principal: string;
  readonly trustDomain: string;
  /** '' when the id is not of the `/ns/<ns>/sa/<sa>` form. */
  readonly namespace: string;
  readonly serviceAccount: string;
  /**
   * This connection's element of `x-forwarded-client-cert` (set for mTLS peers): who this
   * proxy is, the hash, subject and URI of the peer's certificate, as Envoy writes it.
   */
  readonly xfcc?: string;
}

const SPIFFE = /^spiffe:\/\/([^/]+)(\/.*)?$/;
const WORKLOAD_PATH = /^\/ns\/([^/]+)\/sa\/([^/]+)$/;

/** Parses a SPIFFE URI; null when it is not one. */
export function parseSpiffe(uri: string): PeerIdentity | null {
  const m = SPIFFE.exec(uri);
  if (m === null) return null;
  const w = WORKLOAD_PATH.exec(m[2] ?? '');
  return {
    spiffeId: uri,
    principal: uri.slice('spiffe://'.length),
    trustDomain: m[1] as string,
    namespace: w ? (w[1] as string) : '',
    serviceAccount: w ? (w[2] as string) : '',
  };
}

/**
 * The URI SANs of a certificate's `subjectaltname` string as node:tls and X509Certificate
 * give it (`URI:spiffe://..., DNS:...`; values with commas or quotes come JSON-quoted).
 */
export function uriSans(subjectAltName: string | undefined): string[] {
  if (subjectAltName === undefined || subjectAltName === '') return [];
  const out: string[] = [];
  for (const m of subjectAltName.matchAll(/(?:^|, )URI:("(?:[^"\\]|\\.)*"|[^,]*)/g)) {
    const v = m[1] as string;
    out.push(v.startsWith('"') ? (JSON.parse(v) as string) : v);
  }
  return out;
}

/** The first SPIFFE id among a certificate's URI SANs, or null. */
export function spiffeOf(subjectAltName: string | undefined): PeerIdentity | null {
  for (const u of uriSans(subjectAltName)) {
    const id = parseSpiffe(u);
    if (id !== null) return id;
  }
  return null;
}

/** Splits a PEM bundle into its certificates. */
function pemCerts(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

/** The validated material and the contexts built from it. */
export interface ActiveIdentity {
  readonly material: IdentityMaterial;
  readonly id: PeerIdentity;
  readonly notAfter: Date;
  /** For inbound listeners (client certificate required and verified against the bundle). */
  readonly serverOptions: tls.SecureContextOptions;
  /** For outbound ISTIO_MUTUAL connections. */
  readonly clientContext: tls.SecureContext;
  readonly trustBundle: readonly string[];
}

/**
 * Validates `m`: parseable PEM, the key matches the leaf certificate, the leaf carries a
 * SPIFFE URI SAN (equal to `m.spiffeId` when given), the trust bundle holds at least one
 * certificate, and the leaf is currently valid per `now`. Throws IdentityInvalidError.
 */
export function validateIdentity(m: IdentityMaterial, now = Date.now()): ActiveIdentity {
  const chainPem = m.certChainPem ?? m.certificateChainPem ?? '';
  const chain = pemCerts(chainPem);
  if (chain.length === 0) throw new IdentityInvalidError('certificate chain has no certificate');
  const bundle = pemCerts(
    Array.isArray(m.trustBundlePem) ? m.trustBundlePem.join('\n') : String(m.trustBundlePem ?? ''),
  );
  if (bundle.length === 0) throw new IdentityInvalidError('trust bundle has no certificate');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(chain[0] as string);
    for (const b of bundle) new X509Certificate(b);
  } catch (e) {
    throw new IdentityInvalidError(`unparseable certificate: ${(e as Error).message}`);
  }
  let key;
  try {
    key = createPrivateKey(m.privateKeyPem);
  } catch (e) {
    throw new IdentityInvalidError(`unparseable private key: ${(e as Error).message}`);
  }
  if (!leaf.checkPrivateKey(key))
    throw new IdentityInvalidError('the private key does not match the certificate');
  const id = spiffeOf(leaf.subjectAltName);
  if (id === null) throw new IdentityInvalidError('the certificate has no SPIFFE URI SAN');
  if (m.spiffeId !== undefined && m.spiffeId !== id.spiffeId) {
    throw new IdentityInvalidError(`the certificate names ${id.spiffeId}, expected ${m.spiffeId}`);
  }
  const notAfter = new Date(leaf.validTo);
  if (notAfter.getTime() <= now)
    throw new IdentityInvalidError(`the certificate expired ${leaf.validTo}`);
  const serverOptions: tls.SecureContextOptions = {
    cert: chainPem,
    key: m.privateKeyPem,
    ca: bundle,
    minVersion: 'TLSv1.2',
  };
  let clientContext: tls.SecureContext;
  try {
    clientContext = tls.createSecureContext(serverOptions);
  } catch (e) {
    throw new IdentityInvalidError(`TLS context: ${(e as Error).message}`);
  }
  return { material: m, id, notAfter, serverOptions, clientContext, trustBundle: bundle };
}

/** Holds the current identity; listeners and clusters read it at each new handshake. */
export class IdentityStore {
  private active: ActiveIdentity | null = null;
  private readonly observers: ((a: ActiveIdentity) => void)[] = [];

  constructor(private readonly now: () => number = Date.now) {}

  get current(): ActiveIdentity | null {
    return this.active;
  }

  /** Validates and swaps in `m`; throws IdentityInvalidError and keeps the previous one. */
  set(m: IdentityMaterial): ActiveIdentity {
    const a = validateIdentity(m, this.now());
    this.active = a;
    for (const o of this.observers) o(a);
    return a;
  }

  /** Called with each new identity (inbound listeners swap their server context). */
  onChange(o: (a: ActiveIdentity) => void): void {
    this.observers.push(o);
  }
}
