import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { main } from '../src/index.js';

function io() {
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
  return {
    io: { stdin: new PassThrough(), stdout, stderr, env: {} },
    out: () => out,
    err: () => err,
  };
}

describe('xencons-agent main', () => {
  it('prints help with exit 0', async () => {
    const t = io();
    expect(await main(['--help'], t.io)).toBe(0);
    expect(t.out()).toContain('Usage: xencons-agent <command>');
  });
  it('is a usage error with no command or an unknown one', async () => {
    const t = io();
    expect(await main([], t.io)).toBe(2);
    expect(await main(['frobnicate'], t.io)).toBe(2);
    expect(t.err()).toContain("unknown command 'frobnicate'");
  });
  it('says which issue brings a planned command', async () => {
    const t = io();
    expect(await main(['run'], t.io)).toBe(1);
    expect(t.err()).toContain('issue 7');
  });
});
