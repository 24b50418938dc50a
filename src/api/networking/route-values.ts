/**
 * The values of an HTTP route that sluice's proxies compile or write into heads: regexes
 * (which a proxy that cannot compile one rejects its whole config for), header names, and
 * text that must hold no control characters. One list of problems, each with its path in the
 * route, serves both the manifests layer (an error at that path) and the mesh compiler (which
 * leaves such a route out instead of sending every proxy a config it would reject).
 * Retry conditions are classified by retry-on.ts.
 */
import { regexProblem, type RegexUse } from '../regex.js';
import { HTTP_TOKEN_PATTERN, NO_CONTROL_PATTERN } from '../schema.js';

/** A problem with one value, at its path relative to what was checked. */
export interface ValueProblem {
  path: (string | number)[];
  message: string;
  /** `key` when the value is a map key (a header name): point there, not at its value. */
  at?: 'key';
}

type Obj = Record<string, unknown>;
const asObj = (v: unknown): Obj =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {};
const asArr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

const HTTP_TOKEN = new RegExp(HTTP_TOKEN_PATTERN);
const NO_CONTROL = new RegExp(NO_CONTROL_PATTERN, 'u');

const REGEX_HINT = "; sluice's proxies run regexes with JavaScript's RegExp";

function regex(out: ValueProblem[], path: (string | number)[], v: unknown, use: RegexUse): void {
  if (typeof v !== 'string') return;
  const problem = regexProblem(v, use);
  if (problem !== null) out.push({ path, message: problem + REGEX_HINT });
}

function headerName(
  out: ValueProblem[],
  path: (string | number)[],
  name: string,
  key = false,
): void {
  if (HTTP_TOKEN.test(name)) return;
  out.push({
    ...(key ? { at: 'key' as const } : {}),
    path,
    message: name.startsWith(':')
      ? `${JSON.stringify(name)} is a pseudo-header, which sluice's proxies do not set`
      : `${JSON.stringify(name)} is not a header name (letters, digits and !#$%&'*+-.^_\`|~)`,
  });
}

function text(out: ValueProblem[], path: (string | number)[], v: unknown): void {
  if (typeof v === 'string' && !NO_CONTROL.test(v))
    out.push({ path, message: `${JSON.stringify(v)} holds control characters (CR, LF, NUL, ...)` });
}

/** The regexes of a list of HTTPMatchRequests (a route's `match`, a Canary's `analysis.match`). */
export function matchProblems(matches: unknown): ValueProblem[] {
  const out: ValueProblem[] = [];
  asArr(matches).forEach((m, j) => {
    const match = asObj(m);
    for (const f of ['uri', 'scheme', 'method', 'authority'])
      regex(out, [j, f, 'regex'], asObj(match[f]).regex, 'match');
    for (const f of ['headers', 'withoutHeaders', 'queryParams']) {
      const byName = asObj(match[f]);
      for (const name of Object.keys(byName))
        regex(out, [j, f, name, 'regex'], asObj(byName[name]).regex, 'match');
    }
  });
  return out;
}

/** `host` or `:authority`: Istio sets the request's authority from it, and nothing else. */
export function isAuthorityHeader(name: string): boolean {
  const n = name.toLowerCase();
  return n === 'host' || n === ':authority';
}

/**
 * Header operations (`headers` of a route or of one of its destinations). As in Istio, a
 * request `set` of `host` or `:authority` rewrites the authority; any other operation on
 * them is refused (Envoy may not modify them).
 */
function headerProblems(out: ValueProblem[], path: (string | number)[], headers: unknown): void {
  for (const side of ['request', 'response']) {
    const ops = asObj(asObj(headers)[side]);
    for (const op of ['set', 'add']) {
      const byName = asObj(ops[op]);
      for (const name of Object.keys(byName)) {
        const at = [...path, side, op, name];
        if (isAuthorityHeader(name)) {
          if (side === 'request' && op === 'set') text(out, at, byName[name]);
          else out.push({ at: 'key', path: at, message: authorityOnlySet(name) });
          continue;
        }
        headerName(out, at, name, true);
        text(out, at, byName[name]);
      }
    }
    asArr(ops.remove).forEach((name, k) => {
      if (typeof name !== 'string') return;
      if (isAuthorityHeader(name))
        out.push({ path: [...path, side, 'remove', k], message: authorityOnlySet(name) });
      else headerName(out, [...path, side, 'remove', k], name);
    });
  }
}

const authorityOnlySet = (name: string): string =>
  `${JSON.stringify(name)} can only be set on requests (it rewrites the authority, as rewrite.authority does)`;

/**
 * Problems of one HTTP route (VirtualService `http[i]`, or a Canary's `service`, which
 * becomes one), with paths relative to the route. Empty when the proxies can use it.
 */
export function httpRouteProblems(route: unknown): ValueProblem[] {
  const r = asObj(route);
  const out: ValueProblem[] = matchProblems(r.match).map((p) => ({
    path: ['match', ...p.path],
    message: p.message,
  }));
  const rewrite = asObj(r.rewrite);
  const rr = asObj(rewrite.uriRegexRewrite);
  regex(out, ['rewrite', 'uriRegexRewrite', 'match'], rr.match, 'rewrite');
  text(out, ['rewrite', 'uriRegexRewrite', 'rewrite'], rr.rewrite);
  text(out, ['rewrite', 'uri'], rewrite.uri);
  text(out, ['rewrite', 'authority'], rewrite.authority);
  const redirect = asObj(r.redirect);
  for (const f of ['uri', 'authority', 'scheme']) text(out, ['redirect', f], redirect[f]);
  const cors = asObj(r.corsPolicy);
  asArr(cors.allowOrigins).forEach((o, k) =>
    regex(out, ['corsPolicy', 'allowOrigins', k, 'regex'], asObj(o).regex, 'match'),
  );
  for (const f of ['allowMethods', 'allowHeaders', 'exposeHeaders'])
    asArr(cors[f]).forEach((v, k) => {
      if (typeof v === 'string' && v !== '*') headerName(out, ['corsPolicy', f, k], v);
    });
  headerProblems(out, ['headers'], r.headers);
  asArr(r.route).forEach((d, k) => headerProblems(out, ['route', k, 'headers'], asObj(d).headers));
  return out;
}
