/**
 * Request authentication and authorization in a real proxy: JWT valid / expired / wrong
 * issuer / wrong audience / missing, token outputs, a jwksUri served by a local server whose
 * cached keys keep working once it is down, and a DENY/ALLOW matrix over mTLS and plaintext.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type net from 'node:net';
import { test } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose';
import type { AuthzPolicy, JwtRule } from '../../../src/api/proxy-config.js';
import { request, upstream, withCleanup } from '../helpers.js';
import {
  eventually,
  inboundConfig,
  issue,
  metrics,
  mtlsRequest,
  newCa,
  serverProxy,
} from './helpers.js';

const ISS = 'https://issuer.example';
type SigningKey = Parameters<SignJWT['sign']>[0];

async function keys(kid: string): Promise<{ priv: SigningKey; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  return { priv: privateKey, jwk };
}

function token(
  priv: SigningKey,
  kid: string,
  claims: Record<string, unknown> = {},
  opts: { iss?: string; aud?: string; exp?: number } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: 'alice', groups: ['dev'], ...claims })
    .setProtectedHeader({ alg: 'ES256', kid })
    .setIssuer(opts.iss ?? ISS)
    .setAudience(opts.aud ?? 'api')
    .setIssuedAt(now - 10)
    .setExpirationTime(opts.exp ?? now + 3600)
    .sign(priv);
}

test('JWT: valid, expired, wrong issuer, wrong audience, garbage, missing; outputs and forwarding', () =>
  withCleanup(async (defer) => {
    const k = await keys('k1');
    const app = await upstream('app');
    defer(() => app.close());
    const rule: JwtRule = {
      issuer: ISS,
      audiences: ['api'],
      jwks: JSON.stringify({ keys: [k.jwk] }),
      outputPayloadToHeader: 'x-jwt-payload',
      outputClaimToHeaders: [{ header: 'x-sub', claim: 'sub' }],
    };
    const s = await serverProxy(inboundConfig(app.port, { jwtRules: [rule] }), null);
    defer(() => s.proxy.stop());
    const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

    const ok = await request(s.inbound, {
      headers: { ...bearer(await token(k.priv, 'k1')), 'x-sub': 'forged' },
    });
    assert.equal(ok.status, 200);
    const seen = app.seen.at(-1)!;
    assert.equal(
      seen.headers.authorization,
      undefined,
      'token removed (forwardOriginalToken false)',
    );
    assert.equal(seen.headers['x-sub'], 'alice', 'claim header set, the forged one replaced');
    const payload = JSON.parse(
      Buffer.from(String(seen.headers['x-jwt-payload']), 'base64url').toString(),
    ) as { sub: string; iss: string };
    assert.equal(payload.sub, 'alice');
    // again: served from the verified-token cache, same answer
    assert.equal(
      (await request(s.inbound, { headers: bearer(await token(k.priv, 'k1')) })).status,
      200,
    );
    // access_token query parameter is a default location
    assert.equal(
      (await request(s.inbound, { path: `/?access_token=${await token(k.priv, 'k1')}` })).status,
      200,
    );

    const cases: [string, Promise<string> | string, RegExp][] = [
      [
        'expired',
        token(k.priv, 'k1', {}, { exp: Math.floor(Date.now() / 1000) - 3600 }),
        /expired/,
      ],
      [
        'wrong issuer',
        token(k.priv, 'k1', {}, { iss: 'https://evil' }),
        /issuer is not configured/,
      ],
      ['wrong audience', token(k.priv, 'k1', {}, { aud: 'other' }), /Audiences/],
      ['unknown key', (async () => token((await keys('k2')).priv, 'k2'))(), /verification fails/],
      ['garbage', 'not.a.jwt', /Header\.Payload\.Signature|verification fails/],
    ];
    for (const [name, t, msg] of cases) {
      const r = await request(s.inbound, { headers: bearer(await t) });
      assert.equal(r.status, 401, name);
      assert.equal(r.headers['x-sluice-error-code'], 'SLUICE_SECURITY_JWT_INVALID', name);
      assert.match(r.body, msg, name);
    }
    // missing token: allowed (no policy requires one), with no request.auth outputs
    const missing = await request(s.inbound, { headers: { 'x-jwt-payload': 'forged' } });
    assert.equal(missing.status, 200);
    assert.equal(app.seen.at(-1)!.headers['x-jwt-payload'], undefined);
    assert.ok(
      /sluice_proxy_jwt_rejected_total 5\n/.test(await metrics(s.admin)),
      'rejections counted',
    );

    // a policy requiring a request principal: missing → 403, valid → 200
    const allow: AuthzPolicy = {
      name: 'default/require-jwt',
      action: 'ALLOW',
      rules: [{ from: [{ source: { requestPrincipals: [`${ISS}/*`] } }] }],
    };
    assert.ok(
      s.proxy.apply(
        inboundConfig(app.port, { jwtRules: [rule], authorization: { policies: [allow] } }, 'v2'),
        'test',
      ).ok,
    );
    const denied = await request(s.inbound);
    assert.equal(denied.status, 403);
    assert.equal(denied.body, 'RBAC: access denied');
    assert.equal(
      (await request(s.inbound, { headers: bearer(await token(k.priv, 'k1')) })).status,
      200,
    );
    const m = await metrics(s.admin);
    assert.ok(/response_code="403",response_flags="RBAC"[^\n]* 1\n/.test(m), '403 RBAC in metrics');
    assert.ok(/response_code="401"/.test(m), '401 in metrics');
  }));

test('jwksUri: fetched from a local server; once it is down, cached keys keep working', () =>
  withCleanup(async (defer) => {
    const k = await keys('k1');
    let fetches = 0;
    const jwksServer = http.createServer((_req, res) => {
      fetches++;
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [k.jwk] }));
    });
    await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', () => r()));
    const port = (jwksServer.address() as net.AddressInfo).port;
    let up = true;
    const stopJwks = () =>
      new Promise<void>((r) => {
        if (!up) return r();
        up = false;
        jwksServer.closeAllConnections();
        jwksServer.close(() => r());
      });
    defer(stopJwks);
    const app = await upstream('app');
    defer(() => app.close());
    const rule: JwtRule = {
      issuer: ISS,
      jwksUri: `http://127.0.0.1:${port}/jwks.json`,
      // stale at once: every request asks for a background refresh
      jwksCacheDuration: '1ms',
    };
    const s = await serverProxy(inboundConfig(app.port, { jwtRules: [rule] }), null);
    defer(() => s.proxy.stop());
    const auth = async () => ({
      authorization: `Bearer ${await token(k.priv, 'k1', { n: Math.random() })}`,
    });
    assert.equal((await request(s.inbound, { headers: await auth() })).status, 200);
    assert.ok(fetches >= 1);
    await stopJwks();
    for (let i = 0; i < 5; i++)
      assert.equal((await request(s.inbound, { headers: await auth() })).status, 200);
    await eventually(async () =>
      /sluice_proxy_jwks_fetch_failures_total [1-9]/.test(await metrics(s.admin)),
    );
    // a rule whose jwksUri was never reachable: tokens cannot verify (401), no crash
    const dead: JwtRule = { issuer: 'https://dead', jwksUri: `http://127.0.0.1:${port}/dead.json` };
    assert.ok(s.proxy.apply(inboundConfig(app.port, { jwtRules: [rule, dead] }, 'v2'), 't').ok);
    const r = await request(s.inbound, {
      headers: {
        authorization: `Bearer ${await token(k.priv, 'k1', {}, { iss: 'https://dead' })}`,
      },
    });
    assert.equal(r.status, 401);
    assert.match(r.body, /Jwks remote fetch is failed/);
  }));

test('authorization matrix in the proxy: DENY by principal, namespace, path template, method, header, ipBlock and not forms; ALLOW with no match', () =>
  withCleanup(async (defer) => {
    const ca = await newCa();
    const app = await upstream('app');
    defer(() => app.close());
    const s = await serverProxy(
      inboundConfig(app.port, { tls: { mode: 'PERMISSIVE' } }),
      await issue(ca, 'default', 'server'),
    );
    defer(() => s.proxy.stop());
    const sleep = await issue(ca, 'default', 'sleep');
    const prodUser = await issue(ca, 'prod', 'user');

    type Call = {
      id?: typeof sleep;
      path?: string;
      method?: string;
      headers?: Record<string, string>;
    };
    const call = async (c: Call) =>
      c.id ? (await mtlsRequest(s.inbound, c.id, c)).status : (await request(s.inbound, c)).status;
    const cases: [string, AuthzPolicy, Call, number][] = [
      [
        'principal',
        denyRule({ from: [{ source: { principals: ['cluster.local/ns/default/sa/sleep'] } }] }),
        { id: sleep },
        403,
      ],
      [
        'principal other',
        denyRule({ from: [{ source: { principals: ['cluster.local/ns/default/sa/sleep'] } }] }),
        { id: prodUser },
        200,
      ],
      [
        'principal spoofed by a plaintext header',
        denyRule({ from: [{ source: { notPrincipals: ['cluster.local/ns/default/sa/sleep'] } }] }),
        { headers: { 'x-sluice-peer': 'default/sleep/v1/sleep' } },
        403,
      ],
      [
        'namespace',
        denyRule({ from: [{ source: { namespaces: ['prod'] } }] }),
        { id: prodUser },
        403,
      ],
      [
        'notNamespaces',
        denyRule({ from: [{ source: { notNamespaces: ['default'] } }] }),
        { id: sleep },
        200,
      ],
      [
        'path template',
        denyRule({ to: [{ operation: { paths: ['/admin/{*}/delete'] } }] }),
        { path: '/admin/u1/delete' },
        403,
      ],
      [
        'path template other',
        denyRule({ to: [{ operation: { paths: ['/admin/{*}/delete'] } }] }),
        { path: '/admin/u1/x/delete' },
        200,
      ],
      [
        'method',
        denyRule({ to: [{ operation: { methods: ['DELETE'] } }] }),
        { method: 'DELETE' },
        403,
      ],
      [
        'notMethods',
        denyRule({ to: [{ operation: { notMethods: ['GET'] } }] }),
        { method: 'POST' },
        403,
      ],
      [
        'header',
        denyRule({ when: [{ key: 'request.headers[x-env]', values: ['canary*'] }] }),
        { headers: { 'x-env': 'canary-1' } },
        403,
      ],
      ['ipBlock', denyRule({ from: [{ source: { ipBlocks: ['127.0.0.0/8'] } }] }), {}, 403],
      [
        'ipBlock over mTLS',
        denyRule({ from: [{ source: { ipBlocks: ['127.0.0.1/32'] } }] }),
        { id: sleep },
        403,
      ],
      ['notIpBlocks', denyRule({ from: [{ source: { notIpBlocks: ['127.0.0.0/8'] } }] }), {}, 200],
      [
        'allow with no match',
        {
          name: 'default/allow-get',
          action: 'ALLOW',
          rules: [{ to: [{ operation: { methods: ['GET'] } }] }],
        },
        { method: 'POST' },
        403,
      ],
      [
        'allow match',
        {
          name: 'default/allow-get',
          action: 'ALLOW',
          rules: [{ to: [{ operation: { methods: ['GET'] } }] }],
        },
        {},
        200,
      ],
      [
        'allow by principal only over mTLS',
        {
          name: 'default/allow-sleep',
          action: 'ALLOW',
          rules: [{ from: [{ source: { principals: ['cluster.local/ns/default/sa/sleep'] } }] }],
        },
        {},
        403,
      ],
    ];
    let v = 1;
    for (const [name, policy, c, status] of cases) {
      const r = s.proxy.apply(
        inboundConfig(
          app.port,
          { tls: { mode: 'PERMISSIVE' }, authorization: { policies: [policy] } },
          `v${++v}`,
        ),
        't',
      );
      assert.ok(r.ok, `${name}: ${r.error?.message}`);
      assert.equal(await call(c), status, name);
    }
    const m = await metrics(s.admin);
    assert.ok(/sluice_proxy_rbac_denied_total 11\n/.test(m), 'eleven denials counted');
  }));

function denyRule(rule: AuthzPolicy['rules'][number]): AuthzPolicy {
  return { name: 'default/deny', action: 'DENY', rules: [rule] };
}
