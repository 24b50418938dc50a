/** Real git servers on loopback: `git daemon` (git://) and `git http-backend` behind Node (http://). */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { gitTestEnv } from './git.js';

/** A port that was free a moment ago (bind 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** `git daemon` serving every repository under `base` on 127.0.0.1. */
export class GitDaemon {
  private child: ChildProcess | undefined;
  private constructor(
    readonly base: string,
    public port: number,
  ) {}

  static async start(base: string): Promise<GitDaemon> {
    for (let attempt = 0; ; attempt++) {
      const d = new GitDaemon(base, await freePort());
      try {
        await d.up();
        return d;
      } catch (err) {
        if (attempt >= 5) throw err;
      }
    }
  }

  url(name: string): string {
    return `git://127.0.0.1:${this.port}/${name}.git`;
  }

  /** Starts (again) on the same port; rejects when git daemon exits first (port taken). */
  up(): Promise<void> {
    const child = spawn(
      'git',
      [
        'daemon',
        '--reuseaddr',
        '--verbose',
        '--export-all',
        '--informative-errors',
        `--base-path=${this.base}`,
        '--listen=127.0.0.1',
        `--port=${this.port}`,
        this.base,
      ],
      { env: gitTestEnv, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.child = child;
    return new Promise((resolve, reject) => {
      let err = '';
      const onData = (chunk: Buffer) => {
        err += chunk.toString();
        if (err.includes('Ready to rumble')) {
          child.stderr?.off('data', onData);
          child.stderr?.resume();
          child.off('exit', onExit);
          resolve();
        }
      };
      const onExit = () => reject(new Error(`git daemon exited: ${err}`));
      child.stderr?.on('data', onData);
      child.once('exit', onExit);
    });
  }

  /** Stops the daemon and waits for it to exit. */
  async down(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child) return;
    child.kill('SIGTERM');
    await exited(child);
  }
}

export interface HttpAuth {
  username: string;
  password: string;
}

/** Smart HTTP: `git http-backend` as CGI behind a Node server that checks basic auth. */
export class GitHttpServer {
  /** Authorization header of every request, in order. */
  readonly authorizations: Array<string | undefined> = [];
  private readonly server: Server;
  private readonly children = new Set<ChildProcess>();
  port = 0;

  private constructor(
    readonly root: string,
    private readonly auth: HttpAuth | undefined,
    private readonly bearer: string | undefined,
  ) {
    this.server = createServer((req, res) => this.handle(req, res));
  }

  static async start(
    root: string,
    opts: { auth?: HttpAuth; bearer?: string } = {},
  ): Promise<GitHttpServer> {
    const s = new GitHttpServer(root, opts.auth, opts.bearer);
    await s.listen(0);
    return s;
  }

  url(name: string): string {
    return `http://127.0.0.1:${this.port}/${name}.git`;
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        this.port = (this.server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  private authorized(header: string | undefined): boolean {
    if (this.auth === undefined && this.bearer === undefined) return true;
    if (header === undefined) return false;
    if (this.bearer !== undefined && header === `Bearer ${this.bearer}`) return true;
    if (this.auth !== undefined && header.startsWith('Basic ')) {
      const [user, ...pass] = Buffer.from(header.slice(6), 'base64').toString().split(':');
      return user === this.auth.username && pass.join(':') === this.auth.password;
    }
    return false;
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    this.authorizations.push(req.headers.authorization);
    if (!this.authorized(req.headers.authorization)) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"' });
      res.end('unauthorized\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://localhost');
    const env: NodeJS.ProcessEnv = {
      ...gitTestEnv,
      GIT_PROJECT_ROOT: this.root,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      REQUEST_METHOD: req.method ?? 'GET',
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_ADDR: '127.0.0.1',
      REMOTE_USER: this.auth?.username ?? '',
    };
    if (req.headers['content-length'] !== undefined)
      env.CONTENT_LENGTH = req.headers['content-length'];
    if (req.headers['content-encoding'] !== undefined)
      env.HTTP_CONTENT_ENCODING = req.headers['content-encoding'];
    const protocol = req.headers['git-protocol'];
    if (typeof protocol === 'string') env.GIT_PROTOCOL = protocol;
    const child = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'ignore'] });
    this.children.add(child);
    child.on('exit', () => this.children.delete(child));
    req.pipe(child.stdin);
    child.stdin.on('error', () => undefined);
    // CGI output: headers, a blank line, the body.
    let head = Buffer.alloc(0);
    let headersDone = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const sep = head.indexOf('\r\n\r\n');
      if (sep === -1) return;
      headersDone = true;
      let status = 200;
      for (const line of head.subarray(0, sep).toString().split('\r\n')) {
        const i = line.indexOf(':');
        const name = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (name.toLowerCase() === 'status') status = Number(value.split(' ')[0]);
        else res.setHeader(name, value);
      }
      res.statusCode = status;
      res.write(head.subarray(sep + 4));
    });
    child.stdout.on('end', () => res.end());
  }

  /** Closes the listening socket and every connection: the server looks down. */
  async down(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** Listens again on the same port. */
  up(): Promise<void> {
    return this.listen(this.port);
  }

  async stop(): Promise<void> {
    if (this.server.listening) await this.down();
    await Promise.all([...this.children].map((c) => (c.kill('SIGKILL'), exited(c))));
  }
}
