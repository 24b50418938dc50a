/**
 * CustomResourceDefinitions for sluice's own kinds, generated from their TypeBox schemas so the
 * cluster validates exactly what `sluice validate` does. `npm run gen:crds` writes them to
 * `crds/`; a test fails when the files there are stale.
 *
 * Kubernetes wants a structural schema: every node has a `type` (or is marked
 * `x-kubernetes-int-or-string` / `x-kubernetes-preserve-unknown-fields`), no `anyOf` carries a
 * type, objects do not combine `properties` with `additionalProperties`. The conversion below
 * turns TypeBox's unions into enums, nullable or int-or-string nodes, maps into
 * `additionalProperties`, passthrough values into preserved unknown fields, and drops sluice's
 * own `x-sluice-*` annotations. Fields sluice marks unsupported or deprecated stay in the CRD,
 * so Flagger objects apply to a cluster without losing fields.
 */
import type { TSchema } from '@sinclair/typebox';
import { stringify } from 'yaml';
import { alertProviderKind } from './flagger/alert-provider.js';
import { CanaryStatus, canaryKind } from './flagger/canary.js';
import { SLUICE_CANONICAL, SLUICE_GROUP } from './flagger/common.js';
import { metricTemplateKind } from './flagger/metric-template.js';
import type { KindDefinition } from './kind.js';
import { PASSTHROUGH } from './schema.js';

/** A JSON Schema node, as plain data. */
export type JsonSchema = { [key: string]: unknown };

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

/** What a CRD needs beyond the kind's definition. */
export interface CrdOptions {
  readonly definition: KindDefinition;
  /** Lower-case plural resource name, e.g. `canaries`. */
  readonly plural: string;
  readonly shortNames?: readonly string[];
  readonly categories?: readonly string[];
  /** Schema of `status`; unknown status fields are kept either way. */
  readonly status?: TSchema;
  readonly printerColumns?: readonly PrinterColumn[];
}

/** The kinds sluice owns, with their CRD names and columns (Flagger's, for familiar output). */
export const SLUICE_CRDS: readonly CrdOptions[] = [
  {
    definition: canaryKind,
    plural: 'canaries',
    shortNames: ['canary'],
    categories: ['all', 'sluice'],
    status: CanaryStatus,
    printerColumns: [
      { name: 'Status', type: 'string', jsonPath: '.status.phase' },
      { name: 'Weight', type: 'integer', jsonPath: '.status.canaryWeight' },
      { name: 'Suspended', type: 'boolean', jsonPath: '.spec.suspend', priority: 1 },
      { name: 'FailedChecks', type: 'integer', jsonPath: '.status.failedChecks', priority: 1 },
      { name: 'Interval', type: 'string', jsonPath: '.spec.analysis.interval', priority: 1 },
      { name: 'Mirror', type: 'boolean', jsonPath: '.spec.analysis.mirror', priority: 1 },
      { name: 'StepWeight', type: 'integer', jsonPath: '.spec.analysis.stepWeight', priority: 1 },
      { name: 'StepWeights', type: 'string', jsonPath: '.spec.analysis.stepWeights', priority: 1 },
      { name: 'MaxWeight', type: 'integer', jsonPath: '.spec.analysis.maxWeight', priority: 1 },
      { name: 'LastTransitionTime', type: 'string', jsonPath: '.status.lastTransitionTime' },
    ],
  },
  {
    definition: metricTemplateKind,
    plural: 'metrictemplates',
    categories: ['all', 'sluice'],
    printerColumns: [{ name: 'Provider', type: 'string', jsonPath: '.spec.provider.type' }],
  },
  {
    definition: alertProviderKind,
    plural: 'alertproviders',
    categories: ['all', 'sluice'],
    printerColumns: [{ name: 'Type', type: 'string', jsonPath: '.spec.type' }],
  },
];

// Keywords a structural schema may carry on a typed node, copied as they are.
const VALUE_KEYWORDS = [
  'description',
  'format',
  'pattern',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'minProperties',
  'maxProperties',
  'default',
  'enum',
  'nullable',
] as const;

// Formats the API server knows; others would be rejected or ignored.
const KUBERNETES_FORMATS = new Set([
  'int32',
  'int64',
  'float',
  'double',
  'byte',
  'date',
  'date-time',
  'password',
  'uri',
  'email',
  'hostname',
  'ipv4',
  'ipv6',
  'cidr',
  'uuid',
  'duration',
]);

const PRESERVE = 'x-kubernetes-preserve-unknown-fields';
const INT_OR_STRING = 'x-kubernetes-int-or-string';

function copyValueKeywords(from: JsonSchema, to: JsonSchema): JsonSchema {
  for (const k of VALUE_KEYWORDS) {
    if (from[k] === undefined) continue;
    if (k === 'format' && !KUBERNETES_FORMATS.has(String(from[k]))) continue;
    to[k] = from[k];
  }
  return to;
}

function jsonTypeOf(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/**
 * The structural form of one JSON Schema node (a TypeBox schema or plain JSON Schema). Pure;
 * the input is not modified.
 */
export function toStructural(node: JsonSchema): JsonSchema {
  const description = typeof node.description === 'string' ? node.description : undefined;
  const withDescription = (out: JsonSchema): JsonSchema =>
    description !== undefined && out.description === undefined ? { description, ...out } : out;

  if (node[INT_OR_STRING] === true) return withDescription({ [INT_OR_STRING]: true });
  if (node[PASSTHROUGH] === true) return withDescription({ [PRESERVE]: true });

  if ('const' in node) {
    return withDescription({ type: jsonTypeOf(node.const), enum: [node.const] });
  }

  const anyOf = (node.anyOf ?? node.oneOf) as JsonSchema[] | undefined;
  if (Array.isArray(anyOf)) {
    const nonNull = anyOf.filter((b) => b.type !== 'null');
    const nullable = nonNull.length < anyOf.length;
    const extra: JsonSchema = nullable ? { nullable: true } : {};
    if (nonNull.length > 0 && nonNull.every((b) => 'const' in b)) {
      const types = new Set(nonNull.map((b) => jsonTypeOf(b.const)));
      if (types.size === 1) {
        return withDescription({
          type: [...types][0],
          enum: nonNull.map((b) => b.const),
          ...extra,
        });
      }
    }
    if (nonNull.length === 1) {
      return withDescription({ ...toStructural(nonNull[0] as JsonSchema), ...extra });
    }
    const types = new Set(nonNull.map((b) => b.type));
    if (types.size === 2 && types.has('integer') && types.has('string')) {
      return withDescription({ [INT_OR_STRING]: true });
    }
    return withDescription({ [PRESERVE]: true, ...extra });
  }

  switch (node.type) {
    case 'object': {
      const out = copyValueKeywords(node, { type: 'object' });
      const props = node.properties as Record<string, JsonSchema> | undefined;
      if (props && Object.keys(props).length > 0) {
        out.properties = Object.fromEntries(
          Object.entries(props).map(([k, v]) => [k, toStructural(v)]),
        );
        if (Array.isArray(node.required) && node.required.length > 0) {
          out.required = [...(node.required as string[])];
        }
        return out;
      }
      const patterns = node.patternProperties as Record<string, JsonSchema> | undefined;
      const values =
        patterns && Object.keys(patterns).length > 0
          ? Object.values(patterns)[0]
          : typeof node.additionalProperties === 'object'
            ? (node.additionalProperties as JsonSchema)
            : undefined;
      if (values) out.additionalProperties = toStructural(values);
      else out[PRESERVE] = true;
      return out;
    }
    case 'array': {
      const out = copyValueKeywords(node, { type: 'array' });
      const items = node.items as JsonSchema | undefined;
      out.items = items ? toStructural(items) : { [PRESERVE]: true };
      return out;
    }
    case 'string':
    case 'integer':
    case 'number':
    case 'boolean':
      return copyValueKeywords(node, { type: node.type });
    case 'null':
      return withDescription({ [PRESERVE]: true, nullable: true });
    default:
      // Type.Unknown / Type.Any and anything without a type: keep whatever is there.
      return withDescription({ [PRESERVE]: true });
  }
}

/** TypeBox schemas carry symbols and getters; work on their plain JSON form. */
function plain(schema: TSchema): JsonSchema {
  return JSON.parse(JSON.stringify(schema)) as JsonSchema;
}

/**
 * The CustomResourceDefinition (apiextensions.k8s.io/v1) of one sluice kind: group
 * sluice.dev, version v1beta1 served and stored, status subresource, printer columns, and the
 * structural form of the kind's schema. Pure.
 */
export function generateCrd(options: CrdOptions): JsonSchema {
  const def = options.definition;
  const [group, version] = SLUICE_CANONICAL.split('/') as [string, string];
  if (group !== SLUICE_GROUP) throw new Error(`unexpected canonical group ${group}`);
  const whole = plain(def.schema);
  const props = whole.properties as Record<string, JsonSchema>;
  const fields: Record<string, JsonSchema> = {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    metadata: { type: 'object' },
  };
  const required: string[] = [];
  for (const [name, schema] of Object.entries(props)) {
    if (name in fields || name === 'status') continue;
    fields[name] = toStructural(schema);
    if ((whole.required as string[] | undefined)?.includes(name)) required.push(name);
  }
  fields.status = options.status
    ? { ...toStructural(plain(options.status)), [PRESERVE]: true }
    : { type: 'object', [PRESERVE]: true };

  const openAPIV3Schema: JsonSchema = {
    description: `${def.kind} (${group}/${version}), generated from sluice's schema.`,
    type: 'object',
    properties: fields,
  };
  if (required.length > 0) openAPIV3Schema.required = required;

  const versionEntry: JsonSchema = {
    name: version,
    served: true,
    storage: true,
    subresources: { status: {} },
  };
  if (options.printerColumns && options.printerColumns.length > 0) {
    versionEntry.additionalPrinterColumns = options.printerColumns.map((c) => ({ ...c }));
  }
  versionEntry.schema = { openAPIV3Schema };

  const names: JsonSchema = {
    kind: def.kind,
    listKind: `${def.kind}List`,
    plural: options.plural,
    singular: def.kind.toLowerCase(),
  };
  if (options.shortNames?.length) names.shortNames = [...options.shortNames];
  if (options.categories?.length) names.categories = [...options.categories];

  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${options.plural}.${group}`,
      labels: { 'app.kubernetes.io/part-of': 'sluice' },
    },
    spec: {
      group,
      names,
      scope: def.namespaced ? 'Namespaced' : 'Cluster',
      versions: [versionEntry],
    },
  };
}

/** File name of a CRD inside `crds/`, kubebuilder style: `sluice.dev_canaries.yaml`. */
export function crdFileName(options: CrdOptions): string {
  return `${SLUICE_GROUP}_${options.plural}.yaml`;
}

/** The YAML text `npm run gen:crds` writes for a CRD (stable, so staleness is a diff). */
export function renderCrdYaml(crd: JsonSchema): string {
  return (
    '# Generated from src/api by `npm run gen:crds`. Do not edit by hand.\n' +
    stringify(crd, { lineWidth: 0, aliasDuplicateObjects: false })
  );
}
