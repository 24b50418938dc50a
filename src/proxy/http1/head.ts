/**
 * HTTP/1.x message heads: strict parsing of request and response heads (RFC 9112) into
 * flat arrays of lower-cased names and values. Parsing is one latin1 decode of the head plus
 * indexOf scans; the regexes below are compiled once at load.
 *
 * Request parsing is strict (smuggling vectors are rejected: whitespace before the colon,
 * obs-fold, bare CR/LF, conflicting Content-Length, Transfer-Encoding with Content-Length).
 * Response parsing is as strict on framing; a violation becomes a 502 at the edge.
 */

/** Methods and header names are tokens (RFC 9110 5.6.2). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Per byte: 0 not a token character, 1 a token character, 2 an upper-case letter. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 2;

/**
 * The lower-cased header name in `text[start, end)`, or null when it is not a token. One
 * pass checks and finds upper case; a name already in lower case (HTTP/2 and most proxies
 * send them so) is not copied again.
 */
function headerName(text: string, start: number, end: number): string | null {
  if (start === end) return null;
  let upper = false;
  for (let i = start; i < end; i++) {
    const t = TCHAR[text.charCodeAt(i)];
    if (t === 0) return null;
    if (t === 2) upper = true;
  }
  const raw = text.slice(start, end);
  return upper ? raw.toLowerCase() : raw;
}
const DIGITS = /^[0-9]{1,15}$/;
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9][0-9][0-9])(?: (.*))?$/;

/**
 * False when the head has a NUL, a CR not followed by LF, or an LF not preceded by CR. Every
 * CR is checked for its LF; then equal counts mean every LF has its CR. Three indexOf scans:
 * cheaper than one regex with a lookbehind.
 */
function cleanLineEnds(text: string): boolean {
  if (text.indexOf('\0') !== -1) return false;
  let crs = 0;
  for (let i = text.indexOf('\r'); i !== -1; i = text.indexOf('\r', i + 2)) {
    if (text.charCodeAt(i + 1) !== 0x0a) return false;
    crs++;
  }
  let lfs = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lfs++;
  return crs === lfs;
}

/** A field value without its leading and trailing OWS (space and tab only, RFC 9110 5.5). */
function fieldValue(text: string, start: number, end: number): string {
  let a = start;
  let b = end;
  while (a < b && (text.charCodeAt(a) === 0x20 || text.charCodeAt(a) === 0x09)) a++;
  while (b > a && (text.charCodeAt(b - 1) === 0x20 || text.charCodeAt(b - 1) === 0x09)) b--;
  return text.slice(a, b);
}

export const BODY_NONE = 0;
export const BODY_LENGTH = 1;
export const BODY_CHUNKED = 2;
/** Response body delimited by the connection closing. */
export const BODY_CLOSE = 3;

export class HeadError extends Error {
  /** 400, 501 (unsupported transfer coding) or 502 (response). */
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** A parsed request head. `names` are lower-cased; order and duplicates are kept. */
export interface RequestHead {
  method: string;
  /** The request-target as sent: origin-form `/path?q`, or absolute-form `http://h/p`. */
  target: string;
  /** 0 for HTTP/1.0, 1 for HTTP/1.1. */
  minor: number;
  names: string[];
  values: string[];
  bodyKind: number;
  contentLength: number;
  keepAlive: boolean;
  /** Connection: upgrade together with an Upgrade header (not `h2c`, see below). */
  upgrade: boolean;
  expectContinue: boolean;
  /** Other header names the Connection header lists (hop-by-hop, never forwarded); or null. */
  hopByHop: string[] | null;
  /** `Upgrade: h2c` with `Connection: Upgrade, HTTP2-Settings` (RFC 7540 3.2). */
  h2c?: boolean;
}

export interface ResponseHead {
  status: number;
  reason: string;
  minor: number;
  names: string[];
  values: string[];
  bodyKind: number;
  contentLength: number;
  keepAlive: boolean;
  /** Other header names the Connection header lists (hop-by-hop, never forwarded); or null. */
  hopByHop: string[] | null;
}

/**
 * Header names a Connection header value lists besides close, keep-alive and upgrade
 * (RFC 9110 7.6.1: they are hop-by-hop and must not be forwarded); null when none.
 */
export function connectionNames(value: string): string[] | null {
  // The usual values name no other header: no split for them.
  if (value.length <= 10) {
    const v = value.toLowerCase();
    if (v === 'keep-alive' || v === 'close' || v === 'upgrade') return null;
  }
  let out: string[] | null = null;
  for (const raw of value.split(',')) {
    const t = raw.trim().toLowerCase();
    if (t === '' || t === 'close' || t === 'keep-alive' || t === 'upgrade') continue;
    (out ??= []).push(t);
  }
  return out;
}

/** Case-insensitive search of a comma-separated header value for one token. */
function hasToken(value: string, token: string): boolean {
  const v = value.toLowerCase();
  if (v === token) return true;
  if (v.indexOf(',') === -1) return v.trim() === token;
  let start = 0;
  while (start <= v.length) {
    let end = v.indexOf(',', start);
    if (end === -1) end = v.length;
    if (v.slice(start, end).trim() === token) return true;
    start = end + 1;
  }
  return false;
}

/**
 * Parses header lines from `text` starting at `pos` into names/values. Returns the framing
 * facts the caller needs; throws HeadError on a malformed line.
 */
function parseFields(
  text: string,
  pos: number,
  names: string[],
  values: string[],
  errStatus: number,
): {
  cl: number;
  te: string | undefined;
  connection: string | undefined;
  upgrade: string | undefined;
} {
  let cl = -1;
  let te: string | undefined;
  let connection: string | undefined;
  let upgrade: string | undefined;
  const len = text.length;
  while (pos < len) {
    let eol = text.indexOf('\r\n', pos);
    if (eol === -1) eol = len;
    const first = text.charCodeAt(pos);
    if (first === 0x20 || first === 0x09) throw new HeadError(errStatus, 'obsolete line folding');
    const colon = text.indexOf(':', pos);
    if (colon === -1 || colon > eol) throw new HeadError(errStatus, 'header line without colon');
    const name = headerName(text, pos, colon);
    if (name === null) throw new HeadError(errStatus, 'invalid header name');
    const value = fieldValue(text, colon + 1, eol);
    names.push(name);
    values.push(value);
    switch (name.length) {
      case 14:
        if (name === 'content-length') {
          if (!DIGITS.test(value)) throw new HeadError(errStatus, 'invalid content-length');
          const n = Number(value);
          if (cl !== -1 && cl !== n) throw new HeadError(errStatus, 'conflicting content-length');
          cl = n;
        }
        break;
      case 17:
        if (name === 'transfer-encoding') te = te === undefined ? value : `${te}, ${value}`;
        break;
      case 10:
        if (name === 'connection')
          connection = connection === undefined ? value : `${connection}, ${value}`;
        break;
      case 7:
        if (name === 'upgrade') upgrade = value;
        break;
    }
    pos = eol + 2;
  }
  return { cl, te, connection, upgrade };
}

/**
 * Parses the request head in `buf[start, end)` (end is the index of the blank line's CRLF
 * pair, exclusive). Throws HeadError(400|501) when it is malformed.
 */
export function parseRequestHead(buf: Buffer, start: number, end: number): RequestHead {
  const text = buf.toString('latin1', start, end);
  if (!cleanLineEnds(text)) throw new HeadError(400, 'invalid characters in head');
  let eol = text.indexOf('\r\n');
  if (eol === -1) eol = text.length;
  const sp1 = text.indexOf(' ');
  const sp2 = sp1 === -1 ? -1 : text.indexOf(' ', sp1 + 1);
  if (sp1 <= 0 || sp2 === -1 || sp2 > eol || sp2 === sp1 + 1) {
    throw new HeadError(400, 'malformed request line');
  }
  const method = text.slice(0, sp1);
  if (!TOKEN.test(method)) throw new HeadError(400, 'invalid method');
  const target = text.slice(sp1 + 1, sp2);
  const version = text.slice(sp2 + 1, eol);
  let minor: number;
  if (version === 'HTTP/1.1') minor = 1;
  else if (version === 'HTTP/1.0') minor = 0;
  else throw new HeadError(version.startsWith('HTTP/') ? 505 : 400, 'unsupported HTTP version');
  if (target.indexOf(' ') !== -1) throw new HeadError(400, 'malformed request line');
  const names: string[] = [];
  const values: string[] = [];
  const f = parseFields(text, eol + 2, names, values, 400);
  let bodyKind = BODY_NONE;
  let contentLength = -1;
  if (f.te !== undefined) {
    if (f.cl !== -1) throw new HeadError(400, 'both transfer-encoding and content-length');
    if (f.te.toLowerCase() !== 'chunked') throw new HeadError(501, 'unsupported transfer-encoding');
    if (minor === 0) throw new HeadError(400, 'transfer-encoding in HTTP/1.0');
    bodyKind = BODY_CHUNKED;
  } else if (f.cl > 0) {
    bodyKind = BODY_LENGTH;
    contentLength = f.cl;
  } else if (f.cl === 0) {
    contentLength = 0;
  }
  let keepAlive = minor === 1;
  let upgrade = false;
  let h2c = false;
  let hopByHop: string[] | null = null;
  if (f.connection !== undefined) {
    if (hasToken(f.connection, 'close')) keepAlive = false;
    else if (minor === 0 && hasToken(f.connection, 'keep-alive')) keepAlive = true;
    // `Upgrade: h2c` is not a tunnel: the server edge switches to HTTP/2 itself.
    if (f.upgrade !== undefined && hasToken(f.connection, 'upgrade')) {
      if (hasToken(f.upgrade, 'h2c')) h2c = hasToken(f.connection, 'http2-settings');
      else upgrade = true;
    }
    hopByHop = connectionNames(f.connection);
  }
  let expectContinue = false;
  if (minor === 1) {
    for (let i = 0; i < names.length; i++) {
      if (names[i] === 'expect' && (values[i] as string).toLowerCase() === '100-continue') {
        expectContinue = true;
      }
    }
  }
  return {
    method,
    target,
    minor,
    names,
    values,
    bodyKind,
    contentLength,
    keepAlive,
    upgrade,
    expectContinue,
    hopByHop,
    h2c,
  };
}

/**
 * Parses a response head. `headRequest` (the request was HEAD) means no body whatever the
 * framing headers say. Throws HeadError(502) when it is malformed.
 */
export function parseResponseHead(
  buf: Buffer,
  start: number,
  end: number,
  headRequest: boolean,
): ResponseHead {
  const text = buf.toString('latin1', start, end);
  if (!cleanLineEnds(text)) throw new HeadError(502, 'invalid characters in response head');
  let eol = text.indexOf('\r\n');
  if (eol === -1) eol = text.length;
  const m = STATUS_LINE.exec(text.slice(0, eol));
  if (m === null) throw new HeadError(502, 'malformed status line');
  const minor = m[1] === '1' ? 1 : 0;
  const status = Number(m[2]);
  const names: string[] = [];
  const values: string[] = [];
  const f = parseFields(text, eol + 2, names, values, 502);
  let bodyKind: number;
  let contentLength = -1;
  if (headRequest || status < 200 || status === 204 || status === 304) {
    bodyKind = BODY_NONE;
    if (f.cl >= 0) contentLength = f.cl;
  } else if (f.te !== undefined) {
    const te = f.te.toLowerCase();
    if (te === 'chunked' || te.endsWith(', chunked') || te.endsWith(',chunked')) {
      bodyKind = BODY_CHUNKED;
    } else {
      bodyKind = BODY_CLOSE;
    }
  } else if (f.cl >= 0) {
    bodyKind = f.cl === 0 ? BODY_NONE : BODY_LENGTH;
    contentLength = f.cl;
  } else {
    bodyKind = BODY_CLOSE;
  }
  let keepAlive = minor === 1;
  let hopByHop: string[] | null = null;
  if (f.connection !== undefined) {
    if (hasToken(f.connection, 'close')) keepAlive = false;
    else if (minor === 0 && hasToken(f.connection, 'keep-alive')) keepAlive = true;
    hopByHop = connectionNames(f.connection);
  }
  if (bodyKind === BODY_CLOSE) keepAlive = false;
  return {
    status,
    reason: m[3] ?? '',
    minor,
    names,
    values,
    bodyKind,
    contentLength,
    keepAlive,
    hopByHop,
  };
}

/** Index of the value of header `name` (lower-case), or -1. */
export function headerIndex(names: string[], name: string): number {
  for (let i = 0; i < names.length; i++) if (names[i] === name) return i;
  return -1;
}
