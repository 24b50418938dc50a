/**
 * Istio RequestAuthentication (security.istio.io): which JWTs a workload accepts and where
 * it finds them.
 * Field reference: https://istio.io/latest/docs/reference/config/security/request_authentication/
 *
 * Deprecated form converted by `normalize`: `jwks_uri` (the proto field name Istio's CRD also
 * accepts) → `jwksUri`.
 */
import { Type, type Static } from '@sinclair/typebox';
import { resourceSchema, type KindDefinition } from '../kind.js';
import { deprecated, Duration, HTTP_TOKEN_PATTERN, Opt, Struct, unsupported } from '../schema.js';
import { atMostOne, Enum } from '../networking/common.js';
import { SECURITY_CANONICAL, SECURITY_VERSIONS } from '../networking/versions.js';
import { targetRefFields, WorkloadSelector } from './common.js';

export const JWTHeader = Struct({
  name: Type.String({ minLength: 1 }),
  prefix: Opt(Type.String()),
});
export type JWTHeader = Static<typeof JWTHeader>;

export const ClaimToHeader = Struct({
  header: Type.String({ minLength: 1, pattern: '^[-_A-Za-z0-9]+$' }),
  claim: Type.String({ minLength: 1 }),
});
export type ClaimToHeader = Static<typeof ClaimToHeader>;

const JwksUri = () =>
  Type.String({ minLength: 1, maxLength: 2048, pattern: '^[hH][tT][tT][pP][sS]?://' });

export const JWTRule = Struct(
  {
    /** Required, as Istio's validation requires it ("issuer must be set"). */
    issuer: Type.String({ minLength: 1 }),
    audiences: Opt(Type.Array(Type.String({ minLength: 1 }))),
    jwksUri: Opt(JwksUri()),
    jwks_uri: Opt(deprecated(JwksUri(), 'jwksUri')),
    jwks: Opt(Type.String({ description: 'inline JSON Web Key Set' })),
    fromHeaders: Opt(Type.Array(JWTHeader)),
    fromParams: Opt(Type.Array(Type.String({ minLength: 1 }))),
    fromCookies: Opt(
      unsupported(
        Type.Array(Type.String({ minLength: 1 })),
        'tokens are read from headers and query parameters only',
      ),
    ),
    // Written into the forwarded request's head: a header name (or empty: none).
    outputPayloadToHeader: Opt(
      Type.String({
        pattern: `^$|${HTTP_TOKEN_PATTERN}`,
        description: "header name (letters, digits and !#$%&'*+-.^_`|~)",
      }),
    ),
    forwardOriginalToken: Opt(Type.Boolean()),
    outputClaimToHeaders: Opt(Type.Array(ClaimToHeader)),
    timeout: Opt(unsupported(Duration(), 'sluice uses its own JWKS fetch timeout')),
    spaceDelimitedClaims: Opt(
      unsupported(
        Type.Array(Type.String({ minLength: 1 }), { maxItems: 64 }),
        'claims are matched as JSON values only',
      ),
    ),
    presence: Opt(
      unsupported(
        Enum(['OPTIONAL', 'REQUIRED']),
        'a missing token is always accepted; require one with an AuthorizationPolicy',
      ),
    ),
  },
  atMostOne('jwksUri', 'jwks_uri', 'jwks'),
);
export type JWTRule = Static<typeof JWTRule>;

export const RequestAuthenticationSpec = Struct(
  {
    selector: Opt(WorkloadSelector),
    ...targetRefFields(),
    jwtRules: Opt(Type.Array(JWTRule, { maxItems: 4096 })),
  },
  atMostOne('selector', 'targetRef', 'targetRefs'),
);
export type RequestAuthenticationSpec = Static<typeof RequestAuthenticationSpec>;

export const RequestAuthentication = resourceSchema('RequestAuthentication', SECURITY_VERSIONS, {
  spec: RequestAuthenticationSpec,
});
export type RequestAuthentication = Static<typeof RequestAuthentication>;

/**
 * Converts a RequestAuthentication of any accepted apiVersion to `security.istio.io/v1`, with
 * `jwks_uri` renamed to `jwksUri`. Copy-on-write; the input is never mutated.
 */
export function normalizeRequestAuthentication(
  object: Record<string, unknown>,
  _apiVersion: string,
): Record<string, unknown> {
  const ra = object as unknown as RequestAuthentication;
  const out: Record<string, unknown> = { ...object, apiVersion: SECURITY_CANONICAL };
  const rules = ra.spec?.jwtRules;
  if (rules === undefined) return out;
  const next = rules.map((rule) => {
    if (rule.jwks_uri === undefined) return rule;
    const { jwks_uri, ...rest } = rule;
    return rest.jwksUri === undefined ? { ...rest, jwksUri: jwks_uri } : rest;
  });
  if (next.some((r, i) => r !== rules[i])) out.spec = { ...ra.spec, jwtRules: next };
  return out;
}

export const requestAuthenticationKind: KindDefinition = {
  kind: 'RequestAuthentication',
  apiVersions: SECURITY_VERSIONS,
  canonicalApiVersion: SECURITY_CANONICAL,
  namespaced: true,
  schema: RequestAuthentication,
  normalize: normalizeRequestAuthentication,
};
