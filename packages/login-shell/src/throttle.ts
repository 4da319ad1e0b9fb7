/**
 * Failed-login throttling: a delay after each failure that grows with every failure in a row,
 * and a lockout once too many failures fall inside a window. Keys are whatever the caller
 * throttles on (login-shell uses the console name: one console is one attacker's line).
 */
export interface ThrottleOptions {
  /** Delay after the first failure, in ms (login(1)'s FAIL_DELAY is 3 s). */
  baseDelayMs?: number;
  /** Each further failure in a row multiplies the delay by this. */
  factor?: number;
  /** The delay never exceeds this. */
  maxDelayMs?: number;
  /** This many failures inside `windowMs` lock the key. */
  maxFailures?: number;
  /** Failures older than this are forgotten. */
  windowMs?: number;
  /** How long a lockout lasts. */
  lockoutMs?: number;
}

export const DEFAULT_THROTTLE: Required<ThrottleOptions> = {
  baseDelayMs: 2000,
  factor: 2,
  maxDelayMs: 30_000,
  maxFailures: 5,
  windowMs: 15 * 60_000,
  lockoutMs: 5 * 60_000,
};

export interface FailureVerdict {
  /** Wait this long before the next prompt (discarding input meanwhile). */
  delayMs: number;
  /** Non-zero when this failure locked the key: refuse logins for this long. */
  lockedForMs: number;
}

interface KeyState {
  failures: number[];
  lockedUntil: number;
}

export class LoginThrottle {
  readonly options: Readonly<Required<ThrottleOptions>>;
  readonly #now: () => number;
  readonly #keys = new Map<string, KeyState>();

  constructor(options: ThrottleOptions = {}, now: () => number = Date.now) {
    const o = { ...DEFAULT_THROTTLE, ...stripUndefined(options) };
    for (const [k, v] of Object.entries(o)) {
      if (!Number.isFinite(v) || v < 0)
        throw new RangeError(`${k} must be a number >= 0, got ${v}`);
    }
    if (o.factor < 1) throw new RangeError(`factor must be >= 1, got ${o.factor}`);
    if (o.maxFailures < 1) throw new RangeError(`maxFailures must be >= 1, got ${o.maxFailures}`);
    this.options = Object.freeze(o);
    this.#now = now;
  }

  /** ms until `key` may try again; 0 when it may now. */
  lockedFor(key: string): number {
    const s = this.#keys.get(key);
    if (!s) return 0;
    const left = s.lockedUntil - this.#now();
    if (left > 0) return left;
    if (s.lockedUntil > 0) this.#keys.delete(key); // a served lockout starts afresh
    return 0;
  }

  /** Records a failed attempt for `key`. */
  failure(key: string): FailureVerdict {
    const now = this.#now();
    const o = this.options;
    const s = this.#keys.get(key) ?? { failures: [], lockedUntil: 0 };
    this.#keys.set(key, s);
    s.failures = s.failures.filter((t) => now - t < o.windowMs);
    s.failures.push(now);
    const n = s.failures.length;
    const delayMs = Math.min(o.maxDelayMs, o.baseDelayMs * o.factor ** (n - 1));
    if (n >= o.maxFailures) {
      s.lockedUntil = now + o.lockoutMs;
      return { delayMs, lockedForMs: o.lockoutMs };
    }
    return { delayMs, lockedForMs: 0 };
  }

  /** A successful login forgets the key's failures. */
  success(key: string): void {
    this.#keys.delete(key);
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
