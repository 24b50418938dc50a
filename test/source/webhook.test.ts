import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { WebhookError } from '../../src/source/errors.js';
import {
  handleGitHook,
  parseWebhookEvent,
  readHookBody,
  verifyWebhook,
  webhookBranch,
  type HeaderBag,
} from '../../src/source/webhook.js';

const SECRET = 'hook-secret';
const sign = (body: Buffer, secret = SECRET) =>
  `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

const githubPush = (ref = 'refs/heads/main') =>
  Buffer.from(
    JSON.stringify({
      ref,
      before: '0'.repeat(40),
      after: 'a'.repeat(40),
      repository: { full_name: 'o/r' },
    }),
  );
const gitlabPush = (ref = 'refs/heads/main', kind = 'push') =>
  Buffer.from(JSON.stringify({ object_kind: kind, ref, checkout_sha: 'b'.repeat(40) }));

// `null` means the header is left out (undefined would pick the default).
function github(body: Buffer, event = 'push', signature: string | null = sign(body)): HeaderBag {
  return {
    'content-type': 'application/json',
    'x-github-event': event,
    'x-github-delivery': 'd1',
    ...(signature !== null ? { 'x-hub-signature-256': signature } : {}),
  };
}

function gitlab(token: string | null = SECRET, event = 'Push Hook'): HeaderBag {
  return { 'X-Gitlab-Event': event, ...(token !== null ? { 'X-Gitlab-Token': token } : {}) };
}

function generic(body: Buffer, signature: string | null = sign(body)): HeaderBag {
  return signature !== null ? { 'X-Signature': signature } : {};
}

function rejectsCode(fn: () => unknown, code: string): void {
  assert.throws(fn, (e: unknown) => e instanceof WebhookError && e.code === code);
}

describe('verifyWebhook', () => {
  const body = githubPush();
  const cases: Array<[name: string, headers: HeaderBag, ok: boolean]> = [
    ['GitHub, good signature', github(body), true],
    [
      'GitHub, upper-case hex',
      github(body, 'push', `sha256=${sign(body).slice(7).toUpperCase()}`),
      true,
    ],
    ['GitHub, signature of another body', github(body, 'push', sign(Buffer.from('other'))), false],
    ['GitHub, signature with another secret', github(body, 'push', sign(body, 'wrong')), false],
    ['GitHub, missing signature', github(body, 'push', null), false],
    [
      'GitHub, sha1 signature only',
      { ...github(body, 'push', null), 'x-hub-signature': 'sha1=abc' },
      false,
    ],
    ['GitHub, truncated signature', github(body, 'push', sign(body).slice(0, 40)), false],
    ['GitHub, not hex', github(body, 'push', `sha256=${'z'.repeat(64)}`), false],
    ['GitLab, good token', gitlab(), true],
    ['GitLab, wrong token', gitlab('hook-secreT'), false],
    ['GitLab, token that is a prefix', gitlab('hook'), false],
    ['GitLab, missing token', gitlab(null), false],
    ['generic, good signature', generic(body), true],
    ['generic, bad signature', generic(body, sign(body, 'x')), false],
    ['generic, missing signature', generic(body, null), false],
    ['generic, headers in any case', { 'x-SIGNATURE': sign(body) }, true],
    ['generic, repeated header (first wins)', { 'x-signature': [sign(body), 'sha256=00'] }, true],
  ];
  for (const [name, headers, ok] of cases) {
    it(`${name} → ${ok ? 'accepted' : 'SLUICE_WEBHOOK_SIGNATURE'}`, () => {
      if (ok) assert.equal(verifyWebhook({ headers, body, secret: SECRET }).verified, true);
      else
        rejectsCode(
          () => verifyWebhook({ headers, body, secret: SECRET }),
          'SLUICE_WEBHOOK_SIGNATURE',
        );
    });
  }
  it('checks nothing without a secret', () => {
    assert.deepEqual(verifyWebhook({ headers: github(body, 'push', null), body }), {
      provider: 'github',
      verified: false,
    });
    assert.equal(verifyWebhook({ headers: {}, body, secret: '' }).verified, false);
  });
});

describe('parseWebhookEvent and webhookBranch', () => {
  it('reads GitHub pushes, tag pushes and pings', () => {
    assert.equal(webhookBranch(github(githubPush()), githubPush()), 'main');
    assert.equal(
      webhookBranch(github(githubPush('refs/heads/feature/x')), githubPush('refs/heads/feature/x')),
      'feature/x',
    );
    const tag = parseWebhookEvent(github(githubPush('refs/tags/v1')), githubPush('refs/tags/v1'));
    assert.equal(tag.branch, null);
    assert.equal(tag.tag, 'v1');
    assert.equal(tag.after, 'a'.repeat(40));
    const pingBody = Buffer.from(JSON.stringify({ zen: 'Design for failure.', hook_id: 1 }));
    const ping = parseWebhookEvent(github(pingBody, 'ping'), pingBody);
    assert.equal(ping.ping, true);
    assert.equal(ping.branch, null);
  });

  it('reads GitHub form-encoded payloads', () => {
    const form = Buffer.from(
      `payload=${encodeURIComponent(githubPush('refs/heads/dev').toString())}`,
    );
    const headers = { ...github(form), 'content-type': 'application/x-www-form-urlencoded' };
    assert.equal(webhookBranch(headers, form), 'dev');
  });

  it('reads GitLab push and tag push hooks', () => {
    const push = parseWebhookEvent(gitlab(), gitlabPush('refs/heads/release'));
    assert.deepEqual(
      [push.provider, push.push, push.branch, push.after],
      ['gitlab', true, 'release', 'b'.repeat(40)],
    );
    const tag = parseWebhookEvent(
      gitlab(SECRET, 'Tag Push Hook'),
      gitlabPush('refs/tags/v2', 'tag_push'),
    );
    assert.deepEqual([tag.push, tag.tag], [true, 'v2']);
    const mr = parseWebhookEvent(
      gitlab(SECRET, 'Merge Request Hook'),
      Buffer.from('{"object_kind":"merge_request"}'),
    );
    assert.equal(mr.push, false);
  });

  it('reads a generic payload with or without a ref', () => {
    assert.equal(webhookBranch({}, Buffer.from('{"ref":"refs/heads/main"}')), 'main');
    assert.equal(parseWebhookEvent({}, Buffer.from('{}')).ref, null);
    assert.equal(parseWebhookEvent({}, Buffer.alloc(0)).push, true);
  });

  it('rejects bodies that are not a JSON object', () => {
    for (const text of ['{"ref":', 'not json', '[1,2]', '"string"', 'null']) {
      rejectsCode(() => parseWebhookEvent({}, Buffer.from(text)), 'SLUICE_WEBHOOK_MALFORMED');
    }
    rejectsCode(
      () =>
        parseWebhookEvent(
          { 'content-type': 'application/x-www-form-urlencoded' },
          Buffer.from('a=b'),
        ),
      'SLUICE_WEBHOOK_MALFORMED',
    );
  });
});

describe('handleGitHook', () => {
  const watch = { branch: 'main' };
  const hook = (
    headers: HeaderBag,
    body: Buffer,
    more: Partial<Parameters<typeof handleGitHook>[0]> = {},
  ) => handleGitHook({ method: 'POST', headers, body, secret: SECRET, watch, ...more });

  const cases: Array<[string, () => ReturnType<typeof handleGitHook>, number, boolean, string?]> = [
    ['GitHub push to the branch', () => hook(github(githubPush()), githubPush()), 202, true],
    [
      'GitHub push, bad signature',
      () => hook(github(githubPush(), 'push', sign(Buffer.from('x'))), githubPush()),
      401,
      false,
      'SLUICE_WEBHOOK_SIGNATURE',
    ],
    [
      'GitHub push, no signature',
      () => hook(github(githubPush(), 'push', null), githubPush()),
      401,
      false,
      'SLUICE_WEBHOOK_SIGNATURE',
    ],
    [
      'GitHub push to another branch',
      () => hook(github(githubPush('refs/heads/dev')), githubPush('refs/heads/dev')),
      200,
      false,
    ],
    [
      'GitHub tag push while following a branch',
      () => hook(github(githubPush('refs/tags/v1')), githubPush('refs/tags/v1')),
      200,
      false,
    ],
    [
      'GitHub ping',
      () => hook(github(Buffer.from('{"zen":"z"}'), 'ping'), Buffer.from('{"zen":"z"}')),
      200,
      false,
    ],
    [
      'GitHub pull_request event',
      () =>
        hook(
          github(Buffer.from('{"action":"opened"}'), 'pull_request'),
          Buffer.from('{"action":"opened"}'),
        ),
      200,
      false,
    ],
    ['GitLab push to the branch', () => hook(gitlab(), gitlabPush()), 202, true],
    [
      'GitLab push, wrong token',
      () => hook(gitlab('nope'), gitlabPush()),
      401,
      false,
      'SLUICE_WEBHOOK_SIGNATURE',
    ],
    [
      'GitLab push, no token',
      () => hook(gitlab(null), gitlabPush()),
      401,
      false,
      'SLUICE_WEBHOOK_SIGNATURE',
    ],
    [
      'GitLab push to another branch',
      () => hook(gitlab(), gitlabPush('refs/heads/dev')),
      200,
      false,
    ],
    ['generic push to the branch', () => hook(generic(githubPush()), githubPush()), 202, true],
    [
      'generic, bad signature',
      () => hook(generic(githubPush(), 'sha256=00'), githubPush()),
      401,
      false,
      'SLUICE_WEBHOOK_SIGNATURE',
    ],
    [
      'generic, no signature',
      () => hook(generic(githubPush(), null), githubPush()),
      401,
      false,
      'SLUICE_WEBHOOK_SIGNATURE',
    ],
    ['generic without a ref', () => hook(generic(Buffer.from('{}')), Buffer.from('{}')), 202, true],
    [
      'malformed JSON (signed)',
      () => hook(generic(Buffer.from('{oops')), Buffer.from('{oops')),
      400,
      false,
      'SLUICE_WEBHOOK_MALFORMED',
    ],
    [
      'malformed JSON, unsigned: the signature is checked first',
      () => hook(generic(Buffer.from('{oops'), null), Buffer.from('{oops')),
      401,
      false,
      'SLUICE_WEBHOOK_SIGNATURE',
    ],
    [
      'body over 1 MiB',
      () => hook(generic(Buffer.alloc(1024 * 1024 + 1)), Buffer.alloc(1024 * 1024 + 1)),
      413,
      false,
      'SLUICE_WEBHOOK_TOO_LARGE',
    ],
    [
      'declared length over 1 MiB',
      () =>
        hook({ ...generic(githubPush()), 'content-length': String(2 * 1024 * 1024) }, githubPush()),
      413,
      false,
      'SLUICE_WEBHOOK_TOO_LARGE',
    ],
    [
      'GET',
      () => hook(github(githubPush()), githubPush(), { method: 'GET' }),
      405,
      false,
      'SLUICE_WEBHOOK_METHOD',
    ],
    [
      'no secret set: unsigned push accepted',
      () => hook(github(githubPush(), 'push', null), githubPush(), { secret: undefined }),
      202,
      true,
    ],
    [
      'following a tag: push of that tag',
      () =>
        hook(github(githubPush('refs/tags/v1')), githubPush('refs/tags/v1'), {
          watch: { tag: 'v1' },
        }),
      202,
      true,
    ],
    [
      'following a tag: push to a branch',
      () => hook(github(githubPush()), githubPush(), { watch: { tag: 'v1' } }),
      200,
      false,
    ],
    [
      'pinned commit: nothing to fetch',
      () => hook(github(githubPush()), githubPush(), { watch: { commit: 'c'.repeat(40) } }),
      200,
      false,
    ],
    [
      'default branch not known yet: any branch push',
      () =>
        hook(github(githubPush('refs/heads/x')), githubPush('refs/heads/x'), { watch: undefined }),
      202,
      true,
    ],
  ];
  for (const [name, run, status, trigger, code] of cases) {
    it(`${name} → ${status}${trigger ? ', fetch' : ''}`, () => {
      const d = run();
      assert.equal(d.status, status, d.reason);
      assert.equal(d.trigger, trigger);
      assert.equal(d.code, code);
      assert.ok(d.reason.length > 0);
    });
  }

  it('says why a push was ignored', () => {
    const d = hook(github(githubPush('refs/heads/dev')), githubPush('refs/heads/dev'));
    assert.equal(d.reason, 'push to branch dev ignored (the source follows branch main)');
    assert.equal(d.event?.branch, 'dev');
  });
});

describe('readHookBody', () => {
  it('reads a body up to the limit', async () => {
    const body = await readHookBody(Readable.from([Buffer.from('ab'), 'cd']), 4);
    assert.equal(body.toString(), 'abcd');
  });

  it('stops as soon as the limit is passed', async () => {
    let pulled = 0;
    async function* chunks() {
      for (let i = 0; i < 100; i++) {
        pulled++;
        yield Buffer.alloc(1024);
      }
    }
    await assert.rejects(
      readHookBody(chunks(), 4096),
      (e: unknown) => (e as WebhookError).status === 413,
    );
    assert.equal(pulled, 5);
  });
});
