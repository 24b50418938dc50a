/**
 * What `sluice proxy-status` and `GET /api/v1/proxies` show per proxy: the version it runs
 * (its last ACK) against the latest the controller computed for it. Pure.
 */

export type ProxySyncState = 'SYNCED' | 'STALE' | 'NACKED' | 'DISCONNECTED';

export interface ProxyStatus {
  id: string;
  workload: string | null;
  namespace: string | null;
  /** The version the proxy last ACKed (it runs this one), null before its first ACK. */
  ackedVersion: string | null;
  /** The version the controller wants it to run, null when it has none for it. */
  latestVersion: string | null;
  state: ProxySyncState;
  /** Why the proxy refused `latestVersion` (state NACKED). */
  reason: { code: string; message: string } | null;
  /** ISO time the current stream opened; null when disconnected. */
  connectedSince: string | null;
  /** Workload certificate: expiry of the last one issued to this proxy. */
  certificateNotAfter: string | null;
}

export interface SyncFacts {
  connected: boolean;
  acked: string | null;
  latest: string | null;
  nack: { version: string; code: string; message: string } | null;
}

/**
 * DISCONNECTED without a stream; NACKED when the proxy refused exactly the latest version;
 * SYNCED when it ACKed the latest; STALE otherwise (a push in flight, or no config yet).
 */
export function syncState(f: SyncFacts): ProxySyncState {
  if (!f.connected) return 'DISCONNECTED';
  if (f.latest !== null && f.nack !== null && f.nack.version === f.latest) return 'NACKED';
  if (f.latest !== null && f.acked === f.latest) return 'SYNCED';
  return 'STALE';
}
