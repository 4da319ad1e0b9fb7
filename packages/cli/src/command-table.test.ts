import { describe, expect, it } from 'vitest';
import { captureIo, type Program, runProgram } from './index.js';

const program: Program = {
  name: 'demo-prog',
  tagline: 'a test program',
  version: '1.2.3',
  commands: {
    hello: {
      summary: 'say hello',
      run: async (argv, io) => {
        io.stdout.write(`hi ${argv.join(' ')}\n`);
        return 0;
      },
    },
    later: { summary: 'comes with issue 99' },
  },
};

describe('runProgram', () => {
  it('prints help (exit 0) and usage without a command (exit 2)', async () => {
    const c = captureIo();
    expect(await runProgram(program, ['--help'], c.io)).toBe(0);
    expect(c.stdout()).toContain('Usage: demo-prog <command>');
    expect(c.stdout()).toMatch(/hello\s+say hello/);
    expect(await runProgram(program, [], captureIo().io)).toBe(2);
  });

  it('prints the version', async () => {
    const c = captureIo();
    expect(await runProgram(program, ['-V'], c.io)).toBe(0);
    expect(c.stdout()).toBe('1.2.3\n');
  });

  it('dispatches with the remaining arguments', async () => {
    const c = captureIo();
    expect(await runProgram(program, ['hello', 'a', 'b'], c.io)).toBe(0);
    expect(c.stdout()).toBe('hi a b\n');
  });

  it('is a usage error for unknown commands, also inherited object keys', async () => {
    for (const name of ['frobnicate', 'toString', '__proto__']) {
      const c = captureIo();
      expect(await runProgram(program, [name], c.io)).toBe(2);
      expect(c.stderr()).toContain(`unknown command '${name}'`);
    }
  });

  it('says which issue brings a planned command (exit 1)', async () => {
    const c = captureIo();
    expect(await runProgram(program, ['later'], c.io)).toBe(1);
    expect(c.stderr()).toContain('not built yet: comes with issue 99');
  });
});
