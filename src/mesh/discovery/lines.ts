/**
 * Newline-delimited JSON framing with a size limit: feeds chunks in, hands complete lines out.
 * A line longer than the limit is an error at the moment it passes the limit, so a peer cannot
 * make the reader buffer more than `maxBytes` (plus one chunk).
 */
export class LineDecoder {
  private parts: Buffer[] = [];
  private size = 0;

  constructor(private readonly maxBytes: number) {}

  /** Returns the complete lines in `chunk`, or `null` once a line exceeds the limit. */
  push(chunk: Buffer): string[] | null {
    const out: string[] = [];
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) break;
      const piece = chunk.subarray(start, nl);
      if (this.size + piece.length > this.maxBytes) return null;
      const line =
        this.size === 0
          ? piece.toString('utf8')
          : Buffer.concat([...this.parts, piece]).toString('utf8');
      this.parts = [];
      this.size = 0;
      if (line.trim() !== '') out.push(line);
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.size += rest.length;
      if (this.size > this.maxBytes) return null;
      this.parts.push(Buffer.from(rest));
    }
    return out;
  }
}
