import { createHash } from 'node:crypto';

/** A short content hash (SHA-256, 16 hex digits): equal content, equal hash, every run. */
export function contentHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
