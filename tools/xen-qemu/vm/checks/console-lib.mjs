// Helpers for the check scripts that drive our console daemon and `xencons console` in dom0
// (console-checks.mjs, agent-checks.mjs): child processes stopped by their PID only, the daemon
// on its own socket and log folder, the console client with piped stdin (typing a command, or a
// person's send/expect dialogue).
//
//   import { consoleTools } from './console-lib.mjs';
//   const t = consoleTools({ runner, repo, work, guest: 'xqguest', domid });
//   const daemon = await t.startDaemon('pty', []);
//   await t.consoleUp(daemon, 'pty|grant|frame');
//   const c = await t.attach(daemon.socket, 1);    // xencons console GUEST --num 1
//   c.send('\r'); await c.expect(/login: $/, 'the login prompt');
//   await c.finish(); await daemon.stop();
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import * as net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeError, expect, tool, until } from './lib.mjs';

/** Printable tail of console bytes, for failure reasons (terminal escapes dropped). */
const ESCAPES = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, 'g');
export const tail = (text, n = 160) =>
  text
    .replace(ESCAPES, '')
    .replace(/[^\x20-\x7e]+/g, ' ')
    .slice(-n);

/** Resolves when `child` exits (or at once if it has), false after `ms`. */
export function exited(child, ms) {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** SIGTERM, then SIGKILL after `ms`: only this child, by its PID. Resolves when it has exited. */
export async function stop(child, ms = 15_000) {
  if (child.exitCode !== null || child.signalCode !== null) return 'exited before';
  child.kill('SIGTERM');
  if (await exited(child, ms)) return `exit ${child.exitCode ?? child.signalCode}`;
  child.kill('SIGKILL');
  await exited(child, 5_000);
  return `killed after ${ms} ms`;
}

/** `until` of lib.mjs at 100 ms: these waits read files or run tools on each poll. */
export const waitUntil = (ms, what, fn) => until(ms, what, fn, 100);

/** Reads a file as latin1, '' when it is not there (yet). */
export function readText(path) {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return '';
  }
}

/** Waits until `text` is in the file at `path`. */
export const fileHas = (path, text, ms) =>
  waitUntil(ms, `no '${text}' in ${path}`, () => readText(path).includes(text));

export const xsRead = async (path) => (await tool('xenstore-read', [path])).trim();

/**
 * The tools bound to one run: `repo` is the payload's repo folder (with a trailing slash),
 * `work` a scratch folder, `guest`/`domid` the test guest; `runner` (lib.mjs) records laps.
 */
export function consoleTools({ runner, repo, work, guest, domid }) {
  const cli = `${repo}apps/dom0/dist/cli.js`;

  /** A `xencons <args>` child; stderr and stdout collected. */
  function xencons(args, stdio = ['ignore', 'pipe', 'pipe']) {
    const child = spawn(process.execPath, [cli, ...args], { stdio, env: { ...process.env } });
    const out = { stdout: '', stderr: '' };
    child.stdout?.on('data', (d) => {
      out.stdout += d.toString('latin1');
    });
    child.stderr?.on('data', (d) => {
      out.stderr += d.toString('latin1');
    });
    return { child, out };
  }

  /**
   * Starts `xencons daemon` on its own socket and log folder; resolves once it says it is ready.
   * `daemon.stop()` ends it by its PID.
   */
  async function startDaemon(tag, extra) {
    const dir = `${work}/${tag}`;
    const socket = `${dir}/daemon.sock`;
    const logDir = `${dir}/logs`;
    mkdirSync(dir, { recursive: true });
    const started = performance.now();
    const { child, out } = xencons(['daemon', '--socket', socket, '--log-dir', logDir, ...extra]);
    const daemon = {
      child,
      socket,
      logDir,
      log: `${logDir}/guest-${guest}.log`,
      stderr: () => out.stderr,
      why: () => `daemon said: ${tail(out.stderr, 300)}`,
      stop: () => stop(child),
    };
    try {
      await waitUntil(120_000, `the daemon is not ready`, () => {
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(`the daemon exited (${child.exitCode ?? child.signalCode})`);
        return out.stderr.includes('xencons daemon ready');
      });
    } catch (err) {
      await daemon.stop();
      throw new Error(`${describeError(err)}; ${daemon.why()}`);
    }
    runner.lap(`${tag}-daemon-ready`, started);
    return daemon;
  }

  /** The daemon's `console up: NAME (domain D, via VIA)` line for the guest, once it is there. */
  async function consoleUp(daemon, viaPattern, ms = 120_000) {
    const re = new RegExp(`console up: ${guest} \\(domain ${domid}, via (${viaPattern})[^)]*\\)`);
    return waitUntil(
      ms,
      `no 'console up: ${guest} (... via ${viaPattern})' from the daemon`,
      () => {
        if (daemon.child.exitCode !== null) throw new Error(`the daemon exited; ${daemon.why()}`);
        return re.exec(daemon.stderr())?.[0] ?? null;
      },
    );
  }

  /** The daemon's answer to `{"op":"list"}` on its socket (what `xencons list` asks). */
  function listOverSocket(socket) {
    return new Promise((resolve, reject) => {
      const s = net.connect(socket);
      let text = '';
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error('no answer to list within 10 s'));
      }, 10_000);
      s.on('connect', () => s.write('{"op":"list"}\n'));
      s.on('data', (d) => {
        text += d.toString();
      });
      s.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      s.on('close', () => {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(text).consoles ?? []);
        } catch {
          reject(new Error(`bad list reply: ${tail(text)}`));
        }
      });
    });
  }

  /** Waits until the daemon lists console `num` of the guest as connected; returns its entry. */
  async function consoleConnected(daemon, num, ms = 30_000) {
    let last = null;
    await waitUntil(
      ms,
      `the daemon does not serve console ${num}`,
      async () => {
        const list = await listOverSocket(daemon.socket).catch(() => []);
        last = list.find((c) => c.domid === domid && c.num === num) ?? null;
        return last?.state === 'connected';
      },
      500,
    ).catch((err) => {
      throw new Error(`${describeError(err)}: its list says ${JSON.stringify(last)}`);
    });
    return last;
  }

  /**
   * `xencons console GUEST [--num N]` with a pipe for stdin, driven like a person at a terminal:
   * resolves once attached. `send(text)` types; `expect(pattern, what, ms)` waits for `pattern`
   * in what came after the previous match (or send) and returns the match; `text()` is all it
   * printed; `finish()` ends stdin (which detaches it) and expects exit status 0; `close()`
   * stops it by its PID, whatever state it is in.
   */
  async function attach(socket, num) {
    const started = performance.now();
    const args = ['console', guest, '--socket', socket];
    if (num !== 0) args.push('--num', String(num));
    const { child, out } = xencons(args, ['pipe', 'pipe', 'pipe']);
    child.stdin.on('error', () => {});
    let from = 0;
    const why = () =>
      `console client printed '${tail(out.stdout.slice(from))}', said '${tail(out.stderr, 200)}'`;
    const c = {
      child,
      text: () => out.stdout,
      stderr: () => out.stderr,
      why,
      send(text) {
        from = out.stdout.length;
        child.stdin.write(text);
      },
      async expect(pattern, what, ms = 60_000) {
        const found = await waitUntil(
          ms,
          `no ${what} (${String(pattern)}); ${why()}`,
          () => {
            const rest = out.stdout.slice(from);
            const m =
              typeof pattern === 'string'
                ? rest.includes(pattern)
                  ? { index: rest.indexOf(pattern), 0: pattern }
                  : null
                : pattern.exec(rest);
            if (m) {
              from += m.index + m[0].length;
              return m;
            }
            if (child.exitCode !== null)
              throw new Error(
                `xencons console exited ${child.exitCode} waiting for ${what}; ${why()}`,
              );
            return null;
          },
          50,
        );
        return found[0];
      },
      async finish() {
        child.stdin.end();
        if (!(await exited(child, 20_000)))
          throw new Error(`xencons console still running 20 s after its stdin ended; ${why()}`);
        expect(child.exitCode === 0, `xencons console exited ${child.exitCode}; ${why()}`);
        runner.lap(`console-client-num${num}`, started);
      },
      close: () => stop(child, 5_000),
    };
    try {
      await waitUntil(60_000, 'xencons console did not attach', () => {
        if (child.exitCode !== null)
          throw new Error(`xencons console exited ${child.exitCode}: ${tail(out.stderr, 200)}`);
        return out.stderr.includes('Connected to');
      });
    } catch (err) {
      await c.close();
      throw err;
    }
    return c;
  }

  /**
   * Attaches to console `num`, types `command` + CR (again every 20 s while `expected` has not
   * shown up), then ends stdin, which detaches it. Resolves to what it printed; throws when
   * `expected` did not come back within `ms`, or the client did not exit after its stdin ended.
   */
  async function typeThroughConsole(socket, num, command, expected, ms = 90_000) {
    const c = await attach(socket, num);
    try {
      const end = Date.now() + ms;
      let sent = 0;
      while (!c.text().includes(expected)) {
        if (c.child.exitCode !== null)
          throw new Error(`xencons console exited ${c.child.exitCode} early; ${c.why()}`);
        if (Date.now() > end) throw new Error(`no '${expected}' within ${ms / 1000} s; ${c.why()}`);
        if (Date.now() >= end - ms + sent * 20_000) {
          c.child.stdin.write(`${command}\r`);
          sent++;
        }
        await sleep(100);
      }
      await c.finish();
      return { output: c.text(), tries: sent };
    } finally {
      await c.close();
    }
  }

  return {
    cli,
    xencons,
    startDaemon,
    consoleUp,
    listOverSocket,
    consoleConnected,
    attach,
    typeThroughConsole,
  };
}
