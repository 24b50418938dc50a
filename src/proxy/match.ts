/**
 * Request matching compiled from HTTPMatchRequest data: string matchers (exact, prefix,
 * regex as a full match like RE2 in Envoy), header/query/method/authority/port conditions.
 * Regexes are compiled here, once per config version.
 */
import type { HttpMatch, StringMatch } from '../api/proxy-config.js';
import { fullMatchRegExp } from '../api/regex.js';
import { ConfigCompileError } from './errors.js';

/** The request facts a matcher reads (implemented by the exchange). */
export interface MatchInput {
  readonly method: string;
  readonly path: string;
  readonly authority: string;
  readonly port: number;
  readonly scheme: string;
  header(name: string): string | undefined;
  queryParam(name: string): string | undefined;
}

const K_EXACT = 0;
const K_PREFIX = 1;
const K_REGEX = 2;
const K_PRESENT = 3;

export class StringMatcher {
  constructor(
    readonly kind: number,
    readonly value: string,
    readonly re: RegExp | null,
    readonly ignoreCase: boolean,
  ) {}

  /** `undefined` (absent) never matches, except that a presence check needs it defined. */
  test(v: string | undefined): boolean {
    if (v === undefined) return false;
    switch (this.kind) {
      case K_EXACT:
        return (this.ignoreCase ? v.toLowerCase() : v) === this.value;
      case K_PREFIX:
        return (this.ignoreCase ? v.toLowerCase() : v).startsWith(this.value);
      case K_REGEX:
        return (this.re as RegExp).test(v);
      default:
        return true;
    }
  }
}

/**
 * Compiles a regex with RE2-style full-match semantics, as the manifests layer checks it at
 * load (api/regex.ts). Throws ConfigCompileError.
 */
export function fullMatchRegex(source: string, where: string): RegExp {
  try {
    return fullMatchRegExp(source);
  } catch (e) {
    throw new ConfigCompileError(
      `${where}: invalid regex ${JSON.stringify(source)}: ${(e as Error).message}`,
    );
  }
}

export function compileStringMatch(
  m: StringMatch,
  where: string,
  ignoreCase = false,
): StringMatcher {
  const set = [m.exact, m.prefix, m.regex].filter((v) => v !== undefined).length;
  if (set > 1) throw new ConfigCompileError(`${where}: only one of exact, prefix, regex`);
  if (m.exact !== undefined)
    return new StringMatcher(
      K_EXACT,
      ignoreCase ? m.exact.toLowerCase() : m.exact,
      null,
      ignoreCase,
    );
  if (m.prefix !== undefined)
    return new StringMatcher(
      K_PREFIX,
      ignoreCase ? m.prefix.toLowerCase() : m.prefix,
      null,
      ignoreCase,
    );
  if (m.regex !== undefined)
    return new StringMatcher(K_REGEX, m.regex, fullMatchRegex(m.regex, where), false);
  return new StringMatcher(K_PRESENT, '', null, false);
}

interface NamedMatcher {
  name: string;
  m: StringMatcher;
}

export class RequestMatcher {
  constructor(
    readonly uri: StringMatcher | null,
    readonly scheme: StringMatcher | null,
    readonly method: StringMatcher | null,
    readonly authority: StringMatcher | null,
    readonly headers: readonly NamedMatcher[],
    readonly withoutHeaders: readonly NamedMatcher[],
    readonly query: readonly NamedMatcher[],
    readonly port: number,
    /** false when sourceLabels did not match this proxy: the match never holds. */
    readonly sourceOk: boolean,
  ) {}

  /** Length of the path prefix a prefix uri match consumed (for rewrite); -1 otherwise. */
  get uriPrefixLength(): number {
    return this.uri !== null && this.uri.kind === K_PREFIX ? this.uri.value.length : -1;
  }

  test(r: MatchInput): boolean {
    if (!this.sourceOk) return false;
    if (this.uri !== null && !this.uri.test(r.path)) return false;
    if (this.method !== null && !this.method.test(r.method)) return false;
    if (this.authority !== null && !this.authority.test(r.authority)) return false;
    if (this.scheme !== null && !this.scheme.test(r.scheme)) return false;
    if (this.port !== 0 && r.port !== this.port) return false;
    const h = this.headers;
    for (let i = 0; i < h.length; i++) {
      const nm = h[i] as NamedMatcher;
      if (!nm.m.test(r.header(nm.name))) return false;
    }
    const w = this.withoutHeaders;
    for (let i = 0; i < w.length; i++) {
      const nm = w[i] as NamedMatcher;
      if (nm.m.test(r.header(nm.name))) return false;
    }
    const q = this.query;
    for (let i = 0; i < q.length; i++) {
      const nm = q[i] as NamedMatcher;
      if (!nm.m.test(r.queryParam(nm.name))) return false;
    }
    return true;
  }
}

/** Compiles one HTTPMatchRequest; `identityLabels` decide `sourceLabels` once, here. */
export function compileMatch(
  m: HttpMatch,
  where: string,
  identityLabels: Record<string, string>,
): RequestMatcher {
  const named = (rec: Record<string, StringMatch> | undefined, kind: string): NamedMatcher[] =>
    Object.entries(rec ?? {}).map(([name, sm]) => ({
      name: name.toLowerCase(),
      m: compileStringMatch(sm, `${where}.${kind}.${name}`),
    }));
  let sourceOk = true;
  for (const [k, v] of Object.entries(m.sourceLabels ?? {})) {
    if (identityLabels[k] !== v) sourceOk = false;
  }
  return new RequestMatcher(
    m.uri ? compileStringMatch(m.uri, `${where}.uri`, m.ignoreUriCase === true) : null,
    m.scheme ? compileStringMatch(m.scheme, `${where}.scheme`) : null,
    m.method ? compileStringMatch(m.method, `${where}.method`) : null,
    m.authority ? compileStringMatch(m.authority, `${where}.authority`) : null,
    named(m.headers, 'headers'),
    named(m.withoutHeaders, 'withoutHeaders'),
    named(m.queryParams, 'queryParams'),
    m.port ?? 0,
    sourceOk,
  );
}
