import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { withTempDir } from '@xencons/test-utils';
import { describe, expect, it } from 'vitest';
import { type UsersCliIo, usersCliMain } from './users-cli.js';

function io(input: string, env: Record<string, string> = {}) {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => {
    out += d;
  });
  stderr.on('data', (d) => {
    err += d;
  });
  stdin.end(input);
  const cli: UsersCliIo = { stdin, stdout, stderr, env };
  return { cli, out: () => out, err: () => err };
}

describe('xencons-login-users', () => {
  it('adds a user from stdin, lists, checks the password, removes', async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, 'users');
      const add = io('s3cret-Pw\n');
      expect(await usersCliMain(['add', 'alice', '--file', file, '--cost', '10'], add.cli)).toBe(0);
      expect(add.out()).toBe(`alice added to ${file}\n`);
      expect(readFileSync(file, 'utf8')).toMatch(/^alice:\$scrypt\$ln=10,r=8,p=1\$/m);
      expect(readFileSync(file, 'utf8')).not.toContain('s3cret');

      const list = io('', { XENCONS_LOGIN_USERS: file });
      expect(await usersCliMain(['list', '--json'], list.cli)).toBe(0);
      expect(JSON.parse(list.out())).toEqual(['alice']);

      expect(await usersCliMain(['check', 'alice', '--file', file], io('s3cret-Pw\r\n').cli)).toBe(
        0,
      );
      expect(await usersCliMain(['check', 'alice', '--file', file], io('nope\n').cli)).toBe(1);

      expect(await usersCliMain(['remove', 'alice', '--file', file], io('').cli)).toBe(0);
      const again = io('');
      expect(await usersCliMain(['remove', 'alice', '--file', file], again.cli)).toBe(1);
      expect(again.err()).toContain('not in');
    });
  });

  it('answers usage errors with exit 2 and refuses an empty password with 1', async () => {
    expect(await usersCliMain([], io('').cli)).toBe(2);
    expect(await usersCliMain(['add'], io('').cli)).toBe(2);
    expect(await usersCliMain(['list', 'extra'], io('').cli)).toBe(2);
    expect(await usersCliMain(['--bogus'], io('').cli)).toBe(2);
    await withTempDir(async (dir) => {
      const e = io('\n');
      expect(await usersCliMain(['add', 'bob', '--file', join(dir, 'u')], e.cli)).toBe(1);
      expect(e.err()).toContain('empty password');
    });
  });

  it('reports a bad name without writing', async () => {
    await withTempDir(async (dir) => {
      const e = io('pw\n');
      expect(
        await usersCliMain(['add', '-x', '--file', join(dir, 'u'), '--cost', '10'], e.cli),
      ).toBe(2);
      const f = io('pw\n');
      expect(
        await usersCliMain(['add', 'a b', '--file', join(dir, 'u'), '--cost', '10'], f.cli),
      ).toBe(1);
      expect(f.err()).toContain('invalid user name');
    });
  });
});
