import * as fs from 'node:fs';
import { nativeUnavailableReason } from '@xencons/native';
import { requirement, waitUntil } from '@xencons/test-utils';
import { expect, it } from 'vitest';
import { ConsolePty } from './console-pty.js';

const needs = requirement('the native addon', nativeUnavailableReason());

/** Reads what the pty slave has, without blocking. */
function drain(fd: number): Buffer {
  const chunks: Buffer[] = [];
  const buffer = Buffer.alloc(65536);
  for (;;) {
    try {
      const n = fs.readSync(fd, buffer);
      if (n === 0) break;
      chunks.push(Buffer.from(buffer.subarray(0, n)));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EAGAIN') break;
      throw error;
    }
  }
  return Buffer.concat(chunks);
}

needs.describe('ConsolePty', () => {
  it('keeps the newest output while nobody reads, drops the oldest (counted), and delivers once a client reads', async () => {
    const pty = ConsolePty.open(16 * 1024);
    try {
      // 256 KiB of numbered lines with nobody on the pty: the kernel buffer fills, then the queue.
      let written = '';
      for (let i = 0; i < 20_000; i++) {
        const line = `line ${String(i).padStart(6, '0')}\n`;
        written += line;
        pty.write(Buffer.from(line));
      }
      expect(pty.dropped).toBeGreaterThan(0);
      const client = fs.openSync(
        pty.path,
        fs.constants.O_RDWR | fs.constants.O_NOCTTY | fs.constants.O_NONBLOCK,
      );
      try {
        let got = '';
        // The queue goes out when the client makes room (POLLOUT), with no timer behind it.
        await waitUntil(
          () => {
            got += drain(client).toString();
            return got.endsWith('line 019999\n');
          },
          'the newest output at the client',
          5000,
          5,
        );
        expect(got.length + pty.dropped).toBe(written.length);
        // What arrived is a prefix kept by the kernel plus the newest bytes, each part in order.
        expect(written.startsWith(got.slice(0, 64))).toBe(true);
        expect(written.endsWith(got.slice(-16 * 1024))).toBe(true);
        // Output after the client is there flows at once.
        pty.write(Buffer.from('after\n'));
        await waitUntil(
          () => {
            got += drain(client).toString();
            return got.endsWith('after\n');
          },
          'live output',
          5000,
          5,
        );
      } finally {
        fs.closeSync(client);
      }
    } finally {
      pty.close();
    }
  });

  it('passes keystrokes from the client on, and holds them while paused', async () => {
    const pty = ConsolePty.open();
    const client = fs.openSync(pty.path, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
    try {
      let typed = '';
      pty.onInput((bytes) => {
        typed += bytes.toString();
      });
      fs.writeSync(client, 'abc');
      await waitUntil(() => typed === 'abc', 'input');
      pty.pause();
      fs.writeSync(client, 'def');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(typed).toBe('abc');
      pty.resume();
      await waitUntil(() => typed === 'abcdef', 'input after resume');
    } finally {
      fs.closeSync(client);
      pty.close();
    }
  });
});
