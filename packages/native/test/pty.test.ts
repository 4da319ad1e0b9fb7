import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { isRoot, requirement } from '@xencons/test-utils';
import { expect, it } from 'vitest';
import { binding, native } from './support.js';

/** Reads a pty master (blocking) until EIO; returns the text. */
function readAll(master: number): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(4096);
  for (;;) {
    let n = 0;
    try {
      n = readSync(master, buf, 0, buf.length, null);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EIO') break;
      throw err;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}

const ENV = ['PATH=/usr/bin:/bin', 'LC_ALL=C'];

native.describe('pseudo-terminals and processes', () => {
  it('opens a pty pair with the requested size, resizable from either end', () => {
    const n = binding();
    const p = n.ptyOpen(123, 45);
    try {
      expect(p.path).toMatch(/^\/dev\/pts\/\d+$/);
      expect(n.ptyGetSize(p.master)).toEqual({ cols: 123, rows: 45 });
      n.ptyResize(p.slave, 90, 30);
      expect(n.ptyGetSize(p.master)).toEqual({ cols: 90, rows: 30 });
      expect(() => n.ptyResize(p.master, 0, 10)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG' }),
      );
    } finally {
      closeSync(p.master);
      closeSync(p.slave);
    }
  });

  it('spawns a session leader on the pty; reaps it; output ends with EIO after the last byte', async () => {
    const n = binding();
    const p = n.ptyOpen(80, 24);
    const { pid, pidfd } = n.ptySpawn(
      p.slave,
      '/bin/sh',
      ['sh', '-c', 'tty; ps -o sid= -p $$; exit 3'],
      ENV,
      '/',
      null,
      null,
      null,
    );
    closeSync(p.slave);
    expect(pidfd).toBeGreaterThan(2);
    const out = readAll(p.master).trim().split('\r\n');
    closeSync(p.master);
    expect(out[0]).toBe(p.path);
    expect(out[1]?.trim()).toBe(String(pid));
    // The pidfd turns readable once the child exited; then the non-blocking reap has it.
    await new Promise<void>((resolve) => {
      const id = n.watchFd(pidfd, () => {
        n.unwatchFd(id);
        resolve();
      });
    });
    expect(n.childReap(pid)).toEqual({ exitCode: 3, signal: null });
    closeSync(pidfd);
    expect(() => n.childReap(pid)).toThrow(expect.objectContaining({ code: 'ECHILD' }));
  });

  it('gives the program exactly the environment passed and default signal dispositions', () => {
    const n = binding();
    const p = n.ptyOpen(80, 24);
    // node ignores SIGPIPE; the child must not inherit that (trap -p shows nothing ignored).
    const { pid, pidfd } = n.ptySpawn(
      p.slave,
      '/usr/bin/env',
      ['env'],
      ['ONLY=this'],
      null,
      null,
      null,
      null,
    );
    closeSync(p.slave);
    const out = readAll(p.master);
    closeSync(p.master);
    expect(out).toBe('ONLY=this\r\n');
    expect(n.childReap(pid, true)).toEqual({ exitCode: 0, signal: null });
    closeSync(pidfd);

    const q = n.ptyOpen(80, 24);
    const s = n.ptySpawn(
      q.slave,
      '/bin/sh',
      ['sh', '-c', 'grep SigIgn /proc/$$/status'],
      ENV,
      null,
      null,
      null,
      null,
    );
    closeSync(q.slave);
    const ign = readAll(q.master);
    closeSync(q.master);
    n.childReap(s.pid, true);
    closeSync(s.pidfd);
    // sh itself ignores nothing by default: an all-zero mask.
    expect(ign.trim()).toMatch(/^SigIgn:\s+0+$/);
  });

  it('throws what failed in the child (execve ENOENT) and reaps it', () => {
    const n = binding();
    const p = n.ptyOpen(80, 24);
    try {
      expect(() =>
        n.ptySpawn(p.slave, '/no/such/program', ['x'], [], null, null, null, null),
      ).toThrow(
        expect.objectContaining({ code: 'ENOENT', syscall: 'execve', path: '/no/such/program' }),
      );
    } finally {
      closeSync(p.master);
      closeSync(p.slave);
    }
  });

  it('validates arguments', () => {
    const n = binding();
    const p = n.ptyOpen(80, 24);
    try {
      const bad = (f: () => unknown) =>
        expect(f).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
      bad(() => n.ptySpawn(p.slave, 'sh', ['sh'], [], null, null, null, null));
      bad(() => n.ptySpawn(p.slave, '/bin/sh', [], [], null, null, null, null));
      bad(() => n.ptySpawn(p.slave, '/bin/sh', ['s\0h'], [], null, null, null, null));
      bad(() => n.ptySpawn(p.slave, '/bin/sh', ['sh'], [], null, 4294967295, null, null));
      bad(() => n.childReap(0));
    } finally {
      closeSync(p.master);
      closeSync(p.slave);
    }
  });

  it('ttyMakeRaw turns off echo and line editing; ttyRestore brings them back', () => {
    const n = binding();
    const p = n.ptyOpen(80, 24);
    // stty reads the settings back (deterministic, unlike timing the kernel's echo).
    const flags = () => {
      const r = spawnSync('stty', ['-F', p.path, '-a'], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.split(/\s+/);
    };
    try {
      expect(flags()).toEqual(expect.arrayContaining(['echo', 'icanon', 'isig', 'icrnl', 'opost']));
      const saved = n.ttyMakeRaw(p.slave);
      expect(flags()).toEqual(
        expect.arrayContaining(['-echo', '-icanon', '-isig', '-icrnl', '-opost']),
      );
      n.ttyRestore(p.slave, saved);
      expect(flags()).toEqual(expect.arrayContaining(['echo', 'icanon', 'isig', 'icrnl', 'opost']));
      expect(() => n.ttyRestore(p.slave, Buffer.alloc(3))).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG' }),
      );
    } finally {
      closeSync(p.master);
      closeSync(p.slave);
    }
    const nullFd = openSync('/dev/null', 'r');
    try {
      expect(() => n.ttyMakeRaw(nullFd)).toThrow(expect.objectContaining({ code: 'ENOTTY' }));
    } finally {
      closeSync(nullFd);
    }
  });

  it('fdSetBlocking toggles O_NONBLOCK (a read on an empty pty master then says EAGAIN)', () => {
    const n = binding();
    const p = n.ptyOpen(80, 24);
    try {
      n.fdSetBlocking(p.master, false);
      expect(() => readSync(p.master, Buffer.alloc(1))).toThrow(
        expect.objectContaining({ code: 'EAGAIN' }),
      );
      n.fdSetBlocking(p.master, true);
    } finally {
      closeSync(p.master);
      closeSync(p.slave);
    }
  });
});

native.describe('users and groups', () => {
  it('looks up accounts by name and uid, and group lists', () => {
    const n = binding();
    const rootEntry = n.getpwnam('root');
    expect(rootEntry).toMatchObject({ name: 'root', uid: 0, gid: 0 });
    expect(n.getpwuid(0)?.name).toBe('root');
    expect(n.getpwnam('no-such-user-xencons')).toBeNull();
    expect(n.getgrouplist('root', 0)).toContain(0);
    expect(Array.isArray(n.getgroups())).toBe(true);
  });
});

requirement(
  'root (to switch credentials)',
  isRoot() ? null : 'not running as root',
).describe('ptySpawn credentials', () => {
  it('sets groups, gid and uid in the child', () => {
    const n = binding();
    const nobody = n.getpwnam('nobody')!;
    const p = n.ptyOpen(80, 24);
    const s = n.ptySpawn(
      p.slave,
      '/bin/sh',
      ['sh', '-c', 'id -u; id -g; id -G'],
      ENV,
      null,
      nobody.uid,
      nobody.gid,
      [nobody.gid],
    );
    closeSync(p.slave);
    const out = readAll(p.master).trim().split('\r\n');
    closeSync(p.master);
    n.childReap(s.pid, true);
    closeSync(s.pidfd);
    expect(out).toEqual([String(nobody.uid), String(nobody.gid), String(nobody.gid)]);
  });
});

const loaded = (() => {
  try {
    return binding();
  } catch {
    return null;
  }
})();
const pamWhy = loaded ? loaded.pamUnavailableReason() : 'no native addon';

/**
 * The conversation over a socket: a child node process runs pam_start/pam_authenticate
 * synchronously on its fd 3 (a socketpair from child_process); this side answers the frames.
 */
function converse(child: Duplex, answer: (kind: string, text: string) => Buffer | null) {
  let buf = Buffer.alloc(0);
  child.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 5) {
      const len = buf.readUInt32BE(1);
      if (buf.length < 5 + len) break;
      const kind = String.fromCharCode(buf[0]!);
      const text = buf.subarray(5, 5 + len).toString();
      buf = buf.subarray(5 + len);
      const a = answer(kind, text);
      if (a) child.write(a);
    }
  });
}

function frame(kind: string, payload: Buffer): Buffer {
  const f = Buffer.alloc(5 + payload.length);
  f[0] = kind.charCodeAt(0);
  f.writeUInt32BE(payload.length, 1);
  payload.copy(f, 5);
  return f;
}

requirement('libpam.so.0 (libpam0g)', pamWhy).describe('PAM', () => {
  it('keeps items, describes statuses and refuses dead handles and non-string items', () => {
    const n = binding();
    const h = n.pamStart('login', 'root', 0);
    expect(n.pamGetItem(h, 2)).toBe('root');
    expect(n.pamSetItem(h, 3, 'pts/9')).toBe(0);
    expect(n.pamGetItem(h, 3)).toBe('pts/9');
    expect(n.pamGetItem(h, 1)).toBe('login');
    expect(n.pamStrerror(h, 7)).toBe('Authentication failure');
    expect(() => n.pamSetItem(h, 5, 'x')).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG' }),
    );
    expect(n.pamTakeFailDelay(h)).toBe(0);
    expect(n.pamEnd(h, 0)).toBe(0);
    expect(() => n.pamGetItem(h, 2)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG' }));
    expect(() => n.pamCall(h, 'bogus' as never, 0)).toThrow();
  });

  it('converses over an fd: a prompt without echo, the answer, a failure and the delay PAM asked for', async () => {
    const script = `
      const { requireNative } = await import(${JSON.stringify(new URL('../index.js', import.meta.url).href)});
      const n = requireNative();
      n.fdSetBlocking(3, true);
      const h = n.pamStart('login', 'no-such-user-xencons', 3);
      const st = n.pamCall(h, 'authenticate', 0);
      const delay = n.pamTakeFailDelay(h);
      n.pamEnd(h, st);
      console.log(JSON.stringify({ st, delay }));
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    const prompts: string[] = [];
    converse(child.stdio[3] as Duplex, (kind, text) => {
      prompts.push(`${kind}:${text}`);
      return kind === 'P' ? frame('A', Buffer.from('not-the-password')) : null;
    });
    let out = '';
    child.stdout!.on('data', (c) => {
      out += c;
    });
    let err = '';
    child.stderr!.on('data', (c) => {
      err += c;
    });
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect(code, err).toBe(0);
    expect(prompts).toEqual(['P:Password: ']);
    const r = JSON.parse(out) as { st: number; delay: number };
    expect(r.st).not.toBe(0);
    // pam_faildelay / pam_unix ask for a delay; PAM recorded it instead of sleeping.
    expect(r.delay).toBeGreaterThan(0);
  });

  it('a cancelled prompt fails the PAM call without an answer', async () => {
    const script = `
      const { requireNative } = await import(${JSON.stringify(new URL('../index.js', import.meta.url).href)});
      const n = requireNative();
      n.fdSetBlocking(3, true);
      const h = n.pamStart('login', 'root', 3);
      const st = n.pamCall(h, 'authenticate', 0);
      n.pamEnd(h, st);
      console.log(st);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit', 'pipe'],
    });
    converse(child.stdio[3] as Duplex, (kind) =>
      kind === 'P' ? frame('C', Buffer.alloc(0)) : null,
    );
    let out = '';
    child.stdout!.on('data', (c) => {
      out += c;
    });
    await new Promise((resolve) => child.on('close', resolve));
    expect(Number(out.trim())).not.toBe(0);
  });
});
