import * as fs from 'node:fs';
import * as path from 'node:path';
import { type EventChannels, openEventChannels } from '@xencons/evtchn';
import { type Gnttab, openSimGnttab } from '@xencons/gnttab';
import { type SimDomain, type SimHost, startSimHost } from '@xencons/sim';
import { bundleChildScript, makeTempDir } from '@xencons/test-utils';
import type { ConsoleDeps } from '../backend-deps.js';
import type { ConsoleStream } from '../console-stream.js';

/** A simulated host in a temp dir, dom0's event-channel and grant handles, and the test guest. */
export interface SimFixture {
  readonly host: SimHost;
  readonly deps: ConsoleDeps;
  readonly evtchn: EventChannels;
  readonly gnttab: Gnttab;
  /** Starts a guest running `console-guest.ts` in `mode`. */
  guest(name: string, mode: string, env?: Record<string, string>): Promise<SimDomain>;
  /** The guest's stderr so far. */
  guestLog(domain: SimDomain): string;
  close(): Promise<void>;
}

let bundled: Promise<{ dir: string; remove: () => void; script: string }> | null = null;

/** Bundles the guest program once per test file. */
function guestScript() {
  bundled ??= (async () => {
    const scratch = makeTempDir('device-guest-');
    const script = await bundleChildScript(
      new URL('./console-guest.ts', import.meta.url),
      scratch.path,
    );
    return { dir: scratch.path, remove: scratch.remove, script };
  })();
  return bundled;
}

export async function removeGuestScript(): Promise<void> {
  if (bundled === null) return;
  (await bundled).remove();
  bundled = null;
}

export async function openSimFixture(): Promise<SimFixture> {
  const { script } = await guestScript();
  const scratch = makeTempDir('device-sim-');
  const host = await startSimHost({ dir: path.join(scratch.path, 'host') });
  const evtchn = await openEventChannels({ backend: 'sim', env: { XENCONS_SIM: host.dir } });
  const gnttab = openSimGnttab(host.dom0);
  return {
    host,
    evtchn,
    gnttab,
    deps: { xs: host.xs, evtchn, gnttab },
    guest: (name, mode, env = {}) =>
      host.createDomain({ name, program: [process.execPath, script], env: { MODE: mode, ...env } }),
    guestLog: (domain) => {
      try {
        return fs.readFileSync(domain.logPath, 'utf8');
      } catch {
        return '';
      }
    },
    async close() {
      await evtchn.close().catch(() => {});
      await gnttab.close().catch(() => {});
      await host.close();
      scratch.remove();
    },
  };
}

/** Waits until `check()` gives a value, re-checking every 10 ms; fails after `ms`. */
export async function eventually<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  ms = 20_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Collects a console stream's text and waits for lines in it. */
export class TextTap {
  text = '';
  #from = 0;

  constructor(stream: ConsoleStream) {
    stream.on('data', (chunk: Buffer) => {
      this.text += chunk.toString('latin1');
    });
  }

  /** Waits for a line matching `pattern` after the previous match; returns it. */
  async line(pattern: RegExp, ms = 20_000): Promise<string> {
    return eventually(
      `a line matching ${pattern} in ${JSON.stringify(this.text.slice(this.#from))}`,
      () => {
        const lines = this.text.slice(this.#from).split('\n');
        let offset = this.#from;
        for (const line of lines.slice(0, -1)) {
          offset += line.length + 1;
          if (pattern.test(line)) {
            this.#from = offset;
            return line;
          }
        }
        return undefined;
      },
      ms,
    );
  }
}
