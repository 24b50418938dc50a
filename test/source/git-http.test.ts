/** http:// against `git http-backend` (smart HTTP) behind a Node server with basic auth. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Credentials } from '../../src/source/credentials.js';
import { SourceError } from '../../src/source/errors.js';
import { GitSource } from '../../src/source/git-source.js';
import { gitTestEnv, makeRemote, TempDirs } from './support/git.js';
import { captureLogger } from './support/log.js';
import { GitHttpServer } from './support/servers.js';

const tmp = new TempDirs();
const USER = 'deployer';
const PASSWORD = 'pa55-w0rd-5ecret';
const TOKEN = 'tok-3f9a8b7c6d5e';
let base: string;
let server: GitHttpServer;
let bearerServer: GitHttpServer;

/** A `git` first on PATH that records each invocation's arguments, then runs the real one. */
function argvRecorder(): { env: NodeJS.ProcessEnv; lines: () => string[] } {
  const dir = tmp.make('sluice-bin-');
  const log = join(dir, 'argv.log');
  const realGit = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
  writeFileSync(
    join(dir, 'git'),
    `#!/bin/sh\nprintf '%s\\n' "$*" >> '${log}'\nexec '${realGit}' "$@"\n`,
  );
  chmodSync(join(dir, 'git'), 0o755);
  writeFileSync(log, '');
  return {
    env: { ...gitTestEnv, PATH: `${dir}:${gitTestEnv.PATH ?? ''}` },
    lines: () =>
      readFileSync(log, 'utf8')
        .split('\n')
        .filter((l) => l !== ''),
  };
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? filesUnder(p) : [p];
  });
}

before(async () => {
  base = tmp.make('sluice-http-');
  server = await GitHttpServer.start(base, { auth: { username: USER, password: PASSWORD } });
  bearerServer = await GitHttpServer.start(base, { bearer: TOKEN });
});

after(async () => {
  await server.stop();
  await bearerServer.stop();
  tmp.cleanup();
});

let seq = 0;
function setup(
  credentials: Credentials | undefined,
  env: NodeJS.ProcessEnv = gitTestEnv,
  srv = server,
) {
  const name = `repo${++seq}`;
  const { work } = makeRemote(tmp, base, name);
  const log = captureLogger();
  const source = new GitSource({
    url: srv.url(name),
    ref: { branch: 'main' },
    stateDir: tmp.make('sluice-state-'),
    credentials,
    env,
    logger: log.logger,
  });
  return { work, source, log, name };
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<SourceError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof SourceError, String(err));
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

describe('GitSource over http:// with basic auth', () => {
  it('fetches with a password from an environment variable, leaking it nowhere', async () => {
    const rec = argvRecorder();
    const { work, source, log } = setup(
      { type: 'basic', username: USER, password: { env: 'SLUICE_TEST_GIT_PASSWORD' } },
      { ...rec.env, SLUICE_TEST_GIT_PASSWORD: PASSWORD },
    );
    const sha = work.commit({ 'app.yaml': 'x: 1\n' });
    work.push('origin', 'main');
    const result = await source.fetch();
    assert.equal(result.revision.sha, sha);
    assert.equal((await result.tree()).files.length, 1);

    const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
    assert.ok(server.authorizations.includes(basic), 'the server saw the credentials');
    const argv = rec.lines();
    assert.ok(
      argv.some((l) => l.startsWith('ls-remote')) && argv.some((l) => l.startsWith('fetch')),
    );
    for (const secret of [PASSWORD, basic.slice(6)]) {
      assert.ok(!argv.some((l) => l.includes(secret)), 'not in any git argument');
      assert.ok(!log.text().includes(secret), 'not in the logs');
      for (const f of filesUnder(source.cacheDir)) {
        assert.ok(!readFileSync(f).includes(secret), `not in ${f}`);
      }
    }
    assert.doesNotMatch(
      readFileSync(join(source.cacheDir, 'config'), 'utf8'),
      /extraheader|Authorization/i,
    );

    // An idle poll is one `git ls-remote` and nothing else.
    const before = rec.lines().length;
    assert.equal((await source.fetch()).changed, false);
    const idle = rec.lines().slice(before);
    assert.equal(idle.length, 1);
    assert.match(idle[0] ?? '', /^ls-remote /);
  });

  it('reads the username and password from files', async () => {
    const dir = tmp.make('sluice-secrets-');
    writeFileSync(join(dir, 'user'), `${USER}\n`);
    writeFileSync(join(dir, 'password'), `${PASSWORD}\n`);
    const { work, source } = setup({
      type: 'basic',
      username: { file: join(dir, 'user') },
      password: { file: join(dir, 'password') },
    });
    const sha = work.commit({ 'a.yaml': 'a\n' });
    work.push('origin', 'main');
    assert.equal((await source.fetch()).revision.sha, sha);
  });

  it('reports a wrong password as SLUICE_SOURCE_AUTH without printing it', async () => {
    const { work, source, log } = setup(
      { type: 'basic', username: USER, password: { env: 'PW' } },
      { ...gitTestEnv, PW: 'wrong-password-value' },
    );
    work.commit({ 'a.yaml': 'a\n' });
    work.push('origin', 'main');
    const err = await rejectsWith(source.fetch(), 'SLUICE_SOURCE_AUTH');
    assert.ok(!err.message.includes('wrong-password-value'));
    assert.ok(!log.text().includes('wrong-password-value'));
  });

  it('reports missing credentials as SLUICE_SOURCE_AUTH, and an unset variable as SLUICE_SOURCE_CREDENTIALS', async () => {
    const { work, source } = setup(undefined);
    work.commit({ 'a.yaml': 'a\n' });
    work.push('origin', 'main');
    await rejectsWith(source.fetch(), 'SLUICE_SOURCE_AUTH');
    const unset = setup({
      type: 'basic',
      username: USER,
      password: { env: 'SLUICE_TEST_UNSET_VAR' },
    });
    const err = await rejectsWith(unset.source.fetch(), 'SLUICE_SOURCE_CREDENTIALS');
    assert.match(err.message, /SLUICE_TEST_UNSET_VAR/);
  });

  it('reports a repository the server does not have as SLUICE_SOURCE_NOT_FOUND', async () => {
    const source = new GitSource({
      url: server.url('no-such-repo'),
      stateDir: tmp.make(),
      credentials: { type: 'basic', username: USER, password: { env: 'PW' } },
      env: { ...gitTestEnv, PW: PASSWORD },
    });
    await rejectsWith(source.fetch(), 'SLUICE_SOURCE_NOT_FOUND');
  });

  it('reports a server that is down as SLUICE_SOURCE_UNREACHABLE, and works again once it is up', async () => {
    const { work, source } = setup(
      { type: 'basic', username: USER, password: { env: 'PW' } },
      { ...gitTestEnv, PW: PASSWORD },
    );
    const one = work.commit({ 'a.yaml': '1\n' });
    work.push('origin', 'main');
    await source.fetch();
    await server.down();
    try {
      await rejectsWith(source.fetch(), 'SLUICE_SOURCE_UNREACHABLE');
      assert.equal(source.lastRevision?.sha, one);
    } finally {
      await server.up();
    }
    const two = work.commit({ 'a.yaml': '2\n' });
    work.push('origin', 'main');
    assert.equal((await source.fetch()).revision.sha, two);
  });
});

describe('GitSource over http:// with a token', () => {
  it('sends a bearer token read from a file', async () => {
    const dir = tmp.make('sluice-secrets-');
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
    const { work, source } = setup(
      { type: 'token', token: { file: join(dir, 'token') }, scheme: 'bearer' },
      gitTestEnv,
      bearerServer,
    );
    const sha = work.commit({ 'a.yaml': 'a\n' });
    work.push('origin', 'main');
    assert.equal((await source.fetch()).revision.sha, sha);
    assert.ok(bearerServer.authorizations.includes(`Bearer ${TOKEN}`));
  });

  it('sends a token as basic auth (x-access-token) by default', async () => {
    const name = `repo${++seq}`;
    makeRemote(tmp, base, name).work.commit({ 'a.yaml': 'a\n' });
    const source = new GitSource({
      url: server.url(name),
      stateDir: tmp.make(),
      credentials: { type: 'token', token: { env: 'TOKEN' } },
      env: { ...gitTestEnv, TOKEN },
    });
    await rejectsWith(source.fetch(), 'SLUICE_SOURCE_AUTH');
    const sent = `Basic ${Buffer.from(`x-access-token:${TOKEN}`).toString('base64')}`;
    assert.ok(server.authorizations.includes(sent));
  });
});
