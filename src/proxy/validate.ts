/**
 * Validation of ProxyConfig and ProxyBootstrap values and reading either from a file.
 * JSON (what the fleet and the discovery server write) is parsed with JSON.parse; only a
 * file that is not JSON loads the YAML parser, so a proxy process normally never loads it.
 */
import { readFile } from 'node:fs/promises';
import type { ProxyBootstrap, ProxyConfig } from '../api/proxy-config.js';
import { BootstrapInvalidError, ConfigInvalidError } from './errors.js';
import { checkBootstrap, checkConfig } from './schema-check.js';

/** Returns the value typed as ProxyConfig, or throws ConfigInvalidError naming the fields. */
export function validateConfig(value: unknown): ProxyConfig {
  const problem = checkConfig(value);
  if (problem !== null) throw new ConfigInvalidError(problem);
  return value as ProxyConfig;
}

export function validateBootstrap(value: unknown): ProxyBootstrap {
  const problem = checkBootstrap(value);
  if (problem !== null) throw new BootstrapInvalidError(problem);
  const b = value as ProxyBootstrap;
  const n = (b.config.static ? 1 : 0) + (b.config.file ? 1 : 0) + (b.config.discovery ? 1 : 0);
  if (n !== 1)
    throw new BootstrapInvalidError('config needs exactly one of static, file, discovery');
  const d = b.config.discovery;
  if (d && (d.token === undefined) === (d.tokenFile === undefined))
    throw new BootstrapInvalidError('config.discovery needs exactly one of token, tokenFile');
  return b;
}

/**
 * Parses JSON, or YAML when the text is not JSON (JSON is YAML, so the result is the same).
 * Rejects with a plain Error carrying the parser's message.
 */
export async function parseDocument(text: string): Promise<unknown> {
  const t = text.trimStart();
  if (t.startsWith('{') || t.startsWith('[')) {
    try {
      return JSON.parse(text);
    } catch {
      // Flow-style YAML also starts with '{': let the YAML parser decide and explain.
    }
  }
  const { parse } = await import('yaml');
  return parse(text);
}

export async function readBootstrap(path: string): Promise<ProxyBootstrap> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new BootstrapInvalidError(`cannot read ${path}: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = await parseDocument(text);
  } catch (e) {
    throw new BootstrapInvalidError(`${path}: ${(e as Error).message}`);
  }
  return validateBootstrap(doc);
}
