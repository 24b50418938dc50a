/** Real git repositories in temporary folders, for the source tests. */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** Environment for the test's own git commands: no system config, fixed identity. */
export const gitTestEnv: NodeJS.ProcessEnv = {
  ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GIT_'))),
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'Ada Lovelace',
  GIT_AUTHOR_EMAIL: 'ada@example.com',
  GIT_COMMITTER_NAME: 'Ada Lovelace',
  GIT_COMMITTER_EMAIL: 'ada@example.com',
  LC_ALL: 'C',
};

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', args, {
    cwd,
    env: gitTestEnv,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();
}

/** Temporary folders removed by `cleanup()` (call it in `after`). */
export class TempDirs {
  private readonly dirs: string[] = [];

  make(prefix = 'sluice-source-'): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    this.dirs.push(dir);
    return dir;
  }

  cleanup(): void {
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}

/** File content, `null` to delete, or `{ symlink }` for a symbolic link. */
export type FileSpec = string | Buffer | null | { symlink: string };

/** A working repository whose commits can be pushed to a bare "remote". */
export class WorkRepo {
  constructor(readonly dir: string) {}

  static init(dir: string, branch = 'main'): WorkRepo {
    git(dir, 'init', '-q', '-b', branch);
    return new WorkRepo(dir);
  }

  write(files: Record<string, FileSpec>): void {
    for (const [path, spec] of Object.entries(files)) {
      const full = join(this.dir, path);
      rmSync(full, { force: true, recursive: true });
      if (spec === null) continue;
      mkdirSync(dirname(full), { recursive: true });
      if (typeof spec === 'object' && !Buffer.isBuffer(spec)) symlinkSync(spec.symlink, full);
      else writeFileSync(full, spec);
    }
  }

  /** Writes the files, commits everything and returns the new sha. */
  commit(files: Record<string, FileSpec>, message = 'change'): string {
    this.write(files);
    git(this.dir, 'add', '-A');
    git(this.dir, 'commit', '-q', '--allow-empty', '-m', message);
    return this.head();
  }

  head(rev = 'HEAD'): string {
    return git(this.dir, 'rev-parse', rev);
  }

  checkout(branch: string, create = false): void {
    git(this.dir, 'checkout', '-q', ...(create ? ['-b'] : []), branch);
  }

  push(remote: string, refspec: string, force = false): void {
    git(this.dir, 'push', '-q', ...(force ? ['--force'] : []), remote, refspec);
  }

  unlink(path: string): void {
    unlinkSync(join(this.dir, path));
  }
}

/** A bare repository `<base>/<name>.git` plus a working clone that pushes to it. */
export function makeRemote(
  tmp: TempDirs,
  base: string,
  name = 'repo',
): { bare: string; work: WorkRepo } {
  const bare = join(base, `${name}.git`);
  mkdirSync(bare, { recursive: true });
  git(bare, 'init', '-q', '--bare', '-b', 'main');
  const work = WorkRepo.init(tmp.make('sluice-work-'));
  git(work.dir, 'remote', 'add', 'origin', bare);
  return { bare, work };
}
