import assert from 'node:assert/strict';
import { X509Certificate, webcrypto } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import {
  CA_ERROR_CODES,
  CertificateAuthority,
  parseSpiffeId,
  spiffeId,
} from '../../../src/mesh/ca/index.js';
import { x509 } from '../../../src/mesh/ca/x509.js';
import { generateKeyAndCsr } from '../../../src/proxy/discovery-client-identity.js';

const log = pino({ level: 'silent' });
const ID = 'spiffe://cluster.local/ns/default/sa/reviews';
const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'sluice-ca-'));
  dirs.push(d);
  return d;
}

async function csrWith(
  names: { type: 'url' | 'dns'; value: string }[],
  alg: { name: 'ECDSA'; namedCurve: string; hash: string } = {
    name: 'ECDSA',
    namedCurve: 'P-256',
    hash: 'SHA-256',
  },
): Promise<string> {
  const keys = (await webcrypto.subtle.generateKey(alg, true, [
    'sign',
    'verify',
  ])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys,
    signingAlgorithm: alg,
    extensions: names.length ? [new x509.SubjectAlternativeNameExtension(names)] : [],
  });
  return csr.toString('pem');
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return (e as { code?: string }).code ?? String(e);
  }
  return 'no error';
}

test('the root is created once in the state directory (0600) and reused after', async () => {
  const dir = join(await tmp(), 'ca');
  const first = await CertificateAuthority.open({ dir, logger: log });
  const files = (await readdir(dir)).sort();
  assert.deepEqual(files, ['root-cert.pem', 'root-key.pem']);
  for (const f of files) assert.equal((await stat(join(dir, f))).mode & 0o777, 0o600);
  assert.equal((await stat(dir)).mode & 0o777, 0o700);
  const again = await CertificateAuthority.open({ dir, logger: log });
  assert.deepEqual(again.trustBundle(), first.trustBundle());
  // A certificate issued before the restart verifies against the bundle after it.
  const { csrPem } = await generateKeyAndCsr(ID);
  const issued = await first.sign({ csr: csrPem, spiffeId: ID });
  const root = new X509Certificate(again.trustBundle()[0] as string);
  assert.ok(new X509Certificate(issued.certificateChain).verify(root.publicKey));
  assert.ok(root.ca);
  // An in-memory CA (no dir) makes a different root each time.
  const mem = await CertificateAuthority.open({ logger: log });
  assert.notDeepEqual(mem.trustBundle(), first.trustBundle());
});

test('a workload certificate from a CSR: SPIFFE URI SAN only, client+server auth, lifetime from the clock', async () => {
  const t0 = Date.parse('2030-01-01T00:00:00Z');
  const ca = await CertificateAuthority.open({ logger: log, now: () => t0 });
  const { csrPem, privateKeyPem } = await generateKeyAndCsr(ID);
  assert.doesNotMatch(csrPem, /PRIVATE KEY/);
  const issued = await ca.sign({ csr: csrPem, spiffeId: ID });
  const cert = new X509Certificate(issued.certificateChain);
  assert.equal(cert.subjectAltName, `URI:${ID}`);
  assert.equal(cert.ca, false);
  assert.deepEqual([...(cert.keyUsage ?? [])].sort(), ['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
  assert.equal(Date.parse(cert.validTo), t0 + 24 * 3600_000);
  assert.equal(Date.parse(cert.validFrom), t0 - 60_000);
  assert.equal(issued.notAfter.getTime(), t0 + 24 * 3600_000);
  assert.ok(cert.checkIssued(new X509Certificate(ca.trustBundle()[0] as string)));
  // The key made by the proxy is the certificate's.
  assert.ok(cert.checkPrivateKey((await import('node:crypto')).createPrivateKey(privateKeyPem)));
  const short = await ca.sign({ csr: csrPem, spiffeId: ID, lifetimeMs: 5000 });
  assert.equal(short.notAfter.getTime(), t0 + 5000);
  assert.notEqual(short.serialNumber, issued.serialNumber);
});

test('CSRs that are not exactly the requester identity, not P-256, or not valid are refused with a code', async () => {
  const ca = await CertificateAuthority.open({ logger: log });
  const cases: [string, Promise<string>, string][] = [
    [
      'foreign SPIFFE id',
      csrWith([{ type: 'url', value: 'spiffe://cluster.local/ns/default/sa/admin' }]),
      'SLUICE_CA_IDENTITY_MISMATCH',
    ],
    [
      'extra DNS name',
      csrWith([
        { type: 'url', value: ID },
        { type: 'dns', value: 'evil.example' },
      ]),
      'SLUICE_CA_IDENTITY_MISMATCH',
    ],
    ['no SAN', csrWith([]), 'SLUICE_CA_IDENTITY_MISMATCH'],
    [
      'P-384 key',
      csrWith([{ type: 'url', value: ID }], {
        name: 'ECDSA',
        namedCurve: 'P-384',
        hash: 'SHA-384',
      }),
      'SLUICE_CA_KEY_UNSUPPORTED',
    ],
    ['not PEM', Promise.resolve('hello'), 'SLUICE_CA_CSR_INVALID'],
    ['empty', Promise.resolve(''), 'SLUICE_CA_CSR_INVALID'],
  ];
  for (const [name, csr, code] of cases) {
    assert.equal(await codeOf(ca.sign({ csr: await csr, spiffeId: ID })), code, name);
  }
  // A CSR whose signature does not verify: flip a bit in the last byte of the signature.
  const raw = Buffer.from(
    new x509.Pkcs10CertificateRequest(await csrWith([{ type: 'url', value: ID }])).rawData,
  );
  raw[raw.length - 1] = (raw[raw.length - 1] as number) ^ 1;
  const forged = x509.PemConverter.encode(raw, 'CERTIFICATE REQUEST');
  assert.equal(await codeOf(ca.sign({ csr: forged, spiffeId: ID })), 'SLUICE_CA_CSR_INVALID');
});

test('a damaged or half-present root stops the CA with SLUICE_CA_ROOT_INVALID', async () => {
  const dir = join(await tmp(), 'ca');
  await CertificateAuthority.open({ dir, logger: log });
  const key = await readFile(join(dir, 'root-key.pem'), 'utf8');
  await writeFile(join(dir, 'root-key.pem'), 'garbage');
  assert.equal(
    await codeOf(CertificateAuthority.open({ dir, logger: log })),
    'SLUICE_CA_ROOT_INVALID',
  );
  await rm(join(dir, 'root-key.pem'));
  assert.equal(
    await codeOf(CertificateAuthority.open({ dir, logger: log })),
    'SLUICE_CA_ROOT_INVALID',
  );
  // Another root's key with this certificate: refused, not silently used.
  const other = join(await tmp(), 'ca');
  await CertificateAuthority.open({ dir: other, logger: log });
  await writeFile(join(dir, 'root-key.pem'), await readFile(join(other, 'root-key.pem')));
  assert.equal(
    await codeOf(CertificateAuthority.open({ dir, logger: log })),
    'SLUICE_CA_ROOT_INVALID',
  );
  await writeFile(join(dir, 'root-key.pem'), key);
  await CertificateAuthority.open({ dir, logger: log });
});

test('SPIFFE ids are built and parsed in Istio form, bad names refused', async () => {
  assert.equal(
    spiffeId({ trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'default' }),
    'spiffe://cluster.local/ns/shop/sa/default',
  );
  assert.deepEqual(parseSpiffeId('spiffe://td.example/ns/a/sa/b'), {
    trustDomain: 'td.example',
    namespace: 'a',
    serviceAccount: 'b',
  });
  for (const bad of [
    'spiffe://x/ns/a',
    'http://x/ns/a/sa/b',
    'spiffe://x/ns/A B/sa/b',
    'spiffe://x/ns/a/sa/b/c',
  ])
    assert.equal(
      await codeOf(Promise.resolve().then(() => parseSpiffeId(bad))),
      'SLUICE_CA_SPIFFE_ID_INVALID',
      bad,
    );
});

test('every SLUICE_CA_ code used in src/mesh/ca is registered, and every registered code is used', async () => {
  const used = new Set<string>();
  for (const f of await readdir('src/mesh/ca')) {
    if (f === 'errors.ts') continue;
    const text = await readFile(join('src/mesh/ca', f), 'utf8');
    for (const m of text.matchAll(/'(SLUICE_CA_[A-Z_]+)'/g)) used.add(m[1] as string);
  }
  for (const c of used) assert.ok(c in CA_ERROR_CODES, `${c} is not registered`);
  for (const c of Object.keys(CA_ERROR_CODES)) assert.ok(used.has(c), `${c} is never raised`);
});

test("the proxy's CSR (hand-written DER) is a valid PKCS#10 for OpenSSL and for the CA's library", async (t) => {
  const { spawnSync } = await import('node:child_process');
  const long = `spiffe://cluster.local/ns/default/sa/${'a'.repeat(200)}`;
  for (const id of [ID, long]) {
    const { csrPem } = await generateKeyAndCsr(id);
    const csr = new x509.Pkcs10CertificateRequest(csrPem);
    assert.ok(await csr.verify());
    assert.equal(csr.subject, '');
    const san = csr.extensions.find((e) => e instanceof x509.SubjectAlternativeNameExtension) as
      x509.SubjectAlternativeNameExtension | undefined;
    assert.deepEqual(san?.names.toJSON(), [{ type: 'url', value: id }]);
    const openssl = spawnSync('openssl', ['req', '-noout', '-verify'], { input: csrPem });
    if (openssl.error) {
      t.diagnostic('openssl not on PATH: OpenSSL check skipped');
      continue;
    }
    assert.equal(openssl.status, 0, openssl.stderr.toString());
  }
});
