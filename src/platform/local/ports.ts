/** Loopback ports chosen by the OS. */
import net from 'node:net';

/**
 * A free port on `host`: bound on port 0, then released. Another process may take it before
 * the workload binds it; the platform handles that by assigning fresh ports when a process
 * exits before it ever became ready.
 */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.once('error', reject);
    s.listen({ host, port: 0, exclusive: true }, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** `count` distinct free ports. */
export async function freePorts(count: number, host = '127.0.0.1'): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < count) out.add(await freePort(host));
  return [...out];
}
