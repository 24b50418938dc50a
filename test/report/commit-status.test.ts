// The commit status reporters against local servers that follow each host's documented API:
// one shared suite for GitHub, GitLab and Gitea, then what each host does differently.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createCommitStatusReporter } from '../../src/report/commit-status/factory.js';
import { resolveHost, truncate } from '../../src/report/commit-status/host.js';
import type {
  CommitStatusConfig,
  CommitStatusReporter,
} from '../../src/report/commit-status/reporter.js';
import { ReportError } from '../../src/report/errors.js';
import { startHostDouble, startServer, type HostDouble } from './support.js';

const TOKEN = 'tok_5ecret_Value_123';
const READ_ONLY = 'tok_read_only_456';
const SHA = '0123456789abcdef0123456789abcdef01234567';
const env = { SLUICE_TEST_TOKEN: TOKEN, SLUICE_RO_TOKEN: READ_ONLY };

async function rejection(p: Promise<unknown>): Promise<ReportError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ReportError, `not a ReportError: ${String(err)}`);
    assert.ok(!err.message.includes(TOKEN) && !err.message.includes(READ_ONLY), err.message);
    return err;
  }
  assert.fail('expected a rejection');
}

const HOSTS = [
  {
    type: 'github',
    repository: 'acme/shop',
    prefix: '/api/v3',
    max: 140,
    auth: (r: { headers: Record<string, unknown> }) =>
      r.headers.authorization === `Bearer ${TOKEN}`,
  },
  {
    type: 'gitlab',
    repository: 'acme/platform/shop',
    prefix: '/api/v4',
    max: 255,
    auth: (r: { headers: Record<string, unknown> }) => r.headers['private-token'] === TOKEN,
  },
  {
    type: 'gitea',
    repository: 'acme/shop',
    prefix: '/api/v1',
    max: 255,
    auth: (r: { headers: Record<string, unknown> }) => r.headers.authorization === `token ${TOKEN}`,
  },
] as const;

for (const h of HOSTS) {
  describe(`${h.type} reporter`, () => {
    let host: HostDouble;
    let reporter: CommitStatusReporter;
    const config = (over: Partial<Record<string, unknown>> = {}) =>
      ({
        type: h.type,
        apiUrl: host.apiUrl,
        repository: h.repository,
        token: { env: 'SLUICE_TEST_TOKEN' },
        ...over,
      }) as CommitStatusConfig;
    before(async () => {
      host = await startHostDouble(h.type, {
        token: TOKEN,
        readOnlyToken: READ_ONLY,
        repository: h.repository,
        prefix: h.prefix,
        echoToken: true,
      });
      reporter = createCommitStatusReporter(config(), { env });
    });
    after(() => host.close());

    it('posts on the documented path with the documented auth header and fields', async () => {
      const r = await reporter.post({
        sha: SHA,
        context: 'sluice/canary/default/podinfo',
        state: 'pending',
        description: 'weight 10% · 2/2 checks passed · next in 10s',
        targetUrl: 'http://127.0.0.1:7070/api/v1/canaries/default/podinfo',
      });
      assert.deepEqual(r, { host: h.type, outcome: 'posted', httpStatus: 201 });
      const req = host.received.at(-1)!;
      assert.ok(h.auth(req), 'auth header');
      const encoded = h.type === 'gitlab' ? 'acme%2Fplatform%2Fshop' : 'acme/shop';
      const path = h.type === 'gitlab' ? `projects/${encoded}` : `repos/${encoded}`;
      assert.equal(req.url, `${h.prefix}/${path}/statuses/${SHA}`);
      const body = JSON.parse(req.body) as Record<string, unknown>;
      assert.equal(body.state, h.type === 'gitlab' ? 'running' : 'pending');
      assert.equal(body[h.type === 'gitlab' ? 'name' : 'context'], 'sluice/canary/default/podinfo');
      assert.equal(body.target_url, 'http://127.0.0.1:7070/api/v1/canaries/default/podinfo');
      assert.equal(reporter.maxDescription, h.max);
    });

    it('maps every sluice state to one the host accepts', async () => {
      for (const state of ['pending', 'success', 'failure', 'error'] as const) {
        const r = await reporter.post({
          sha: SHA,
          context: `states/${state}`,
          state,
          description: state,
        });
        assert.equal(r.outcome, 'posted');
      }
      const posted = host.statuses
        .filter((s) => s.context.startsWith('states/'))
        .map((s) => s.state);
      assert.deepEqual(
        posted,
        h.type === 'gitlab'
          ? ['running', 'success', 'failed', 'failed']
          : ['pending', 'success', 'failure', 'error'],
      );
    });

    it("cuts the description to the host's limit", async () => {
      await reporter.post({
        sha: SHA,
        context: 'long',
        state: 'failure',
        description: 'x'.repeat(400),
      });
      const stored = host.statuses.at(-1)!;
      assert.equal(Array.from(stored.description).length, h.max);
      assert.ok(stored.description.endsWith('…'));
    });

    it('401 for a wrong token, 403 for a token without write access, neither ever printed', async () => {
      const wrong = createCommitStatusReporter(config(), {
        env: { SLUICE_TEST_TOKEN: `${TOKEN}-old` },
      });
      const e401 = await rejection(
        wrong.post({ sha: SHA, context: 'c', state: 'success', description: 'd' }),
      );
      assert.equal(e401.code, 'SLUICE_REPORT_UNAUTHORIZED');
      assert.equal(e401.retriable, false);
      assert.ok(!e401.message.includes(`${TOKEN}-old`));
      assert.ok(e401.message.includes('[redacted]'), 'the echoed token is scrubbed');
      const ro = createCommitStatusReporter(config({ token: { env: 'SLUICE_RO_TOKEN' } }), { env });
      const e403 = await rejection(
        ro.post({ sha: SHA, context: 'c', state: 'success', description: 'd' }),
      );
      assert.equal(e403.code, 'SLUICE_REPORT_FORBIDDEN');
      assert.equal(
        JSON.stringify(e403),
        JSON.stringify({ code: e403.code, message: e403.message }),
      );
    });

    it('404 for an unknown repository', async () => {
      const other = createCommitStatusReporter(
        config({ repository: h.type === 'gitlab' ? 'acme/none/x' : 'acme/none' }),
        { env },
      );
      const e = await rejection(
        other.post({ sha: SHA, context: 'c', state: 'success', description: 'd' }),
      );
      assert.equal(e.code, 'SLUICE_REPORT_NOT_FOUND');
    });

    it('429 with Retry-After (seconds and HTTP date) and 5xx are retriable', async () => {
      host.script.push(
        {
          status: 429,
          headers: { 'retry-after': '7' },
          body: { message: 'API rate limit exceeded' },
        },
        {
          status: 429,
          headers: { 'retry-after': new Date(Date.now() + 60_000).toUTCString() },
          body: {},
        },
        { status: 503, body: 'upstream unavailable' },
        { status: 501, body: 'not implemented' },
      );
      const s = { sha: SHA, context: 'c', state: 'success', description: 'd' } as const;
      const a = await rejection(reporter.post(s));
      assert.deepEqual(
        [a.code, a.retriable, a.retryAfterMs, a.status],
        ['SLUICE_REPORT_RATE_LIMITED', true, 7000, 429],
      );
      const b = await rejection(reporter.post(s));
      assert.ok(b.retryAfterMs! > 50_000 && b.retryAfterMs! <= 60_000, String(b.retryAfterMs));
      const c = await rejection(reporter.post(s));
      assert.deepEqual([c.code, c.retriable], ['SLUICE_REPORT_SERVER_ERROR', true]);
      const d = await rejection(reporter.post(s));
      assert.deepEqual([d.code, d.retriable], ['SLUICE_REPORT_SERVER_ERROR', false]);
    });

    it('a rate limit answered as 403 with x-ratelimit-remaining: 0 is a rate limit', async () => {
      const reset = Math.ceil(Date.now() / 1000) + 30;
      host.script.push({
        status: 403,
        headers: { 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) },
        body: { message: 'API rate limit exceeded' },
      });
      const e = await rejection(
        reporter.post({ sha: SHA, context: 'c', state: 'success', description: 'd' }),
      );
      assert.equal(e.code, 'SLUICE_REPORT_RATE_LIMITED');
      assert.ok(e.retriable && e.retryAfterMs! > 20_000);
    });

    it('an unreachable host is retriable, and a bad status is refused before any request', async () => {
      const dead = await startServer(() => ({ status: 200 }));
      await dead.close();
      const r = createCommitStatusReporter(config({ apiUrl: dead.url }), { env, timeoutMs: 2000 });
      const e = await rejection(
        r.post({ sha: SHA, context: 'c', state: 'success', description: 'd' }),
      );
      assert.deepEqual([e.code, e.retriable], ['SLUICE_REPORT_UNREACHABLE', true]);
      const n = host.received.length;
      for (const bad of [
        { sha: 'main', context: 'c', state: 'success' },
        { sha: SHA, context: ' ', state: 'success' },
        { sha: SHA, context: 'c', state: 'warning' },
      ]) {
        const e2 = await rejection(reporter.post({ description: 'd', ...bad } as never));
        assert.equal(e2.code, 'SLUICE_REPORT_INVALID_STATUS');
      }
      assert.equal(host.received.length, n);
    });

    it('reads the token from a file at each post, and says which source is missing', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'sluice-report-'));
      try {
        const file = join(dir, 'token');
        writeFileSync(file, `${TOKEN}\n`, { mode: 0o600 });
        const r = createCommitStatusReporter(config({ token: { file } }));
        assert.equal(
          (await r.post({ sha: SHA, context: 'file', state: 'success', description: 'd' })).outcome,
          'posted',
        );
        rmSync(file);
        const e = await rejection(
          r.post({ sha: SHA, context: 'file', state: 'success', description: 'd' }),
        );
        assert.equal(e.code, 'SLUICE_REPORT_TOKEN');
        assert.match(e.message, /unreadable \(ENOENT\)/);
        const unset = createCommitStatusReporter(config({ token: { env: 'SLUICE_NOT_SET' } }), {
          env: {},
        });
        const e2 = await rejection(
          unset.post({ sha: SHA, context: 'c', state: 'success', description: 'd' }),
        );
        assert.equal(e2.code, 'SLUICE_REPORT_TOKEN');
        assert.match(e2.message, /SLUICE_NOT_SET is unset or empty/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}

describe('host specifics', () => {
  const hosts: HostDouble[] = [];
  after(() => Promise.all(hosts.map((h) => h.close())));

  it('GitHub: 422 for a too-long description and at 1,000 statuses per sha and context', async () => {
    const gh = await startHostDouble('github', {
      token: TOKEN,
      repository: 'acme/shop',
      maxDescription: 100,
      statusLimit: 1000,
    });
    hosts.push(gh);
    const r = createCommitStatusReporter(
      {
        type: 'github',
        apiUrl: gh.apiUrl,
        repository: 'acme/shop',
        token: { env: 'SLUICE_TEST_TOKEN' },
      },
      { env },
    );
    const long = await rejection(
      r.post({ sha: SHA, context: 'c', state: 'success', description: 'y'.repeat(130) }),
    );
    assert.deepEqual(
      [long.code, long.status, long.retriable],
      ['SLUICE_REPORT_DESCRIPTION_TOO_LONG', 422, false],
    );
    gh.counts.set(`${SHA} sluice/sync`, 1000);
    const full = await rejection(
      r.post({ sha: SHA, context: 'sluice/sync', state: 'success', description: 'd' }),
    );
    assert.deepEqual([full.code, full.status], ['SLUICE_REPORT_STATUS_LIMIT', 422]);
    // The limit counts per context (case-insensitive on GitHub), not per commit.
    assert.equal(
      (await r.post({ sha: SHA, context: 'sluice/other', state: 'success', description: 'd' }))
        .outcome,
      'posted',
    );
  });

  it('GitLab: a repeated state is "Cannot transition", which means unchanged; pending goes as running', async () => {
    const gl = await startHostDouble('gitlab', { token: TOKEN, repository: 'acme/platform/shop' });
    hosts.push(gl);
    const r = createCommitStatusReporter(
      {
        type: 'gitlab',
        apiUrl: gl.apiUrl,
        repository: 'acme/platform/shop',
        token: { env: 'SLUICE_TEST_TOKEN' },
      },
      { env },
    );
    const s = { sha: SHA, context: 'sluice/canary/a/b', state: 'pending' } as const;
    assert.equal((await r.post({ ...s, description: 'weight 10%' })).outcome, 'posted');
    const again = await r.post({ ...s, description: 'weight 20%' });
    assert.deepEqual(again, { host: 'gitlab', outcome: 'unchanged', httpStatus: 400 });
    assert.equal(
      (await r.post({ ...s, state: 'success', description: 'promoted' })).outcome,
      'posted',
    );
    assert.deepEqual(
      gl.statuses.map((x) => x.state),
      ['running', 'success'],
    );
  });

  it('GitLab: a description over the limit is a coded error, not a generic rejection', async () => {
    const gl = await startHostDouble('gitlab', {
      token: TOKEN,
      repository: 'acme/shop',
      maxDescription: 50,
    });
    hosts.push(gl);
    const r = createCommitStatusReporter(
      {
        type: 'gitlab',
        apiUrl: gl.apiUrl,
        repository: 'acme/shop',
        token: { env: 'SLUICE_TEST_TOKEN' },
      },
      { env },
    );
    const e = await rejection(
      r.post({ sha: SHA, context: 'c', state: 'success', description: 'z'.repeat(80) }),
    );
    assert.equal(e.code, 'SLUICE_REPORT_DESCRIPTION_TOO_LONG');
  });
});

describe('repository and API URL from the source URL', () => {
  const cases: [string, 'github' | 'gitlab' | 'gitea', string, string[]][] = [
    ['https://github.com/acme/shop.git', 'github', 'https://api.github.com', ['acme', 'shop']],
    ['https://github.com/acme/shop', 'github', 'https://api.github.com', ['acme', 'shop']],
    ['git@github.com:acme/shop.git', 'github', 'https://api.github.com', ['acme', 'shop']],
    ['ssh://git@github.com/acme/shop.git', 'github', 'https://api.github.com', ['acme', 'shop']],
    [
      'ssh://git@ghe.corp:2222/acme/shop.git',
      'github',
      'https://ghe.corp/api/v3',
      ['acme', 'shop'],
    ],
    ['https://ghe.corp/acme/shop.git', 'github', 'https://ghe.corp/api/v3', ['acme', 'shop']],
    [
      'https://gitlab.com/acme/platform/shop.git',
      'gitlab',
      'https://gitlab.com/api/v4',
      ['acme', 'platform', 'shop'],
    ],
    [
      'git@gitlab.corp:acme/a/b/shop.git',
      'gitlab',
      'https://gitlab.corp/api/v4',
      ['acme', 'a', 'b', 'shop'],
    ],
    ['https://git.corp/gitea/acme/shop.git', 'gitea', 'https://git.corp/api/v1', ['acme', 'shop']],
    ['git+ssh://git@gitea.corp/acme/shop', 'gitea', 'https://gitea.corp/api/v1', ['acme', 'shop']],
  ];
  for (const [url, type, apiUrl, segments] of cases)
    it(`${type}: ${url}`, () => {
      assert.deepEqual(resolveHost(type, { sourceUrl: url, token: { env: 'X' } }), {
        apiUrl,
        segments,
      });
    });

  it('an explicit repository and API URL win; GitHub Enterprise keeps its /api/v3', () => {
    assert.deepEqual(
      resolveHost('github', {
        sourceUrl: 'git@github.com:x/y.git',
        repository: 'acme/shop',
        apiUrl: 'https://ghe.corp/api/v3/',
        token: { env: 'X' },
      }),
      { apiUrl: 'https://ghe.corp/api/v3', segments: ['acme', 'shop'] },
    );
  });

  it('local paths, file URLs, bad repositories and bad API URLs are config errors', () => {
    const bad: [Parameters<typeof resolveHost>[0], Record<string, string>][] = [
      ['github', { sourceUrl: '/srv/git/shop' }],
      ['github', { sourceUrl: './shop' }],
      ['gitea', { sourceUrl: 'file:///srv/git/shop.git' }],
      ['github', { sourceUrl: 'https://github.com/acme' }],
      ['github', { repository: 'acme/platform/shop' }],
      ['gitea', { repository: 'acme/shop' }],
      ['gitlab', { repository: 'shop', apiUrl: 'https://gitlab.corp/api/v4' }],
      ['github', { repository: 'a/b', apiUrl: 'ftp://ghe.corp/api/v3' }],
      ['github', { repository: 'a/b', apiUrl: 'https://user:pw@ghe.corp/api/v3' }],
    ];
    for (const [type, cfg] of bad)
      assert.throws(
        () => resolveHost(type, { ...cfg, token: { env: 'X' } }),
        (e: unknown) => e instanceof ReportError && e.code === 'SLUICE_REPORT_CONFIG',
        JSON.stringify(cfg),
      );
  });
});

describe('reporter factory', () => {
  it('an unknown type or a missing token source is a coded error, never a silent off', () => {
    for (const cfg of [
      { type: 'bitbucket' },
      {},
      { type: 'github', repository: 'a/b' },
      { type: 'github', repository: 'a/b', token: { value: 'inline' } },
      { type: 'gitlab', repository: 'a/b', token: { env: 'X' }, apiUrl: 7 },
    ])
      assert.throws(
        () => createCommitStatusReporter(cfg as never),
        (e: unknown) => e instanceof ReportError && e.code === 'SLUICE_REPORT_CONFIG',
        JSON.stringify(cfg),
      );
  });

  it('off posts nothing and says so', async () => {
    const off = createCommitStatusReporter({ type: 'off' });
    assert.deepEqual(
      await off.post({ sha: SHA, context: 'c', state: 'success', description: 'd' }),
      {
        host: 'off',
        outcome: 'unchanged',
        httpStatus: 0,
      },
    );
  });

  it('truncate counts characters, not UTF-16 units, and keeps one line', () => {
    assert.equal(truncate('a\n  b', 10), 'a b');
    const t = truncate('·'.repeat(5) + '😀'.repeat(10), 8);
    assert.equal(Array.from(t).length, 8);
    assert.ok(t.endsWith('…'));
  });
});
