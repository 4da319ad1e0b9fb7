import { closeSync, readSync, writeSync } from 'node:fs';
import { nativeUnavailableReason, requireNative } from '@xencons/native';
import { requirement, waitUntil } from '@xencons/test-utils';
import { expect, it } from 'vitest';
import { type AgentConsole, TtyConsoleSource, TtyStream } from '../src/index.js';

const needs = requirement('the native addon', nativeUnavailableReason());

const until = (check: () => boolean | Promise<boolean>, what: string, ms = 5000) =>
  waitUntil(check, what, ms, 5);

/** A pty whose slave plays the console device and whose master plays dom0. */
function ptyPair() {
  const n = requireNative();
  const pair = n.ptyOpen(80, 24);
  n.fdSetBlocking(pair.master, false);
  let masterOpen = true;
  return {
    path: pair.path,
    /** What dom0 types. */
    type: (text: string) => writeSync(pair.master, text),
    /** What the guest wrote (everything available now). */
    drain: () => {
      const buf = Buffer.alloc(65536);
      let out = '';
      for (;;) {
        try {
          const got = readSync(pair.master, buf, 0, buf.length, null);
          if (got <= 0) break;
          out += buf.subarray(0, got).toString('latin1');
        } catch {
          break;
        }
      }
      return out;
    },
    closeSlave: () => closeSync(pair.slave),
    hangUp: () => {
      if (!masterOpen) return;
      masterOpen = false;
      closeSync(pair.master);
    },
  };
}

needs.describe('a tty as a console', () => {
  it('is raw: bytes pass unchanged both ways, nothing is echoed', async () => {
    const pty = ptyPair();
    const stream = new TtyStream(pty.path);
    pty.closeSlave();
    try {
      let got = '';
      stream.on('data', (d: Buffer) => {
        got += d.toString('latin1');
      });
      pty.type('abc\r\x03\x7f\x1e');
      await until(() => got.length === 7, 'the input');
      expect(got).toBe('abc\r\x03\x7f\x1e'); // no ICRNL, no ISIG (Ctrl-C is a byte), no erase
      await new Promise<void>((resolve) => stream.write('line\n', () => resolve()));
      let seen = '';
      await until(() => {
        seen += pty.drain();
        return seen.length >= 5;
      }, 'the output');
      expect(seen).toBe('line\n'); // no echo of the input, no ONLCR
      expect(stream.stats()).toMatchObject({ bytesIn: 7, bytesOut: 5, queued: 0 });
    } finally {
      stream.destroy();
      pty.hangUp();
    }
  });

  it('ends when the other side hangs up', async () => {
    const pty = ptyPair();
    const stream = new TtyStream(pty.path);
    pty.closeSlave();
    const closed = new Promise((r) => stream.once('close', r));
    stream.resume();
    pty.hangUp();
    await closed;
    expect(stream.destroyed).toBe(true);
  });

  it('refuses what is not there with the errno of open', () => {
    expect(() => new TtyStream('/dev/nonexistent-hvc9')).toThrow(/ENOENT/);
  });

  it('a tty source serves an explicit path and reports it gone after a hangup', async () => {
    const pty = ptyPair();
    const source = new TtyConsoleSource({ paths: [pty.path], rescanMs: 0 });
    const consoles: AgentConsole[] = [];
    const problems: string[] = [];
    await source.start({
      decide: () => 'login',
      onConsole: (c) => consoles.push(c),
      onProblem: (m) => problems.push(m),
    });
    try {
      pty.closeSlave();
      expect(consoles.map((c) => [c.kind, c.primary, c.role])).toEqual([['tty', false, 'login']]);
      consoles[0]?.stream.resume();
      pty.hangUp();
      expect(await consoles[0]?.gone).toBe('the tty hung up (console removed?)');
      expect(problems).toEqual([]);
    } finally {
      await source.close();
      pty.hangUp();
    }
  });
});
