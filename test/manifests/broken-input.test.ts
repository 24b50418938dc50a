// Broken inputs: each case asserts the exact diagnostic code and its position, and that
// nothing crashes. Positions are 1-based line:column of the offending key or value.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE, errors, expectOne, load, type Expected } from './helpers.js';

interface Case {
  name: string;
  yaml: string | Buffer;
  expect: Expected;
  references?: 'error' | 'warn' | 'off';
}

const vs = (body: string) => `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: shop
spec:
${body}`;

const cases: Case[] = [
  // --- YAML syntax and document shape -------------------------------------------------
  {
    name: 'unclosed double quote',
    yaml: 'apiVersion: v1\nkind: Service\nmetadata:\n  name: "reviews\n',
    expect: { code: 'SLUICE_YAML_INVALID', line: 5, col: 1, message: /closing "quote/ },
  },
  {
    name: 'mapping value in the wrong place (bad indentation)',
    yaml: 'apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n   namespace: b\n',
    expect: { code: 'SLUICE_YAML_INVALID', line: 4, col: 9, message: /Nested mappings/ },
  },
  {
    name: 'tab used for indentation',
    yaml: 'apiVersion: v1\nkind: Service\nmetadata:\n\tname: a\n',
    expect: { code: 'SLUICE_YAML_INVALID', line: 4, col: 1 },
  },
  {
    name: 'document is a list',
    yaml: '- apiVersion: v1\n  kind: Service\n',
    expect: { code: 'SLUICE_DOCUMENT_NOT_MAPPING', line: 1, col: 1 },
  },
  {
    name: 'second document is a scalar',
    yaml: BASE + '---\njust a string\n',
    expect: { code: 'SLUICE_DOCUMENT_NOT_MAPPING', line: 67, col: 1 },
  },
  {
    name: 'duplicate key points at the second occurrence',
    yaml: 'apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  name: b\n',
    expect: { code: 'SLUICE_YAML_DUPLICATE_KEY', line: 5, col: 3 },
  },
  {
    name: 'empty document between two objects is noted',
    yaml:
      BASE +
      '---\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: other\n  namespace: shop\n',
    expect: { code: 'SLUICE_DOCUMENT_EMPTY', line: 66, col: 1, severity: 'info' },
  },
  {
    name: 'bytes that are not UTF-8',
    yaml: Buffer.concat([
      Buffer.from('apiVersion: v1\nkind: Service\nmetadata:\n  name: caf'),
      Buffer.from([0xe9, 0x0a]),
    ]),
    expect: { code: 'SLUICE_FILE_NOT_UTF8', line: 4, col: 12 },
  },
  {
    name: 'file over 5 MiB',
    yaml: Buffer.alloc(5 * 1024 * 1024 + 1, 0x20),
    expect: { code: 'SLUICE_FILE_TOO_LARGE', line: 0, col: 0 },
  },
  {
    name: 'more than 10,000 documents',
    yaml: 'a: 1\n---\n'.repeat(10_001),
    expect: { code: 'SLUICE_TOO_MANY_DOCUMENTS', line: 20_000, col: 1 },
  },
  {
    name: 'alias expansion bomb',
    yaml:
      'apiVersion: v1\nkind: Service\nmetadata:\n  name: a\n  labels:\n' +
      "    a: &a ['x','x','x','x','x','x','x','x','x','x']\n" +
      Array.from(
        { length: 12 },
        (_, i) =>
          `    l${i}: &l${i} [${Array(12)
            .fill(i === 0 ? '*a' : `*l${i - 1}`)
            .join(',')}]\n`,
      ).join(''),
    expect: { code: 'SLUICE_YAML_INVALID', line: 1, col: 1, message: /alias/i },
  },
  // --- object envelope ---------------------------------------------------------------
  {
    name: 'missing apiVersion',
    yaml: 'kind: Service\nmetadata:\n  name: a\n',
    expect: { code: 'SLUICE_OBJECT_INVALID', line: 1, col: 1 },
  },
  {
    name: 'missing kind',
    yaml: 'apiVersion: v1\nmetadata:\n  name: a\n',
    expect: { code: 'SLUICE_OBJECT_INVALID', line: 1, col: 1 },
  },
  {
    name: 'apiVersion is a number',
    yaml: 'apiVersion: 1\nkind: Service\nmetadata:\n  name: a\n',
    expect: { code: 'SLUICE_OBJECT_INVALID', line: 1, col: 13 },
  },
  {
    name: 'unknown kind is a warning, object skipped',
    yaml: 'apiVersion: networking.istio.io/v1alpha3\nkind: EnvoyFilter\nmetadata:\n  name: a\n',
    expect: { code: 'SLUICE_KIND_UNKNOWN', line: 2, col: 7, severity: 'warning' },
  },
  {
    name: 'known kind in an apiVersion sluice does not load',
    yaml: 'apiVersion: networking.istio.io/v2\nkind: Gateway\nmetadata:\n  name: a\nspec: {}\n',
    expect: { code: 'SLUICE_API_VERSION_UNSUPPORTED', line: 1, col: 13 },
  },
  {
    name: 'metadata.name missing',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  namespace: shop\nspec: {}\n',
    expect: { code: 'SLUICE_SCHEMA_INVALID', line: 4, col: 3, path: 'metadata.name' },
  },
  {
    name: 'metadata.name with capitals',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: Public\nspec: {}\n',
    expect: { code: 'SLUICE_SCHEMA_INVALID', line: 4, col: 9, path: 'metadata.name' },
  },
  {
    name: 'spec is a string',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: a\nspec: servers\n',
    expect: {
      code: 'SLUICE_SCHEMA_INVALID',
      line: 5,
      col: 7,
      path: 'spec',
      message: /must be an object/,
    },
  },
  {
    name: 'committed status is read past with a warning',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: a\nspec: {}\nstatus:\n  foo: 1\n',
    expect: {
      code: 'SLUICE_FIELD_UNSUPPORTED',
      line: 6,
      col: 1,
      severity: 'warning',
      path: 'status',
    },
  },
  // --- schema ---------------------------------------------------------------------------
  {
    name: 'unknown field suggests the right one',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: a\nspec:\n  servers:\n    - port: {number: 80, protocol: HTTP}\n      hostz: ["*"]\n      hosts: ["*"]\n',
    expect: {
      code: 'SLUICE_FIELD_UNKNOWN',
      line: 8,
      col: 7,
      path: 'spec.servers[0].hostz',
      message: /did you mean "hosts"/,
    },
  },
  {
    name: 'port number out of range',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: a\nspec:\n  servers:\n    - port: {number: 80000, protocol: HTTP}\n      hosts: ["*"]\n',
    expect: {
      code: 'SLUICE_SCHEMA_INVALID',
      line: 7,
      col: 22,
      path: 'spec.servers[0].port.number',
      message: /integer 1\.\.65535/,
    },
  },
  {
    name: 'port number given as a word',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: a\nspec:\n  servers:\n    - port:\n        number: eighty\n        protocol: HTTP\n      hosts: ["*"]\n',
    expect: {
      code: 'SLUICE_SCHEMA_INVALID',
      line: 8,
      col: 17,
      path: 'spec.servers[0].port.number',
    },
  },
  {
    name: 'required hosts missing on a server',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: a\nspec:\n  servers:\n    - port: {number: 80, protocol: HTTP}\n',
    expect: {
      code: 'SLUICE_SCHEMA_INVALID',
      line: 7,
      col: 7,
      path: 'spec.servers[0].hosts',
      message: /required/,
    },
  },
  {
    name: 'TLS mode not one of the enum',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: a\nspec:\n  servers:\n    - port: {number: 443, protocol: HTTPS}\n      hosts: ["*"]\n      tls:\n        mode: STRICT\n',
    expect: {
      code: 'SLUICE_SCHEMA_INVALID',
      line: 10,
      col: 15,
      path: 'spec.servers[0].tls.mode',
      message: /one of "SIMPLE", "PASSTHROUGH", "MUTUAL"/,
    },
  },
  {
    name: 'unsupported field is a warning naming the field',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata:\n  name: a\nspec:\n  servers:\n    - port: {number: 80, protocol: HTTP}\n      hosts: ["*"]\n      bind: 0.0.0.0\n',
    expect: {
      code: 'SLUICE_FIELD_UNSUPPORTED',
      line: 9,
      col: 7,
      severity: 'warning',
      path: 'spec.servers[0].bind',
    },
  },
  {
    name: 'timeout that is not a duration',
    yaml: vs(
      '  hosts: [reviews]\n  http:\n    - timeout: 10 seconds\n      route:\n        - destination: {host: reviews}\n',
    ),
    expect: { code: 'SLUICE_SCHEMA_INVALID', line: 9, col: 16, path: 'spec.http[0].timeout' },
  },
  {
    name: 'route weight over 100',
    yaml: vs(
      '  hosts: [reviews]\n  http:\n    - route:\n        - destination: {host: reviews}\n          weight: 101\n',
    ),
    expect: {
      code: 'SLUICE_SCHEMA_INVALID',
      line: 11,
      col: 19,
      path: 'spec.http[0].route[0].weight',
    },
  },
  {
    name: 'string match with two kinds of match',
    yaml: vs(
      '  hosts: [reviews]\n  http:\n    - match:\n        - uri:\n            exact: /a\n            prefix: /b\n      route:\n        - destination: {host: reviews}\n',
    ),
    expect: { code: 'SLUICE_SCHEMA_INVALID', line: 11, col: 13, path: 'spec.http[0].match[0].uri' },
  },
  {
    name: 'deprecated integer fault percent loads with a warning',
    yaml: vs(
      '  hosts: [reviews]\n  http:\n    - fault:\n        abort:\n          httpStatus: 500\n          percent: 10\n      route:\n        - destination: {host: reviews}\n',
    ),
    expect: {
      code: 'SLUICE_FIELD_DEPRECATED',
      line: 12,
      col: 11,
      severity: 'warning',
      path: 'spec.http[0].fault.abort.percent',
    },
  },
  // --- within one object ---------------------------------------------------------------
  {
    name: 'weights of one route add up to 90',
    yaml:
      BASE +
      '---\n' +
      vs(
        '  hosts: [reviews]\n  http:\n    - route:\n        - destination: {host: reviews, subset: v1}\n          weight: 80\n        - destination: {host: reviews, subset: v2}\n          weight: 10\n',
      ),
    expect: {
      code: 'SLUICE_ROUTE_WEIGHT_SUM',
      line: 76,
      col: 9,
      path: 'spec.http[0].route',
      message: /add up to 90/,
    },
  },
  {
    name: 'Deployment selector does not match its template',
    yaml: BASE.replace(
      '    matchLabels:\n      app: reviews',
      '    matchLabels:\n      app: review',
    ),
    expect: { code: 'SLUICE_SELECTOR_MISMATCH', line: 10, col: 7 },
  },
  {
    name: 'a second mirror destination is a warning (one is mirrored to)',
    yaml:
      BASE +
      '---\n' +
      vs(
        '  hosts: [reviews]\n  http:\n    - route:\n        - destination: {host: reviews}\n      mirrors:\n        - destination: {host: reviews}\n        - destination: {host: ratings}\n',
      ),
    expect: {
      code: 'SLUICE_FIELD_UNSUPPORTED',
      line: 79,
      col: 11,
      severity: 'warning',
      path: 'spec.http[0].mirrors[1]',
      message: /first of `mirrors`/,
    },
  },
  {
    name: 'a Service port of a protocol the proxies do not route is a warning',
    yaml: 'apiVersion: v1\nkind: Service\nmetadata:\n  name: db\nspec:\n  ports:\n    - name: http\n      port: 80\n    - name: tcp-mysql\n      port: 3306\n',
    expect: {
      code: 'SLUICE_PORT_NOT_ROUTED',
      line: 9,
      col: 7,
      severity: 'warning',
      path: 'spec.ports[1]',
      message: /tcp-mysql is TCP/,
    },
  },
  // --- references between objects ---------------------------------------------------------
  {
    name: 'subset no DestinationRule defines',
    yaml:
      BASE +
      '---\n' +
      vs(
        '  hosts: [reviews]\n  http:\n    - route:\n        - destination:\n            host: reviews\n            subset: v3\n',
      ),
    expect: {
      code: 'SLUICE_REF_SUBSET_NOT_FOUND',
      line: 78,
      col: 21,
      path: 'spec.http[0].route[0].destination.subset',
    },
  },
  {
    name: 'gateway that does not exist',
    yaml:
      BASE +
      '---\n' +
      vs(
        '  hosts: ["*"]\n  gateways: [shop/public, private]\n  http:\n    - route:\n        - destination: {host: reviews}\n',
      ),
    expect: { code: 'SLUICE_REF_GATEWAY_NOT_FOUND', line: 74, col: 27, message: /shop\/private/ },
  },
  {
    name: 'destination host that resolves to nothing',
    yaml:
      BASE +
      '---\n' +
      vs(
        '  hosts: [reviews]\n  http:\n    - route:\n        - destination:\n            host: ratings\n',
      ),
    expect: { code: 'SLUICE_REF_HOST_NOT_FOUND', line: 77, col: 19 },
  },
  {
    name: 'duplicate object points at the first',
    yaml:
      BASE +
      '---\napiVersion: v1\nkind: Service\nmetadata:\n  name: reviews\n  namespace: shop\nspec:\n  ports: [{port: 80}]\n',
    expect: {
      code: 'SLUICE_DUPLICATE_OBJECT',
      line: 70,
      col: 9,
      message: /already defined at f\.yaml:25:1/,
    },
  },
  {
    name: 'Service selector matching no workload is a warning',
    yaml:
      BASE +
      '---\napiVersion: v1\nkind: Service\nmetadata:\n  name: ratings\n  namespace: shop\nspec:\n  selector: {app: ratings}\n  ports: [{port: 80}]\n',
    expect: { code: 'SLUICE_SELECTOR_NO_MATCH', line: 73, col: 13, severity: 'warning' },
  },
  {
    name: '--references warn turns a reference error into a warning',
    references: 'warn',
    yaml:
      BASE +
      '---\n' +
      vs(
        '  hosts: [reviews]\n  http:\n    - route:\n        - destination:\n            host: ratings\n',
      ),
    expect: { code: 'SLUICE_REF_HOST_NOT_FOUND', line: 77, col: 19, severity: 'warning' },
  },
];

const ap = (body: string) => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: reviews
  namespace: shop
spec:
${body}`;

const ra = (body: string) => `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata:
  name: reviews
  namespace: shop
spec:
${body}`;

const dr = (body: string) => `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: shop
spec:
  host: reviews
${body}`;

/** A route to reviews with `extra` (YAML at the route's indentation) before its destination. */
const route = (extra: string) =>
  vs(
    `  hosts: [reviews]\n  http:\n    - ${extra.trimStart()}      route:\n        - destination: {host: reviews}\n`,
  );

// --- values the proxies cannot compile: each would make every proxy that gets it reject its
// whole config (NACK), freezing a namespace's sidecars on their previous one --------------------
cases.push(
  {
    name: 'retryOn with an unknown condition',
    yaml: route('retries:\n        attempts: 3\n        retryOn: 5xx,connect-failures\n'),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 11,
      col: 18,
      path: 'spec.http[0].retries.retryOn',
      message: /"connect-failures" is not known/,
    },
  },
  {
    name: 'retryOn with a condition Istio knows and sluice does not is a warning',
    yaml: route('retries:\n        attempts: 3\n        retryOn: 5xx,http3-post-connect-failure\n'),
    expect: {
      code: 'SLUICE_FIELD_UNSUPPORTED',
      line: 11,
      col: 18,
      severity: 'warning',
      path: 'spec.http[0].retries.retryOn',
      message: /http3-post-connect-failure is left out/,
    },
  },
  {
    name: 'uri regex with an RE2 inline flag JavaScript cannot compile',
    yaml: route('match:\n        - uri:\n            regex: "(?i)/api/.*"\n'),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 11,
      col: 20,
      path: 'spec.http[0].match[0].uri.regex',
      message: /does not compile in JavaScript.*inline flags/,
    },
  },
  {
    name: 'header regex with an RE2 escape JavaScript reads as a letter',
    yaml: route(
      'match:\n        - headers:\n            end-user:\n              regex: "jason\\\\z"\n',
    ),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 12,
      col: 22,
      path: 'spec.http[0].match[0].headers.end-user.regex',
      message: /\\z \(end of text\) is read as the letter z/,
    },
  },
  {
    name: 'queryParams regex with an RE2 named group',
    yaml: route(
      'match:\n        - queryParams:\n            v:\n              regex: "(?P<major>[0-9]+)"\n',
    ),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 12,
      col: 22,
      path: 'spec.http[0].match[0].queryParams.v.regex',
      message: /\(\?<name>\.\.\.\) in JavaScript/,
    },
  },
  {
    name: 'authority regex that does not compile',
    yaml: route('match:\n        - authority:\n            regex: "reviews[.(shop"\n'),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 11,
      col: 20,
      path: 'spec.http[0].match[0].authority.regex',
    },
  },
  {
    name: 'uriRegexRewrite.match that does not compile',
    yaml: route(
      'rewrite:\n        uriRegexRewrite:\n          match: "^/v1/(.*"\n          rewrite: /v2/\\\\1\n',
    ),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 11,
      col: 18,
      path: 'spec.http[0].rewrite.uriRegexRewrite.match',
      message: /Unterminated group/,
    },
  },
  {
    name: 'CORS allowOrigins regex that does not compile',
    yaml: route(
      'corsPolicy:\n        allowOrigins:\n          - exact: https://a.example\n          - regex: "https://(?i)b.example"\n',
    ),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 12,
      col: 20,
      path: 'spec.http[0].corsPolicy.allowOrigins[1].regex',
    },
  },
  {
    name: 'a header set by a route whose name is not a header name points at the name',
    yaml: route('headers:\n        request:\n          set:\n            "x user": a\n'),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 12,
      col: 13,
      path: 'spec.http[0].headers.request.set["x user"]',
    },
  },
  {
    name: 'a header value with CR LF (header injection)',
    yaml: route(
      'headers:\n        request:\n          add:\n            x-a: "1\\r\\nx-admin: true"\n',
    ),
    expect: {
      code: 'SLUICE_SCHEMA_INVALID',
      line: 12,
      col: 18,
      path: 'spec.http[0].headers.request.add.x-a',
      message: /without control characters/,
    },
  },
  {
    name: 'a destination header to remove that is not a header name',
    yaml: vs(
      '  hosts: [reviews]\n  http:\n    - route:\n        - destination: {host: reviews}\n          headers:\n            response:\n              remove: ["set-cookie:"]\n',
    ),
    expect: {
      code: 'SLUICE_SCHEMA_INVALID',
      line: 13,
      col: 24,
      path: 'spec.http[0].route[0].headers.response.remove[0]',
    },
  },
  {
    name: 'a rewritten authority with a line break',
    yaml: route('rewrite:\n        authority: "a.example\\nx: y"\n'),
    expect: {
      code: 'SLUICE_SCHEMA_INVALID',
      line: 10,
      col: 20,
      path: 'spec.http[0].rewrite.authority',
    },
  },
  {
    name: 'a request header add of host (only a set may rewrite the authority)',
    yaml: route('headers:\n        request:\n          add:\n            Host: b.example\n'),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 12,
      col: 13,
      path: 'spec.http[0].headers.request.add.Host',
      message: /can only be set on requests/,
    },
  },
  {
    name: 'a response header set of :authority',
    yaml: route('headers:\n        response:\n          set:\n            ":authority": b\n'),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 12,
      col: 13,
      path: 'spec.http[0].headers.response.set[":authority"]',
      message: /can only be set on requests/,
    },
  },
  {
    name: 'a redirect scheme other than http and https',
    yaml: vs('  hosts: [reviews]\n  http:\n    - redirect:\n        scheme: ftp\n'),
    expect: {
      code: 'SLUICE_SCHEMA_INVALID',
      line: 10,
      col: 17,
      path: 'spec.http[0].redirect.scheme',
    },
  },
  {
    name: 'a CORS method that is not an HTTP method',
    yaml: route('corsPolicy:\n        allowMethods: [GET, "POST, PUT"]\n'),
    expect: {
      code: 'SLUICE_SCHEMA_INVALID',
      line: 10,
      col: 29,
      path: 'spec.http[0].corsPolicy.allowMethods[1]',
    },
  },
  {
    name: 'AuthorizationPolicy when condition with neither values nor notValues',
    yaml: ap('  rules:\n    - when:\n        - key: request.headers[x-token]\n'),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 9,
      col: 11,
      path: 'spec.rules[0].when[0]',
      message: /needs values or notValues/,
    },
  },
  {
    name: 'AuthorizationPolicy destination.port condition that is not a number',
    yaml: ap(
      '  rules:\n    - when:\n        - key: destination.port\n          values: ["9080", http]\n',
    ),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 10,
      col: 28,
      path: 'spec.rules[0].when[0].values[1]',
      message: /not a port number/,
    },
  },
  {
    name: 'AuthorizationPolicy source.ip condition that is not an address',
    yaml: ap(
      '  rules:\n    - when:\n        - key: source.ip\n          values: [10.0.0.0/8, 10.0.0.300]\n',
    ),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 10,
      col: 32,
      path: 'spec.rules[0].when[0].values[1]',
    },
  },
  {
    name: 'AuthorizationPolicy remote.ip notValues with a prefix too long',
    yaml: ap(
      '  rules:\n    - when:\n        - key: remote.ip\n          notValues: ["192.168.0.0/33"]\n',
    ),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 10,
      col: 23,
      path: 'spec.rules[0].when[0].notValues[0]',
      message: /prefix length/,
    },
  },
  {
    name: 'AuthorizationPolicy destination.ip condition that is not an address',
    yaml: ap(
      '  rules:\n    - when:\n        - key: destination.ip\n          values: [localhost]\n',
    ),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 10,
      col: 20,
      path: 'spec.rules[0].when[0].values[0]',
    },
  },
  {
    name: 'AuthorizationPolicy ipBlocks entry that is not a CIDR',
    yaml: ap(
      '  rules:\n    - from:\n        - source:\n            ipBlocks: [10.0.0.0/8, 10.0.0.0/abc]\n',
    ),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 10,
      col: 36,
      path: 'spec.rules[0].from[0].source.ipBlocks[1]',
    },
  },
  {
    name: 'AuthorizationPolicy notRemoteIpBlocks entry that is not a CIDR',
    yaml: ap(
      '  rules:\n    - from:\n        - source:\n            notRemoteIpBlocks: ["2001:db8::/129"]\n',
    ),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 10,
      col: 33,
      path: 'spec.rules[0].from[0].source.notRemoteIpBlocks[0]',
    },
  },
  {
    name: 'AuthorizationPolicy operation port that is not a number',
    yaml: ap('  rules:\n    - to:\n        - operation:\n            ports: ["8080", http]\n'),
    expect: {
      code: 'SLUICE_SCHEMA_INVALID',
      line: 10,
      col: 29,
      path: 'spec.rules[0].to[0].operation.ports[1]',
      message: /port number 0\.\.65535/,
    },
  },
  {
    name: 'AuthorizationPolicy path template with an operator inside a segment',
    yaml: ap(
      '  rules:\n    - to:\n        - operation:\n            notPaths: ["/api/{*}.json"]\n',
    ),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 10,
      col: 24,
      path: 'spec.rules[0].to[0].operation.notPaths[0]',
      message: /whole segment/,
    },
  },
  {
    name: 'RequestAuthentication jwks that is not JSON',
    yaml: ra('  jwtRules:\n    - issuer: https://issuer.example\n      jwks: "{keys: []}"\n'),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 9,
      col: 13,
      path: 'spec.jwtRules[0].jwks',
      message: /jwks is not JSON/,
    },
  },
  {
    name: 'RequestAuthentication jwks without a keys list',
    yaml: ra(
      '  jwtRules:\n    - issuer: https://issuer.example\n      jwks: \'{"kty": "RSA", "n": "x", "e": "AQAB"}\'\n',
    ),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 9,
      col: 13,
      path: 'spec.jwtRules[0].jwks',
      message: /"keys" list/,
    },
  },
  {
    name: 'RequestAuthentication outputPayloadToHeader that is not a header name',
    yaml: ra(
      '  jwtRules:\n    - issuer: https://issuer.example\n      jwksUri: https://issuer.example/keys\n      outputPayloadToHeader: "x-jwt payload"\n',
    ),
    expect: {
      code: 'SLUICE_SCHEMA_INVALID',
      line: 10,
      col: 30,
      path: 'spec.jwtRules[0].outputPayloadToHeader',
    },
  },
  {
    name: 'DestinationRule tls with an empty subjectAltNames entry',
    yaml: dr(
      '  trafficPolicy:\n    tls:\n      mode: SIMPLE\n      subjectAltNames: [reviews.example, ""]\n',
    ),
    expect: {
      code: 'SLUICE_SCHEMA_INVALID',
      line: 11,
      col: 42,
      path: 'spec.trafficPolicy.tls.subjectAltNames[1]',
      message: /must not be empty/,
    },
  },
  {
    name: 'DestinationRule hash cookie name that is not a token',
    yaml: dr(
      '  trafficPolicy:\n    loadBalancer:\n      consistentHash:\n        httpCookie:\n          name: "user id"\n          ttl: 0s\n',
    ),
    expect: {
      code: 'SLUICE_SCHEMA_INVALID',
      line: 12,
      col: 17,
      path: 'spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name',
    },
  },
  {
    name: 'Service with two ports of one number',
    yaml: 'apiVersion: v1\nkind: Service\nmetadata:\n  name: reviews\n  namespace: shop\nspec:\n  ports:\n    - {name: http, port: 9080}\n    - {name: http-alt, port: 9080}\n    - {name: dns, port: 9080, protocol: UDP}\n',
    expect: {
      code: 'SLUICE_DUPLICATE_OBJECT',
      line: 9,
      col: 30,
      path: 'spec.ports[1].port',
      message: /port 9080 is already defined by ports\[0\]/,
    },
  },
  {
    name: 'ServiceEntry with two ports of one number',
    yaml: 'apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata:\n  name: api\n  namespace: shop\nspec:\n  hosts: [api.example.com]\n  ports:\n    - {number: 80, name: http, protocol: HTTP}\n    - {number: 80, name: http2, protocol: HTTP2}\n',
    expect: {
      code: 'SLUICE_DUPLICATE_OBJECT',
      line: 10,
      col: 16,
      path: 'spec.ports[1].number',
    },
  },
);

const canary = (body: string) => `apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: reviews
  namespace: shop
spec:
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: reviews
${body}`;

const template = `apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: not-found-percentage
  namespace: shop
spec:
  provider:
    type: prometheus
    address: http://prometheus:9090
  query: |
    100 - sum(rate(istio_requests_total{destination_workload_namespace="{{ namespace }}",destination_workload="{{ target }}",response_code!="404"}[{{ interval }}])) / sum(rate(istio_requests_total{destination_workload_namespace="{{ namespace }}",destination_workload="{{ target }}",app="{{ variables.app }}"}[{{ interval }}])) * 100
`;

cases.push(
  {
    name: 'canary target that does not exist',
    yaml:
      BASE +
      '---\n' +
      canary('  service:\n    port: 9080\n').replace('    name: reviews\n', '    name: reviewz\n'),
    expect: { code: 'SLUICE_REF_TARGET_NOT_FOUND', line: 76, col: 11 },
  },
  {
    name: 'canary port the target does not declare',
    yaml: BASE + '---\n' + canary('  service:\n    port: 80\n'),
    expect: { code: 'SLUICE_CANARY_PORT_MISMATCH', line: 78, col: 11, message: /http=9080/ },
  },
  {
    name: 'canary named targetPort the target does not declare',
    yaml: BASE + '---\n' + canary('  service:\n    port: 80\n    targetPort: web\n'),
    expect: { code: 'SLUICE_CANARY_PORT_MISMATCH', line: 79, col: 17 },
  },
  {
    name: 'metric template that does not exist',
    yaml:
      BASE +
      '---\n' +
      canary(
        '  service:\n    port: 9080\n  analysis:\n    interval: 1m\n    threshold: 5\n    metrics:\n      - name: errors\n        templateRef:\n          name: missing\n        thresholdRange: {max: 1}\n',
      ),
    expect: { code: 'SLUICE_REF_TEMPLATE_NOT_FOUND', line: 85, col: 17 },
  },
  {
    name: 'template variable the canary does not provide',
    yaml:
      BASE +
      '---\n' +
      template +
      '---\n' +
      canary(
        '  service:\n    port: 9080\n  analysis:\n    interval: 1m\n    threshold: 5\n    metrics:\n      - name: errors\n        templateRef:\n          name: not-found-percentage\n        thresholdRange: {max: 1}\n',
      ),
    expect: {
      code: 'SLUICE_TEMPLATE_VARIABLE_MISSING',
      line: 95,
      col: 9,
      message: /variables\.app/,
    },
  },
  {
    name: 'query that is not PromQL',
    yaml: BASE + '---\n' + template.replace('* 100', '* 100 +'),
    expect: { code: 'SLUICE_PROMQL_INVALID', line: 76, col: 10 },
  },
  {
    name: 'canary match regex the proxies cannot compile (it becomes a VirtualService route)',
    yaml:
      BASE +
      '---\n' +
      canary(
        '  service:\n    port: 9080\n    match:\n      - uri:\n          regex: "(?i)/reviews"\n',
      ),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 81,
      col: 18,
      path: 'spec.service.match[0].uri.regex',
    },
  },
  {
    name: 'canary retryOn with an unknown condition',
    yaml:
      BASE +
      '---\n' +
      canary(
        '  service:\n    port: 9080\n    retries:\n      attempts: 2\n      retryOn: gateway_error\n',
      ),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 81,
      col: 16,
      path: 'spec.service.retries.retryOn',
    },
  },
  {
    name: 'canary A/B match regex the proxies cannot compile',
    yaml:
      BASE +
      '---\n' +
      canary(
        '  service:\n    port: 9080\n  analysis:\n    interval: 1m\n    threshold: 5\n    iterations: 10\n    match:\n      - headers:\n          cookie:\n            regex: "^(.*?;)?(canary=always)(;.*)?\\\\z"\n',
      ),
    expect: {
      code: 'SLUICE_VALUE_INVALID',
      line: 86,
      col: 20,
      path: 'spec.analysis.match[0].headers.cookie.regex',
    },
  },
  {
    name: 'alert provider that does not exist',
    yaml:
      BASE +
      '---\n' +
      canary(
        '  service:\n    port: 9080\n  analysis:\n    interval: 1m\n    threshold: 5\n    alerts:\n      - name: on-call\n        severity: error\n        providerRef:\n          name: pagerduty\n',
      ),
    expect: { code: 'SLUICE_REF_PROVIDER_NOT_FOUND', line: 86, col: 17 },
  },
);

for (const c of cases) {
  test(`broken input: ${c.name}`, () => {
    const result = load({ 'f.yaml': c.yaml }, c.references ? { references: c.references } : {});
    expectOne(result, c.expect);
  });
}

test('at least 40 broken-input cases', () => {
  assert.ok(cases.length >= 40, `only ${cases.length} cases`);
});

test('--references off silences every cross-object finding, and only those', () => {
  const yaml =
    BASE +
    '---\n' +
    vs(
      '  hosts: [reviews]\n  gateways: [nowhere]\n  http:\n    - route:\n        - destination: {host: ratings, subset: v9}\n          weight: 50\n        - destination: {host: reviews}\n          weight: 40\n',
    );
  const strict = load({ 'f.yaml': yaml });
  assert.deepEqual(
    errors(strict)
      .map((d) => d.code)
      .sort(),
    ['SLUICE_REF_GATEWAY_NOT_FOUND', 'SLUICE_REF_HOST_NOT_FOUND', 'SLUICE_ROUTE_WEIGHT_SUM'],
  );
  const off = load({ 'f.yaml': yaml }, { references: 'off' });
  assert.deepEqual(
    errors(off).map((d) => d.code),
    ['SLUICE_ROUTE_WEIGHT_SUM'],
  );
});

test('a broken object does not stop the valid ones in the same file', () => {
  const result = load({
    'f.yaml': BASE + '---\napiVersion: v1\nkind: Service\nmetadata:\n  name: Bad_Name\n',
  });
  const valid = result.objects.filter((o) => o.errors === 0).map((o) => `${o.kind}/${o.name}`);
  assert.deepEqual(valid, [
    'Deployment/reviews',
    'Service/reviews',
    'DestinationRule/reviews',
    'Gateway/public',
  ]);
});
