/**
 * Schema checks of ProxyConfig and ProxyBootstrap values against the api's schemas, with the
 * small interpreter in schema-lite.ts. In the proxy bundle (launch.ts) this module is
 * replaced by one embedding the same schemas as plain JSON, so the process never loads
 * TypeBox; keep the two exports' contract.
 */
import { ProxyBootstrap, ProxyConfig } from '../api/proxy-config.js';
import { checkSchema } from './schema-lite.js';

/** null when `value` is a valid ProxyConfig, else a one-line description of what is wrong. */
export function checkConfig(value: unknown): string | null {
  return checkSchema(ProxyConfig, value);
}

/** null when `value` is a valid ProxyBootstrap, else a one-line description. */
export function checkBootstrap(value: unknown): string | null {
  return checkSchema(ProxyBootstrap, value);
}
