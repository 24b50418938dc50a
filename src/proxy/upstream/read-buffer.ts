/**
 * Upstream connections read into a buffer of their own (net.connect's `onread`), reused from
 * one read to the next, instead of Node allocating (and later freeing) a fresh 64 KiB
 * ArrayBuffer for every read. On the proxy benchmark this is ~10% of the proxy's CPU per
 * request (malloc, ArrayBuffer bookkeeping and GC work per read).
 *
 * The rule that makes reuse safe: the bytes of a read are valid only while the read is being
 * dispatched. Whoever keeps a reference beyond that (a socket write that could not complete
 * at once keeps the buffer queued; an HTTP/2 stream always does) calls `keepRead()` during
 * the dispatch, and the connection reads into a fresh buffer from then on. Everything runs on
 * one thread and a read is dispatched synchronously, so "the read being dispatched" is
 * well-defined.
 */

/** Bytes per read buffer: one TLS record, and most responses in one read. */
export const READ_BUFFER_BYTES = 16 * 1024;

/** The reusable buffer of one connection. */
export class ReadBuffer {
  private buf: Buffer | null = null;
  private kept = false;

  /** The buffer the next read goes into (called by the socket after every read). */
  next(): Buffer {
    if (this.buf === null || this.kept) {
      // allocUnsafeSlow: a buffer of its own, not a slice of the shared pool.
      this.buf = Buffer.allocUnsafeSlow(READ_BUFFER_BYTES);
      this.kept = false;
    }
    return this.buf;
  }

  /** The buffer must not be reused (marks it kept). */
  keep(): void {
    this.kept = true;
  }
}

let current: ReadBuffer | null = null;

/**
 * Marks the start of the dispatch of one read into `rb`: `keepRead()` calls until
 * `endDispatch(outer)` refer to it. Returns the dispatch this one nests in, for endDispatch.
 */
export function beginDispatch(rb: ReadBuffer): ReadBuffer | null {
  const outer = current;
  current = rb;
  return outer;
}

/** Ends the dispatch begun by `beginDispatch()`, which returned `outer`. */
export function endDispatch(outer: ReadBuffer | null): void {
  current = outer;
}

/**
 * Called by a consumer that keeps a reference to bytes it was given (a queued write): when
 * they came from a reused read buffer, that buffer is given up to them. A no-op outside the
 * dispatch of an upstream read.
 */
export function keepRead(): void {
  current?.keep();
}
