import { captureIo } from '@xencons/cli';
import { describe, expect, it } from 'vitest';
import { main } from '../src/index.js';

describe('xencons main', () => {
  it('prints help with exit 0', async () => {
    const c = captureIo();
    expect(await main(['--help'], c.io)).toBe(0);
    expect(c.stdout()).toContain('Usage: xencons <command>');
    expect(c.stdout()).toMatch(/xs\s+read\|write/);
  });
  it('is a usage error with no command or an unknown one', async () => {
    const c = captureIo();
    expect(await main([], c.io)).toBe(2);
    expect(await main(['frobnicate'], c.io)).toBe(2);
    expect(c.stderr()).toContain("unknown command 'frobnicate'");
  });
  it('debug: help, and a usage error without a domain', async () => {
    const c = captureIo();
    expect(await main(['debug', '--help'], c.io)).toBe(0);
    expect(c.stdout()).toContain('Usage: xencons debug NAME|DOMID [KEY]');
    expect(await main(['debug'], c.io)).toBe(2);
    expect(c.stderr()).toContain('give NAME|DOMID');
  });
});
