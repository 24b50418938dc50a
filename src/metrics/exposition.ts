/**
 * A parser for the Prometheus text exposition format (version 0.0.4), as the sidecars'
 * admin port serves it on /stats/prometheus. Small and strict: a malformed line fails the
 * whole scrape (as Prometheus does), with its line number, so a target's last good samples
 * are kept instead of half a scrape.
 *
 * No npm package fits: prom-client only writes the format, and parse-prometheus-text-format
 * merges the buckets of every labelled histogram series into one.
 */
import { MetricsError } from './errors.js';

export interface ExpositionSample {
  name: string;
  /** The series' identity as written: the name and the label text `{...}` verbatim. */
  key: string;
  /** The labels; empty (and frozen) when `known(key)` said the caller has them already. */
  labels: Readonly<Record<string, string>>;
  value: number;
}

export interface ParseOptions {
  /** Keep only samples of these metric names (others are skipped without being parsed). */
  names?: ReadonlySet<string>;
  /**
   * Series the caller already knows by key: their labels are not parsed again (a scrape
   * repeats the same series every time, and label parsing is most of the cost).
   */
  known?: (key: string) => boolean;
}

const NO_LABELS: Readonly<Record<string, string>> = Object.freeze({});

const NUMBER = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
const INTEGER = /^-?\d+$/;

function isNameStart(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 58; // A-Z a-z _ :
}
function isNameChar(c: number): boolean {
  return isNameStart(c) || (c >= 48 && c <= 57);
}

/** Parses a sample value: a decimal float, `+Inf`, `-Inf`, `Inf` or `NaN` (any case). */
export function parseSampleValue(token: string): number | undefined {
  const lower = token.toLowerCase();
  if (lower === '+inf' || lower === 'inf') return Infinity;
  if (lower === '-inf') return -Infinity;
  if (lower === 'nan') return NaN;
  return NUMBER.test(token) ? Number(token) : undefined;
}

/**
 * The samples of an exposition, in order. Throws MetricsError SLUICE_METRICS_BAD_EXPOSITION
 * naming the first malformed line.
 */
export function parseExposition(text: string, opts: ParseOptions = {}): ExpositionSample[] {
  const out: ExpositionSample[] = [];
  let lineNo = 0;
  let pos = 0;
  while (pos <= text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    lineNo++;
    let line = text.slice(pos, end);
    pos = end + 1;
    if (line.endsWith('\r')) line = line.slice(0, -1);
    const sample = parseLine(line, opts, lineNo);
    if (sample) out.push(sample);
    if (end === text.length) break;
  }
  return out;
}

function fail(lineNo: number, line: string, why: string): never {
  const shown = line.length > 120 ? `${line.slice(0, 120)}...` : line;
  throw new MetricsError('SLUICE_METRICS_BAD_EXPOSITION', `line ${lineNo}: ${why}: ${shown}`);
}

function parseLine(line: string, opts: ParseOptions, lineNo: number): ExpositionSample | undefined {
  let i = 0;
  const n = line.length;
  while (i < n && (line[i] === ' ' || line[i] === '\t')) i++;
  if (i === n || line[i] === '#') return undefined;
  const nameStart = i;
  if (!isNameStart(line.charCodeAt(i))) fail(lineNo, line, 'expected a metric name');
  while (i < n && isNameChar(line.charCodeAt(i))) i++;
  const name = line.slice(nameStart, i);
  if (opts.names && !opts.names.has(name)) return undefined;
  let labels: Readonly<Record<string, string>> = NO_LABELS;
  let key = name;
  if (line[i] === '{') {
    // The label set ends at the line's last '}': a value or a timestamp holds none.
    const close = line.lastIndexOf('}');
    if (close < i) fail(lineNo, line, 'unterminated label set');
    key = name + line.slice(i, close + 1);
    if (opts.known?.(key)) {
      i = close + 1;
    } else {
      const parsed: Record<string, string> = {};
      i = parseLabels(line, i, parsed, lineNo);
      if (i !== close + 1) fail(lineNo, line, 'unexpected text after the labels');
      labels = parsed;
    }
  }
  if (line[i] !== ' ' && line[i] !== '\t') fail(lineNo, line, 'expected a space before the value');
  const rest = line
    .slice(i)
    .trim()
    .split(/[ \t]+/);
  const value = rest[0] === undefined ? undefined : parseSampleValue(rest[0]);
  if (value === undefined) fail(lineNo, line, 'expected a number value');
  if (rest.length > 2 || (rest.length === 2 && !INTEGER.test(rest[1] as string)))
    fail(lineNo, line, 'unexpected text after the value');
  return { name, key, labels, value };
}

/** Parses `{a="b",...}` from the `{` at `start` into `labels`; returns the index after `}`. */
function parseLabels(
  line: string,
  start: number,
  labels: Record<string, string>,
  lineNo: number,
): number {
  const n = line.length;
  let i = start + 1;
  for (;;) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (line[i] === '}') return i + 1;
    const ls = i;
    if (i >= n || !isNameStart(line.charCodeAt(i)) || line[i] === ':')
      fail(lineNo, line, 'expected a label name');
    while (i < n && isNameChar(line.charCodeAt(i)) && line[i] !== ':') i++;
    const label = line.slice(ls, i);
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (line[i] !== '=') fail(lineNo, line, `expected = after label ${label}`);
    i++;
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (line[i] !== '"') fail(lineNo, line, `expected a quoted value for label ${label}`);
    i++;
    let value = '';
    let chunk = i;
    for (;;) {
      if (i >= n) fail(lineNo, line, `unterminated value of label ${label}`);
      const c = line[i];
      if (c === '"') break;
      if (c === '\\') {
        value += line.slice(chunk, i);
        const e = line[i + 1];
        if (e === '\\') value += '\\';
        else if (e === '"') value += '"';
        else if (e === 'n') value += '\n';
        else fail(lineNo, line, `invalid escape in label ${label}`);
        i += 2;
        chunk = i;
        continue;
      }
      i++;
    }
    value += line.slice(chunk, i);
    i++;
    if (Object.prototype.hasOwnProperty.call(labels, label))
      fail(lineNo, line, `duplicate label ${label}`);
    labels[label] = value;
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (line[i] === ',') {
      i++;
      continue;
    }
    if (line[i] === '}') return i + 1;
    fail(lineNo, line, 'expected , or } after a label');
  }
}
