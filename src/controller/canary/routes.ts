/**
 * The canary endpoints of the controller's API (INTERFACES.md):
 * - `GET /api/v1/canaries`, `GET /api/v1/canaries/{namespace}/{name}`: status;
 * - `POST /api/v1/canaries/{namespace}/{name}/{action}` with action promote, abort, pause,
 *   resume or retry: 200 `{accepted: true, message}` when done, 409 SLUICE_CANARY_REFUSED
 *   with the reason, 404 SLUICE_CANARY_NOT_FOUND. The POSTs need `Authorization: Bearer
 *   TOKEN`, the token in `<stateDir>/api-token` (compared in constant time); 401
 *   SLUICE_API_UNAUTHORIZED otherwise.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorBody, type ApiRequest, type ApiResponse, type Route } from '../api-server.js';
import type { StateStore } from '../state-store.js';
import { MANUAL_KINDS, type CanaryController, type ManualKind } from './canary-controller.js';
import { CanaryControllerError } from './errors.js';

/** The API token's file in the state directory (the runner creates it too, same format). */
export const API_TOKEN_FILE = 'api-token';

/** Reads the API token, creating it (mode 0600) when missing. */
export function readApiToken(store: Pick<StateStore, 'dir' | 'writeAtomic'>): string {
  try {
    const token = readFileSync(join(store.dir, API_TOKEN_FILE), 'utf8').trim();
    if (token.length > 0) return token;
  } catch {
    // missing: created below
  }
  const token = randomBytes(24).toString('base64url');
  store.writeAtomic(API_TOKEN_FILE, token + '\n', 0o600);
  return token;
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Whether the request carries `Authorization: Bearer <token>` (constant-time comparison). */
export function authorized(headers: ApiRequest['headers'], token: string): boolean {
  const value = headers.authorization;
  const header = Array.isArray(value) ? value[0] : value;
  if (typeof header !== 'string') return false;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) return false;
  // Equal-length digests: the comparison time says nothing about the token.
  return timingSafeEqual(digest(m[1] as string), digest(token)) && token.length > 0;
}

export interface CanaryRoutesOptions {
  controller: CanaryController;
  /** The token, read per request (default: `<stateDir>/api-token` via readApiToken). */
  token: () => string;
}

const isManual = (v: string): v is ManualKind => (MANUAL_KINDS as readonly string[]).includes(v);

/** The canary routes for the controller's ApiServer. */
export function canaryRoutes(opts: CanaryRoutesOptions): Route[] {
  const { controller } = opts;
  const notFound = (ns: string, name: string): ApiResponse => ({
    status: 404,
    body: errorBody('SLUICE_CANARY_NOT_FOUND', `no Canary ${ns}/${name} in the applied revision`),
  });
  return [
    {
      method: 'GET',
      path: '/api/v1/canaries',
      handler: () => ({ status: 200, body: { canaries: controller.list() } }),
    },
    {
      method: 'GET',
      path: '/api/v1/canaries/{namespace}/{name}',
      handler: (req) => {
        const { namespace = '', name = '' } = req.params;
        const view = controller.get(namespace, name);
        return view ? { status: 200, body: view } : notFound(namespace, name);
      },
    },
    {
      method: 'POST',
      path: '/api/v1/canaries/{namespace}/{name}/{action}',
      maxBody: 4096,
      handler: async (req) => {
        const { namespace = '', name = '', action = '' } = req.params;
        let token: string;
        try {
          token = opts.token();
        } catch {
          token = '';
        }
        if (!authorized(req.headers, token)) {
          return {
            status: 401,
            headers: { 'www-authenticate': 'Bearer' },
            body: errorBody(
              'SLUICE_API_UNAUTHORIZED',
              'this request needs Authorization: Bearer TOKEN (the token is in the state directory, file api-token)',
            ),
          };
        }
        if (!isManual(action)) {
          return {
            status: 404,
            body: errorBody(
              'SLUICE_CANARY_ACTION_UNKNOWN',
              `unknown action ${JSON.stringify(action)}; expected one of ${MANUAL_KINDS.join(', ')}`,
            ),
          };
        }
        try {
          const out = await controller.request(namespace, name, action);
          if (out.accepted) {
            return {
              status: 200,
              body: {
                accepted: true,
                message: out.message,
                canary: controller.get(namespace, name),
              },
            };
          }
          return {
            status: 409,
            body: {
              ...errorBody('SLUICE_CANARY_REFUSED', out.message),
              canary: controller.get(namespace, name),
            },
          };
        } catch (err) {
          if (err instanceof CanaryControllerError && err.code === 'SLUICE_CANARY_NOT_FOUND')
            return notFound(namespace, name);
          throw err;
        }
      },
    },
  ];
}
