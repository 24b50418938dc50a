import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SourceError } from '../../src/source/errors.js';
import { formatRevisionId, parseRevisionId, describeRef } from '../../src/source/revision.js';
import { parseSourceUrl, redactUrl } from '../../src/source/url.js';

describe('parseSourceUrl', () => {
  const cases: Array<[string, string, string, string?]> = [
    // [input, kind, remote, origin]
    ['/srv/git/repo', 'local', '/srv/git/repo'],
    ['repo', 'local', '/work/repo'],
    ['./a:b', 'local', '/work/a:b'],
    ['file:///srv/git/repo.git', 'file', 'file:///srv/git/repo.git'],
    ['https://github.com/o/r.git', 'https', 'https://github.com/o/r.git', 'https://github.com/'],
    [
      'http://127.0.0.1:8080/r.git',
      'http',
      'http://127.0.0.1:8080/r.git',
      'http://127.0.0.1:8080/',
    ],
    ['ssh://git@github.com/o/r.git', 'ssh', 'ssh://git@github.com/o/r.git'],
    ['git+ssh://git@host:2222/r.git', 'ssh', 'ssh://git@host:2222/r.git'],
    ['git@github.com:o/r.git', 'ssh', 'git@github.com:o/r.git'],
    ['git://127.0.0.1:9418/r.git', 'git', 'git://127.0.0.1:9418/r.git'],
  ];
  for (const [input, kind, remote, origin] of cases) {
    it(`${input} is ${kind}`, () => {
      const u = parseSourceUrl(input, '/work');
      assert.equal(u.kind, kind);
      assert.equal(u.remote, remote);
      assert.equal(u.origin, origin);
    });
  }

  const bad = [
    '',
    'ftp://host/r.git',
    'ext::sh -c touch% /tmp/pwned',
    'https://user:pass@github.com/o/r.git',
    'https://ghp_token@github.com/o/r.git',
    'ssh://git:pass@host/r.git',
    'fd::17',
    '-oProxyCommand=touch%20x:r.git',
    'git@-oProxyCommand=x:r.git',
    'ssh://-oProxyCommand=x/r.git',
  ];
  for (const input of bad) {
    it(`rejects ${JSON.stringify(input)}`, () => {
      assert.throws(
        () => parseSourceUrl(input, '/work'),
        (e: unknown) =>
          (e as SourceError).code === 'SLUICE_SOURCE_CONFIG' &&
          !(e as Error).message.includes('pass@'),
      );
    });
  }
});

describe('redactUrl', () => {
  it('hides passwords and http usernames', () => {
    assert.equal(redactUrl('https://user:secret@host/r.git'), 'https://***:***@host/r.git');
    assert.equal(redactUrl('ssh://git:secret@host/r.git'), 'ssh://git:***@host/r.git');
    assert.equal(redactUrl('ssh://git@host/r.git'), 'ssh://git@host/r.git');
    assert.equal(redactUrl('/a/b'), '/a/b');
  });
});

describe('revision ids', () => {
  const sha = 'a'.repeat(40);
  it('formats like Flux', () => {
    assert.equal(formatRevisionId('main', sha), `main@sha1:${sha}`);
    assert.equal(formatRevisionId('feature/x', sha), `feature/x@sha1:${sha}`);
    assert.equal(formatRevisionId(undefined, sha), `sha1:${sha}`);
    assert.equal(formatRevisionId('v1', 'b'.repeat(64)), `v1@sha256:${'b'.repeat(64)}`);
  });
  it('parses back', () => {
    assert.deepEqual(parseRevisionId(`main@sha1:${sha}`), { name: 'main', sha });
    assert.deepEqual(parseRevisionId(`a@b@sha1:${sha}`), { name: 'a@b', sha });
    assert.deepEqual(parseRevisionId(`sha1:${sha}`), { sha });
    assert.equal(parseRevisionId(`main@sha256:${sha}`), undefined);
    assert.equal(parseRevisionId('main@sha1:abc'), undefined);
    assert.equal(parseRevisionId(sha), undefined);
  });
  it('describes refs', () => {
    assert.equal(describeRef(undefined), 'HEAD');
    assert.equal(describeRef({ branch: 'main' }), 'branch main');
    assert.equal(describeRef({ tag: 'v1' }), 'tag v1');
    assert.equal(describeRef({ commit: sha }), 'commit aaaaaaaaaaaa');
  });
});
