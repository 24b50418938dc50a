/**
 * The mesh's certificate authority: an ECDSA P-256 root kept in the state directory (created
 * on first start, reused after, files mode 0600) that signs short-lived workload certificates
 * from CSRs. A workload certificate carries exactly one name, its SPIFFE URI SAN; the private
 * key stays with the proxy that made the CSR.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { CaError } from './errors.js';
import { DEFAULT_TRUST_DOMAIN } from './spiffe.js';
import { EC_P256, webcrypto, x509 } from './x509.js';

type CryptoKey = webcrypto.CryptoKey;

/** Default workload certificate lifetime: 24 h, as Istio. */
export const DEFAULT_WORKLOAD_LIFETIME_MS = 24 * 3600_000;
const ROOT_LIFETIME_MS = 10 * 365 * 24 * 3600_000;
/** Certificates start this much in the past so that small clock skews do not reject them. */
const BACKDATE_MS = 60_000;
const KEY_FILE = 'root-key.pem';
const CERT_FILE = 'root-cert.pem';

export interface CertificateAuthorityOptions {
  /** Directory of the root (`<state-dir>/ca`); absent: an in-memory root for this process only. */
  dir?: string;
  /** Default `cluster.local`. */
  trustDomain?: string;
  /** Default lifetime of workload certificates, default 24 h. */
  workloadLifetimeMs?: number;
  /** Milliseconds since the epoch; default Date.now. */
  now?: () => number;
  logger: Logger;
}

export interface SignRequest {
  /** PEM PKCS#10 request. */
  csr: string;
  /** The SPIFFE id the requester authenticated as: the CSR must ask for exactly this one. */
  spiffeId: string;
  /** Overrides the CA's default lifetime (never beyond the root's own expiry). */
  lifetimeMs?: number;
}

export interface IssuedCertificate {
  /** PEM: the workload certificate (the root signs directly, so no intermediates). */
  certificateChain: string;
  /** PEM roots to trust for peers' certificates. */
  trustBundle: string[];
  notBefore: Date;
  notAfter: Date;
  serialNumber: string;
  spiffeId: string;
}

export class CertificateAuthority {
  readonly trustDomain: string;
  private readonly now: () => number;
  private readonly log: Logger;

  private constructor(
    private readonly rootKey: CryptoKey,
    private readonly root: x509.X509Certificate,
    private readonly rootPem: string,
    private readonly workloadLifetimeMs: number,
    opts: CertificateAuthorityOptions,
  ) {
    this.trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    this.now = opts.now ?? Date.now;
    this.log = opts.logger.child({ component: 'ca' });
  }

  /**
   * Loads the root from `dir`, or creates and stores one when `dir` has none. Throws
   * SLUICE_CA_ROOT_INVALID when the stored root is damaged or half there: replacing it would
   * silently break every proxy's trust, so that is left to an operator.
   */
  static async open(opts: CertificateAuthorityOptions): Promise<CertificateAuthority> {
    const lifetime = opts.workloadLifetimeMs ?? DEFAULT_WORKLOAD_LIFETIME_MS;
    const log = opts.logger.child({ component: 'ca' });
    const now = opts.now ?? Date.now;
    const trustDomain = opts.trustDomain ?? DEFAULT_TRUST_DOMAIN;
    if (opts.dir !== undefined) {
      const stored = readRoot(opts.dir);
      if (stored !== null) {
        const { key, cert, pem } = await importRoot(stored.keyPem, stored.certPem);
        log.info({ serial: cert.serialNumber, notAfter: cert.notAfter }, 'CA root loaded');
        return new CertificateAuthority(key, cert, pem, lifetime, opts);
      }
    }
    const keys = (await webcrypto.subtle.generateKey(EC_P256, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const t = now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: [{ O: [trustDomain] }, { CN: ['sluice root CA'] }],
      notBefore: new Date(t - BACKDATE_MS),
      notAfter: new Date(t + ROOT_LIFETIME_MS),
      keys,
      signingAlgorithm: EC_P256,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    const pem = cert.toString('pem');
    if (opts.dir !== undefined) {
      const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
      writeRoot(opts.dir, x509.PemConverter.encode(pkcs8, 'PRIVATE KEY'), pem);
      log.info({ dir: opts.dir, serial: cert.serialNumber }, 'CA root created');
    }
    // Keep only a non-extractable handle in memory from here on.
    const { key } = await importRoot(
      x509.PemConverter.encode(
        await webcrypto.subtle.exportKey('pkcs8', keys.privateKey),
        'PRIVATE KEY',
      ),
      pem,
    );
    return new CertificateAuthority(key, cert, pem, lifetime, opts);
  }

  /** The PEM roots a proxy trusts (one root today; a list so a root rotation can overlap). */
  trustBundle(): string[] {
    return [this.rootPem];
  }

  /**
   * Verifies the CSR (PEM PKCS#10, ECDSA P-256, self-signature valid, exactly one SAN: the URI
   * `spiffeId`) and issues a workload certificate for `lifetimeMs` (default the CA's). Throws
   * CaError SLUICE_CA_CSR_INVALID, SLUICE_CA_KEY_UNSUPPORTED or SLUICE_CA_IDENTITY_MISMATCH.
   */
  async sign(req: SignRequest): Promise<IssuedCertificate> {
    let csr: x509.Pkcs10CertificateRequest;
    try {
      csr = new x509.Pkcs10CertificateRequest(req.csr);
    } catch (e) {
      throw new CaError(
        'SLUICE_CA_CSR_INVALID',
        `not a PEM PKCS#10 request: ${(e as Error).message}`,
      );
    }
    const alg = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
    if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') {
      throw new CaError(
        'SLUICE_CA_KEY_UNSUPPORTED',
        `the CSR key is ${alg.name ?? '?'} ${alg.namedCurve ?? ''}`.trim() +
          '; only ECDSA P-256 is issued',
      );
    }
    let valid = false;
    try {
      valid = await csr.verify();
    } catch {
      valid = false;
    }
    if (!valid) throw new CaError('SLUICE_CA_CSR_INVALID', 'the CSR signature does not verify');
    const san = csr.extensions.find((e) => e instanceof x509.SubjectAlternativeNameExtension) as
      x509.SubjectAlternativeNameExtension | undefined;
    const names = san?.names.items ?? [];
    const asked = names.map((n) => `${n.type}:${n.value}`);
    if (names.length !== 1 || names[0]?.type !== 'url' || names[0].value !== req.spiffeId) {
      throw new CaError(
        'SLUICE_CA_IDENTITY_MISMATCH',
        `the CSR asks for [${asked.join(', ')}] but the requester is ${req.spiffeId}`,
      );
    }
    const t = this.now();
    const lifetime = req.lifetimeMs ?? this.workloadLifetimeMs;
    const notBefore = new Date(t - BACKDATE_MS);
    const notAfter = new Date(Math.min(t + lifetime, this.root.notAfter.getTime()));
    const serialNumber = serial();
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber,
      // Empty subject with a critical SAN, as Istio's workload certificates.
      subject: '',
      issuer: this.root.subject,
      notBefore,
      notAfter,
      signingKey: this.rootKey,
      publicKey: csr.publicKey,
      signingAlgorithm: EC_P256,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
          true,
        ),
        new x509.ExtendedKeyUsageExtension(
          [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
          false,
        ),
        new x509.SubjectAlternativeNameExtension([{ type: 'url', value: req.spiffeId }], true),
        await x509.AuthorityKeyIdentifierExtension.create(this.root, false),
      ],
    });
    this.log.debug(
      { spiffeId: req.spiffeId, serialNumber, notAfter },
      'workload certificate issued',
    );
    return {
      certificateChain: cert.toString('pem'),
      trustBundle: this.trustBundle(),
      notBefore,
      notAfter,
      serialNumber,
      spiffeId: req.spiffeId,
    };
  }
}

/** A positive 128-bit serial number, hex. */
function serial(): string {
  const b = randomBytes(16);
  b[0] = ((b[0] as number) & 0x7f) | 0x01;
  return b.toString('hex');
}

function readRoot(dir: string): { keyPem: string; certPem: string } | null {
  const read = (name: string): string | null => {
    try {
      return readFileSync(join(dir, name), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new CaError('SLUICE_CA_ROOT_INVALID', `${join(dir, name)}: ${(e as Error).message}`);
    }
  };
  const keyPem = read(KEY_FILE);
  const certPem = read(CERT_FILE);
  if (keyPem === null && certPem === null) return null;
  if (keyPem === null || certPem === null)
    throw new CaError(
      'SLUICE_CA_ROOT_INVALID',
      `${dir} holds only one of ${KEY_FILE}, ${CERT_FILE}; restore the other or remove both to start a new root`,
    );
  return { keyPem, certPem };
}

async function importRoot(
  keyPem: string,
  certPem: string,
): Promise<{ key: CryptoKey; cert: x509.X509Certificate; pem: string }> {
  try {
    const cert = new x509.X509Certificate(certPem);
    const key = await webcrypto.subtle.importKey(
      'pkcs8',
      x509.PemConverter.decodeFirst(keyPem),
      EC_P256,
      false,
      ['sign'],
    );
    // The key must be the certificate's: sign and verify a probe.
    const probe = new Uint8Array([1, 2, 3]);
    const sig = await webcrypto.subtle.sign(EC_P256, key, probe);
    const pub = await cert.publicKey.export(EC_P256, ['verify']);
    if (!(await webcrypto.subtle.verify(EC_P256, pub, sig, probe)))
      throw new Error('the root key does not match the root certificate');
    return { key, cert, pem: cert.toString('pem') };
  } catch (e) {
    throw new CaError(
      'SLUICE_CA_ROOT_INVALID',
      `the stored root is damaged: ${(e as Error).message}`,
    );
  }
}

function writeRoot(dir: string, keyPem: string, certPem: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const [name, text] of [
    [CERT_FILE, certPem],
    [KEY_FILE, keyPem],
  ] as const) {
    const tmp = join(dir, `.${name}.${process.pid}.tmp`);
    writeFileSync(tmp, text, { mode: 0o600 });
    renameSync(tmp, join(dir, name));
  }
}
