import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { ConsoleLog } from './console-log.js';
import { ReplayBuffer } from './replay-buffer.js';
import { TokenBucket } from './token-bucket.js';

/**
 * What a console does when its guest produces faster than the daemon may take it in (past the
 * rate limit, or with `limit` bytes already waiting for the log):
 * - `keep`: stop reading the guest's ring until there is room; the ring fills and the guest
 *   waits (xenconsoled `--overflow-data=keep`). Nothing is lost.
 * - `discard`: keep reading and drop what does not fit, counting every dropped byte
 *   (`counters.dropped`); the guest never waits (xenconsoled's default, `discard`).
 */
export type OverflowPolicy = 'keep' | 'discard';

export interface ConsoleHubOptions {
  domid: number;
  name: string;
  /** 0 for the primary console, N for `device/console/N`. */
  num: number;
  /** The guest console: readable is the guest's output, writable its input. */
  stream: Duplex;
  /** `console/limit`: bytes that may wait for the log (0: no bound beyond `maxPending`). */
  limit: number;
  policy: OverflowPolicy;
  /** Guest output bytes per second (0: no limit). */
  rate?: number;
  log?: ConsoleLog | null;
  /** Recent output kept for replay on attach. */
  replayBytes?: number;
  /** A viewer further behind than this is disconnected (it may reattach with replay). */
  viewerQueueBytes?: number;
}

export type ViewerMode = 'rw' | 'ro';

export interface AttachOptions {
  mode: ViewerMode;
  /** Bytes of recent output sent first. */
  replay?: number;
  /** Take the writer role from whoever holds it. */
  takeOver?: boolean;
  label?: string;
  /** Runs once the role is decided, before replay or live output reaches the peer. */
  onAccepted?: (info: ViewerInfo) => void;
}

export interface ViewerInfo {
  id: number;
  label: string;
  writer: boolean;
}

export interface ConsoleCounters {
  /** Guest output read from the ring. */
  fromGuest: number;
  /** Input delivered to the guest. */
  toGuest: number;
  /** Guest output dropped under the `discard` policy. */
  dropped: number;
  /** Viewers disconnected for falling behind. */
  slowViewers: number;
}

const DEFAULT_LIMIT_CAP = 1048576;
/** Guest output one console may move per turn of the event loop. */
const PULL_BUDGET = 64 * 1024;

interface Viewer extends ViewerInfo {
  peer: Duplex;
}

/**
 * One guest console served to many: the log, the replay buffer, any number of viewers (one writer
 * at a time, the others read-only, take-over on request) and an optional pty. Guest output goes
 * to all of them in order; the overflow policy decides what happens when the guest outruns the
 * log or the rate limit. A slow viewer never slows the guest or anyone else: past its queue bound
 * it is disconnected.
 */
export class ConsoleHub extends EventEmitter<{ closed: [string]; writer: [ViewerInfo | null] }> {
  readonly domid: number;
  readonly name: string;
  readonly num: number;
  readonly policy: OverflowPolicy;
  readonly limit: number;
  readonly counters: ConsoleCounters = { fromGuest: 0, toGuest: 0, dropped: 0, slowViewers: 0 };
  /** The guest console; null only while `moveTo` swaps rings. */
  private stream: Duplex | null = null;
  private unbindStream: (() => void) | null = null;
  private readonly drainWaiters: (() => void)[] = [];
  private readonly log: ConsoleLog | null;
  private readonly replay: ReplayBuffer;
  private readonly bucket: TokenBucket | null;
  private readonly viewerQueueBytes: number;
  private readonly viewers = new Map<number, Viewer>();
  private readonly outputSinks = new Set<(bytes: Uint8Array) => void>();
  private writer: Viewer | null = null;
  private nextViewer = 1;
  private resumeTimer: NodeJS.Timeout | null = null;
  private waitingForLog = false;
  private closedReason: string | null = null;
  private inputBlocked = new Set<Duplex>();
  private yielded = false;

  constructor(options: ConsoleHubOptions) {
    super();
    this.domid = options.domid;
    this.name = options.name;
    this.num = options.num;
    this.policy = options.policy;
    this.limit = options.limit > 0 ? options.limit : DEFAULT_LIMIT_CAP;
    this.log = options.log ?? null;
    this.replay = new ReplayBuffer(options.replayBytes ?? 64 * 1024);
    this.bucket =
      options.rate && options.rate > 0
        ? new TokenBucket(options.rate, Math.max(options.rate / 5, 4096))
        : null;
    this.viewerQueueBytes = options.viewerQueueBytes ?? Math.max(this.limit, 256 * 1024);
    this.log?.on('drain', () => {
      if (this.waitingForLog) {
        this.waitingForLog = false;
        this.pull();
      }
    });
    this.bindStream(options.stream);
  }

  private bindStream(stream: Duplex): void {
    const onReadable = () => this.pull();
    const onEnd = () => this.close('the guest closed its console');
    const onError = (error: Error) => this.close(`console broken: ${error.message}`);
    const onClose = () => this.close('console closed');
    const onDrain = () => this.inputDrained();
    stream.on('readable', onReadable);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
    stream.on('drain', onDrain);
    this.stream = stream;
    this.unbindStream = () => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
      stream.off('drain', onDrain);
    };
  }

  private inputDrained(): void {
    for (const peer of this.inputBlocked) peer.resume();
    this.inputBlocked.clear();
    for (const waiter of this.drainWaiters.splice(0)) waiter();
  }

  /**
   * Moves the console to a new ring without disturbing anyone: what a toolstack's soft reset
   * (xl's `on_soft_reset`, a kexec'd kernel) asks of a backend when it rewrites `ring-ref` and
   * `port`. `retire` releases the old ring (its last bytes are delivered first); `open` gives the
   * new one. Viewers, the writer role, the pty, the log, replay and counters all stay; input
   * typed meanwhile waits. If `open` fails the hub closes with the reason.
   */
  async moveTo(open: () => Promise<Duplex>, retire: () => Promise<void>): Promise<void> {
    const old = this.stream;
    if (this.closed || old === null) return;
    this.unbindStream?.();
    this.unbindStream = null;
    this.stream = null;
    old.on('error', () => {}); // it is being retired: its errors are no longer the console's
    await retire().catch(() => {});
    for (let chunk = old.read() as Buffer | null; chunk !== null; chunk = old.read()) {
      this.counters.fromGuest += chunk.length;
      if (!this.closed) this.deliver(chunk);
    }
    if (!old.destroyed) old.destroy();
    let next: Duplex;
    try {
      next = await open();
    } catch (error) {
      this.close(`console lost while moving to a new ring: ${(error as Error).message}`);
      throw error;
    }
    if (this.closed) {
      next.destroy();
      return;
    }
    this.bindStream(next);
    this.inputDrained();
    this.pull();
  }

  get closed(): boolean {
    return this.closedReason !== null;
  }

  viewerList(): ViewerInfo[] {
    return [...this.viewers.values()].map(({ id, label, writer }) => ({ id, label, writer }));
  }

  /** Guest output read so far but not yet written to the log. */
  get logPending(): number {
    return this.log?.pending ?? 0;
  }

  /** Receives every byte of guest output (the pty, tests). Returns a remover. */
  addOutputSink(sink: (bytes: Uint8Array) => void): () => void {
    this.outputSinks.add(sink);
    return () => this.outputSinks.delete(sink);
  }

  /** Input from a source outside the viewer set (the pty): accepted unless a viewer holds the writer role. */
  inputFromPty(bytes: Uint8Array): boolean {
    if (this.writer !== null || this.closed) return true;
    if (this.stream === null) return false; // moving to a new ring: wait for it
    this.counters.toGuest += bytes.length;
    return this.stream.write(bytes);
  }

  /** Waits until the guest has room for more input (after `inputFromPty` returned false). */
  onceInputDrained(callback: () => void): void {
    this.drainWaiters.push(callback);
  }

  /** Joins a viewer: replay first, then live output; its input reaches the guest while it is the writer. */
  attach(peer: Duplex, options: AttachOptions): ViewerInfo {
    const viewer: Viewer = {
      id: this.nextViewer++,
      label: options.label ?? 'viewer',
      writer: false,
      peer,
    };
    if (this.closed) {
      peer.end(`\r\n[xencons: ${this.closedReason}]\r\n`);
      return { id: viewer.id, label: viewer.label, writer: false };
    }
    this.viewers.set(viewer.id, viewer);
    let refusedBy: Viewer | null = null;
    if (options.mode === 'rw') {
      if (this.writer === null) this.setWriter(viewer);
      else if (options.takeOver) {
        this.notice(this.writer, `read-only now: ${viewer.label} took over the input`);
        this.setWriter(viewer);
      } else refusedBy = this.writer;
    }
    options.onAccepted?.({ id: viewer.id, label: viewer.label, writer: viewer.writer });
    const replay = options.replay ?? 0;
    if (replay > 0) peer.write(this.replay.snapshot(replay));
    if (refusedBy) {
      this.notice(
        viewer,
        `read-only: ${refusedBy.label} holds the input (attach with --take-over to take it)`,
      );
    }
    peer.on('data', (chunk: Buffer) => this.input(viewer, chunk));
    peer.on('error', () => this.detach(viewer.id));
    peer.on('close', () => this.detach(viewer.id));
    return { id: viewer.id, label: viewer.label, writer: viewer.writer };
  }

  detach(id: number): void {
    const viewer = this.viewers.get(id);
    if (!viewer) return;
    this.viewers.delete(id);
    this.inputBlocked.delete(viewer.peer);
    if (this.writer === viewer) this.setWriter(null);
    if (!viewer.peer.destroyed) viewer.peer.end();
  }

  private setWriter(viewer: Viewer | null): void {
    if (this.writer) this.writer.writer = false;
    this.writer = viewer;
    if (viewer) viewer.writer = true;
    this.emit('writer', viewer ? { id: viewer.id, label: viewer.label, writer: true } : null);
  }

  private notice(viewer: Viewer, text: string): void {
    if (!viewer.peer.destroyed) viewer.peer.write(`\r\n[xencons: ${text}]\r\n`);
  }

  private input(viewer: Viewer, chunk: Buffer): void {
    if (this.writer !== viewer || this.closed) return; // read-only viewers' keystrokes go nowhere
    if (this.stream === null) {
      // Moving to a new ring: hold this chunk and the viewer until it is there.
      viewer.peer.pause();
      viewer.peer.unshift(chunk);
      this.inputBlocked.add(viewer.peer);
      return;
    }
    this.counters.toGuest += chunk.length;
    if (!this.stream.write(chunk)) {
      viewer.peer.pause();
      this.inputBlocked.add(viewer.peer);
    }
  }

  /**
   * Reads guest output while the policy allows, at most `PULL_BUDGET` bytes per pass: a guest
   * that writes without pause must not keep the event loop from other consoles, so after its
   * budget it waits for the next turn of the loop.
   */
  private pull(): void {
    if (this.closed || this.resumeTimer !== null || this.waitingForLog || this.yielded) return;
    const stream = this.stream;
    if (stream === null) return;
    let budget = PULL_BUDGET;
    for (;;) {
      if (budget <= 0) {
        this.yielded = true;
        setImmediate(() => {
          this.yielded = false;
          this.pull();
        });
        return;
      }
      if (this.policy === 'keep' && this.log && this.log.pending >= this.limit) {
        this.waitingForLog = true; // the ring fills, the guest waits
        return;
      }
      const chunk = stream.read() as Buffer | null;
      if (chunk === null) return;
      budget -= chunk.length;
      this.counters.fromGuest += chunk.length;
      let allowed = chunk.length;
      if (this.bucket) allowed = this.bucket.take(chunk.length);
      if (this.policy === 'discard' && this.log && this.log.pending >= this.limit) allowed = 0;
      if (allowed < chunk.length) {
        if (this.policy === 'keep') {
          this.counters.fromGuest -= chunk.length - allowed;
          stream.unshift(chunk.subarray(allowed));
          if (allowed > 0) this.deliver(chunk.subarray(0, allowed));
          this.resumeTimer = setTimeout(() => {
            this.resumeTimer = null;
            this.pull();
          }, this.bucket?.waitMs(1024) ?? 10);
          return;
        }
        this.counters.dropped += chunk.length - allowed;
      }
      if (allowed > 0) this.deliver(chunk.subarray(0, allowed));
    }
  }

  private deliver(bytes: Uint8Array): void {
    this.log?.write(bytes);
    this.replay.append(bytes);
    for (const sink of this.outputSinks) sink(bytes);
    for (const viewer of [...this.viewers.values()]) {
      viewer.peer.write(bytes);
      if (viewer.peer.writableLength > this.viewerQueueBytes) {
        // Its queue is already past the bound: no notice can reach it in time. Cut it off.
        this.counters.slowViewers++;
        this.viewers.delete(viewer.id);
        if (this.writer === viewer) this.setWriter(null);
        viewer.peer.destroy();
      }
    }
  }

  /** Ends every viewer with `reason` and stops serving; the log is flushed and closed. */
  close(reason: string): void {
    if (this.closedReason !== null) return;
    this.closedReason = reason;
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
    for (const viewer of [...this.viewers.values()]) {
      this.notice(viewer, reason);
      this.detach(viewer.id);
    }
    this.drainWaiters.length = 0;
    if (this.stream !== null && !this.stream.destroyed) this.stream.destroy();
    void this.log?.close();
    this.emit('closed', reason);
  }
}
