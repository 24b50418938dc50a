/**
 * Rendering of metric queries the way Flagger renders MetricTemplate queries: `{{ name }}`,
 * `{{ namespace }}`, `{{ target }}`, `{{ service }}`, `{{ ingress }}`, `{{ interval }}` and
 * `{{ variables.key }}`. A placeholder without a value is an error, never an empty string.
 */

export interface MetricQueryVariables {
  name?: string;
  namespace?: string;
  target?: string;
  service?: string;
  ingress?: string;
  interval?: string;
  variables?: Record<string, string>;
}

export type RenderResult =
  { ok: true; query: string } | { ok: false; missing: string; offset: number };

const PLACEHOLDER = /\{\{-?\s*\.?([A-Za-z_][\w]*(?:\.[A-Za-z_][\w-]*)?)\s*-?\}\}/g;

/** Substitutes every placeholder; the first one without a value is reported with its offset. */
export function renderMetricQuery(template: string, vars: MetricQueryVariables): RenderResult {
  let out = '';
  let last = 0;
  PLACEHOLDER.lastIndex = 0;
  for (let m = PLACEHOLDER.exec(template); m; m = PLACEHOLDER.exec(template)) {
    const key = m[1] as string;
    let value: string | undefined;
    if (key.startsWith('variables.')) value = vars.variables?.[key.slice('variables.'.length)];
    else if (key !== 'variables') value = (vars as Record<string, string | undefined>)[key];
    if (value === undefined) return { ok: false, missing: key, offset: m.index };
    out += template.slice(last, m.index) + value;
    last = m.index + m[0].length;
  }
  return { ok: true, query: out + template.slice(last) };
}

/** The placeholders a template uses, in order of first use. */
export function placeholdersOf(template: string): string[] {
  const seen = new Set<string>();
  PLACEHOLDER.lastIndex = 0;
  for (let m = PLACEHOLDER.exec(template); m; m = PLACEHOLDER.exec(template))
    seen.add(m[1] as string);
  return [...seen];
}
