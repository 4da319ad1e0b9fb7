import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LoginThrottle } from './throttle.js';

function clock(start = 1_000_000) {
  let t = start;
  return {
    now: () => t,
    advance: (ms: number) => {
      t += ms;
    },
  };
}

describe('LoginThrottle', () => {
  it('doubles the delay after each failure in a row, up to the maximum', () => {
    const c = clock();
    const th = new LoginThrottle({ baseDelayMs: 1000, maxDelayMs: 5000, maxFailures: 100 }, c.now);
    const delays = Array.from({ length: 5 }, () => th.failure('hvc0').delayMs);
    expect(delays).toEqual([1000, 2000, 4000, 5000, 5000]);
  });

  it('locks a key after maxFailures inside the window, for lockoutMs, then starts afresh', () => {
    const c = clock();
    const th = new LoginThrottle(
      { baseDelayMs: 10, maxFailures: 3, windowMs: 60_000, lockoutMs: 30_000 },
      c.now,
    );
    expect(th.failure('hvc0').lockedForMs).toBe(0);
    expect(th.failure('hvc0').lockedForMs).toBe(0);
    expect(th.lockedFor('hvc0')).toBe(0);
    expect(th.failure('hvc0').lockedForMs).toBe(30_000);
    expect(th.lockedFor('hvc0')).toBe(30_000);
    expect(th.lockedFor('hvc1')).toBe(0);
    c.advance(29_999);
    expect(th.lockedFor('hvc0')).toBe(1);
    c.advance(1);
    expect(th.lockedFor('hvc0')).toBe(0);
    // The served lockout cleared the failures: the next one is a first failure again.
    expect(th.failure('hvc0')).toEqual({ delayMs: 10, lockedForMs: 0 });
  });

  it('forgets failures older than the window', () => {
    const c = clock();
    const th = new LoginThrottle({ baseDelayMs: 100, maxFailures: 3, windowMs: 1000 }, c.now);
    th.failure('k');
    th.failure('k');
    c.advance(1000);
    expect(th.failure('k')).toEqual({ delayMs: 100, lockedForMs: 0 });
  });

  it('a success resets the delay', () => {
    const c = clock();
    const th = new LoginThrottle({ baseDelayMs: 100 }, c.now);
    th.failure('k');
    th.failure('k');
    th.success('k');
    expect(th.failure('k').delayMs).toBe(100);
  });

  it('never lets delays shrink while failures accumulate, nor exceed the maximum', () => {
    fc.assert(
      fc.property(fc.array(fc.nat({ max: 10_000 }), { minLength: 1, maxLength: 30 }), (gaps) => {
        const c = clock();
        const th = new LoginThrottle(
          { baseDelayMs: 500, maxDelayMs: 8000, maxFailures: 1000, windowMs: 1e9 },
          c.now,
        );
        let last = 0;
        for (const g of gaps) {
          c.advance(g);
          const { delayMs } = th.failure('k');
          expect(delayMs).toBeGreaterThanOrEqual(last);
          expect(delayMs).toBeLessThanOrEqual(8000);
          last = delayMs;
        }
      }),
    );
  });

  it('rejects nonsense options', () => {
    expect(() => new LoginThrottle({ factor: 0.5 })).toThrow(RangeError);
    expect(() => new LoginThrottle({ maxFailures: 0 })).toThrow(RangeError);
    expect(() => new LoginThrottle({ baseDelayMs: -1 })).toThrow(RangeError);
  });
});
