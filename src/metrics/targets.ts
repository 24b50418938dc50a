/**
 * Scrape targets from the fleet: every proxy with an admin port is scraped on
 * /stats/prometheus. Structural on purpose (metrics imports only api): the mesh
 * registry's ProxyInstance fits once it carries `adminPort`.
 */
import type { ScrapeTarget } from './builtin.js';

export interface ScrapableProxy {
  /** `<namespace>/<workload>/<replica>` or `gateway/<name>`. */
  id: string;
  address: string;
  /** The admin port; proxies without one are not scraped. */
  adminPort?: number;
}

/** One target per proxy with an admin port, labelled `proxy=<id>`; sorted by id. */
export function scrapeTargetsOf(proxies: readonly ScrapableProxy[]): ScrapeTarget[] {
  return proxies
    .filter((p) => p.adminPort !== undefined && p.adminPort > 0)
    .map((p) => {
      const host =
        p.address.includes(':') && !p.address.startsWith('[') ? `[${p.address}]` : p.address;
      return { url: `http://${host}:${p.adminPort}/stats/prometheus`, labels: { proxy: p.id } };
    })
    .sort((a, b) =>
      a.labels.proxy < b.labels.proxy ? -1 : a.labels.proxy > b.labels.proxy ? 1 : 0,
    );
}
