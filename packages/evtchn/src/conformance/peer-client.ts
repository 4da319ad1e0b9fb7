import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The built peer program (`dist/conformance/peer.js` of this package). */
export function peerScript(): string {
  // Walk up from this module (a source file under src/, or a chunk under dist/) to the package.
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const name = (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name;
      if (name === '@xencons/evtchn') return join(dir, 'dist', 'conformance', 'peer.js');
    }
    dir = dirname(dir);
  }
  throw new Error('@xencons/evtchn: cannot find the package folder of the peer program');
}

export class PeerError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}

/** A peer process (another domain, or another dom0 process on real Xen), driven by requests. */
export class PeerProcess {
  readonly domid: number;
  readonly child: ChildProcess;
  readonly #pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  #nextId = 1;
  #stderr = '';
  #exited: Promise<number | null>;
  #exitCode: number | null | undefined;
  #afterExit: (() => Promise<void>) | null;

  /**
   * Starts `node script` (default: {@link peerScript}) with `env` added to ours. `afterExit`
   * runs once in `close()` after the process is gone (e.g. to destroy its simulated domain).
   */
  constructor(
    domid: number,
    env: NodeJS.ProcessEnv,
    options: { script?: string; afterExit?: () => Promise<void> } = {},
  ) {
    this.domid = domid;
    this.#afterExit = options.afterExit ?? null;
    const script = options.script ?? peerScript();
    this.child = spawn(process.execPath, [script], {
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stderr!.setEncoding('utf8').on('data', (s: string) => {
      this.#stderr = (this.#stderr + s).slice(-4000);
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      let msg: {
        id: number;
        ok: boolean;
        value?: unknown;
        error?: { code: string; message: string };
      };
      try {
        msg = JSON.parse(line);
      } catch {
        this.#stderr += `\n(stdout) ${line}`;
        return;
      }
      const p = this.#pending.get(msg.id);
      if (p === undefined) return;
      this.#pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.value);
      else
        p.reject(new PeerError(msg.error!.code, `peer ${domidText(domid)}: ${msg.error!.message}`));
    });
    this.#exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        this.#exitCode = code ?? null;
        const why = `peer ${domidText(domid)} exited (${code ?? signal}): ${this.#stderr.trim()}`;
        for (const p of this.#pending.values()) p.reject(new Error(why));
        this.#pending.clear();
        resolve(code);
      });
      this.child.once('error', (err) => {
        for (const p of this.#pending.values()) p.reject(err);
        this.#pending.clear();
        resolve(null);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** What the peer printed on stderr (the last 4000 characters). */
  get stderr(): string {
    return this.#stderr;
  }

  call<T = unknown>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    if (this.#exitCode !== undefined) {
      return Promise.reject(new Error(`peer ${domidText(this.domid)} has exited: ${this.#stderr}`));
    }
    const id = this.#nextId++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.stdin!.write(`${JSON.stringify({ id, op, args })}\n`);
    });
  }

  /** Kills the peer with SIGKILL (a guest dying mid-operation) and waits for it. */
  async kill(): Promise<void> {
    if (this.#exitCode === undefined) this.child.kill('SIGKILL');
    await this.#exited;
  }

  /** Asks the peer to exit; kills it (by its pid) if it has not within 5 s. Idempotent. */
  async close(): Promise<void> {
    if (this.#exitCode === undefined) {
      this.call('exit').catch(() => {});
      this.child.stdin!.end();
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await this.#exited;
      clearTimeout(timer);
    }
    const after = this.#afterExit;
    this.#afterExit = null;
    await after?.();
  }
}

function domidText(domid: number): string {
  return `(domain ${domid})`;
}
