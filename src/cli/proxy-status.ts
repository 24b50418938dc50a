/** `sluice proxy-status`: each proxy's config version vs the latest (SYNCED, STALE, NACKED, DISCONNECTED). */

import { formatColumns } from './table.js';
export interface ProxyRow {
  id: string;
  kind: string | null;
  ready: boolean;
  ackedVersion: string | null;
  latestVersion: string | null;
  state: string;
  reason: { code: string; message: string } | null;
  connectedSince: string | null;
}

export function formatProxyTable(rows: readonly ProxyRow[]): string {
  const header = ['PROXY', 'KIND', 'READY', 'STATE', 'RUNNING', 'LATEST', 'CONNECTED SINCE'];
  const lines = rows.map((r) => [
    r.id,
    r.kind ?? '-',
    r.ready ? 'yes' : 'no',
    r.state + (r.reason ? ` (${r.reason.code}: ${r.reason.message})` : ''),
    r.ackedVersion ?? '-',
    r.latestVersion ?? '-',
    r.connectedSince ?? '-',
  ]);
  return formatColumns(header, lines);
}

/** Returns the exit code: 0, or 2 when the controller cannot be reached or answers an error. */
export async function runProxyStatus(opts: {
  api: string;
  output: 'text' | 'json';
  write: (t: string) => void;
  writeErr: (t: string) => void;
}): Promise<number> {
  let body: { proxies?: ProxyRow[]; error?: { code: string; message: string } };
  try {
    const res = await fetch(new URL('/api/v1/proxies', opts.api));
    body = (await res.json()) as typeof body;
    if (!res.ok) {
      opts.writeErr(
        `sluice proxy-status: ${body.error?.code ?? res.status}: ${body.error?.message ?? res.statusText}\n`,
      );
      return 2;
    }
  } catch (err) {
    opts.writeErr(
      `sluice proxy-status: cannot reach the controller at ${opts.api}: ${(err as Error).message}\n`,
    );
    return 2;
  }
  const rows = body.proxies ?? [];
  opts.write(
    opts.output === 'json' ? JSON.stringify(rows, null, 2) + '\n' : formatProxyTable(rows),
  );
  return 0;
}
