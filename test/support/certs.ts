/** Certificates the tests make as an operator would: with openssl (Debian's, always present). */
import { execFileSync } from 'node:child_process';

/** A self-signed P-256 certificate for `host` (CN and DNS SAN), valid for a day. */
export function selfSignedCert(host: string, certFile: string, keyFile: string): void {
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
      .concat(['-days', '1', '-subj', `/CN=${host}`, '-addext', `subjectAltName=DNS:${host}`])
      .concat(['-keyout', keyFile, '-out', certFile]),
    { stdio: 'ignore' },
  );
}
