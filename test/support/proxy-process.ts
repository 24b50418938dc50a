/**
 * A `sluice proxy` child process as the tests run one: started from a command line, ready once
 * it has logged its ports, every JSON log line kept, stopped with SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface ProxyProcess {
  child: ChildProcess;
  /** The ports of its listeners, as the proxy logged them. */
  ports: { outbound?: number; inbound?: number; admin?: number; gateway?: number };
  /** Its stdout so far, one parsed pino JSON line each (the access log among them). */
  logs: Record<string, unknown>[];
  /**
   * SIGTERM, then waits for the exit and the last log line (SIGKILL when it does not exit
   * within 5 s). Resolves with the exit code.
   */
  stop(): Promise<number | null>;
}

/**
 * Runs `execPath args` and resolves once the proxy has printed its ports. Rejects when the
 * process exits first (an invalid bootstrap, a port it cannot bind), with what it wrote to
 * stderr.
 */
export async function runProxyProcess(execPath: string, args: string[]): Promise<ProxyProcess> {
  const child = spawn(execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  // 'close': the process exited and its stdout was read to the end (every log line is in).
  const closed = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
  const ports = await new Promise<ProxyProcess['ports']>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let j: Record<string, unknown>;
      try {
        j = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      logs.push(j);
      if (j.msg === 'proxy started') resolve(j.ports as ProxyProcess['ports']);
    });
    void closed.then((code) => reject(new Error(`sluice proxy exited with ${code}: ${stderr}`)));
  });
  return {
    child,
    ports,
    logs,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      const code = await closed;
      clearTimeout(t);
      return code;
    },
  };
}
