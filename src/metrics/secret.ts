/**
 * Credentials for metric providers: read from an environment variable or a file when a
 * request needs them (so a rotated file is picked up), never from the configuration value
 * alone when it can be avoided, and never logged.
 */
import { readFile } from 'node:fs/promises';
import { MetricsError } from './errors.js';

/** Where a secret comes from: an environment variable, a file (trimmed), or a literal value. */
export type SecretSource = { env: string } | { file: string } | { value: string };

/**
 * The secret's value. Throws MetricsError SLUICE_METRICS_SECRET when the variable is unset
 * or empty, or the file is unreadable or empty; the message names the source, never the value.
 */
export async function readSecret(
  source: SecretSource,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  if ('value' in source) return source.value;
  if ('env' in source) {
    const v = env[source.env];
    if (v === undefined || v === '')
      throw new MetricsError(
        'SLUICE_METRICS_SECRET',
        `environment variable ${source.env} is unset or empty`,
      );
    return v;
  }
  let text: string;
  try {
    text = await readFile(source.file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new MetricsError(
      'SLUICE_METRICS_SECRET',
      `secret file ${source.file} is unreadable (${code})`,
    );
  }
  const v = text.replace(/\r?\n$/, '');
  if (v === '')
    throw new MetricsError('SLUICE_METRICS_SECRET', `secret file ${source.file} is empty`);
  return v;
}
