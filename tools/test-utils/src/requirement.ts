import { describe, it } from 'vitest';

/** Something a suite needs from the machine: a system package, root, a built addon. */
export interface Requirement {
  /** What is needed, e.g. `libxen-dev headers`. */
  readonly what: string;
  /** `null` when available, otherwise why not. */
  readonly missing: string | null;
  /**
   * `describe` when the requirement is met. When it is not: locally the suite is skipped and the
   * reason printed; with `CI=true` the suite becomes one failing test naming what is missing.
   */
  readonly describe: (name: string, fn: () => void) => void;
}

const isCi = () => process.env.CI === 'true' || process.env.CI === '1';

export function requirement(what: string, missing: string | null): Requirement {
  const describeFor = (name: string, fn: () => void) => {
    if (missing === null) {
      describe(name, fn);
    } else if (isCi()) {
      describe(name, () => {
        it(`requires ${what}`, () => {
          throw new Error(`${what} is required in CI but missing: ${missing}`);
        });
      });
    } else {
      process.stderr.write(`[skip] ${name}: needs ${what}: ${missing}\n`);
      describe.skip(name, fn);
    }
  };
  return { what, missing, describe: describeFor };
}
