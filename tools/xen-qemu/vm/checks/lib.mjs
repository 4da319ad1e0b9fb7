// The check-runner prelude shared by the node check scripts of vm/checks (native-checks.mjs,
// xenstore-checks.mjs, ...). Each script prints one line per check, `PASS name` or
// `FAIL name: reason`, and optionally `NOTE tag: text` lines, which dom0-run.sh collects.
//
//   import { checkRunner, expect, until } from './lib.mjs';
//   const r = checkRunner({ options: { domid: { type: 'string', default: '' } } });
//   if (!r.anySelected(['my-a', 'my-b'])) process.exit(0);
//   await r.check('my-a', async () => { expect(1 + 1 === 2, 'arithmetic'); });
//   r.finish(); // exit status 0 when nothing failed, 1 otherwise
//
// Every script accepts `--only PATTERN` (a regular expression over check names; empty for all).
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs, promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** `code: message` for errors with a code (unless the message already starts with it). */
export function describeError(err) {
  if (err instanceof Error) {
    const code = /** @type {{ code?: unknown }} */ (err).code;
    return code && !err.message.startsWith(`${code}:`) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}

/** Throws `what` when `cond` is false. */
export function expect(cond, what) {
  if (!cond) throw new Error(what);
}

/**
 * Polls `fn` (sync or async) every `every` ms until it returns a truthy value (returned), for at
 * most `ms`.
 */
export async function until(ms, what, fn, every = 5) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await sleep(every);
  }
}

/** `promise`, or a rejection with `what` after `ms`. */
export async function within(ms, what, promise) {
  let timer;
  try {
    return await Promise.race([
      promise,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a program (bounded to 10 s) and resolves to its stdout; rejects with its stderr. */
export async function tool(cmd, args, { timeout = 10_000 } = {}) {
  try {
    const { stdout } = await execFileAsync(cmd, args, { encoding: 'utf8', timeout });
    return stdout;
  } catch (err) {
    throw new Error(`${cmd} ${args.join(' ')}: ${(err.stderr || err.message || '').trim()}`);
  }
}

/**
 * Parses the command line (`options` as for util.parseArgs, plus `--only`) and returns the
 * runner: `check(name, fn)` runs `fn` bounded by `timeoutMs` and prints its PASS/FAIL line;
 * `line(status, name, reason)` prints a result directly; `note(text)` prints `NOTE tag: text`;
 * `lap(what, since)` records a duration, all of which `notes()` joins; `finish()` exits.
 */
export function checkRunner({ options = {}, timeoutMs = 30_000, noteTag = 'check' } = {}) {
  const { values: opts } = parseArgs({
    options: { ...options, only: { type: 'string', default: '' } },
  });
  const only = opts.only ? new RegExp(opts.only) : null;
  const selected = (name) => only === null || only.test(name);
  const spent = [];
  let failed = 0;

  function line(status, name, reason) {
    if (status === 'FAIL') failed++;
    const text = reason
      ? `${status} ${name}: ${String(reason).replace(/\s+/g, ' ').slice(0, 300)}`
      : `${status} ${name}`;
    process.stdout.write(`${text}\n`);
  }

  function lap(what, since) {
    spent.push(`${what} ${Math.round(performance.now() - since)}`);
  }

  async function check(name, fn) {
    if (!selected(name)) return;
    const start = performance.now();
    try {
      await within(timeoutMs, 'the check', fn());
      line('PASS', name);
    } catch (err) {
      line('FAIL', name, describeError(err));
    } finally {
      lap(name, start);
    }
  }

  return {
    opts,
    selected,
    anySelected: (names) => names.some(selected),
    check,
    line,
    note: (text) => process.stdout.write(`NOTE ${noteTag}: ${text}\n`),
    lap,
    /** The recorded durations, `what ms, ...`. */
    laps: () => spent.join(', '),
    get failed() {
      return failed;
    },
    /** Exits now: 0 when no check failed, 1 otherwise (a parked read cannot keep node alive). */
    finish() {
      process.exit(failed === 0 ? 0 : 1);
    },
  };
}
