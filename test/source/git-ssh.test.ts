/**
 * ssh:// with a key file. No sshd runs here, so `ssh` is a stand-in script (named ssh, as git
 * expects) that checks the key it is given the way a server would, then runs the remote
 * command (`git-upload-pack '<path>'`) locally: everything else is real git.
 */
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sshCommand } from '../../src/source/credentials.js';
import { SourceError } from '../../src/source/errors.js';
import { GitSource } from '../../src/source/git-source.js';
import { gitTestEnv, makeRemote, TempDirs } from './support/git.js';

const tmp = new TempDirs();
after(() => tmp.cleanup());

const FAKE_SSH = `#!/bin/sh
printf '%s\\n' "$*" >> "$FAKE_SSH_LOG"
key=""
while [ $# -gt 0 ]; do
  case "$1" in
    -i) key="$2"; shift 2 ;;
    -o|-p|-l|-F) shift 2 ;;
    -*) shift ;;
    *) host="$1"; shift; break ;;
  esac
done
if [ -z "$key" ] || [ "$(cat "$key")" != "$FAKE_SSH_AUTHORIZED_KEY" ]; then
  echo "git@$host: Permission denied (publickey)." >&2
  exit 255
fi
exec sh -c "$*"
`;

function setup(keyContent: string) {
  const dir = tmp.make('sluice-ssh-');
  const ssh = join(dir, 'ssh');
  writeFileSync(ssh, FAKE_SSH);
  chmodSync(ssh, 0o755);
  const key = join(dir, 'id ed25519'); // a space, to prove the quoting
  writeFileSync(key, keyContent, { mode: 0o600 });
  const log = join(dir, 'ssh.log');
  writeFileSync(log, '');
  const { bare, work } = makeRemote(tmp, tmp.make('sluice-remote-'));
  const env = { ...gitTestEnv, FAKE_SSH_LOG: log, FAKE_SSH_AUTHORIZED_KEY: 'the-authorized-key' };
  return { ssh, key, log, bare, work, env };
}

describe('GitSource over ssh://', () => {
  it('passes the key file through GIT_SSH_COMMAND and fetches', async () => {
    const { ssh, key, log, bare, work, env } = setup('the-authorized-key');
    const sha = work.commit({ 'a.yaml': 'a\n' });
    work.push('origin', 'main');
    const source = new GitSource({
      url: `ssh://git@git.example.com${bare}`,
      ref: { branch: 'main' },
      stateDir: tmp.make(),
      credentials: { type: 'ssh', privateKeyFile: key, command: ssh, knownHostsFile: '/dev/null' },
      env,
    });
    const result = await source.fetch();
    assert.equal(result.revision.sha, sha);
    assert.equal((await result.tree()).files[0]?.content.toString(), 'a\n');
    const calls = readFileSync(log, 'utf8');
    assert.match(
      calls,
      /-o BatchMode=yes .*-i .*id ed25519 -o IdentitiesOnly=yes -o UserKnownHostsFile=\/dev\/null -o StrictHostKeyChecking=yes/,
    );
    assert.match(calls, /git@git\.example\.com git-upload-pack/);
  });

  it('accepts the scp-like form git@host:path', async () => {
    const { ssh, key, bare, work, env } = setup('the-authorized-key');
    const sha = work.commit({ 'a.yaml': 'a\n' });
    work.push('origin', 'main');
    const source = new GitSource({
      url: `git@git.example.com:${bare}`,
      stateDir: tmp.make(),
      credentials: { type: 'ssh', privateKeyFile: key, command: ssh },
      env,
    });
    assert.equal(source.url.kind, 'ssh');
    assert.equal((await source.fetch()).revision.sha, sha);
  });

  it('reports a key the server refuses as SLUICE_SOURCE_AUTH', async () => {
    const { ssh, key, bare, work, env } = setup('some-other-key');
    work.commit({ 'a.yaml': 'a\n' });
    work.push('origin', 'main');
    const source = new GitSource({
      url: `ssh://git@git.example.com${bare}`,
      stateDir: tmp.make(),
      credentials: { type: 'ssh', privateKeyFile: key, command: ssh },
      env,
    });
    await assert.rejects(
      source.fetch(),
      (e: unknown) => (e as SourceError).code === 'SLUICE_SOURCE_AUTH',
    );
  });

  it('reports a missing key file as SLUICE_SOURCE_CREDENTIALS', async () => {
    const source = new GitSource({
      url: 'ssh://git@git.example.com/repo.git',
      stateDir: tmp.make(),
      credentials: { type: 'ssh', privateKeyFile: join(tmp.make(), 'nope') },
      env: gitTestEnv,
    });
    await assert.rejects(
      source.fetch(),
      (e: unknown) => (e as SourceError).code === 'SLUICE_SOURCE_CREDENTIALS',
    );
  });

  it('with the real ssh, reports a closed port as SLUICE_SOURCE_UNREACHABLE without prompting', async () => {
    const source = new GitSource({
      url: 'ssh://git@127.0.0.1:1/repo.git',
      stateDir: tmp.make(),
      env: gitTestEnv,
    });
    await assert.rejects(
      source.fetch(),
      (e: unknown) => (e as SourceError).code === 'SLUICE_SOURCE_UNREACHABLE',
    );
  });
});

describe('sshCommand', () => {
  it('quotes paths for the shell git runs it with', () => {
    assert.equal(
      sshCommand({ privateKeyFile: "/keys/it's here", knownHostsFile: '/etc/kh' }),
      "ssh -o BatchMode=yes -o ConnectTimeout=30 -o ServerAliveInterval=15 -o ServerAliveCountMax=4 -i '/keys/it'\\''s here' -o IdentitiesOnly=yes -o UserKnownHostsFile=/etc/kh -o StrictHostKeyChecking=yes",
    );
    const bounded =
      '-o BatchMode=yes -o ConnectTimeout=30 -o ServerAliveInterval=15 -o ServerAliveCountMax=4';
    assert.equal(sshCommand({}), `ssh ${bounded} -o StrictHostKeyChecking=yes`);
    assert.equal(
      sshCommand({ strictHostKeyChecking: 'accept-new', command: '/usr/bin/ssh' }),
      `/usr/bin/ssh ${bounded} -o StrictHostKeyChecking=accept-new`,
    );
  });
});
