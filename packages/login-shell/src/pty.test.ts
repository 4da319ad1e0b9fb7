import { isRoot, requirement } from '@xencons/test-utils';
import { expect, it } from 'vitest';
import { lookupAccount } from './accounts.js';
import { Pty, PtyProcess } from './pty.js';
import { nativeCore } from './test-support.js';

const ENV = { PATH: '/usr/bin:/bin', TERM: 'dumb', LC_ALL: 'C' };

/** Runs `script` with /bin/sh on a fresh pty; collects output until drained. */
async function run(
  script: string,
  options: {
    cols?: number;
    rows?: number;
    slow?: boolean;
    onChunk?: (pty: Pty, c: Buffer) => void;
  } = {},
) {
  const pty = Pty.open({ cols: options.cols ?? 80, rows: options.rows ?? 24 });
  try {
    const proc = PtyProcess.spawn(pty, { file: '/bin/sh', args: ['sh', '-c', script], env: ENV });
    pty.closeSlave();
    const chunks: Buffer[] = [];
    pty.onData((c) => {
      chunks.push(Buffer.from(c));
      options.onChunk?.(pty, c);
      if (options.slow) {
        // A consumer that keeps falling behind: pause after every chunk, resume a bit later.
        pty.pause();
        setTimeout(() => pty.resume(), 1);
      }
    });
    const exit = await proc.exited;
    await pty.drained;
    return { exit, output: Buffer.concat(chunks).toString('utf8'), path: pty.path, pid: proc.pid };
  } finally {
    pty.close();
  }
}

nativeCore.describe('Pty and PtyProcess', () => {
  it('delivers every byte a program wrote before it exited, even to a slow reader', async () => {
    const r = await run('seq 1 60000; printf LAST', { slow: true });
    expect(r.exit).toEqual({ exitCode: 0, signal: null });
    const lines = r.output.split('\r\n');
    expect(lines.length).toBe(60001);
    expect(lines[0]).toBe('1');
    expect(lines[59999]).toBe('60000');
    expect(lines[60000]).toBe('LAST');
  });

  it('keeps the last output of a program that exits at once, and its exit status', async () => {
    for (let i = 0; i < 20; i++) {
      const r = await run(`printf 'bye %s' ${i}; exit 7`);
      expect(r.output).toBe(`bye ${i}`);
      expect(r.exit.exitCode).toBe(7);
    }
  });

  it('makes the program a session leader with the pty as its controlling terminal', async () => {
    const r = await run('tty; ps -o sid= -o tty= -p $$; echo pid=$$');
    const [ttyLine, ps, pidLine] = r.output.trim().split('\r\n');
    expect(ttyLine).toBe(r.path);
    const pid = pidLine?.replace('pid=', '');
    const [sid, ttyName] = ps!.trim().split(/\s+/);
    expect(sid).toBe(pid);
    expect(`/dev/${ttyName}`).toBe(r.path);
  });

  it('sets the window size and delivers resizes as SIGWINCH', async () => {
    let seen = '';
    const r = await run(
      `stty size; trap 'stty size; exit 0' WINCH; echo ready; while :; do sleep 0.05; done`,
      {
        cols: 123,
        rows: 45,
        onChunk: (pty, c) => {
          seen += c.toString();
          if (seen.includes('ready')) {
            seen = '';
            pty.resize({ cols: 100, rows: 30 });
            expect(pty.size()).toEqual({ cols: 100, rows: 30 });
          }
        },
      },
    );
    expect(r.output).toBe('45 123\r\nready\r\n30 100\r\n');
  });

  it('reports a signal that ended the program by name', async () => {
    const r = await run('kill -TERM $$');
    expect(r.exit).toEqual({ exitCode: null, signal: 'SIGTERM' });
  });

  it('throws ENOENT from execve for a missing program, with the path', () => {
    const pty = Pty.open({ cols: 80, rows: 24 });
    try {
      expect(() =>
        PtyProcess.spawn(pty, { file: '/nonexistent/prog', args: ['x'], env: {} }),
      ).toThrow(
        expect.objectContaining({ code: 'ENOENT', syscall: 'execve', path: '/nonexistent/prog' }),
      );
    } finally {
      pty.close();
    }
  });

  it('starts in / when the working directory cannot be entered, like login(1)', async () => {
    const pty = Pty.open({ cols: 80, rows: 24 });
    try {
      const proc = PtyProcess.spawn(pty, {
        file: '/bin/sh',
        args: ['sh', '-c', 'pwd'],
        env: ENV,
        cwd: '/nonexistent-dir',
      });
      pty.closeSlave();
      let out = '';
      pty.onData((c) => {
        out += c.toString();
      });
      await proc.exited;
      await pty.drained;
      expect(out).toBe('/\r\n');
    } finally {
      pty.close();
    }
  });
});

requirement(
  'root (to switch credentials)',
  isRoot() ? null : 'not running as root',
).describe('PtyProcess credentials', () => {
  it('runs the program as another user with that user’s groups', async () => {
    const nobody = lookupAccount('nobody');
    expect(nobody).not.toBeNull();
    const pty = Pty.open({ cols: 80, rows: 24 });
    try {
      const proc = PtyProcess.spawn(pty, {
        file: '/bin/sh',
        args: ['sh', '-c', 'id -u; id -g; id -G'],
        env: ENV,
        credentials: { uid: nobody!.uid, gid: nobody!.gid, groups: nobody!.groups },
      });
      pty.closeSlave();
      let out = '';
      pty.onData((c) => {
        out += c.toString();
      });
      await proc.exited;
      await pty.drained;
      expect(out.trim().split('\r\n')).toEqual([
        String(nobody!.uid),
        String(nobody!.gid),
        nobody!.groups.join(' '),
      ]);
    } finally {
      pty.close();
    }
  });
});
