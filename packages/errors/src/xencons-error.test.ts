import { describe, expect, it } from 'vitest';
import { isXenconsError, XenconsError } from './index.js';

describe('XenconsError', () => {
  it('carries a stable code, details and cause', () => {
    const cause = new Error('inner');
    const err = new XenconsError('ERR_RING_CORRUPT', 'bad index', { cause, details: { prod: 5 } });
    expect(err.code).toBe('ERR_RING_CORRUPT');
    expect(err.cause).toBe(cause);
    expect(err.details).toEqual({ prod: 5 });
    expect(err.name).toBe('XenconsError');
    expect(err).toBeInstanceOf(Error);
  });

  it('is recognised by brand, not by prototype, so duplicate installs agree', () => {
    const foreign = Object.assign(new Error('x'), { code: 'ERR_X' });
    Object.defineProperty(foreign, Symbol.for('xencons.error'), { value: true });
    expect(foreign instanceof XenconsError).toBe(true);
    expect(isXenconsError(foreign, 'ERR_X')).toBe(true);
    expect(isXenconsError(foreign, 'ERR_Y')).toBe(false);
    expect(isXenconsError(new Error('plain'))).toBe(false);
    expect(isXenconsError(null)).toBe(false);
  });

  it('keeps prototype checks for subclasses', () => {
    class RingError extends XenconsError {}
    expect(new RingError('ERR_A', 'a') instanceof RingError).toBe(true);
    expect(new XenconsError('ERR_A', 'a') instanceof RingError).toBe(false);
    expect(new RingError('ERR_A', 'a') instanceof XenconsError).toBe(true);
  });
});
