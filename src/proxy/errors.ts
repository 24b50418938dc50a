/**
 * Every error the proxy raises, with its stable code. Request-path errors carry the HTTP
 * status and the Envoy-style response flag they become at the server edge, where they are
 * turned into a response exactly once (`respondError` in exchange.ts).
 */

/** Base class: a stable `code` a user can search for. */
export class ProxyError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** An error that ends a request: the status and response flag it is answered with. */
export class RequestError extends ProxyError {
  readonly status: number;
  /** Envoy response flag for access logs and `response_flags` (e.g. UF, UT, NR); '' for none. */
  readonly flag: string;
  constructor(code: string, status: number, flag: string, message: string) {
    super(code, message);
    this.status = status;
    this.flag = flag;
  }
}

/** Registry: code → one-line description (tested to cover every code used). */
export const ERROR_CODES = {
  SLUICE_PROXY_BOOTSTRAP_INVALID: 'the bootstrap file is unreadable or fails its schema',
  SLUICE_PROXY_CONFIG_INVALID: 'a ProxyConfig fails its schema; the previous version keeps running',
  SLUICE_PROXY_CONFIG_COMPILE:
    'a ProxyConfig is schema-valid but cannot be compiled (unknown cluster, bad regex, ...)',
  SLUICE_PROXY_LISTEN_FAILED: 'a listener could not bind its address',
  SLUICE_PROXY_NO_ROUTE: 'no virtual host or route matched the request (404, flag NR)',
  SLUICE_PROXY_NO_HEALTHY_UPSTREAM: 'the cluster has no endpoint to send to (503, flag UH)',
  SLUICE_PROXY_UPSTREAM_CONNECT_FAILURE: 'connecting to the upstream failed (503, flag UF)',
  SLUICE_PROXY_UPSTREAM_RESET:
    'the upstream closed the connection before a complete response (503, flag UC)',
  SLUICE_PROXY_UPSTREAM_PROTOCOL_ERROR: 'the upstream sent a malformed response (502, flag UPE)',
  SLUICE_PROXY_UPSTREAM_TIMEOUT: 'the route timeout or per-try timeout expired (504, flag UT)',
  SLUICE_PROXY_UPSTREAM_OVERFLOW:
    'the connection pool is full and its pending queue too (503, flag UO)',
  SLUICE_PROXY_RATE_LIMITED: 'the local rate limit has no token left (429, flag RL)',
  SLUICE_PROXY_FAULT_ABORT: 'fault injection aborted the request (flag FI)',
  SLUICE_PROXY_BAD_REQUEST: 'the request is malformed HTTP (400, flag DPE)',
  SLUICE_PROXY_HEADERS_TOO_LARGE: 'the request head exceeds the configured limit (431)',
  SLUICE_PROXY_REQUEST_TIMEOUT: 'the client did not send a whole request head in time (408)',
  SLUICE_PROXY_STREAM_IDLE_TIMEOUT:
    'no bytes moved either way for the stream idle timeout (408 before the response, else a reset; flag SI)',
  SLUICE_PROXY_NOT_IMPLEMENTED: 'the request uses an HTTP feature the proxy does not support (501)',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class BootstrapInvalidError extends ProxyError {
  constructor(message: string) {
    super('SLUICE_PROXY_BOOTSTRAP_INVALID', message);
  }
}

export class ConfigInvalidError extends ProxyError {
  constructor(message: string) {
    super('SLUICE_PROXY_CONFIG_INVALID', message);
  }
}

export class ConfigCompileError extends ProxyError {
  constructor(message: string) {
    super('SLUICE_PROXY_CONFIG_COMPILE', message);
  }
}

export class ListenFailedError extends ProxyError {
  constructor(message: string) {
    super('SLUICE_PROXY_LISTEN_FAILED', message);
  }
}

export class NoRouteError extends RequestError {
  constructor(message = 'no route matched') {
    super('SLUICE_PROXY_NO_ROUTE', 404, 'NR', message);
  }
}

export class NoHealthyUpstreamError extends RequestError {
  constructor(message = 'no healthy upstream') {
    super('SLUICE_PROXY_NO_HEALTHY_UPSTREAM', 503, 'UH', message);
  }
}

export class UpstreamConnectError extends RequestError {
  constructor(message = 'upstream connect error') {
    super('SLUICE_PROXY_UPSTREAM_CONNECT_FAILURE', 503, 'UF', message);
  }
}

export class UpstreamResetError extends RequestError {
  constructor(message = 'upstream connection reset before response') {
    super('SLUICE_PROXY_UPSTREAM_RESET', 503, 'UC', message);
  }
}

/** An HTTP/2 upstream reset the stream with REFUSED_STREAM: it never processed the request. */
export class RefusedStreamError extends UpstreamResetError {
  constructor() {
    super('upstream refused the stream');
  }
}

export class UpstreamProtocolError extends RequestError {
  constructor(message = 'upstream protocol error') {
    super('SLUICE_PROXY_UPSTREAM_PROTOCOL_ERROR', 502, 'UPE', message);
  }
}

export class UpstreamTimeoutError extends RequestError {
  constructor(message = 'upstream request timeout') {
    super('SLUICE_PROXY_UPSTREAM_TIMEOUT', 504, 'UT', message);
  }
}

export class UpstreamOverflowError extends RequestError {
  constructor(message = 'upstream connect error or disconnect/reset before headers: overflow') {
    super('SLUICE_PROXY_UPSTREAM_OVERFLOW', 503, 'UO', message);
  }
}

export class RateLimitedError extends RequestError {
  constructor() {
    super('SLUICE_PROXY_RATE_LIMITED', 429, 'RL', 'local_rate_limited');
  }
}

export class FaultAbortError extends RequestError {
  constructor(status: number) {
    super('SLUICE_PROXY_FAULT_ABORT', status, 'FI', 'fault filter abort');
  }
}

export class BadRequestError extends RequestError {
  constructor(message = 'bad request') {
    super('SLUICE_PROXY_BAD_REQUEST', 400, 'DPE', message);
  }
}

export class HeadersTooLargeError extends RequestError {
  constructor() {
    super('SLUICE_PROXY_HEADERS_TOO_LARGE', 431, 'DPE', 'request header fields too large');
  }
}

export class RequestTimeoutError extends RequestError {
  constructor() {
    super('SLUICE_PROXY_REQUEST_TIMEOUT', 408, 'DPE', 'request timeout');
  }
}

/** Envoy's stream_idle_timeout: 408 "stream timeout" with flag SI. */
export class StreamIdleTimeoutError extends RequestError {
  constructor() {
    super('SLUICE_PROXY_STREAM_IDLE_TIMEOUT', 408, 'SI', 'stream timeout');
  }
}

export class NotImplementedError extends RequestError {
  constructor(message: string) {
    super('SLUICE_PROXY_NOT_IMPLEMENTED', 501, 'DPE', message);
  }
}
