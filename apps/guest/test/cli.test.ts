import { captureIo } from '@xencons/cli';
import { describe, expect, it } from 'vitest';
import { main } from '../src/index.js';

describe('xencons-agent main', () => {
  it('prints help with exit 0', async () => {
    const c = captureIo();
    expect(await main(['--help'], c.io)).toBe(0);
    expect(c.stdout()).toContain('Usage: xencons-agent <command>');
  });
  it('says which issue brings a planned command', async () => {
    const c = captureIo();
    expect(await main(['run'], c.io)).toBe(1);
    expect(c.stderr()).toContain('issue 7');
  });
});
