/**
 * Istio AuthorizationPolicy (security.istio.io): access control on workloads, by source,
 * operation and conditions.
 * Field reference: https://istio.io/latest/docs/reference/config/security/authorization-policy/
 *
 * The CUSTOM action delegates to an external authorizer named by `provider`; sluice does not
 * implement it, so `provider` (which CUSTOM requires) is marked unsupported, and the requests
 * a CUSTOM policy's rules match are denied (fail closed) rather than let through.
 */
import { Type, type Static } from '@sinclair/typebox';
import { resourceSchema, type KindDefinition } from '../kind.js';
import { Opt, Struct, unsupported } from '../schema.js';
import { atMostOne } from '../networking/common.js';
import { SECURITY_CANONICAL, SECURITY_VERSIONS } from '../networking/versions.js';
import { targetRefFields, WorkloadSelector } from './common.js';
import type { ValueProblem } from '../networking/route-values.js';
import {
  ipBlockProblem,
  pathTemplateProblem,
  PORT_STRING_PATTERN,
  portStringProblem,
} from './values.js';

const NO_CUSTOM =
  'the CUSTOM action (external authorization) is not implemented by sluice: the requests its rules match are denied (fail closed)';

const Strings = () => Opt(Type.Array(Type.String()));
/** Ports as Istio's validation reads them (`ParseUint`, at most 65535), written in decimal. */
const Ports = () =>
  Opt(
    Type.Array(Type.String({ pattern: PORT_STRING_PATTERN, description: 'port number 0..65535' })),
  );
const ServiceAccounts = () => Opt(Type.Array(Type.String({ maxLength: 320 }), { maxItems: 16 }));

export const Source = Struct({
  principals: Strings(),
  notPrincipals: Strings(),
  requestPrincipals: Strings(),
  notRequestPrincipals: Strings(),
  namespaces: Strings(),
  notNamespaces: Strings(),
  serviceAccounts: ServiceAccounts(),
  notServiceAccounts: ServiceAccounts(),
  ipBlocks: Strings(),
  notIpBlocks: Strings(),
  remoteIpBlocks: Strings(),
  notRemoteIpBlocks: Strings(),
  trustDomains: Strings(),
  notTrustDomains: Strings(),
});
export type Source = Static<typeof Source>;

export const Operation = Struct({
  hosts: Strings(),
  notHosts: Strings(),
  ports: Ports(),
  notPorts: Ports(),
  methods: Strings(),
  notMethods: Strings(),
  paths: Strings(),
  notPaths: Strings(),
});
export type Operation = Static<typeof Operation>;

export const Condition = Struct({
  key: Type.String({ minLength: 1 }),
  values: Strings(),
  notValues: Strings(),
});
export type Condition = Static<typeof Condition>;

export const Rule = Struct({
  from: Opt(Type.Array(Struct({ source: Opt(Source) }), { maxItems: 512 })),
  to: Opt(Type.Array(Struct({ operation: Opt(Operation) }))),
  when: Opt(Type.Array(Condition)),
});
export type Rule = Static<typeof Rule>;

/** The `when` keys sluice's proxies evaluate besides `request.headers[..]` and `request.auth.claims[..]`. */
const CONDITION_KEYS: ReadonlySet<string> = new Set([
  'source.ip',
  'remote.ip',
  'destination.ip',
  'destination.port',
  'source.namespace',
  'source.principal',
  'request.auth.principal',
  'request.auth.audiences',
  'request.auth.presenter',
]);

/**
 * Whether sluice's proxies evaluate a `when` condition key: `request.headers[name]`,
 * `request.auth.claims[a]` (nested `[a][b]`) and CONDITION_KEYS. Istio's others
 * (`connection.sni`, `source.trustDomain`, `experimental.envoy.filters.*`) are not.
 */
export function conditionKeySupported(key: string): boolean {
  if (CONDITION_KEYS.has(key)) return true;
  const m = /^(request\.headers|request\.auth\.claims)((?:\[[^\]]+\])+)$/.exec(key);
  if (m === null) return false;
  return m[1] === 'request.auth.claims' || /^\[[^\]]+\]$/.test(m[2] as string);
}

/** `when` keys whose values are IP addresses or CIDR blocks. */
const IP_CONDITION_KEYS: ReadonlySet<string> = new Set([
  'source.ip',
  'remote.ip',
  'destination.ip',
]);

type Obj = Record<string, unknown>;
const asObj = (v: unknown): Obj =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {};
const asArr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/**
 * Values of one AuthorizationPolicy rule that sluice's proxies parse and would reject the
 * whole config for, checked as Istio validates them: IP blocks, ports, path templates, and
 * `when` conditions without values (or with IP or port values that do not parse). Paths are
 * relative to the rule. The manifests layer reports each; the mesh compiler leaves out an
 * ALLOW rule that has one, and strips the field or condition from a DENY or AUDIT rule (so
 * it matches more: fail closed).
 */
export function authorizationRuleProblems(rule: unknown): ValueProblem[] {
  const out: ValueProblem[] = [];
  const each = (
    path: (string | number)[],
    values: unknown,
    problem: (v: string) => string | null,
  ) =>
    asArr(values).forEach((v, k) => {
      const p = typeof v === 'string' ? problem(v) : null;
      if (p !== null) out.push({ path: [...path, k], message: p });
    });
  const r = asObj(rule);
  asArr(r.from).forEach((f, j) => {
    const source = asObj(asObj(f).source);
    for (const field of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'])
      each(['from', j, 'source', field], source[field], ipBlockProblem);
  });
  asArr(r.to).forEach((t, j) => {
    const operation = asObj(asObj(t).operation);
    for (const field of ['ports', 'notPorts'])
      each(['to', j, 'operation', field], operation[field], portStringProblem);
    for (const field of ['paths', 'notPaths'])
      each(['to', j, 'operation', field], operation[field], (p) => {
        const problem = pathTemplateProblem(p);
        return problem === null ? null : `path template ${JSON.stringify(p)}: ${problem}`;
      });
  });
  asArr(r.when).forEach((c, j) => {
    const cond = asObj(c);
    const key = typeof cond.key === 'string' ? cond.key : '';
    if (asArr(cond.values).length === 0 && asArr(cond.notValues).length === 0) {
      out.push({
        path: ['when', j],
        message: `condition ${key} needs values or notValues (Istio requires at least one)`,
      });
      return;
    }
    const problem = IP_CONDITION_KEYS.has(key)
      ? ipBlockProblem
      : key === 'destination.port'
        ? portStringProblem
        : null;
    if (problem === null) return;
    for (const field of ['values', 'notValues']) each(['when', j, field], cond[field], problem);
  });
  return out;
}

export const ExtensionProvider = Struct({ name: Opt(Type.String()) });

export const AuthorizationPolicyAction = Type.Union([
  Type.Literal('ALLOW'),
  Type.Literal('DENY'),
  Type.Literal('AUDIT'),
  unsupported(Type.Literal('CUSTOM'), NO_CUSTOM),
]);

export const AuthorizationPolicySpec = Struct(
  {
    selector: Opt(WorkloadSelector),
    ...targetRefFields(),
    rules: Opt(Type.Array(Rule, { maxItems: 512 })),
    action: Opt(AuthorizationPolicyAction),
    provider: Opt(unsupported(ExtensionProvider, NO_CUSTOM)),
  },
  atMostOne('selector', 'targetRef', 'targetRefs'),
);
export type AuthorizationPolicySpec = Static<typeof AuthorizationPolicySpec>;

export const AuthorizationPolicy = resourceSchema('AuthorizationPolicy', SECURITY_VERSIONS, {
  spec: AuthorizationPolicySpec,
});
export type AuthorizationPolicy = Static<typeof AuthorizationPolicy>;

export const authorizationPolicyKind: KindDefinition = {
  kind: 'AuthorizationPolicy',
  apiVersions: SECURITY_VERSIONS,
  canonicalApiVersion: SECURITY_CANONICAL,
  namespaced: true,
  schema: AuthorizationPolicy,
};
