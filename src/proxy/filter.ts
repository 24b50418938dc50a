/**
 * The one filter signature of the request path: an onion `(exchange, next)` as hono's
 * compose. Chains are composed once per config version, so the `next` functions are
 * allocated at compile time, never per request. A filter either calls `next(ex)` (now or
 * later, e.g. after a delay), answers the request itself, or throws a RequestError that the
 * server edge turns into a response.
 */
import type { Exchange } from './exchange.js';

export type Next = (ex: Exchange) => void;

export interface Filter {
  /** For config_dump and errors. */
  readonly name: string;
  handle(ex: Exchange, next: Next): void;
}

/** Composes `filters` in order in front of `terminal`; the result runs the whole chain. */
export function compose(filters: readonly Filter[], terminal: Next): Next {
  let next = terminal;
  for (let i = filters.length - 1; i >= 0; i--) {
    const f = filters[i] as Filter;
    const after = next;
    next = (ex: Exchange) => f.handle(ex, after);
  }
  return next;
}
