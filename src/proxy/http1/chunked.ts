/**
 * Incremental parser of the chunked transfer coding (RFC 9112 7.1). The proxy forwards
 * chunked bodies as they are on the wire, so the parser mostly finds where a body ends; it
 * can also report the payload spans, for a peer that cannot take chunked (HTTP/1.0).
 */

const S_SIZE = 0;
const S_SIZE_EXT = 1;
const S_SIZE_LF = 2;
const S_DATA = 3;
const S_DATA_CR = 4;
const S_DATA_LF = 5;
const S_TRAILER_START = 6;
const S_TRAILER_LINE = 7;
const S_TRAILER_LF = 8;
const S_END_LF = 9;
const S_DONE = 10;

/** Receives payload spans when decoding. */
export interface ChunkSink {
  onChunkData(buf: Buffer, start: number, end: number): void;
  /** Each trailer field (name lower-cased), when the sink wants them (gRPC status). */
  onTrailer?(name: string, value: string): void;
}

export class ChunkedError extends Error {}

export class ChunkedParser {
  private state = S_SIZE;
  private size = 0;
  private sizeDigits = 0;
  private remaining = 0;
  /** Chunk data bytes (the message body without its framing) consumed since reset. */
  dataBytes = 0;
  /** Bytes of trailer lines seen, bounded against abuse. */
  private trailerBytes = 0;
  private readonly sink: ChunkSink | null;
  /** The trailer line being read, kept only for a sink with onTrailer. */
  private line: string | null;

  constructor(sink: ChunkSink | null = null) {
    this.sink = sink;
    this.line = sink?.onTrailer !== undefined ? '' : null;
  }

  get done(): boolean {
    return this.state === S_DONE;
  }

  reset(): void {
    this.state = S_SIZE;
    this.size = 0;
    this.sizeDigits = 0;
    this.remaining = 0;
    this.trailerBytes = 0;
    this.dataBytes = 0;
  }

  /**
   * Consumes bytes from `buf[start..]` and returns the index just past what belongs to this
   * body (buf.length unless the body ended inside the buffer). Throws ChunkedError.
   */
  feed(buf: Buffer, start: number): number {
    let i = start;
    const len = buf.length;
    while (i < len) {
      switch (this.state) {
        case S_DATA: {
          const n = Math.min(this.remaining, len - i);
          if (this.sink !== null) this.sink.onChunkData(buf, i, i + n);
          this.remaining -= n;
          this.dataBytes += n;
          i += n;
          if (this.remaining === 0) this.state = S_DATA_CR;
          continue;
        }
        case S_SIZE: {
          const c = buf[i] as number;
          let d = -1;
          if (c >= 0x30 && c <= 0x39) d = c - 0x30;
          else if (c >= 0x61 && c <= 0x66) d = c - 0x57;
          else if (c >= 0x41 && c <= 0x46) d = c - 0x37;
          if (d >= 0) {
            if (++this.sizeDigits > 12) throw new ChunkedError('chunk size too large');
            this.size = this.size * 16 + d;
          } else if (this.sizeDigits === 0) {
            throw new ChunkedError('invalid chunk size');
          } else if (c === 0x0d) {
            this.state = S_SIZE_LF;
          } else if (c === 0x3b || c === 0x20 || c === 0x09) {
            this.state = S_SIZE_EXT;
          } else {
            throw new ChunkedError('invalid chunk size');
          }
          break;
        }
        case S_SIZE_EXT: {
          const c = buf[i] as number;
          if (c === 0x0d) this.state = S_SIZE_LF;
          else if (c === 0x0a) throw new ChunkedError('bare LF in chunk extension');
          break;
        }
        case S_SIZE_LF:
          if (buf[i] !== 0x0a) throw new ChunkedError('expected LF after chunk size');
          if (this.size === 0) {
            this.state = S_TRAILER_START;
          } else {
            this.remaining = this.size;
            this.state = S_DATA;
          }
          this.size = 0;
          this.sizeDigits = 0;
          break;
        case S_DATA_CR:
          if (buf[i] !== 0x0d) throw new ChunkedError('expected CRLF after chunk data');
          this.state = S_DATA_LF;
          break;
        case S_DATA_LF:
          if (buf[i] !== 0x0a) throw new ChunkedError('expected CRLF after chunk data');
          this.state = S_SIZE;
          break;
        case S_TRAILER_START:
          if (buf[i] === 0x0d) this.state = S_END_LF;
          else {
            this.state = S_TRAILER_LINE;
            if (this.line !== null) this.line = String.fromCharCode(buf[i] as number);
          }
          break;
        case S_TRAILER_LINE:
          if (++this.trailerBytes > 65536) throw new ChunkedError('trailers too large');
          if (buf[i] === 0x0d) this.state = S_TRAILER_LF;
          else if (this.line !== null) this.line += String.fromCharCode(buf[i] as number);
          break;
        case S_TRAILER_LF:
          if (buf[i] !== 0x0a) throw new ChunkedError('expected LF in trailers');
          this.state = S_TRAILER_START;
          if (this.line !== null) {
            const colon = this.line.indexOf(':');
            if (colon > 0) {
              const name = this.line.slice(0, colon).trim().toLowerCase();
              (this.sink as ChunkSink).onTrailer?.(name, this.line.slice(colon + 1).trim());
            }
            this.line = '';
          }
          break;
        case S_END_LF:
          if (buf[i] !== 0x0a) throw new ChunkedError('expected LF at end of chunked body');
          this.state = S_DONE;
          return i + 1;
        default:
          return i;
      }
      i++;
    }
    return i;
  }
}
