/**
 * Tokens for git hosts and alert providers: read from an environment variable or a file each
 * time a request needs one (a rotated file is picked up), and scrubbed from every text that
 * leaves this layer (error messages, events, logs).
 */
import { readFile } from 'node:fs/promises';
import { ReportError } from './errors.js';

/** Where a token comes from: an environment variable or a file (its trailing newline trimmed). */
export type TokenSource = { env: string } | { file: string };

/**
 * The token's value. Throws SLUICE_REPORT_TOKEN when the variable is unset or empty, or the file
 * is unreadable or empty; the message names the source, never the value.
 */
export async function readToken(
  source: TokenSource,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  if ('env' in source) {
    const v = env[source.env];
    if (v === undefined || v.trim() === '')
      throw new ReportError(
        'SLUICE_REPORT_TOKEN',
        `environment variable ${source.env} is unset or empty`,
      );
    return v.trim();
  }
  let text: string;
  try {
    text = await readFile(source.file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new ReportError(
      'SLUICE_REPORT_TOKEN',
      `token file ${source.file} is unreadable (${code})`,
    );
  }
  const v = text.trim();
  if (v === '') throw new ReportError('SLUICE_REPORT_TOKEN', `token file ${source.file} is empty`);
  return v;
}

const REDACTED = '[redacted]';

/**
 * `text` with every occurrence of each secret (and of its URL-encoded form) replaced by
 * `[redacted]`. Secrets shorter than 4 characters are left alone (they would redact words).
 */
export function scrub(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) {
    if (!s || s.length < 4) continue;
    for (const form of new Set([s, encodeURIComponent(s)])) out = out.split(form).join(REDACTED);
  }
  return out;
}

/** A webhook address for logs and events: scheme, host and port only (the path is the secret). */
export function displayAddress(address: string): string {
  try {
    const u = new URL(address);
    return `${u.protocol}//${u.host}/…`;
  } catch {
    return '(invalid address)';
  }
}
