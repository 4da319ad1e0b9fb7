import type { XenstoreClient, XsWatch } from '@xencons/xenstore';

/** The agent's own xenstore directory, below the guest-writable `data`. */
export function agentNodePath(domid: number): string {
  return `/local/domain/${domid}/data/xencons-agent`;
}

/** Largest reply written back (a xenstore value holds at most 4096 bytes; 4080 via /dev/xen/xenbus). */
export const MAX_REPLY_BYTES = 3072;

/** A request as dom0 writes it: `KEY` or `ID KEY` (the ID comes back at the head of the reply). */
export function parseDebugRequest(value: string): { id: string; key: string } | null {
  const text = value.trim();
  if (text === '') return null;
  const m = /^(?:([A-Za-z0-9_-]{1,32}) )?(\S)$/.exec(text);
  if (!m) return null;
  return { id: m[1] ?? '', key: m[2] ?? '' };
}

/** `ID\nline\nline…`, cut to {@link MAX_REPLY_BYTES} on a line boundary with a note of what was left out. */
export function formatDebugReply(id: string, lines: readonly string[]): string {
  let out = `${id}\n`;
  for (let i = 0; i < lines.length; i++) {
    const next = `${lines[i]}\n`;
    if (Buffer.byteLength(out + next) > MAX_REPLY_BYTES - 64) {
      out += `… ${lines.length - i} more lines on the log console\n`;
      break;
    }
    out += next;
  }
  return out;
}

export interface DebugNodeOptions {
  xs: XenstoreClient;
  domid: number;
  /** Runs a key and returns its output lines. */
  run: (key: string) => Promise<string[]>;
  /** The current key list, one `KEY HELP` line per key. */
  keyList: () => string;
  version: string;
  onProblem: (message: string) => void;
}

/**
 * The out-of-band debug trigger: a directory the agent owns, `data/xencons-agent`, with
 *
 * | node | written by | value |
 * |---|---|---|
 * | `version` | agent | `xencons-agent 0.0.0` |
 * | `keys` | agent | one `KEY HELP` line per key (`a agent statistics`) |
 * | `request` | dom0 (`xencons debug NAME KEY`) | `KEY` or `ID KEY`; the agent acknowledges by writing it empty, as Linux does for `control/sysrq` (xen-protocols.md §5.2) |
 * | `reply` | agent | `ID` and the output lines (cut to 3 KiB) |
 *
 * The directory is the guest's with no access for other domains (`n<domid>`); dom0 is privileged
 * and writes `request` anyway. It is removed when the agent stops.
 */
export class XenstoreDebugNode {
  readonly #o: DebugNodeOptions;
  readonly #dir: string;
  #watch: XsWatch | null = null;
  #busy: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(options: DebugNodeOptions) {
    this.#o = options;
    this.#dir = agentNodePath(options.domid);
  }

  get path(): string {
    return this.#dir;
  }

  async start(): Promise<void> {
    const { xs, domid } = this.#o;
    const dir = this.#dir;
    await xs.transaction(async (tx) => {
      await tx.mkdir(dir);
      await tx.setPerms(dir, [`n${domid}`]);
      await tx.write(`${dir}/version`, this.#o.version);
      await tx.write(`${dir}/keys`, this.#o.keyList());
      await tx.write(`${dir}/request`, '');
      await tx.write(`${dir}/reply`, '');
    });
    this.#watch = await xs.watch(`${dir}/request`, {
      onEvent: () => {
        this.#busy = this.#busy.then(() => this.#handle()).catch(() => {});
      },
    });
  }

  /** Writes the key list again (after callbacks were registered or removed). */
  async refreshKeys(): Promise<void> {
    if (this.#closed) return;
    await this.#o.xs.write(`${this.#dir}/keys`, this.#o.keyList()).catch(() => {});
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#watch?.close().catch(() => {});
    await this.#busy;
    await this.#o.xs.rm(this.#dir).catch(() => {});
  }

  async #handle(): Promise<void> {
    if (this.#closed) return;
    const { xs } = this.#o;
    const node = `${this.#dir}/request`;
    // Read and acknowledge in one transaction (retried on EAGAIN), as manage.c does for sysrq.
    let value: string | undefined;
    try {
      value = await xs.transaction(async (tx) => {
        const v = await tx.readStringOptional(node);
        if (v !== undefined && v !== '') await tx.write(node, '');
        return v;
      });
    } catch (error) {
      this.#o.onProblem(`debug request: ${(error as Error).message}`);
      return;
    }
    if (value === undefined || value === '') return; // our own acknowledgement, or gone
    const request = parseDebugRequest(value);
    if (request === null) {
      this.#o.onProblem(`debug request ${JSON.stringify(value.slice(0, 40))} is not KEY or ID KEY`);
      return;
    }
    const lines = await this.#o.run(request.key);
    await xs
      .write(`${this.#dir}/reply`, formatDebugReply(request.id, lines))
      .catch((error) => this.#o.onProblem(`debug reply: ${(error as Error).message}`));
    await this.refreshKeys();
  }
}
