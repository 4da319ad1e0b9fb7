import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { commandExists, requirement, waitUntil, withTempDir } from './index.js';

describe('test-utils', () => {
  it('finds commands on PATH and not made-up ones', () => {
    expect(commandExists('sh')).toBe(true);
    expect(commandExists('no-such-command-xencons')).toBe(false);
  });

  it('waitUntil resolves once the condition holds and names it when it never does', async () => {
    let calls = 0;
    await waitUntil(() => ++calls >= 3, 'three calls', 1000, 1);
    expect(calls).toBe(3);
    await expect(waitUntil(async () => false, 'the impossible', 30, 5)).rejects.toThrow(
      'timed out waiting for the impossible (30 ms)',
    );
  });

  it('removes the temp dir even when the body throws', async () => {
    let seen = '';
    await expect(
      withTempDir((dir) => {
        seen = dir;
        expect(existsSync(dir)).toBe(true);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(seen).not.toBe('');
    expect(existsSync(seen)).toBe(false);
  });

  it('describes what is missing', () => {
    const r = requirement('a thing', 'not installed');
    expect(r.what).toBe('a thing');
    expect(r.missing).toBe('not installed');
  });
});
