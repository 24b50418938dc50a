/**
 * YAML parsing with source positions. Pure: takes a file's path and bytes, returns the
 * documents that are objects (with a way to find the line and column of any path inside
 * them) and the diagnostics for everything else.
 */
import {
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  Scalar,
  visit,
  type Document,
  type Node,
} from 'yaml';
import { CORE_SCHEMA, loadAll } from 'js-yaml';
import type { Diagnostic } from './diagnostic.js';

export const MAX_FILE_BYTES = 5 * 1024 * 1024;
export const MAX_DOCUMENTS = 10_000;

export interface Position {
  line: number;
  col: number;
}

/** One YAML document that is a mapping, as parsed. */
export interface ParsedDocument {
  file: string;
  value: Record<string, unknown>;
  /** Position of the document's first content. */
  position(): Position;
  /** Line and column of the value at `path`, or of the nearest ancestor that exists. */
  locate(path: readonly (string | number)[], which?: 'key' | 'value'): Position;
}

export interface ParseResult {
  documents: ParsedDocument[];
  diagnostics: Diagnostic[];
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses a file's bytes; never throws. */
export function parseFile(file: string, content: Buffer | string): ParseResult {
  const diagnostics: Diagnostic[] = [];
  const fileDiag = (d: Omit<Diagnostic, 'file' | 'path' | 'line' | 'col'> & Partial<Position>) =>
    diagnostics.push({ file, path: '', line: d.line ?? 0, col: d.col ?? 0, ...d });

  let text: string;
  if (typeof content === 'string') {
    text = content;
  } else {
    if (content.length > MAX_FILE_BYTES) {
      fileDiag({
        severity: 'error',
        code: 'SLUICE_FILE_TOO_LARGE',
        message: `file is ${content.length} bytes, over the limit of ${MAX_FILE_BYTES} bytes (5 MiB); it was not loaded`,
      });
      return { documents: [], diagnostics };
    }
    try {
      text = utf8.decode(content);
    } catch {
      const offset = invalidSequenceStart(content, firstInvalidUtf8(content));
      const before = content.subarray(0, offset).toString('utf8');
      const lines = before.split('\n');
      fileDiag({
        severity: 'error',
        code: 'SLUICE_FILE_NOT_UTF8',
        message: `file is not valid UTF-8 (first bad byte 0x${(content[offset] ?? 0).toString(16).padStart(2, '0')} at byte ${offset}); it was not loaded`,
        line: lines.length,
        col: (lines[lines.length - 1]?.length ?? 0) + 1,
      });
      return { documents: [], diagnostics };
    }
  }
  if (text.length > MAX_FILE_BYTES) {
    fileDiag({
      severity: 'error',
      code: 'SLUICE_FILE_TOO_LARGE',
      message: `file is over the limit of ${MAX_FILE_BYTES} bytes (5 MiB); it was not loaded`,
    });
    return { documents: [], diagnostics };
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return parseFast(file, text) ?? parseFull(file, text, diagnostics);
}

/**
 * The fast path: js-yaml reads the values (about 20 times faster than building the `yaml`
 * package's syntax tree), and positions are computed only when a diagnostic asks for one,
 * by parsing the file once more with `yaml`. Anything unusual (a syntax error, duplicate
 * keys, anchors and aliases, tags, documents that are not mappings, the flow-list colon
 * form below) returns undefined, and the full path, which is the reference, takes over.
 */
export function parseFast(file: string, text: string): ParseResult | undefined {
  if (/:[\],]/.test(text)) return undefined;
  let values: unknown[];
  try {
    values = loadAll(text, { schema: CORE_SCHEMA, maxAliases: 0 });
  } catch {
    return undefined;
  }
  if (values.length > MAX_DOCUMENTS) return undefined;
  let full: Document.Parsed[] | undefined;
  let lineCounter: LineCounter | undefined;
  const mappingDoc = (k: number): Node | undefined => {
    if (!full) {
      lineCounter = new LineCounter();
      const docs = parseAllDocuments(text, { lineCounter, uniqueKeys: true, prettyErrors: false });
      full = (Array.isArray(docs) ? docs : [docs]).filter((d) =>
        isMap(d.contents),
      ) as Document.Parsed[];
    }
    return full[k]?.contents ?? undefined;
  };
  const documents: ParsedDocument[] = [];
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (value === null || value === undefined) {
      if (i === 0 || i === values.length - 1) continue; // a leading or trailing `---`
      return undefined; // an empty document in between: the full path reports it
    }
    if (typeof value !== 'object' || Array.isArray(value)) return undefined;
    const k = documents.length;
    const locate = (
      path: readonly (string | number)[],
      which: 'key' | 'value' = 'value',
    ): Position => {
      const root = mappingDoc(k);
      if (!root || !lineCounter) return { line: 1, col: 1 };
      return lineCounter.linePos(offsetOf(root, path, which));
    };
    documents.push({
      file,
      value: value as Record<string, unknown>,
      position: () => locate([]),
      locate,
    });
  }
  return { documents, diagnostics: [] };
}

/** The full path: the `yaml` package's syntax tree, with a coded diagnostic for every problem. */
export function parseFull(file: string, text: string, diagnostics: Diagnostic[] = []): ParseResult {
  const fileDiag = (d: Omit<Diagnostic, 'file' | 'path' | 'line' | 'col'> & Partial<Position>) =>
    diagnostics.push({ file, path: '', line: d.line ?? 0, col: d.col ?? 0, ...d });
  const lineCounter = new LineCounter();
  const pos = (offset: number): Position => lineCounter.linePos(offset);
  let docs: Document.Parsed[];
  try {
    docs = parseAllDocuments(text, {
      lineCounter,
      uniqueKeys: true,
      prettyErrors: false,
    }) as Document.Parsed[];
  } catch (err) {
    fileDiag({
      severity: 'error',
      code: 'SLUICE_YAML_INVALID',
      message: `YAML does not parse: ${String(err)}`,
    });
    return { documents: [], diagnostics };
  }
  if (!Array.isArray(docs)) docs = [docs];

  const documents: ParsedDocument[] = [];
  const count = docs.length;
  // Only files with `x:]` or `x:,` can hold the flow-list form that needs rewriting.
  const mayHaveColonScalars = /:[\],]/.test(text);
  for (let index = 0; index < count; index++) {
    const doc = docs[index] as Document.Parsed;
    if (index >= MAX_DOCUMENTS) {
      const p = pos(doc.range[0]);
      fileDiag({
        severity: 'error',
        code: 'SLUICE_TOO_MANY_DOCUMENTS',
        message: `file has ${count} documents, over the limit of ${MAX_DOCUMENTS}; documents from here on were not loaded`,
        ...p,
      });
      break;
    }
    if (doc.errors.length > 0) {
      // Report the first error only: later ones in the same document are usually its echo.
      for (const e of doc.errors.slice(0, 1)) {
        const p = pos(e.pos[0]);
        const duplicate = e.code === 'DUPLICATE_KEY';
        fileDiag({
          severity: 'error',
          code: duplicate ? 'SLUICE_YAML_DUPLICATE_KEY' : 'SLUICE_YAML_INVALID',
          message: duplicate
            ? `duplicate key: ${firstLine(e.message)}`
            : `YAML syntax: ${firstLine(e.message)}`,
          ...p,
        });
      }
      continue;
    }
    for (const w of doc.warnings) {
      fileDiag({
        severity: 'warning',
        code: 'SLUICE_YAML_WARNING',
        message: firstLine(w.message),
        ...pos(w.pos[0]),
      });
    }
    const contents = doc.contents;
    if (
      contents === null ||
      (isScalar(contents) && (contents.value === null || contents.value === undefined))
    ) {
      // Empty documents (a trailing `---`, a file of comments) are harmless: note them only
      // when they sit between two real documents, where they usually mean a lost object.
      if (index > 0 && index < count - 1) {
        fileDiag({
          severity: 'info',
          code: 'SLUICE_DOCUMENT_EMPTY',
          message: 'empty YAML document',
          ...pos(doc.range[0]),
        });
      }
      continue;
    }
    if (!isMap(contents)) {
      const what = isSeq(contents) ? 'a list' : 'a scalar';
      fileDiag({
        severity: 'error',
        code: 'SLUICE_DOCUMENT_NOT_MAPPING',
        message: `document ${index + 1} is ${what}, not an object with apiVersion and kind`,
        ...pos((contents as Node).range?.[0] ?? doc.range[0]),
      });
      continue;
    }
    if (mayHaveColonScalars) readColonScalarsAsKubectlDoes(doc, text);
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      fileDiag({
        severity: 'error',
        code: 'SLUICE_YAML_INVALID',
        message: `YAML does not load: ${firstLine(err instanceof Error ? err.message : String(err))}`,
        ...pos(doc.range[0]),
      });
      continue;
    }
    const position = pos(contents.range[0]);
    documents.push({
      file,
      value: value as Record<string, unknown>,
      position: () => position,
      locate: (path, which = 'value') => pos(offsetOf(contents, path, which)),
    });
  }
  return { documents, diagnostics };
}

/**
 * In a flow sequence, `[1.2.3.4, 2001:db8::]` reads in YAML 1.2 as a string and the one-pair
 * mapping `{"2001:db8:": null}` (the last `:` before `]` is a key indicator). kubectl's
 * parser (go-yaml) reads a plain scalar ending in `:` there as the string `2001:db8::`, and
 * Istio's own examples rely on it, so sluice reads it the same way.
 */
function readColonScalarsAsKubectlDoes(doc: Document.Parsed, text: string): void {
  visit(doc, {
    Seq(_, seq) {
      if (!seq.flow) return;
      seq.items.forEach((item, i) => {
        if (!isMap(item) || item.items.length !== 1) return;
        const pair = item.items[0];
        if (!isPair(pair) || !isScalar(pair.key) || !isScalar(pair.value)) return;
        const key = pair.key as Scalar;
        const value = pair.value as Scalar;
        if (key.type !== 'PLAIN' || value.value !== null || value.source !== '' || !key.range)
          return;
        const end = key.range[1];
        if (text[end] !== ':') return;
        const next = text[end + 1];
        if (next !== ']' && next !== ',' && next !== undefined) return;
        const scalar = new Scalar(`${String(key.source ?? key.value)}:`);
        scalar.range = [key.range[0], end + 1, end + 1];
        (seq.items as unknown[])[i] = scalar;
      });
    },
  });
}

/** Offset of the node at `path` (or its key), falling back to the deepest ancestor found. */
function offsetOf(root: Node, path: readonly (string | number)[], which: 'key' | 'value'): number {
  let node: unknown = root;
  let offset = root.range?.[0] ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find(
        (p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg),
      );
      if (!pair) return offset;
      const key = pair.key as Node;
      if (last && which === 'key') return key.range?.[0] ?? offset;
      node = pair.value;
      offset = (pair.value as Node | null)?.range?.[0] ?? key.range?.[0] ?? offset;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Node | undefined;
      if (!item) return offset;
      node = item;
      offset = item.range?.[0] ?? offset;
    } else {
      return offset;
    }
  }
  return offset;
}

function firstLine(s: string): string {
  const i = s.indexOf('\n');
  return (i < 0 ? s : s.slice(0, i)).trim();
}

/** Backs up from the byte where decoding failed to the lead byte of its sequence. */
function invalidSequenceStart(buf: Buffer, failedAt: number): number {
  for (let k = 1; k <= 3 && failedAt - k >= 0; k++) {
    const b = buf[failedAt - k] as number;
    if (b >= 0xc0) return failedAt - k;
    if (b < 0x80) break;
  }
  return failedAt;
}

function firstInvalidUtf8(buf: Buffer): number {
  // Binary search for the shortest prefix that fails to decode.
  let lo = 0;
  let hi = buf.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(0, mid + 1), { stream: true });
      lo = mid + 1;
    } catch {
      hi = mid;
    }
  }
  return lo;
}
