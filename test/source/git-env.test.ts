import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { resolveCredentials, readSecret } from '../../src/source/credentials.js';
import type { SourceError } from '../../src/source/errors.js';
import { classifyGitError, gitEnv, scrub } from '../../src/source/git.js';
import { GitSource } from '../../src/source/git-source.js';
import { parseSourceUrl } from '../../src/source/url.js';
import { TempDirs } from './support/git.js';

const tmp = new TempDirs();
after(() => tmp.cleanup());

const code = (code: string) => (e: unknown) => (e as SourceError).code === code;

describe('classifyGitError', () => {
  const cache = '/state/sources/0123/repo.git';
  const cases: Array<[string, string]> = [
    ["fatal: Authentication failed for 'https://github.com/o/r.git/'", 'SLUICE_SOURCE_AUTH'],
    [
      "fatal: could not read Username for 'https://github.com': terminal prompts disabled",
      'SLUICE_SOURCE_AUTH',
    ],
    [
      "fatal: unable to access 'https://x/r.git/': The requested URL returned error: 403",
      'SLUICE_SOURCE_AUTH',
    ],
    [
      'git@github.com: Permission denied (publickey).\r\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.',
      'SLUICE_SOURCE_AUTH',
    ],
    [
      'Host key verification failed.\r\nfatal: Could not read from remote repository.',
      'SLUICE_SOURCE_HOST_KEY',
    ],
    [
      "remote: Repository not found.\nfatal: repository 'https://github.com/o/r.git/' not found",
      'SLUICE_SOURCE_NOT_FOUND',
    ],
    [
      "fatal: '/tmp/x' does not appear to be a git repository\nfatal: Could not read from remote repository.",
      'SLUICE_SOURCE_NOT_FOUND',
    ],
    [
      'fatal: remote error: access denied or repository not exported: /x.git',
      'SLUICE_SOURCE_NOT_FOUND',
    ],
    [
      "fatal: unable to access 'https://git.example.com/r.git/': Could not resolve host: git.example.com",
      'SLUICE_SOURCE_UNREACHABLE',
    ],
    [
      "fatal: unable to access 'http://127.0.0.1:1/r.git/': Failed to connect to 127.0.0.1 port 1 after 0 ms: Couldn't connect to server",
      'SLUICE_SOURCE_UNREACHABLE',
    ],
    [
      "fatal: unable to access 'https://x/': The requested URL returned error: 502",
      'SLUICE_SOURCE_UNREACHABLE',
    ],
    [
      "fatal: unable to access 'https://x/': SSL certificate problem: self-signed certificate",
      'SLUICE_SOURCE_UNREACHABLE',
    ],
    [
      'ssh: connect to host 127.0.0.1 port 1: Connection refused\r\nfatal: Could not read from remote repository.',
      'SLUICE_SOURCE_UNREACHABLE',
    ],
    [
      'ssh: Could not resolve hostname nohost: Name or service not known',
      'SLUICE_SOURCE_UNREACHABLE',
    ],
    [
      'fatal: unable to connect to 127.0.0.1:\n127.0.0.1[0: 127.0.0.1]: errno=Connection refused',
      'SLUICE_SOURCE_UNREACHABLE',
    ],
    ['fatal: the remote end hung up unexpectedly', 'SLUICE_SOURCE_UNREACHABLE'],
    ["fatal: couldn't find remote ref refs/heads/nope", 'SLUICE_SOURCE_REF_NOT_FOUND'],
    [
      'error: Server does not allow request for unadvertised object 1234',
      'SLUICE_SOURCE_REF_NOT_FOUND',
    ],
    [`fatal: not a git repository: '${cache}'`, 'SLUICE_SOURCE_CORRUPT_CACHE'],
    [`fatal: bad config line 1 in file ${cache}/config`, 'SLUICE_SOURCE_CORRUPT_CACHE'],
    [
      `error: object file ${cache}/objects/ab/cd is empty\nfatal: loose object abcd (stored in ${cache}/objects/ab/cd) is corrupt`,
      'SLUICE_SOURCE_CORRUPT_CACHE',
    ],
    [
      'error: inflate: data stream error (incorrect header check)\nfatal: bad object HEAD',
      'SLUICE_SOURCE_CORRUPT_CACHE',
    ],
    ['fatal: something nobody expected', 'SLUICE_SOURCE_GIT'],
  ];
  for (const [stderr, want] of cases) {
    it(`${want}: ${stderr.split('\n')[0]}`, () =>
      assert.equal(classifyGitError(stderr, cache).code, want));
  }

  it('keeps the lines that say what went wrong', () => {
    const c = classifyGitError(
      "remote: Counting objects\nhint: foo\nfatal: repository 'x' not found\n",
    );
    assert.equal(c.message, "remote: Counting objects; fatal: repository 'x' not found");
    assert.equal(classifyGitError('').message, 'git failed without a message');
    assert.equal(scrub('token abc and abc', ['abc']), 'token *** and ***');
  });
});

describe('gitEnv', () => {
  it("drops the caller's git variables and sets ours", () => {
    const env = gitEnv({
      cwd: '/state',
      env: {
        PATH: '/bin',
        HOME: '/root',
        GIT_DIR: '/evil',
        GIT_SSH_COMMAND: 'evil',
        EDITOR: 'vi',
        GIT_CONFIG_COUNT: '9',
      },
      auth: {
        config: [['http.https://h/.extraHeader', 'Authorization: Basic x']],
        env: {},
        secrets: [],
      },
    });
    assert.equal(env.PATH, '/bin');
    assert.equal(env.HOME, '/root');
    assert.equal(env.GIT_DIR, undefined);
    assert.equal(env.GIT_SSH_COMMAND, undefined);
    assert.equal(env.EDITOR, undefined);
    assert.equal(env.LC_ALL, 'C');
    assert.equal(env.GIT_TERMINAL_PROMPT, '0');
    assert.equal(env.GIT_CEILING_DIRECTORIES, '/state');
    const n = Number(env.GIT_CONFIG_COUNT);
    const config = Object.fromEntries(
      Array.from({ length: n }, (_, i) => [
        env[`GIT_CONFIG_KEY_${i}`],
        env[`GIT_CONFIG_VALUE_${i}`],
      ]),
    );
    assert.deepEqual(config, {
      'credential.helper': '',
      'gc.auto': '0',
      'maintenance.auto': 'false',
      'http.https://h/.extraHeader': 'Authorization: Basic x',
    });
    assert.equal(gitEnv({ cwd: '/s', env: {}, gitDir: '/s/repo.git' }).GIT_DIR, '/s/repo.git');
    const timed = gitEnv({ cwd: '/s', env: {}, timeoutMs: 2500 });
    assert.equal(timed.GIT_CONFIG_KEY_4, 'http.lowSpeedTime');
    assert.equal(timed.GIT_CONFIG_VALUE_4, '3');
    assert.equal(gitEnv({ cwd: '/s', env: {}, discover: true }).GIT_CEILING_DIRECTORIES, undefined);
  });
});

describe('resolveCredentials', () => {
  const https = parseSourceUrl('https://git.example.com/o/r.git');
  const ssh = parseSourceUrl('ssh://git@git.example.com/o/r.git');
  const opts = { env: { TOKEN: 'tkn', PASS: 'pw' }, cwd: '/' };

  it('sends a token as basic auth scoped to the server', async () => {
    const auth = await resolveCredentials({ type: 'token', token: { env: 'TOKEN' } }, https, opts);
    const basic = Buffer.from('x-access-token:tkn').toString('base64');
    assert.deepEqual(auth.config, [
      ['http.https://git.example.com/.extraHeader', `Authorization: Basic ${basic}`],
    ]);
    assert.deepEqual(auth.secrets.sort(), [basic, 'tkn'].sort());
    const gitlab = await resolveCredentials(
      { type: 'token', token: { env: 'TOKEN' }, username: 'oauth2' },
      https,
      opts,
    );
    assert.match(
      gitlab.config[0]?.[1] ?? '',
      new RegExp(Buffer.from('oauth2:tkn').toString('base64')),
    );
    const bearer = await resolveCredentials(
      { type: 'token', token: { env: 'TOKEN' }, scheme: 'bearer' },
      https,
      opts,
    );
    assert.equal(bearer.config[0]?.[1], 'Authorization: Bearer tkn');
  });

  it('sends a username and password as basic auth', async () => {
    const auth = await resolveCredentials(
      { type: 'basic', username: 'u', password: { env: 'PASS' } },
      https,
      opts,
    );
    assert.equal(
      auth.config[0]?.[1],
      `Authorization: Basic ${Buffer.from('u:pw').toString('base64')}`,
    );
  });

  it('reads secrets from files, trimming the final newline, and reports missing ones', async () => {
    const dir = tmp.make();
    writeFileSync(join(dir, 'token'), 'from-file\r\n');
    writeFileSync(join(dir, 'empty'), '\n');
    assert.equal(await readSecret({ file: join(dir, 'token') }, opts), 'from-file');
    assert.equal(await readSecret({ file: 'token' }, { ...opts, cwd: dir }), 'from-file');
    await assert.rejects(
      readSecret({ file: join(dir, 'empty') }, opts),
      code('SLUICE_SOURCE_CREDENTIALS'),
    );
    await assert.rejects(
      readSecret({ file: join(dir, 'missing') }, opts),
      code('SLUICE_SOURCE_CREDENTIALS'),
    );
    await assert.rejects(readSecret({ env: 'UNSET' }, opts), code('SLUICE_SOURCE_CREDENTIALS'));
    await assert.rejects(
      readSecret({ env: 'EMPTY' }, { ...opts, env: { EMPTY: '' } }),
      code('SLUICE_SOURCE_CREDENTIALS'),
    );
  });

  it('refuses credentials that do not fit the URL', async () => {
    await assert.rejects(
      resolveCredentials({ type: 'token', token: { env: 'TOKEN' } }, ssh, opts),
      code('SLUICE_SOURCE_CONFIG'),
    );
    await assert.rejects(
      resolveCredentials({ type: 'ssh', privateKeyFile: '/dev/null' }, https, opts),
      code('SLUICE_SOURCE_CONFIG'),
    );
  });

  it('runs ssh in batch mode even without credentials', async () => {
    const auth = await resolveCredentials(undefined, ssh, opts);
    assert.match(
      auth.env.GIT_SSH_COMMAND ?? '',
      /^ssh -o BatchMode=yes .*-o StrictHostKeyChecking=yes$/,
    );
    assert.deepEqual(await resolveCredentials(undefined, https, opts), {
      config: [],
      env: {},
      secrets: [],
    });
  });
});

describe('GitSource configuration', () => {
  const stateDir = '/tmp/unused-state';
  const bad: Array<[string, ConstructorParameters<typeof GitSource>[0]]> = [
    ['a short commit', { url: '/r', stateDir, ref: { commit: 'abc123' } }],
    ['an empty branch', { url: '/r', stateDir, ref: { branch: '' } }],
    ['a branch with ..', { url: '/r', stateDir, ref: { branch: 'a..b' } }],
    ['a branch starting with -', { url: '/r', stateDir, ref: { branch: '--upload-pack=x' } }],
    ['a tag with a space', { url: '/r', stateDir, ref: { tag: 'v 1' } }],
    ['an escaping path', { url: '/r', stateDir, path: '../x' }],
    ['an unsupported URL', { url: 'ftp://h/r', stateDir }],
  ];
  for (const [name, opts] of bad) {
    it(`rejects ${name}`, () =>
      assert.throws(() => new GitSource(opts), code('SLUICE_SOURCE_CONFIG')));
  }
  it('keeps each URL and ref in its own cache folder', () => {
    const a = new GitSource({ url: '/r', stateDir, ref: { branch: 'main' } });
    const b = new GitSource({ url: '/r', stateDir, ref: { branch: 'dev' } });
    const c = new GitSource({ url: '/r', stateDir, ref: { branch: 'main' } });
    assert.notEqual(a.cacheDir, b.cacheDir);
    assert.equal(a.cacheDir, c.cacheDir);
    assert.ok(a.cacheDir.startsWith(`${stateDir}/sources/`));
  });
});
