/**
 * Schema validation of ProxyConfig and ProxyBootstrap values (ajv, compiled once), and
 * reading either from a YAML or JSON file.
 */
import { readFile } from 'node:fs/promises';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { ProxyBootstrap, ProxyConfig } from '../api/proxy-config.js';
import { BootstrapInvalidError, ConfigInvalidError } from './errors.js';

let configValidator: ValidateFunction | null = null;
let bootstrapValidator: ValidateFunction | null = null;

function ajv(): Ajv {
  return new Ajv({ allErrors: true, strict: false });
}

function describe(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .slice(0, 5)
    .map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`)
    .join('; ');
}

/** Returns the value typed as ProxyConfig, or throws ConfigInvalidError naming the fields. */
export function validateConfig(value: unknown): ProxyConfig {
  configValidator ??= ajv().compile(ProxyConfig);
  if (!configValidator(value)) throw new ConfigInvalidError(describe(configValidator.errors));
  return value as ProxyConfig;
}

export function validateBootstrap(value: unknown): ProxyBootstrap {
  bootstrapValidator ??= ajv().compile(ProxyBootstrap);
  if (!bootstrapValidator(value)) {
    throw new BootstrapInvalidError(describe(bootstrapValidator.errors));
  }
  const b = value as ProxyBootstrap;
  const n = (b.config.static ? 1 : 0) + (b.config.file ? 1 : 0);
  if (n !== 1) throw new BootstrapInvalidError('config needs exactly one of static, file');
  return b;
}

/** Parses YAML (JSON is YAML). Throws a plain Error with the parser's message. */
export function parseDocument(text: string): unknown {
  return parseYaml(text);
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
    doc = parseDocument(text);
  } catch (e) {
    throw new BootstrapInvalidError(`${path}: ${(e as Error).message}`);
  }
  return validateBootstrap(doc);
}
