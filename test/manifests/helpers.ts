import assert from 'node:assert/strict';
import {
  loadManifests,
  type Diagnostic,
  type LoadOptions,
  type LoadResult,
} from '../../src/manifests/index.js';

/** Loads files given as `{ path: content }`. */
export function load(files: Record<string, string | Buffer>, options?: LoadOptions): LoadResult {
  return loadManifests(
    Object.entries(files).map(([path, content]) => ({ path, content })),
    options,
  );
}

export interface Expected {
  code: string;
  line: number;
  col: number;
  severity?: Diagnostic['severity'];
  path?: string;
  message?: RegExp;
}

/** Asserts that exactly one diagnostic has the code, and that it sits where expected. */
export function expectOne(result: LoadResult, e: Expected): Diagnostic {
  const found = result.diagnostics.filter((d) => d.code === e.code);
  assert.equal(
    found.length,
    1,
    `expected one ${e.code}, got: ${JSON.stringify(result.diagnostics, null, 1)}`,
  );
  const d = found[0] as Diagnostic;
  assert.deepEqual(
    {
      line: d.line,
      col: d.col,
      severity: d.severity,
      ...(e.path !== undefined ? { path: d.path } : {}),
    },
    {
      line: e.line,
      col: e.col,
      severity: e.severity ?? 'error',
      ...(e.path !== undefined ? { path: e.path } : {}),
    },
    `position of ${e.code}: ${d.message}`,
  );
  if (e.message) assert.match(d.message, e.message);
  return d;
}

export function errors(result: LoadResult): Diagnostic[] {
  return result.diagnostics.filter((d) => d.severity === 'error');
}

/** Valid objects a test can build on (a small bookinfo-like app). */
export const BASE = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: reviews
  namespace: shop
spec:
  replicas: 1
  selector:
    matchLabels:
      app: reviews
  template:
    metadata:
      labels:
        app: reviews
        version: v1
    spec:
      containers:
        - name: reviews
          image: example/reviews:1
          command: ["node", "server.js"]
          ports:
            - name: http
              containerPort: 9080
---
apiVersion: v1
kind: Service
metadata:
  name: reviews
  namespace: shop
spec:
  selector:
    app: reviews
  ports:
    - name: http
      port: 9080
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata:
  name: reviews
  namespace: shop
spec:
  host: reviews
  subsets:
    - name: v1
      labels:
        version: v1
    - name: v2
      labels:
        version: v2
---
apiVersion: networking.istio.io/v1
kind: Gateway
metadata:
  name: public
  namespace: shop
spec:
  selector:
    istio: ingressgateway
  servers:
    - port:
        number: 80
        name: http
        protocol: HTTP
      hosts: ["*"]
`;
