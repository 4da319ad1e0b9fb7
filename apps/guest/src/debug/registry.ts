/** Writes one line of a debug callback's output (the prefix is added for it). */
export interface DebugOutput {
  line(text: string): void;
}

/** Why a callback runs: a key typed on a console, a xenstore request from dom0, the control socket. */
export type DebugTrigger = 'console' | 'xenstore' | 'control';

export type DebugCallback = (out: DebugOutput, trigger: DebugTrigger) => void | Promise<void>;

export interface DebugRegistration {
  /** One printable ASCII character; several callbacks may share a key (they all run). */
  readonly key: string;
  /** Names the part that registered (win-xenbus truncates to 31 characters; so do we). */
  readonly prefix: string;
  /** One line for the key list. */
  readonly help: string;
  readonly callback: DebugCallback;
}

/** Keys with a meaning of their own: `?` lists the keys, `*` runs every callback. */
export const HELP_KEY = '?';
export const ALL_KEY = '*';

const MAX_PREFIX = 31;

export interface DebugRunOptions {
  /** How long one callback may take before it is reported as stuck (ms, default 2000). */
  timeoutMs?: number;
}

function checkKey(key: string): void {
  if (key.length !== 1 || key < '!' || key > '~' || key === HELP_KEY || key === ALL_KEY) {
    throw new Error(
      `a debug key is one printable ASCII character other than ${HELP_KEY} and ${ALL_KEY}, not ${JSON.stringify(key)}`,
    );
  }
}

/**
 * Debug callbacks by key, as win-xenbus's XENBUS_DEBUG interface keeps them (xen-protocols.md
 * §7.4): parts of the agent (and any package, through {@link globalDebugRegistry}) register a
 * callback with a prefix; a trigger runs every callback of a key (or all, `*`), each bracketed by
 * `====>` / `<====` lines and with its output prefixed. A failing or stuck callback is reported
 * and the others still run.
 */
export class DebugRegistry {
  readonly #entries = new Set<DebugRegistration>();

  /** Registers a callback; returns its deregistration. */
  register(key: string, prefix: string, callback: DebugCallback, help = prefix): () => void {
    checkKey(key);
    const entry: DebugRegistration = {
      key,
      prefix: prefix.replace(/\p{Cc}/gu, '?').slice(0, MAX_PREFIX),
      help: help.replace(/\p{Cc}/gu, '?'),
      callback,
    };
    this.#entries.add(entry);
    return () => {
      this.#entries.delete(entry);
    };
  }

  /** True when `key` runs something (`?` and `*` always do). */
  has(key: string): boolean {
    if (key === HELP_KEY || key === ALL_KEY) return true;
    for (const e of this.#entries) if (e.key === key) return true;
    return false;
  }

  /** Keys with their help lines, sorted. */
  keys(): { key: string; help: string[] }[] {
    const byKey = new Map<string, string[]>();
    for (const e of this.#entries) {
      const list = byKey.get(e.key) ?? [];
      if (!list.includes(e.help)) list.push(e.help);
      byKey.set(e.key, list);
    }
    return [...byKey]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, help]) => ({ key, help }));
  }

  /** One `KEY HELP` line per key (`a agent statistics`), for the xenstore node. */
  keyList(): string {
    return this.keys()
      .map((k) => `${k.key} ${k.help.join('; ')}`)
      .join('\n');
  }

  /** Runs the callbacks of `key` and returns the output lines (no line endings). */
  async run(key: string, trigger: DebugTrigger, options: DebugRunOptions = {}): Promise<string[]> {
    const lines: string[] = [];
    if (key === HELP_KEY) {
      lines.push('XENCONS|DEBUG: keys');
      for (const k of this.keys()) lines.push(`  ${k.key}  ${k.help.join('; ')}`);
      lines.push(`  ${ALL_KEY}  everything above`);
      lines.push(`  ${HELP_KEY}  this list`);
      return lines;
    }
    const selected = [...this.#entries].filter((e) => key === ALL_KEY || e.key === key);
    if (selected.length === 0) {
      lines.push(
        `XENCONS|DEBUG: no callback for key ${JSON.stringify(key)} (${HELP_KEY} lists them)`,
      );
      return lines;
    }
    const timeoutMs = options.timeoutMs ?? 2000;
    for (const entry of selected) {
      lines.push(`XENCONS|DEBUG: ====> ${entry.prefix}`);
      let open = true;
      const out: DebugOutput = {
        line: (text) => {
          if (!open) return;
          for (const part of String(text).split(/\r?\n/)) {
            lines.push(`${entry.prefix}: ${part.replace(/\p{Cc}/gu, '?')}`);
          }
        },
      };
      let timer: NodeJS.Timeout | undefined;
      try {
        const result = await Promise.race([
          Promise.resolve().then(() => entry.callback(out, trigger)),
          new Promise<'stuck'>((resolve) => {
            timer = setTimeout(() => resolve('stuck'), timeoutMs);
          }),
        ]);
        if (result === 'stuck') out.line(`(no answer within ${timeoutMs} ms; skipped)`);
      } catch (error) {
        out.line(`failed: ${(error as Error)?.message ?? String(error)}`);
      } finally {
        clearTimeout(timer);
        open = false;
      }
      lines.push(`XENCONS|DEBUG: <==== ${entry.prefix}`);
    }
    return lines;
  }
}

const GLOBAL = Symbol.for('xencons.debug.registry');

/**
 * The process-wide registry, shared by every copy of this module through a `Symbol.for` key on
 * `globalThis` (so two bundled copies, or a package that does the same lookup without importing
 * the agent, register into the one the agent triggers).
 */
export function globalDebugRegistry(): DebugRegistry {
  const g = globalThis as { [GLOBAL]?: DebugRegistry };
  g[GLOBAL] ??= new DebugRegistry();
  return g[GLOBAL];
}

/** Registers a callback in the process-wide registry; returns its deregistration. */
export function registerDebugCallback(
  key: string,
  prefix: string,
  callback: DebugCallback,
  help?: string,
): () => void {
  return globalDebugRegistry().register(key, prefix, callback, help);
}
