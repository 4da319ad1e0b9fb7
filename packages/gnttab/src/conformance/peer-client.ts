import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { PeerErrorInfo, PeerOp, PeerOps } from './peer-protocol.js';

/** The peer program next to this module (in `dist/conformance/` once built). */
export const PEER_SCRIPT = fileURLToPath(new URL('./peer.js', import.meta.url));

/** A request the peer refused: `code` is its GnttabError code (or errno). */
export class PeerError extends Error {
  override readonly name = 'PeerError';
  readonly code: string;
  readonly errorName: string;
  readonly reason: string | undefined;

  constructor(op: string, info: PeerErrorInfo) {
    super(`peer ${op}: ${info.message}`);
    this.code = info.code;
    this.errorName = info.name;
    this.reason = info.reason;
  }
}

export interface SpawnPeerOptions {
  readonly backend: 'linux' | 'sim';
  /** Extra arguments (e.g. `--domid 0`). */
  readonly args?: readonly string[];
  /** Added to this process's environment (the simulated host's credentials). */
  readonly env?: Record<string, string>;
  /** Run as this user and group (needs root), e.g. 65534 for an unprivileged process. */
  readonly uid?: number;
  readonly gid?: number;
  /** The peer program (default: peer.js next to this module). */
  readonly script?: string;
  /** Bound on each request and on start-up, in ms (default 20 000). */
  readonly timeoutMs?: number;
}

/** Another OS process acting as a domain, with its own grant-table handle. */
export interface Peer {
  readonly domid: number;
  readonly pid: number;
  /** False once the process has exited. */
  readonly alive: boolean;
  request<K extends PeerOp>(op: K, args: PeerOps[K]['args']): Promise<PeerOps[K]['result']>;
  share(
    grantee: number,
    count?: number,
    readonly?: boolean,
  ): Promise<{ handle: number; refs: number[] }>;
  map(domid: number, refs: readonly number[], writable?: boolean): Promise<number>;
  mapFrames(domid: number, frames: readonly number[], writable?: boolean): Promise<number>;
  write(handle: number, offset: number, bytes: Uint8Array): Promise<void>;
  read(handle: number, offset: number, length: number): Promise<Uint8Array>;
  release(handle: number): Promise<void>;
  /** Kills the process with SIGKILL (it gets no chance to clean up) and waits for it. */
  kill(): Promise<void>;
  /** Asks the peer to close its handle and exit; kills it if it does not. */
  close(): Promise<void>;
}

interface Waiter {
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  op: string;
}

/** Starts a peer process and waits until it has opened its handle. */
export async function spawnPeer(options: SpawnPeerOptions): Promise<Peer> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const child: ChildProcess = spawn(
    process.execPath,
    [options.script ?? PEER_SCRIPT, '--backend', options.backend, ...(options.args ?? [])],
    {
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
      ...(options.uid === undefined ? {} : { uid: options.uid }),
      ...(options.gid === undefined ? {} : { gid: options.gid }),
    },
  );
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    stderr = (stderr + s).slice(-2000);
  });
  const exited = new Promise<void>((resolve) => {
    child.once('close', () => resolve());
  });
  let gone: Error | null = null;
  const waiters = new Map<number, Waiter>();
  let hello: ((line: Record<string, unknown>) => void) | null = null;
  const failAll = (err: Error) => {
    gone = err;
    for (const w of waiters.values()) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    waiters.clear();
  };
  child.once('error', (err) => failAll(err));
  child.once('exit', (code, signal) =>
    failAll(new Error(`peer exited (${signal ?? code})${stderr ? `: ${stderr.trim()}` : ''}`)),
  );
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (text) => {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    if ('ready' in msg) {
      hello?.(msg);
      return;
    }
    const w = waiters.get(Number(msg.id));
    if (!w) return;
    waiters.delete(Number(msg.id));
    clearTimeout(w.timer);
    if (msg.ok === true) w.resolve(msg.result);
    else w.reject(new PeerError(w.op, msg.error as PeerErrorInfo));
  });

  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };

  let ready: Record<string, unknown>;
  try {
    ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`peer did not start within ${timeoutMs} ms: ${stderr.trim()}`)),
        timeoutMs,
      );
      hello = (msg) => {
        clearTimeout(timer);
        resolve(msg);
      };
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`peer exited at start (${signal ?? code}): ${stderr.trim()}`));
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
    if (ready.ready !== true) {
      const info = ready.error as PeerErrorInfo;
      throw new PeerError('start', info);
    }
  } catch (err) {
    await kill();
    throw err;
  }

  let nextId = 1;
  const request = <K extends PeerOp>(op: K, args: PeerOps[K]['args']) =>
    new Promise<PeerOps[K]['result']>((resolve, reject) => {
      if (gone) {
        reject(gone);
        return;
      }
      const id = nextId++;
      const timer = setTimeout(() => {
        waiters.delete(id);
        reject(new Error(`peer ${op}: no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.set(id, { resolve: resolve as (v: unknown) => void, reject, timer, op });
      child.stdin!.write(`${JSON.stringify({ id, op, ...args })}\n`);
    });

  return {
    domid: Number(ready.domid),
    pid: Number(ready.pid),
    get alive() {
      return gone === null;
    },
    request,
    share: (grantee, count = 1, readonly = false) => request('share', { grantee, count, readonly }),
    map: async (domid, refs, writable = true) =>
      (await request('map', { domid, refs: [...refs], writable })).handle,
    mapFrames: async (domid, frames, writable = true) =>
      (await request('mapFrames', { domid, frames: [...frames], writable })).handle,
    write: async (handle, offset, bytes) => {
      await request('write', { handle, offset, hex: Buffer.from(bytes).toString('hex') });
    },
    read: async (handle, offset, length) =>
      new Uint8Array(Buffer.from((await request('read', { handle, offset, length })).hex, 'hex')),
    release: async (handle) => {
      await request('release', { handle });
    },
    kill,
    close: async () => {
      if (gone === null) {
        try {
          await request('close', {});
        } catch {
          // Killed below.
        }
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * One long-lived peer handed out again and again (a node start costs seconds in an emulated
 * dom0): `close()` on what `get()` returns does nothing, `stop()` ends the process. A peer that
 * died is replaced on the next `get()`.
 */
export function peerPool(start: () => Promise<Peer>): {
  get(): Promise<Peer>;
  stop(): Promise<void>;
} {
  let current: Promise<Peer> | null = null;
  return {
    async get() {
      if (current !== null && !(await current.catch(() => null))?.alive) current = null;
      current ??= start();
      const peer = await current;
      return Object.create(peer, { close: { value: async () => {} } }) as Peer;
    },
    async stop() {
      const peer = await current?.catch(() => null);
      current = null;
      await peer?.close();
    },
  };
}

/** `peer`, listed in `live` until it is closed or killed (so a fixture can kill what is left). */
export function tracked(peer: Peer, live: Set<Peer>): Peer {
  live.add(peer);
  return Object.create(peer, {
    close: {
      value: async () => {
        live.delete(peer);
        await peer.close();
      },
    },
    kill: {
      value: async () => {
        live.delete(peer);
        await peer.kill();
      },
    },
  }) as Peer;
}
