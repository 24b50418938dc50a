/**
 * A child process that cannot outlive the platform. Node has no PR_SET_PDEATHSIG, so every
 * child is started through a small POSIX shell guard (`/bin/sh`, a few hundred KiB, no Node):
 *
 *   sh (session and process-group leader, stdin = a pipe from the platform)
 *   ├── the command (stdin /dev/null, stdout/stderr = pipes to the platform)
 *   └── a watcher subshell blocked reading the platform's pipe
 *
 * When the platform dies, even by SIGKILL, the kernel closes its end of the pipe; the
 * watcher reads EOF, sends SIGTERM to the whole process group (the command and anything it
 * started), waits up to the grace period for the command to go, then SIGKILLs the group.
 * On a normal stop the platform signals the group itself; the shell forwards SIGTERM to the
 * command and exits with the command's exit status (128+N when a signal N ended it).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable } from 'node:stream';

const GUARD = `
grace=$1; shift
exec 5<&0
"$@" </dev/null 3>&- 5<&- &
child=$!
echo "$child" >&3
exec 3>&-
(
  trap '' TERM
  while read -r _line; do :; done
  kill -TERM -$$ 2>/dev/null
  i=0
  while kill -0 "$child" 2>/dev/null && [ "$i" -lt "$grace" ]; do sleep 0.1; i=$((i+1)); done
  kill -KILL -$$ 2>/dev/null
) <&5 >/dev/null 2>&1 &
watcher=$!
exec 5<&-
trap 'kill -TERM "$child" 2>/dev/null' TERM INT
while :; do
  wait "$child"
  code=$?
  kill -0 "$child" 2>/dev/null || break
done
kill -KILL "$watcher" 2>/dev/null
exit "$code"
`;

export interface ExitInfo {
  /** The command's exit code (128+N when signal N ended it); -1 when it never started. */
  code: number;
  /** Set when the guard itself was signalled (SIGKILL of the group). */
  signal: NodeJS.Signals | null;
  /** Why the process could not be started, when it could not. */
  error?: string;
}

export interface WatchedProcessOptions {
  argv: readonly string[];
  cwd: string;
  env: Record<string, string>;
  /** How long the guard waits after SIGTERM before SIGKILL when the platform is gone. */
  orphanGraceMs: number;
}

export class WatchedProcess {
  /** The guard's pid, which is also the process group id. */
  readonly pid: number | undefined;
  /** The command's own pid (the guard's child), once the guard has reported it. */
  readonly commandPid: Promise<number | undefined>;
  readonly exited: Promise<ExitInfo>;
  readonly stdout: Readable;
  readonly stderr: Readable;
  private readonly child: ChildProcess;
  private done = false;

  constructor(opts: WatchedProcessOptions) {
    const [cmd, ...args] = opts.argv;
    if (cmd === undefined) throw new Error('empty argv');
    const tenths = String(Math.max(1, Math.ceil(opts.orphanGraceMs / 100)));
    this.child = spawn('/bin/sh', ['-c', GUARD, 'sluice-guard', tenths, cmd, ...args], {
      cwd: opts.cwd,
      env: opts.env,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    });
    this.pid = this.child.pid;
    this.stdout = this.child.stdout as Readable;
    this.stderr = this.child.stderr as Readable;
    // Never written: its only job is to be closed by the kernel when this process dies.
    this.child.stdin?.on('error', () => {});
    const pidPipe = this.child.stdio[3] as Readable | null;
    this.commandPid = new Promise((resolve) => {
      if (!pidPipe) return resolve(undefined);
      let text = '';
      pidPipe.on('data', (d: Buffer) => (text += d.toString()));
      pidPipe.on('error', () => resolve(undefined));
      pidPipe.on('close', () => {
        const n = Number(text.trim());
        resolve(Number.isInteger(n) && n > 0 ? n : undefined);
      });
    });
    this.exited = new Promise((resolve) => {
      this.child.once('error', (e) => {
        this.done = true;
        resolve({ code: -1, signal: null, error: e.message });
      });
      this.child.once('exit', (code, signal) => {
        this.done = true;
        this.child.stdin?.destroy();
        // Whatever the command left behind in its group (daemonized children) goes with it.
        if (this.pid !== undefined) {
          try {
            process.kill(-this.pid, 'SIGKILL');
          } catch {
            // the group is empty: the usual case
          }
        }
        resolve({ code: code ?? (signal === 'SIGKILL' ? 137 : 143), signal });
      });
    });
  }

  get running(): boolean {
    return !this.done && this.pid !== undefined;
  }

  /** Signals the whole process group (the guard, the command and its own children). */
  signal(sig: NodeJS.Signals): void {
    if (!this.running || this.pid === undefined) return;
    try {
      process.kill(-this.pid, sig);
    } catch {
      // already gone
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the guard has exited. */
  async stop(graceMs: number): Promise<ExitInfo> {
    if (!this.running) return this.exited;
    this.signal('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const killed = new Promise<void>((r) => {
      timer = setTimeout(() => {
        this.signal('SIGKILL');
        r();
      }, graceMs);
    });
    const info = await Promise.race([this.exited, killed.then(() => this.exited)]);
    clearTimeout(timer);
    return info;
  }
}
