/** The one POST of an alert, shared by the provider types. */
import { systemClock } from '../clock.js';
import { ReportError } from '../errors.js';
import { bodyLine, errorOfAnswer, postJson, type HttpAnswer } from '../http.js';
import { displayAddress, scrub } from '../secret.js';
import type { ResolvedProvider, SenderDeps } from './sender.js';

/**
 * POSTs `body` to `url` and throws the ReportError the answer means. `check` may read a 2xx
 * answer as a failure (Slack's `{"ok": false}`, Teams connectors' "returned HTTP error 429").
 * The address and token are scrubbed from every message.
 */
export async function deliver(
  what: string,
  url: string,
  body: unknown,
  p: ResolvedProvider,
  deps: SenderDeps,
  check?: (answer: HttpAnswer) => ReportError | undefined,
): Promise<void> {
  const secrets = [p.address, url, p.token, ...pathSecrets(p.address)];
  const label = `${what} webhook ${displayAddress(url)}`;
  let answer: HttpAnswer;
  try {
    answer = await postJson(url, body, label, {
      headers: p.token ? { authorization: `Bearer ${p.token}` } : {},
      ...(deps.dispatcher ? { dispatcher: deps.dispatcher } : {}),
      ...(deps.timeoutMs !== undefined ? { timeoutMs: deps.timeoutMs } : {}),
    });
  } catch (err) {
    throw clean(err, secrets);
  }
  const now = (deps.clock ?? systemClock).now();
  if (answer.status >= 200 && answer.status < 300) {
    const bad = check?.(answer);
    if (bad) throw clean(bad, secrets);
    return;
  }
  const detail = scrub(bodyLine(answer.text), secrets);
  let err = errorOfAnswer(answer, label, detail, now);
  // Discord says how long to wait in the body too (`retry_after`, seconds).
  if (err.code === 'SLUICE_REPORT_RATE_LIMITED' && err.retryAfterMs === undefined) {
    const s = /"retry_after"\s*:\s*([\d.]+)/.exec(answer.text)?.[1];
    if (s)
      err = new ReportError(err.code, err.message, {
        status: answer.status,
        retriable: true,
        retryAfterMs: Math.ceil(Number(s) * 1000),
      });
  }
  throw clean(err, secrets);
}

/** The long path segments of a webhook URL (tokens) so a body quoting them is scrubbed too. */
function pathSecrets(address: string): string[] {
  try {
    return new URL(address).pathname.split('/').filter((s) => s.length >= 16);
  } catch {
    return [];
  }
}

function clean(err: unknown, secrets: (string | undefined)[]): unknown {
  if (!(err instanceof ReportError)) return err;
  const message = scrub(err.message, secrets);
  if (message === err.message) return err;
  return new ReportError(err.code, message, {
    ...(err.status !== undefined ? { status: err.status } : {}),
    retriable: err.retriable,
    ...(err.retryAfterMs !== undefined ? { retryAfterMs: err.retryAfterMs } : {}),
  });
}
