/** `sluice promote|abort|pause|resume|retry NAMESPACE/NAME`: manual gating through the API. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export const GATE_ACTIONS = ['promote', 'abort', 'pause', 'resume', 'retry'] as const;
export type GateAction = (typeof GATE_ACTIONS)[number];

export interface GateOptions {
  action: GateAction;
  target: string;
  api: string;
  /** The API token: from --token-file, else `<state-dir>/api-token`. */
  tokenFile?: string;
  stateDir: string;
  write: (t: string) => void;
  writeErr: (t: string) => void;
}

/** Returns 0 done, 1 refused (with the reason), 2 error (usage, unreachable, unauthorized). */
export async function runGate(opts: GateOptions): Promise<number> {
  const m = /^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(opts.target);
  if (!m) {
    opts.writeErr(
      `sluice ${opts.action}: give the canary as NAMESPACE/NAME, not ${JSON.stringify(opts.target)}\n`,
    );
    return 2;
  }
  const tokenFile = opts.tokenFile ?? join(opts.stateDir, 'api-token');
  let token: string;
  try {
    token = readFileSync(tokenFile, 'utf8').trim();
  } catch (err) {
    opts.writeErr(
      `sluice ${opts.action}: cannot read the API token from ${tokenFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message} (use --token-file or --state-dir)\n`,
    );
    return 2;
  }
  let res: Response;
  try {
    res = await fetch(new URL(`/api/v1/canaries/${m[1]}/${m[3]}/${opts.action}`, opts.api), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
  } catch (err) {
    opts.writeErr(
      `sluice ${opts.action}: cannot reach the controller at ${opts.api}: ${(err as Error).message}\n`,
    );
    return 2;
  }
  const body = (await res.json().catch(() => ({}))) as {
    message?: string;
    error?: { code: string; message: string };
  };
  if (res.status === 200) {
    opts.write(`${opts.target}: ${body.message ?? `${opts.action} done`}\n`);
    return 0;
  }
  const reason = body.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${res.status}`;
  opts.writeErr(`sluice ${opts.action} ${opts.target}: ${reason}\n`);
  return res.status === 409 ? 1 : 2;
}
