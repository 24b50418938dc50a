/**
 * A PromQL evaluator for exactly the query shapes the builtin provider answers: Flagger's
 * Istio checks (request-success-rate, request-duration) and the arithmetic around them.
 * The query is parsed with Prometheus' own Lezer grammar and compiled structurally into a
 * tiny AST; any node outside the subset is rejected as unsupported, never guessed at.
 *
 * The subset: number literals, unary minus, `+ - * /` without matching modifiers,
 * parentheses, `sum` with or without `by (...)`, `rate(selector[range] [offset d])`,
 * `histogram_quantile(φ, ...)`, and label matchers `= != =~ !~`. `rate` and
 * `histogram_quantile` follow Prometheus' algorithms (extrapolated rate with counter resets,
 * linear interpolation within buckets), so answers agree with a Prometheus that scraped the
 * same data at the same times. Pure: the series come from a `SeriesSource`.
 */
import { parser } from '@prometheus-io/lezer-promql';
import type { MetricsErrorCode } from './errors.js';

type SyntaxNode = ReturnType<typeof parser.parse>['topNode'];

export interface LabelMatcher {
  name: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}

/** One stored series: its labels (without the metric name) and samples sorted by time. */
export interface StoredSeries {
  labels: Readonly<Record<string, string>>;
  /** Sample times, ms since the epoch, ascending. */
  t: readonly number[];
  v: readonly number[];
}

export interface SeriesSource {
  /** Metric names the source keeps; a selector for another name is unsupported. */
  readonly names: ReadonlySet<string>;
  /** Every series of `name`; the evaluator applies the matchers and the time range. */
  series(name: string): Iterable<StoredSeries>;
}

export type EvalResult =
  | { kind: 'value'; value: number }
  | { kind: 'empty' }
  | { kind: 'error'; code: MetricsErrorCode; message: string };

export const UNSUPPORTED_MESSAGE =
  'builtin provider cannot evaluate this query; configure Prometheus';

class EvalError extends Error {
  constructor(
    readonly code: MetricsErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const unsupported = (what: string): EvalError =>
  new EvalError('SLUICE_METRICS_UNSUPPORTED_QUERY', `${UNSUPPORTED_MESSAGE} (${what})`);

interface Matcher extends LabelMatcher {
  test: (v: string) => boolean;
}
interface Selector {
  name: string;
  matchers: Matcher[];
}

type Expr =
  | { k: 'num'; v: number }
  | { k: 'neg'; e: Expr }
  | { k: 'bin'; op: '+' | '-' | '*' | '/'; l: Expr; r: Expr }
  | { k: 'sum'; by: string[] | null; e: Expr }
  | { k: 'rate'; sel: Selector; rangeMs: number; offsetMs: number }
  | { k: 'hq'; q: Expr; e: Expr };

interface Sample {
  labels: Record<string, string>;
  v: number;
}
type Value = { kind: 'scalar'; v: number } | { kind: 'vector'; s: Sample[] };

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
  y: 31_536_000_000,
};

/** A PromQL duration (`30s`, `1m`, `1h30m`, `500ms`) in ms, or undefined. */
export function parseDuration(text: string): number | undefined {
  if (!/^(?:\d+(?:ms|s|m|h|d|w|y))+$/.test(text)) return undefined;
  let ms = 0;
  for (const m of text.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g))
    ms += Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
  return ms > 0 ? ms : undefined;
}

function children(node: SyntaxNode): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  for (let c = node.firstChild; c; c = c.nextSibling) if (c.name !== 'LineComment') out.push(c);
  return out;
}

function unquote(raw: string): string {
  const q = raw[0];
  const body = raw.slice(1, -1);
  if (q === '`') return body;
  return body.replace(/\\(.)/g, (_m, c: string) => {
    switch (c) {
      case 'n':
        return '\n';
      case 't':
        return '\t';
      case 'r':
        return '\r';
      case '\\':
      case '"':
      case "'":
        return c;
      default:
        throw unsupported(`string escape \\${c}`);
    }
  });
}

function compileMatcher(name: string, op: string, value: string): Matcher {
  if (op === '=') return { name, op, value, test: (v) => v === value };
  if (op === '!=') return { name, op, value, test: (v) => v !== value };
  let re: RegExp;
  try {
    // Prometheus anchors label regexes at both ends.
    re = new RegExp(`^(?:${value})$`, 's');
  } catch (err) {
    throw new EvalError(
      'SLUICE_METRICS_BAD_QUERY',
      `invalid regular expression ${JSON.stringify(value)} for label ${name}: ${(err as Error).message}`,
    );
  }
  if (op === '=~') return { name, op, value, test: (v) => re.test(v) };
  if (op === '!~') return { name, op, value, test: (v) => !re.test(v) };
  throw unsupported(`match operator ${op}`);
}

class Compiler {
  constructor(private readonly q: string) {}

  text(n: SyntaxNode): string {
    return this.q.slice(n.from, n.to);
  }

  expr(n: SyntaxNode): Expr {
    switch (n.name) {
      case 'PromQL':
      case 'ParenExpr': {
        const c = children(n);
        if (c.length !== 1) throw unsupported(`${n.name} with ${c.length} parts`);
        return this.expr(c[0] as SyntaxNode);
      }
      case 'NumberLiteral':
      case 'NumberDurationLiteral': {
        const t = this.text(n);
        if (!/^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/.test(t))
          throw unsupported(`number literal ${t}`);
        return { k: 'num', v: Number(t) };
      }
      case 'UnaryExpr': {
        const [op, e] = children(n);
        if (!op || !e) throw unsupported('unary expression');
        const inner = this.expr(e);
        return this.text(op) === '-' ? { k: 'neg', e: inner } : inner;
      }
      case 'BinaryExpr':
        return this.binary(n);
      case 'AggregateExpr':
        return this.aggregate(n);
      case 'FunctionCall':
        return this.call(n);
      case 'VectorSelector':
        throw unsupported('an instant selector outside rate()');
      case 'MatrixSelector':
        throw unsupported('a range selector outside rate()');
      default:
        throw unsupported(n.name);
    }
  }

  binary(n: SyntaxNode): Expr {
    const c = children(n);
    if (c.length !== 3)
      throw unsupported('binary operator modifiers (bool, on, ignoring, group_*)');
    const [l, op, r] = c as [SyntaxNode, SyntaxNode, SyntaxNode];
    const sym = this.text(op);
    if (sym !== '+' && sym !== '-' && sym !== '*' && sym !== '/')
      throw unsupported(`binary operator ${sym}`);
    return { k: 'bin', op: sym, l: this.expr(l), r: this.expr(r) };
  }

  aggregate(n: SyntaxNode): Expr {
    let by: string[] | null = null;
    let body: SyntaxNode | undefined;
    for (const c of children(n)) {
      if (c.name === 'AggregateOp') {
        const op = this.text(c);
        if (op !== 'sum') throw unsupported(`aggregation ${op}`);
      } else if (c.name === 'AggregateModifier') {
        const [kind, labels] = children(c);
        if (!kind || kind.name !== 'By') throw unsupported('aggregation without (...)');
        by = labels ? children(labels).map((l) => this.text(l)) : [];
      } else if (c.name === 'FunctionCallBody') {
        body = c;
      } else throw unsupported(c.name);
    }
    const args = body ? children(body) : [];
    if (args.length !== 1) throw unsupported('sum with parameters');
    return { k: 'sum', by, e: this.expr(args[0] as SyntaxNode) };
  }

  call(n: SyntaxNode): Expr {
    const [ident, body] = children(n);
    const fn = ident ? this.text(ident) : '';
    const args = body ? children(body) : [];
    if (fn === 'rate') {
      if (args.length !== 1) throw unsupported('rate with other than one argument');
      return this.rate(args[0] as SyntaxNode);
    }
    if (fn === 'histogram_quantile') {
      if (args.length !== 2) throw unsupported('histogram_quantile with other than two arguments');
      return { k: 'hq', q: this.expr(args[0] as SyntaxNode), e: this.expr(args[1] as SyntaxNode) };
    }
    throw unsupported(`function ${fn}`);
  }

  rate(arg: SyntaxNode): Expr {
    let offsetMs = 0;
    let ms = arg;
    if (arg.name === 'OffsetExpr') {
      const [inner, kw, d] = children(arg);
      if (!inner || !kw || kw.name !== 'Offset' || !d) throw unsupported('offset expression');
      const text = this.text(d);
      const neg = text.startsWith('-');
      const dur = parseDuration(neg ? text.slice(1) : text);
      if (dur === undefined) throw unsupported(`offset ${text}`);
      offsetMs = neg ? -dur : dur;
      ms = inner;
    }
    if (ms.name !== 'MatrixSelector')
      throw unsupported('rate over something other than a range selector');
    const [vs, range] = children(ms);
    if (!vs || vs.name !== 'VectorSelector' || !range) throw unsupported('range selector');
    const rangeMs = parseDuration(this.text(range));
    if (rangeMs === undefined) throw unsupported(`range ${this.text(range)}`);
    return { k: 'rate', sel: this.selector(vs), rangeMs, offsetMs };
  }

  selector(vs: SyntaxNode): Selector {
    let name: string | undefined;
    const matchers: Matcher[] = [];
    for (const c of children(vs)) {
      if (c.name === 'Identifier') name = this.text(c);
      else if (c.name === 'LabelMatchers') {
        for (const m of children(c)) {
          if (m.name !== 'UnquotedLabelMatcher') throw unsupported(m.name);
          const [ln, op, sl] = children(m);
          if (!ln || !op || !sl || sl.name !== 'StringLiteral') throw unsupported('label matcher');
          const label = this.text(ln);
          const value = unquote(this.text(sl));
          const sym = this.text(op);
          if (label === '__name__' && sym === '=') {
            if (name !== undefined && name !== value) throw unsupported('two metric names');
            name = value;
          } else matchers.push(compileMatcher(label, sym, value));
        }
      } else throw unsupported(c.name);
    }
    if (name === undefined) throw unsupported('a selector without a metric name');
    return { name, matchers };
  }
}

/** Compiles a query; throws EvalError (bad or unsupported). */
function compile(query: string): Expr {
  const tree = parser.parse(query);
  let bad = -1;
  tree.iterate({
    enter(node) {
      if (bad >= 0) return false;
      if (node.type.isError) {
        bad = node.from;
        return false;
      }
      return undefined;
    },
  });
  if (bad >= 0 || query.trim() === '')
    throw new EvalError(
      'SLUICE_METRICS_BAD_QUERY',
      `PromQL syntax error at offset ${Math.max(bad, 0)}`,
    );
  return new Compiler(query).expr(tree.topNode);
}

/**
 * Prometheus' extrapolated rate over samples inside [start, end] (seconds of the range in
 * `rangeSec`); undefined with fewer than two samples, as Prometheus drops such series.
 */
export function extrapolatedRate(
  t: readonly number[],
  v: readonly number[],
  start: number,
  end: number,
  rangeSec: number,
): number | undefined {
  let lo = 0;
  while (lo < t.length && (t[lo] as number) < start) lo++;
  let hi = t.length - 1;
  while (hi >= lo && (t[hi] as number) > end) hi--;
  const n = hi - lo + 1;
  if (n < 2) return undefined;
  const firstT = t[lo] as number;
  const lastT = t[hi] as number;
  const firstV = v[lo] as number;
  let result = (v[hi] as number) - firstV;
  let prev = firstV;
  for (let i = lo + 1; i <= hi; i++) {
    const x = v[i] as number;
    if (x < prev) result += prev; // counter reset
    prev = x;
  }
  let durationToStart = (firstT - start) / 1000;
  const durationToEnd = (end - lastT) / 1000;
  const sampled = (lastT - firstT) / 1000;
  const avg = sampled / (n - 1);
  if (result > 0 && firstV >= 0) {
    const durationToZero = sampled * (firstV / result);
    if (durationToZero < durationToStart) durationToStart = durationToZero;
  }
  const threshold = avg * 1.1;
  let interval = sampled;
  interval += durationToStart < threshold ? durationToStart : avg / 2;
  interval += durationToEnd < threshold ? durationToEnd : avg / 2;
  return (result * (interval / sampled)) / rangeSec;
}

/** Prometheus' bucketQuantile: `buckets` are (upper bound, cumulative count) pairs. */
export function bucketQuantile(q: number, input: { le: number; count: number }[]): number {
  if (Number.isNaN(q)) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  const sorted = [...input].sort((a, b) => a.le - b.le);
  const last = sorted[sorted.length - 1];
  if (!last || last.le !== Infinity) return NaN;
  // Coalesce equal bounds, then force monotonic counts (rates of separate series jitter).
  const buckets: { le: number; count: number }[] = [];
  for (const b of sorted) {
    const prev = buckets[buckets.length - 1];
    if (prev && prev.le === b.le) prev.count += b.count;
    else buckets.push({ ...b });
  }
  let max = -Infinity;
  for (const b of buckets) {
    if (b.count > max) max = b.count;
    else if (b.count < max) b.count = max;
  }
  if (buckets.length < 2) return NaN;
  const observations = (buckets[buckets.length - 1] as { count: number }).count;
  if (observations === 0 || Number.isNaN(observations)) return NaN;
  let rank = q * observations;
  let b = 0;
  while (b < buckets.length - 1 && (buckets[b] as { count: number }).count < rank) b++;
  if (b === buckets.length - 1) return (buckets[buckets.length - 2] as { le: number }).le;
  const cur = buckets[b] as { le: number; count: number };
  if (b === 0 && cur.le <= 0) return cur.le;
  let start = 0;
  let count = cur.count;
  if (b > 0) {
    const prev = buckets[b - 1] as { le: number; count: number };
    start = prev.le;
    count -= prev.count;
    rank -= prev.count;
  }
  return start + (cur.le - start) * (rank / count);
}

function signature(labels: Record<string, string>, drop?: string): string {
  return Object.keys(labels)
    .filter((k) => k !== drop)
    .sort()
    .map((k) => `${k}\u0000${labels[k]}`)
    .join('\u0001');
}

function applyOp(op: '+' | '-' | '*' | '/', a: number, b: number): number {
  return op === '+' ? a + b : op === '-' ? a - b : op === '*' ? a * b : a / b;
}

class Evaluator {
  constructor(
    private readonly at: number,
    private readonly source: SeriesSource,
  ) {}

  eval(e: Expr): Value {
    switch (e.k) {
      case 'num':
        return { kind: 'scalar', v: e.v };
      case 'neg': {
        const x = this.eval(e.e);
        return x.kind === 'scalar'
          ? { kind: 'scalar', v: -x.v }
          : { kind: 'vector', s: x.s.map((s) => ({ labels: s.labels, v: -s.v })) };
      }
      case 'bin':
        return this.binary(e.op, this.eval(e.l), this.eval(e.r));
      case 'sum':
        return this.sum(e.by, this.vector(this.eval(e.e), 'sum'));
      case 'rate':
        return this.rate(e);
      case 'hq':
        return this.quantile(this.eval(e.q), this.vector(this.eval(e.e), 'histogram_quantile'));
    }
  }

  vector(v: Value, where: string): Sample[] {
    if (v.kind !== 'vector')
      throw new EvalError(
        'SLUICE_METRICS_BAD_QUERY',
        `${where} expects an instant vector, got a scalar`,
      );
    return v.s;
  }

  rate(e: { sel: Selector; rangeMs: number; offsetMs: number }): Value {
    if (!this.source.names.has(e.sel.name))
      throw unsupported(
        `metric ${e.sel.name}; the builtin provider keeps only ${[...this.source.names].join(', ')}`,
      );
    const end = this.at - e.offsetMs;
    const start = end - e.rangeMs;
    const out: Sample[] = [];
    // Label values repeat across series (one workload, many codes and buckets): test each once.
    const memo = e.sel.matchers.map(() => new Map<string, boolean>());
    for (const series of this.source.series(e.sel.name)) {
      let ok = true;
      for (let i = 0; i < e.sel.matchers.length; i++) {
        const m = e.sel.matchers[i] as Matcher;
        const seen = memo[i] as Map<string, boolean>;
        const v = series.labels[m.name] ?? '';
        let pass = seen.get(v);
        if (pass === undefined) {
          pass = m.test(v);
          seen.set(v, pass);
        }
        if (!pass) {
          ok = false;
          break;
        }
      }
      if (!ok) continue;
      const r = extrapolatedRate(series.t, series.v, start, end, e.rangeMs / 1000);
      if (r !== undefined) out.push({ labels: { ...series.labels }, v: r });
    }
    return { kind: 'vector', s: out };
  }

  sum(by: string[] | null, input: Sample[]): Value {
    const groups = new Map<string, Sample>();
    for (const s of input) {
      const labels: Record<string, string> = {};
      if (by)
        for (const l of by)
          if (s.labels[l] !== undefined && s.labels[l] !== '') labels[l] = s.labels[l] as string;
      const key = signature(labels);
      const g = groups.get(key);
      if (g) g.v += s.v;
      else groups.set(key, { labels, v: s.v });
    }
    return { kind: 'vector', s: [...groups.values()] };
  }

  quantile(q: Value, input: Sample[]): Value {
    if (q.kind !== 'scalar')
      throw new EvalError(
        'SLUICE_METRICS_BAD_QUERY',
        'histogram_quantile expects a scalar quantile',
      );
    const groups = new Map<
      string,
      { labels: Record<string, string>; buckets: { le: number; count: number }[] }
    >();
    for (const s of input) {
      const le = s.labels.le;
      if (le === undefined) continue;
      const bound = le === '+Inf' ? Infinity : Number(le);
      if (Number.isNaN(bound)) continue;
      const key = signature(s.labels, 'le');
      let g = groups.get(key);
      if (!g) {
        const labels = { ...s.labels };
        delete labels.le;
        g = { labels, buckets: [] };
        groups.set(key, g);
      }
      g.buckets.push({ le: bound, count: s.v });
    }
    return {
      kind: 'vector',
      s: [...groups.values()].map((g) => ({ labels: g.labels, v: bucketQuantile(q.v, g.buckets) })),
    };
  }

  binary(op: '+' | '-' | '*' | '/', l: Value, r: Value): Value {
    if (l.kind === 'scalar' && r.kind === 'scalar')
      return { kind: 'scalar', v: applyOp(op, l.v, r.v) };
    if (l.kind === 'vector' && r.kind === 'scalar')
      return {
        kind: 'vector',
        s: l.s.map((s) => ({ labels: s.labels, v: applyOp(op, s.v, r.v) })),
      };
    if (l.kind === 'scalar' && r.kind === 'vector')
      return {
        kind: 'vector',
        s: r.s.map((s) => ({ labels: s.labels, v: applyOp(op, l.v, s.v) })),
      };
    const ls = (l as { s: Sample[] }).s;
    const rs = (r as { s: Sample[] }).s;
    const right = new Map<string, Sample>();
    for (const s of rs) {
      const k = signature(s.labels);
      if (right.has(k))
        throw new EvalError(
          'SLUICE_METRICS_BAD_QUERY',
          'found duplicate series for the match group on the right-hand side of the operation',
        );
      right.set(k, s);
    }
    const seen = new Set<string>();
    const out: Sample[] = [];
    for (const s of ls) {
      const k = signature(s.labels);
      if (seen.has(k))
        throw new EvalError(
          'SLUICE_METRICS_BAD_QUERY',
          'found duplicate series for the match group on the left-hand side of the operation',
        );
      seen.add(k);
      const m = right.get(k);
      if (m) out.push({ labels: s.labels, v: applyOp(op, s.v, m.v) });
    }
    return { kind: 'vector', s: out };
  }
}

/**
 * Evaluates `query` at time `at` (ms) over `source`: one value, `empty` (no series), or a
 * coded error (BAD_QUERY for syntax and execution errors, UNSUPPORTED_QUERY outside the
 * subset, BAD_RESPONSE when the result has several series). Never throws.
 */
export function evaluateInstant(query: string, at: number, source: SeriesSource): EvalResult {
  let value: Value;
  try {
    value = new Evaluator(at, source).eval(compile(query));
  } catch (err) {
    if (err instanceof EvalError) return { kind: 'error', code: err.code, message: err.message };
    throw err;
  }
  if (value.kind === 'scalar') return { kind: 'value', value: value.v };
  if (value.s.length === 0) return { kind: 'empty' };
  if (value.s.length > 1)
    return {
      kind: 'error',
      code: 'SLUICE_METRICS_BAD_RESPONSE',
      message: `query returned ${value.s.length} series; a check needs one value: aggregate it, e.g. with sum()`,
    };
  return { kind: 'value', value: (value.s[0] as Sample).v };
}
