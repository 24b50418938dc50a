/**
 * One HTTP POST of a JSON body, and what its answer means: the edge every reporter and alert
 * provider shares. Exactly one attempt; retrying is the caller's (see retry.ts). Nothing here
 * logs, and no header value ever reaches an error message.
 */
import { request, type Dispatcher } from 'undici';
import { ReportError, type ReportErrorCode } from './errors.js';

export const DEFAULT_HTTP_TIMEOUT_MS = 10_000;
const MAX_BODY_BYTES = 64 * 1024;

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The response body, at most 64 KiB of it. */
  text: string;
}

export interface PostOptions {
  headers?: Record<string, string>;
  /** Per attempt, headers and body (default 10 s). */
  timeoutMs?: number;
  /** For a proxy (undici ProxyAgent) or tests; default undici's global dispatcher. */
  dispatcher?: Dispatcher;
}

/**
 * POSTs `body` as JSON and returns the answer, whatever its status. Throws ReportError
 * SLUICE_REPORT_UNREACHABLE (retriable) when no answer came: refused, reset, DNS, timeout.
 * `what` names the target in the message (never the URL: it may hold a webhook secret).
 */
export async function postJson(
  url: string,
  body: unknown,
  what: string,
  opts: PostOptions = {},
): Promise<HttpAnswer> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_HTTP_TIMEOUT_MS;
  try {
    const res = await request(url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json',
        'user-agent': 'sluice',
        ...opts.headers,
      },
      body: JSON.stringify(body),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
      ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
    });
    let text = '';
    let size = 0;
    for await (const chunk of res.body) {
      const b = chunk as Buffer;
      if (size < MAX_BODY_BYTES) text += b.subarray(0, MAX_BODY_BYTES - size).toString('utf8');
      size += b.length;
    }
    return { status: res.statusCode, headers: res.headers, text };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { name?: string };
    const reason =
      e.name === 'TimeoutError' || e.name === 'AbortError' || e.code === 'UND_ERR_HEADERS_TIMEOUT'
        ? `no answer within ${timeoutMs} ms`
        : (e.code ?? e.name ?? 'network error');
    throw new ReportError('SLUICE_REPORT_UNREACHABLE', `${what} is unreachable (${reason})`, {
      retriable: true,
    });
  }
}

function header(h: HttpAnswer['headers'], name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * `Retry-After` in milliseconds from `now`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
 * Undefined when absent or unreadable; 0 for a date in the past.
 */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** The first line of a response body, short, for messages (the caller scrubs it). */
export function bodyLine(text: string): string {
  const line = text.trim().split('\n', 1)[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

/**
 * The ReportError an unsuccessful answer means, by status: 401, 403 (a rate limit when it says
 * so: Retry-After or `x-ratelimit-remaining: 0`, as GitHub's secondary limits), 404, 429, 5xx
 * (retriable), other 4xx. `detail` is the already-scrubbed reason to print.
 */
export function errorOfAnswer(
  answer: HttpAnswer,
  what: string,
  detail: string,
  now: number,
): ReportError {
  const { status } = answer;
  const retryAfterMs = parseRetryAfter(header(answer.headers, 'retry-after'), now);
  const reset = header(answer.headers, 'x-ratelimit-reset');
  const resetMs =
    reset && /^\d+$/.test(reset) ? Math.max(0, Number(reset) * 1000 - now) : undefined;
  const suffix = detail ? `: ${detail}` : '';
  const make = (code: ReportErrorCode, text: string, retriable = false) =>
    new ReportError(code, `${what} answered ${status} ${text}${suffix}`, {
      status,
      retriable,
      ...(retryAfterMs !== undefined
        ? { retryAfterMs }
        : code === 'SLUICE_REPORT_RATE_LIMITED' && resetMs !== undefined
          ? { retryAfterMs: resetMs }
          : {}),
    });
  if (status === 401)
    return make('SLUICE_REPORT_UNAUTHORIZED', '(token missing, wrong or expired)');
  if (status === 403) {
    const limited =
      retryAfterMs !== undefined || header(answer.headers, 'x-ratelimit-remaining') === '0';
    return limited
      ? make('SLUICE_REPORT_RATE_LIMITED', '(rate limited)', true)
      : make('SLUICE_REPORT_FORBIDDEN', '(the token may not do this)');
  }
  if (status === 404) return make('SLUICE_REPORT_NOT_FOUND', '(not found)');
  if (status === 429) return make('SLUICE_REPORT_RATE_LIMITED', '(rate limited)', true);
  if (status >= 500) return make('SLUICE_REPORT_SERVER_ERROR', '(server error)', status !== 501);
  return make('SLUICE_REPORT_REJECTED', '(rejected)');
}
