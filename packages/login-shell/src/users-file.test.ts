import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withTempDir } from '@xencons/test-utils';
import { describe, expect, it } from 'vitest';
import {
  addUser,
  DEFAULT_SCRYPT,
  hashPassword,
  type Kdf,
  parseHash,
  parseUsersFile,
  readUsersFile,
  removeUser,
  scryptKdf,
  verifyPassword,
} from './users-file.js';

const FAST = { ln: 10, r: 8, p: 1 };
const pw = (s: string) => Buffer.from(s, 'utf8');

/** A kdf that records its calls and delegates to scrypt. */
function countingKdf() {
  const calls: { saltLength: number; ln: number; keylen: number }[] = [];
  const kdf: Kdf = (password, salt, params, keylen) => {
    calls.push({ saltLength: salt.length, ln: params.ln, keylen });
    return scryptKdf(password, salt, params, keylen);
  };
  return { kdf, calls };
}

describe('users file hashes', () => {
  it('formats scrypt hashes as $scrypt$ln=15,r=8,p=1$salt$key with a 16-byte salt and 32-byte key', async () => {
    const h = await hashPassword(pw('correct horse'));
    expect(h).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}==\$[A-Za-z0-9+/]{43}=$/);
    const parsed = parseHash(h);
    expect(parsed.params).toEqual(DEFAULT_SCRYPT);
    expect(parsed.salt).toHaveLength(16);
    expect(parsed.key).toHaveLength(32);
    expect(h).not.toContain('correct');
  });

  it('salts: the same password hashes differently each time', async () => {
    const a = await hashPassword(pw('same'), FAST);
    const b = await hashPassword(pw('same'), FAST);
    expect(a).not.toBe(b);
  });

  it('accepts the right password and refuses a wrong one, an empty one and a prefix', async () => {
    const entries = [{ name: 'alice', hash: await hashPassword(pw('s3cret!'), FAST) }];
    expect(await verifyPassword(entries, 'alice', pw('s3cret!'))).toBe(true);
    expect(await verifyPassword(entries, 'alice', pw('s3cret?'))).toBe(false);
    expect(await verifyPassword(entries, 'alice', pw(''))).toBe(false);
    expect(await verifyPassword(entries, 'alice', pw('s3cret'))).toBe(false);
    expect(await verifyPassword(entries, 'bob', pw('s3cret!'))).toBe(false);
  });

  it('runs one full-cost scrypt for an unknown user too (no early answer that reveals names)', async () => {
    const entries = [{ name: 'alice', hash: await hashPassword(pw('x'), DEFAULT_SCRYPT) }];
    const known = countingKdf();
    await verifyPassword(entries, 'alice', pw('wrong'), known.kdf);
    const unknown = countingKdf();
    await verifyPassword(entries, 'mallory', pw('wrong'), unknown.kdf);
    expect(known.calls).toEqual([{ saltLength: 16, ln: 15, keylen: 32 }]);
    expect(unknown.calls).toEqual(known.calls);
  });

  it('zeroes the derived key after comparing', async () => {
    const entries = [{ name: 'alice', hash: await hashPassword(pw('x'), FAST) }];
    let derived: Buffer | undefined;
    const kdf: Kdf = async (...args) => {
      derived = await scryptKdf(...args);
      return derived;
    };
    await verifyPassword(entries, 'alice', pw('x'), kdf);
    expect(derived?.every((b) => b === 0)).toBe(true);
  });

  it('rejects malformed hashes and out-of-range parameters', () => {
    expect(() => parseHash('plaintext')).toThrow(/not an \$scrypt\$ hash/);
    expect(() =>
      parseHash(
        '$scrypt$ln=30,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
      ),
    ).toThrow(/out of range/);
    expect(() =>
      parseHash('$scrypt$ln=15,r=8,p=1$AA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='),
    ).toThrow(/bad length/);
  });
});

describe('users file', () => {
  it('adds, replaces and removes users; the file is 0600 and holds no password', async () => {
    await withTempDir(async (dir) => {
      const path = join(dir, 'users');
      await addUser(path, 'alice', pw('one'), FAST);
      await addUser(path, 'bob', pw('two'), FAST);
      await addUser(path, 'alice', pw('three'), FAST);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      const text = readFileSync(path, 'utf8');
      expect(text).not.toMatch(/one|two|three/);
      const entries = readUsersFile(path);
      expect(entries.map((e) => e.name)).toEqual(['bob', 'alice']);
      expect(await verifyPassword(entries, 'alice', pw('three'))).toBe(true);
      expect(await verifyPassword(entries, 'alice', pw('one'))).toBe(false);
      expect(removeUser(path, 'bob')).toBe(true);
      expect(removeUser(path, 'bob')).toBe(false);
      expect(readUsersFile(path).map((e) => e.name)).toEqual(['alice']);
    });
  });

  it('reads a missing file as empty and refuses bad lines by number, without echoing them', async () => {
    await withTempDir(async (dir) => {
      expect(readUsersFile(join(dir, 'none'))).toEqual([]);
      const path = join(dir, 'users');
      writeFileSync(path, '# comment\n\nalice:hunter2\n');
      expect(() => readUsersFile(path)).toThrow(/line 3 \(alice\): not an \$scrypt\$ hash/);
      try {
        readUsersFile(path);
      } catch (err) {
        expect(String(err)).not.toContain('hunter2');
      }
    });
  });

  it('refuses invalid names and duplicates', async () => {
    const h = await hashPassword(pw('x'), FAST);
    expect(() => parseUsersFile(`-root:${h}\n`)).toThrow(/line 1/);
    expect(() => parseUsersFile(`a b:${h}\n`)).toThrow(/line 1/);
    expect(() => parseUsersFile(`al:${h}\nal:${h}\n`)).toThrow(/appears twice/);
    await expect(addUser('/nonexistent/x', '../x', pw('x'), FAST)).rejects.toThrow(
      /invalid user name/,
    );
  });
});
