/**
 * The state directory: what is applied (revision and objects), the event log, and the lock
 * that keeps a second controller out. Crash-safe: every file is replaced atomically (write a
 * temporary file, fsync, rename, fsync the folder), so `kill -9` at any moment leaves a state
 * that loads; the event log is append-only JSON lines whose torn last line is dropped on load.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
  constants,
} from 'node:fs';
import { join } from 'node:path';
import { ControllerError } from './errors.js';
import type { AppliedObject } from './plan.js';

export interface AppliedState {
  /** The revision last applied (`main@sha1:…`), or undefined before the first sync. */
  revision?: string;
  /** The source's full record of that revision (commit message, author, time). */
  revisionInfo?: unknown;
  appliedAt?: string;
  objects: AppliedObject[];
}

export interface StoredEvent {
  seq: number;
  time: string;
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
  object?: { kind: string; namespace?: string; name: string };
  revision?: string;
  code?: string;
}

export interface StateStoreOptions {
  dir: string;
  /** Events kept on disk and in memory; older ones are dropped (default 5,000). */
  maxEvents?: number;
  /** The process id written to the lock (default process.pid). */
  pid?: number;
  /** Whether a pid is alive (default: signal 0). Injected for tests. */
  isAlive?: (pid: number) => boolean;
}

const LOCK = 'controller.lock';
const APPLIED = 'applied.json';
const EVENTS = 'events.jsonl';

function defaultIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class StateStore {
  readonly dir: string;
  private readonly maxEvents: number;
  private readonly pid: number;
  private events: StoredEvent[] = [];
  private seq = 0;
  private eventsOnDisk = 0;
  private locked = false;

  private constructor(opts: StateStoreOptions) {
    this.dir = opts.dir;
    this.maxEvents = opts.maxEvents ?? 5000;
    this.pid = opts.pid ?? process.pid;
  }

  /** Opens (creating) the state directory and takes its lock; throws SLUICE_STATE_LOCKED. */
  static open(opts: StateStoreOptions): StateStore {
    const store = new StateStore(opts);
    try {
      mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw new ControllerError(
        'SLUICE_STATE_WRITE',
        `cannot create state directory ${opts.dir}: ${(err as Error).message}`,
      );
    }
    store.lock(opts.isAlive ?? defaultIsAlive);
    store.cleanTemporaryFiles();
    store.loadEvents();
    return store;
  }

  private lock(isAlive: (pid: number) => boolean): void {
    const path = join(this.dir, LOCK);
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(path, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
        writeSync(fd, JSON.stringify({ pid: this.pid, since: new Date().toISOString() }));
        fsyncSync(fd);
        closeSync(fd);
        this.locked = true;
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
          throw new ControllerError(
            'SLUICE_STATE_WRITE',
            `cannot lock state directory ${this.dir}: ${(err as Error).message}`,
          );
        }
      }
      let holder: { pid?: number; since?: string } = {};
      try {
        holder = JSON.parse(readFileSync(path, 'utf8')) as typeof holder;
      } catch {
        // A lock torn by a crash between create and write: stale.
      }
      if (typeof holder.pid === 'number' && holder.pid !== this.pid && isAlive(holder.pid)) {
        throw new ControllerError(
          'SLUICE_STATE_LOCKED',
          `state directory ${this.dir} is in use by another sluice controller (pid ${holder.pid}, since ${holder.since ?? 'unknown'}); stop it or use --state-dir`,
          409,
        );
      }
      rmSync(path, { force: true }); // stale lock of a controller that died
    }
    throw new ControllerError('SLUICE_STATE_LOCKED', `could not lock state directory ${this.dir}`);
  }

  /** Releases the lock (on clean shutdown). */
  close(): void {
    if (!this.locked) return;
    rmSync(join(this.dir, LOCK), { force: true });
    this.locked = false;
  }

  private cleanTemporaryFiles(): void {
    for (const name of readdirSync(this.dir))
      if (name.includes('.tmp-')) rmSync(join(this.dir, name), { force: true });
  }

  /** Writes a file atomically: after a crash it holds either the old or the new content. */
  writeAtomic(name: string, content: string, mode = 0o600): void {
    const path = join(this.dir, name);
    const tmp = `${path}.tmp-${this.pid}`;
    try {
      const fd = openSync(tmp, 'w', mode);
      try {
        writeSync(fd, content);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
      const dirFd = openSync(this.dir, 'r');
      try {
        fsyncSync(dirFd);
      } finally {
        closeSync(dirFd);
      }
    } catch (err) {
      rmSync(tmp, { force: true });
      throw new ControllerError(
        'SLUICE_STATE_WRITE',
        `cannot write ${path}: ${(err as Error).message}`,
      );
    }
  }

  /** Reads a JSON file of the state directory; a missing file is `undefined`, a corrupt one is set aside. */
  readJson<T>(name: string): T | undefined {
    const path = join(this.dir, name);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new ControllerError(
        'SLUICE_STATE_UNREADABLE',
        `cannot read ${path}: ${(err as Error).message}`,
      );
    }
    try {
      return JSON.parse(text) as T;
    } catch {
      const aside = `${path}.corrupt-${Date.now()}`;
      renameSync(path, aside);
      this.appendEvent({
        type: 'Warning',
        reason: 'StateUnreadable',
        code: 'SLUICE_STATE_UNREADABLE',
        message: `${name} did not parse; moved to ${aside}`,
      });
      return undefined;
    }
  }

  loadApplied(): AppliedState {
    return this.readJson<AppliedState>(APPLIED) ?? { objects: [] };
  }

  saveApplied(state: AppliedState): void {
    this.writeAtomic(APPLIED, JSON.stringify(state));
  }

  private loadEvents(): void {
    let text = '';
    try {
      text = readFileSync(join(this.dir, EVENTS), 'utf8');
    } catch {
      return;
    }
    const events: StoredEvent[] = [];
    for (const line of text.split('\n')) {
      if (!line) continue;
      try {
        events.push(JSON.parse(line) as StoredEvent);
      } catch {
        // A line torn by a crash mid-append: dropped.
      }
    }
    this.events = events.slice(-this.maxEvents);
    this.seq = events.length ? (events[events.length - 1] as StoredEvent).seq : 0;
    this.eventsOnDisk = events.length;
    if (events.length !== this.events.length || (text.length > 0 && !text.endsWith('\n')))
      this.compactEvents();
  }

  private compactEvents(): void {
    this.writeAtomic(EVENTS, this.events.map((e) => JSON.stringify(e) + '\n').join(''));
    this.eventsOnDisk = this.events.length;
  }

  /** Records an event (appended to disk; the log is compacted when it doubles its bound). */
  appendEvent(e: Omit<StoredEvent, 'seq' | 'time'> & { time?: string }): StoredEvent {
    const event: StoredEvent = {
      seq: ++this.seq,
      time: e.time ?? new Date().toISOString(),
      ...e,
    } as StoredEvent;
    this.events.push(event);
    if (this.events.length > this.maxEvents)
      this.events.splice(0, this.events.length - this.maxEvents);
    if (this.eventsOnDisk + 1 > this.maxEvents * 2) {
      this.compactEvents();
    } else {
      try {
        writeFileSync(join(this.dir, EVENTS), JSON.stringify(event) + '\n', {
          flag: 'a',
          mode: 0o600,
        });
        this.eventsOnDisk++;
      } catch (err) {
        throw new ControllerError(
          'SLUICE_STATE_WRITE',
          `cannot append to the event log: ${(err as Error).message}`,
        );
      }
    }
    return event;
  }

  /** Events with `seq` greater than `sinceSeq`, or newer than an ISO time. */
  listEvents(since?: { seq?: number; time?: string }, limit = 1000): StoredEvent[] {
    let list = this.events;
    if (since?.seq !== undefined) list = list.filter((e) => e.seq > (since.seq as number));
    if (since?.time !== undefined) list = list.filter((e) => e.time > (since.time as string));
    return list.slice(-limit);
  }
}
