/**
 * A process's output kept on disk, bounded: appended to `<file>`, which is rotated to
 * `<file>.1` (replacing the previous one) when it would grow past `maxBytes`. The last lines
 * are also kept in memory for status messages (a crash-looping container's log tail).
 */
import { closeSync, mkdirSync, openSync, renameSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

export class RotatingLog {
  private fd: number | null = null;
  private size = 0;
  private readonly tailLines: string[] = [];
  private partial = '';

  constructor(
    readonly file: string,
    private readonly maxBytes: number,
    private readonly tailMax = 20,
  ) {}

  /** Appends a chunk; I/O errors are swallowed (a full disk must not stop the workload). */
  write(chunk: Buffer | string): void {
    const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.remember(buf.toString('utf8'));
    try {
      if (this.fd === null) this.open();
      if (this.size > 0 && this.size + buf.length > this.maxBytes) this.rotate();
      const slice = buf.length > this.maxBytes ? buf.subarray(buf.length - this.maxBytes) : buf;
      writeSync(this.fd as number, slice);
      this.size += slice.length;
    } catch {
      // keep running without the file
    }
  }

  /** The last lines written (at most `tailMax`), a line still being written included. */
  tail(): string[] {
    return this.partial === '' ? [...this.tailLines] : [...this.tailLines, this.partial];
  }

  close(): void {
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        // already closed
      }
      this.fd = null;
    }
  }

  private open(): void {
    mkdirSync(dirname(this.file), { recursive: true });
    this.fd = openSync(this.file, 'a');
    this.size = statSync(this.file).size;
  }

  private rotate(): void {
    this.close();
    renameSync(this.file, `${this.file}.1`);
    this.open();
  }

  private remember(text: string): void {
    const parts = (this.partial + text).split('\n');
    this.partial = (parts.pop() as string).slice(-2000);
    for (const line of parts) {
      this.tailLines.push(line.length > 2000 ? line.slice(0, 2000) + '…' : line);
      if (this.tailLines.length > this.tailMax) this.tailLines.shift();
    }
  }
}
