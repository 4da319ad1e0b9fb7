import { isXenconsError } from '@xencons/errors';
import { XsDecoder } from '../wire/decoder.js';
import { XsError, XsProtocolError } from '../wire/errors.js';
import { type XsMessage, XsWriter } from '../wire/message.js';
import { pathProblem } from '../wire/paths.js';
import {
  fromUtf8,
  parseBoolReply,
  parseErrorReply,
  parseOkReply,
  parseStringReply,
  parseU32Reply,
  parseWatchEvent,
} from '../wire/payload.js';
import { XsType, xsTypeName } from '../wire/types.js';
import { xsChannels } from './diagnostics.js';
import { clientError } from './errors.js';
import { XsOperations, type XsPayloadBuilder, type XsRequestOptions } from './operations.js';
import { DEFAULT_POLL_MICROS, XsPoller } from './poller.js';
import { socketTransport } from './socket-transport.js';
import { XsTransaction } from './transaction.js';
import type { XsTransport, XsTransportConnection } from './transport.js';
import { XsWatch, type XsWatchOptions } from './watch.js';

/** When and how often to reconnect after the connection is lost (data, not code). */
export interface XsReconnectPolicy {
  /** Attempts before giving up (then pending work fails with ERR_XS_CLOSED). */
  readonly maxAttempts: number;
  /** Delay before the first attempt, in ms. */
  readonly initialDelay: number;
  /** Upper bound of the delay, in ms. */
  readonly maxDelay: number;
  /** Growth of the delay per attempt. */
  readonly factor: number;
  /** Random spread of each delay, 0..1 (0.2 = ±20%). */
  readonly jitter: number;
}

export const DEFAULT_RECONNECT_POLICY: XsReconnectPolicy = Object.freeze({
  maxAttempts: Number.POSITIVE_INFINITY,
  initialDelay: 20,
  maxDelay: 1000,
  factor: 2,
  jitter: 0.2,
});

/** Retry policy of {@link XenstoreClient.transaction}. */
export interface XsTransactionOptions extends XsRequestOptions {
  /** Retries after EAGAIN (total runs = retries + 1). Default 10. */
  retries?: number;
  /** Backoff before retry n (n ≥ 1): min(maxDelay, initialDelay·2^(n-1)), ±50% jitter; default 1 ms / 100 ms. */
  initialDelay?: number;
  maxDelay?: number;
}

export interface XenstoreClientOptions {
  /** Default: the unix socket (`XENSTORED_PATH`, `XENSTORED_RUNDIR`, `/run/xenstored/socket`). */
  transport?: XsTransport;
  /** Shorthand for `transport: socketTransport(socketPath)`. */
  socketPath?: string;
  /** Default per-request timeout in ms (0 = none). Default 30000. */
  timeout?: number;
  /** Most requests in flight; more are rejected at once with ERR_XS_PENDING_LIMIT. Default 4096. */
  maxPending?: number;
  /** Reconnect policy, or false. Default: on for the socket transport, off for the others. */
  reconnect?: false | Partial<XsReconnectPolicy>;
  /**
   * While requests stream (the previous reply or request less than 1 ms ago), the event loop
   * polls for up to this many µs for a reply instead of sleeping, so a burst of requests one at
   * a time does not pay a wake-up per reply ({@link XsPoller}). 0 turns it off. Default 50.
   */
  spinMicros?: number;
}

interface Pending {
  readonly reqId: number;
  readonly type: number;
  readonly txId: number;
  readonly resolve: (payload: Uint8Array) => void;
  readonly reject: (error: Error) => void;
  /** performance.now() deadline, 0 = none. */
  readonly deadline: number;
  /** Timed out or aborted: the late reply is swallowed. */
  abandoned: boolean;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

type State = 'open' | 'reconnecting' | 'closing' | 'closed';

/** `path\0token\0[depth\0]` */
function watchPayload(watch: XsWatch): XsPayloadBuilder {
  return (w) => {
    w.string(watch.path).string(watch.token);
    if (watch.depth !== undefined) w.string(String(watch.depth));
  };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A xenstore client: typed promise API over one connection, many requests in flight (matched by
 * req_id), watches, transactions with retry, per-request timeout and AbortSignal, a pending limit,
 * cork/uncork, and reconnection with watch re-registration. Create with {@link openXenstore}.
 */
export class XenstoreClient extends XsOperations {
  readonly transport: XsTransport;
  readonly description: string;
  readonly #timeout: number;
  readonly #maxPending: number;
  readonly #reconnect: XsReconnectPolicy | null;
  readonly #writer: XsWriter;
  readonly #decoder: XsDecoder;
  #conn: XsTransportConnection | null = null;
  #state: State = 'open';
  #pending = new Map<number, Pending>();
  /** Requests written to the writer but not yet flushed to the transport. */
  #unsent: Pending[] = [];
  #nextReqId = 1;
  #corked = 0;
  #flushScheduled = false;
  #needDrain = false;
  #timer: NodeJS.Timeout | null = null;
  #timerAt = 0;
  #watches = new Map<string, XsWatch>();
  #nextToken = 1;
  readonly #tokenPrefix: string;
  #closedWaiters: (() => void)[] = [];
  #lastError: Error | undefined;
  #connections = 0;
  readonly #poller: XsPoller;

  /** @internal Use {@link openXenstore}. */
  constructor(options: XenstoreClientOptions = {}) {
    super();
    this.transport = options.transport ?? socketTransport(options.socketPath);
    this.description = this.transport.description;
    this.#timeout = options.timeout ?? 30_000;
    this.#maxPending = options.maxPending ?? 4096;
    const rc = options.reconnect;
    this.#reconnect =
      rc === false || (rc === undefined && !this.transport.reconnectByDefault)
        ? null
        : { ...DEFAULT_RECONNECT_POLICY, ...(rc ?? {}) };
    this.#writer = new XsWriter({ maxPayload: this.transport.maxPayload });
    this.#decoder = new XsDecoder({ peer: this.description });
    this.#poller = new XsPoller(
      options.spinMicros ?? DEFAULT_POLL_MICROS,
      () => this.#pending.size > 0,
    );
    this.#tokenPrefix = `xc${process.pid.toString(36)}.${Math.floor(Math.random() * 0x7fffffff).toString(36)}.`;
  }

  /** @internal */
  async connect(): Promise<this> {
    this.#conn = await this.#open();
    return this;
  }

  /** Requests awaiting a reply (including timed-out ones whose reply has not come yet). */
  get pending(): number {
    return this.#pending.size;
  }

  /** True while the transport asked us to wait for drain (backpressure). */
  get writableNeedDrain(): boolean {
    return this.#needDrain;
  }

  /** Connections established so far (1 after connecting, +1 per reconnection). */
  get connections(): number {
    return this.#connections;
  }

  /** `open`, `reconnecting`, `closing` or `closed`. */
  get state(): State {
    return this.#state;
  }

  // ---- sending -------------------------------------------------------------------------------

  protected send(
    type: number,
    build: XsPayloadBuilder,
    options?: XsRequestOptions,
  ): Promise<Uint8Array> {
    return this.#request(type, 0, build, options);
  }

  /**
   * Low-level: sends any request and resolves with the raw reply payload. `payload` is either the
   * exact bytes or a list of strings (each NUL-terminated). Server errors reject as XsError.
   */
  request(
    type: number,
    payload: Uint8Array | readonly string[],
    options: XsRequestOptions & { txId?: number } = {},
  ): Promise<Uint8Array> {
    const build: XsPayloadBuilder =
      payload instanceof Uint8Array
        ? (w) => w.raw(payload)
        : (w) => {
            for (const s of payload) w.string(s);
          };
    return this.#request(type, options.txId ?? 0, build, options);
  }

  #request(
    type: number,
    txId: number,
    build: XsPayloadBuilder,
    options?: XsRequestOptions,
  ): Promise<Uint8Array> {
    if (this.#state === 'closed' || this.#state === 'closing') {
      return Promise.reject(
        clientError(
          'ERR_XS_CLOSED',
          `xenstore client for ${this.description} is closed`,
          { type },
          this.#lastError,
        ),
      );
    }
    const signal = options?.signal;
    if (signal?.aborted) {
      return Promise.reject(
        clientError(
          'ERR_XS_ABORTED',
          `xenstore ${xsTypeName(type)} aborted before it was sent`,
          { type },
          signal.reason,
        ),
      );
    }
    if (this.#pending.size >= this.#maxPending) {
      return Promise.reject(
        clientError(
          'ERR_XS_PENDING_LIMIT',
          `${this.#pending.size} xenstore requests already in flight`,
          {
            type,
            limit: this.#maxPending,
          },
        ),
      );
    }
    const reqId = this.#allocReqId();
    try {
      build(this.#writer.begin(type, reqId, txId));
      this.#writer.end();
    } catch (err) {
      this.#writer.abort();
      return Promise.reject(err);
    }
    const timeout = options?.timeout ?? this.#timeout;
    const deadline = timeout > 0 ? performance.now() + timeout : 0;
    return new Promise<Uint8Array>((resolve, reject) => {
      const p: Pending = {
        reqId,
        type,
        txId,
        resolve,
        reject,
        deadline,
        abandoned: false,
        signal,
        onAbort: undefined,
      };
      if (signal !== undefined) {
        p.onAbort = () =>
          this.#abandon(
            p,
            clientError(
              'ERR_XS_ABORTED',
              `xenstore ${xsTypeName(type)} aborted`,
              { type, reqId },
              signal.reason,
            ),
          );
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      this.#pending.set(reqId, p);
      this.#unsent.push(p);
      if (deadline !== 0 && (this.#timer === null || deadline < this.#timerAt))
        this.#armTimer(deadline);
      if (xsChannels.request.hasSubscribers) {
        xsChannels.request.publish({ client: this.description, type, reqId, txId });
      }
      this.#scheduleFlush();
    });
  }

  #allocReqId(): number {
    for (;;) {
      const id = this.#nextReqId;
      this.#nextReqId = id >= 0xffffffff ? 1 : id + 1;
      if (!this.#pending.has(id)) return id;
    }
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled || this.#corked > 0) return;
    this.#flushScheduled = true;
    queueMicrotask(() => {
      this.#flushScheduled = false;
      this.#flush();
    });
  }

  #flush(): void {
    if (
      this.#corked > 0 ||
      this.#conn === null ||
      (this.#state !== 'open' && this.#state !== 'closing')
    )
      return;
    if (this.#writer.length === 0) return;
    const bytes = this.#writer.flush();
    this.#unsent.length = 0;
    if (!this.#conn.write(bytes)) this.#needDrain = true;
    this.#poller.kick();
  }

  /** Times polling for replies paused because the process was held up (see `spinMicros`). */
  get pollingPauses(): number {
    return this.#poller.pauses;
  }

  /** Batches requests until {@link uncork} (calls nest); they leave in one write. */
  cork(): void {
    this.#corked++;
  }

  uncork(): void {
    if (this.#corked > 0 && --this.#corked === 0) this.#flush();
  }

  // ---- receiving -----------------------------------------------------------------------------

  #onData = (chunk: Uint8Array): void => {
    this.#poller.kick();
    try {
      this.#decoder.feed(chunk, this.#onMessage);
    } catch (err) {
      this.#connectionLost(err instanceof Error ? err : new Error(String(err)), true);
    }
  };

  #onMessage = (m: XsMessage): void => {
    if (m.type === XsType.WATCH_EVENT) {
      this.#onWatchEvent(m);
      return;
    }
    const p = this.#pending.get(m.reqId);
    if (p === undefined) {
      throw new XsProtocolError(
        `xenstore protocol error from ${this.description}: ${xsTypeName(m.type)} reply for req_id ${m.reqId}, which is not in flight`,
        { details: { peer: this.description, type: m.type, reqId: m.reqId } },
      );
    }
    if (m.type !== XsType.ERROR && m.type !== p.type) {
      throw new XsProtocolError(
        `xenstore protocol error from ${this.description}: ${xsTypeName(m.type)} reply to a ${xsTypeName(p.type)} request (req_id ${m.reqId})`,
        { details: { peer: this.description, type: m.type, expected: p.type, reqId: m.reqId } },
      );
    }
    // Parse before settling: a malformed error reply fails the connection, and p with it.
    const name = m.type === XsType.ERROR ? parseErrorReply(m.payload) : undefined;
    this.#pending.delete(m.reqId);
    if (p.abandoned) return;
    this.#settled(p);
    let error: Error | undefined;
    if (name !== undefined) {
      error = new XsError(name, `xenstore ${xsTypeName(p.type)} failed: ${name}`, {
        details: { type: p.type, reqId: p.reqId, txId: p.txId },
      });
      p.reject(error);
    } else {
      p.resolve(m.payload);
    }
    if (xsChannels.reply.hasSubscribers) {
      xsChannels.reply.publish({
        client: this.description,
        type: p.type,
        reqId: p.reqId,
        txId: p.txId,
        error,
      });
    }
    if (this.#pending.size === 0 && this.#state === 'closing') this.#finishClose();
  };

  #onWatchEvent(m: XsMessage): void {
    const event = parseWatchEvent(m.payload);
    if (xsChannels.watchEvent.hasSubscribers) {
      xsChannels.watchEvent.publish({
        client: this.description,
        path: event.path,
        token: event.token,
      });
    }
    const watch = this.#watches.get(event.token);
    if (watch === undefined) return; // a late event for a removed watch
    if (!watch.deliver(event) && xsChannels.watchDrop.hasSubscribers) {
      xsChannels.watchDrop.publish({
        client: this.description,
        token: watch.token,
        path: event.path,
        dropped: watch.dropped,
      });
    }
  }

  #settled(p: Pending): void {
    if (p.onAbort !== undefined) p.signal?.removeEventListener('abort', p.onAbort);
  }

  #abandon(p: Pending, error: Error): void {
    if (p.abandoned || this.#pending.get(p.reqId) !== p) return;
    p.abandoned = true;
    this.#settled(p);
    p.reject(error);
  }

  #armTimer(at: number): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = setTimeout(this.#onTimer, Math.max(0, at - performance.now()) + 1);
    this.#timer.unref();
  }

  #onTimer = (): void => {
    this.#timer = null;
    const now = performance.now();
    let next = 0;
    for (const p of this.#pending.values()) {
      if (p.abandoned || p.deadline === 0) continue;
      if (p.deadline <= now) {
        this.#abandon(
          p,
          clientError(
            'ERR_XS_TIMEOUT',
            `xenstore ${xsTypeName(p.type)} got no reply from ${this.description} in time`,
            {
              type: p.type,
              reqId: p.reqId,
            },
          ),
        );
      } else if (next === 0 || p.deadline < next) next = p.deadline;
    }
    if (next !== 0) this.#armTimer(next);
  };

  // ---- connection lifecycle ------------------------------------------------------------------

  async #open(): Promise<XsTransportConnection> {
    const conn = await this.transport.open({
      data: (chunk) => {
        if (this.#conn === conn) this.#onData(chunk);
      },
      closed: (error) => {
        if (this.#conn === conn)
          this.#connectionLost(
            error ?? clientError('ERR_XS_CLOSED', `${this.description} closed`),
            false,
          );
      },
      drain: () => {
        this.#needDrain = false;
      },
    });
    this.#decoder.reset();
    this.#connections++;
    if (xsChannels.connect.hasSubscribers) xsChannels.connect.publish({ client: this.description });
    return conn;
  }

  #connectionLost(error: Error, closeIt: boolean): void {
    const conn = this.#conn;
    this.#conn = null;
    this.#lastError = error;
    if (closeIt) conn?.close();
    if (xsChannels.disconnect.hasSubscribers)
      xsChannels.disconnect.publish({ client: this.description, error });
    // Everything already sent is lost with the connection; what was never sent can wait.
    const unsent = new Set(this.#unsent);
    for (const p of [...this.#pending.values()]) {
      if (unsent.has(p)) continue;
      this.#pending.delete(p.reqId);
      if (p.abandoned) continue;
      this.#settled(p);
      p.reject(
        clientError(
          'ERR_XS_CLOSED',
          `connection to ${this.description} lost before the ${xsTypeName(p.type)} reply: ${error.message}`,
          { type: p.type, reqId: p.reqId },
          error,
        ),
      );
    }
    if (this.#state === 'closing' || this.#state === 'closed' || this.#reconnect === null) {
      this.#terminate(error);
      return;
    }
    this.#state = 'reconnecting';
    void this.#reconnectLoop(this.#reconnect);
  }

  async #reconnectLoop(policy: XsReconnectPolicy): Promise<void> {
    let delay = policy.initialDelay;
    for (let attempt = 1; attempt <= policy.maxAttempts; attempt++) {
      const wait = Math.max(0, delay * (1 + policy.jitter * (Math.random() * 2 - 1)));
      if (xsChannels.reconnect.hasSubscribers) {
        xsChannels.reconnect.publish({ client: this.description, attempt, delay: wait });
      }
      await sleep(wait);
      if (this.#state !== 'reconnecting') return;
      let conn: XsTransportConnection;
      try {
        conn = await this.#open();
      } catch (err) {
        this.#lastError = err instanceof Error ? err : new Error(String(err));
        delay = Math.min(policy.maxDelay, delay * policy.factor);
        continue;
      }
      if (this.#state !== 'reconnecting') {
        conn.close();
        return;
      }
      this.#conn = conn;
      this.#state = 'open';
      this.#reregisterWatches();
      this.#flush();
      return;
    }
    this.#terminate(this.#lastError ?? clientError('ERR_XS_CLOSED', 'reconnection failed'));
  }

  /** WATCH again for every live watch, ahead of requests queued while disconnected. */
  #reregisterWatches(): void {
    if (this.#watches.size === 0) return;
    const queued = this.#writer.flush();
    const queuedPending = this.#unsent.splice(0);
    for (const watch of this.#watches.values()) {
      this.#request(XsType.WATCH, 0, watchPayload(watch)).catch((err: unknown) => {
        this.#watches.delete(watch.token);
        watch.end(err);
      });
    }
    this.#writer.raw(queued);
    this.#unsent.push(...queuedPending);
  }

  /** Fails everything and ends for good; watches end cleanly when the caller closed the client. */
  #terminate(error: Error, byCaller = false): void {
    this.#state = 'closed';
    this.#poller.stop();
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    for (const p of this.#pending.values()) {
      if (p.abandoned) continue;
      this.#settled(p);
      p.reject(
        clientError(
          'ERR_XS_CLOSED',
          `xenstore client for ${this.description} closed: ${error.message}`,
          { type: p.type, reqId: p.reqId },
          error,
        ),
      );
    }
    this.#pending.clear();
    this.#unsent.length = 0;
    this.#writer.flush();
    for (const w of this.#watches.values()) w.end(byCaller ? undefined : error);
    this.#watches.clear();
    for (const r of this.#closedWaiters.splice(0)) r();
  }

  #finishClose(): void {
    const conn = this.#conn;
    this.#conn = null;
    conn?.close();
    this.#terminate(
      clientError('ERR_XS_CLOSED', `xenstore client for ${this.description} closed by the caller`),
    );
  }

  /**
   * Stops accepting requests, waits for the replies in flight (bounded by their timeouts), ends
   * the watches and closes the connection.
   */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    const done = new Promise<void>((r) => this.#closedWaiters.push(r));
    if (this.#state === 'reconnecting' || this.#conn === null) {
      this.#state = 'closing';
      this.#finishClose();
    } else if (this.#state === 'open') {
      this.#state = 'closing';
      this.#corked = 0;
      this.#flush();
      if ([...this.#pending.values()].every((p) => p.abandoned)) this.#finishClose();
    }
    await done;
  }

  /** Closes at once: every request in flight rejects with ERR_XS_CLOSED. */
  destroy(): void {
    if (this.#state === 'closed') return;
    this.#state = 'closing';
    this.#finishClose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- watches -------------------------------------------------------------------------------

  /**
   * Registers a watch on `path` (a node and everything below it, or `@introduceDomain` /
   * `@releaseDomain`) and resolves once the server accepted it. Events are queued from the moment
   * the request is sent, including the server's initial event (unless `initial: false`).
   */
  async watch(path: string, options: XsWatchOptions = {}): Promise<XsWatch> {
    const problem = pathProblem(path, { allowSpecial: true });
    if (options.depth !== undefined && (!Number.isInteger(options.depth) || options.depth < 0)) {
      throw new XsError('EINVAL', `invalid watch depth ${options.depth}`);
    }
    if (problem !== null)
      throw new XsError('EINVAL', `invalid watch path ${JSON.stringify(path)}: ${problem}`);
    const token = `${this.#tokenPrefix}${this.#nextToken++}`;
    const watch = new XsWatch(path, token, options, (w) => this.#unwatch(w));
    this.#watches.set(token, watch);
    const requestOptions: XsRequestOptions = {};
    if (options.signal !== undefined) requestOptions.signal = options.signal;
    if (options.timeout !== undefined) requestOptions.timeout = options.timeout;
    try {
      parseOkReply(await this.#request(XsType.WATCH, 0, watchPayload(watch), requestOptions));
    } catch (err) {
      this.#watches.delete(token);
      watch.end();
      throw err;
    }
    return watch;
  }

  async #unwatch(watch: XsWatch): Promise<void> {
    if (this.#watches.get(watch.token) !== watch) return;
    this.#watches.delete(watch.token);
    if (this.#state !== 'open') return;
    try {
      parseOkReply(
        await this.#request(XsType.UNWATCH, 0, (w) => w.string(watch.path).string(watch.token)),
      );
    } catch (err) {
      // Already gone on the server (cxenstored answers ENOENT), or the connection went away.
      if (isXenconsError(err, 'ENOENT') || isXenconsError(err, 'ERR_XS_CLOSED')) return;
      throw err;
    }
  }

  /** Live watches of this client. */
  get watches(): readonly XsWatch[] {
    return [...this.#watches.values()];
  }

  // ---- transactions --------------------------------------------------------------------------

  /** TRANSACTION_START: a raw transaction you must end with `commit()` or `abort()`. */
  async startTransaction(options?: XsRequestOptions): Promise<XsTransaction> {
    const id = parseU32Reply(
      await this.#request(XsType.TRANSACTION_START, 0, (w) => w.string(''), options),
      'transaction id',
    );
    return new XsTransaction(id, (type, txId, build, opts) =>
      this.#request(type, txId, build, opts),
    );
  }

  /**
   * Runs `fn` in a transaction and commits. On `EAGAIN` (a conflict at commit, or from an
   * operation) the whole function runs again, with backoff, up to `retries` times. If `fn`
   * throws, the transaction is aborted and the error rethrown.
   */
  async transaction<T>(
    fn: (tx: XsTransaction) => Promise<T>,
    options: XsTransactionOptions = {},
  ): Promise<T> {
    const retries = options.retries ?? 10;
    const initial = options.initialDelay ?? 1;
    const max = options.maxDelay ?? 100;
    const request: XsRequestOptions = {};
    if (options.signal !== undefined) request.signal = options.signal;
    if (options.timeout !== undefined) request.timeout = options.timeout;
    for (let attempt = 0; ; attempt++) {
      let retryable: unknown;
      const tx = await this.startTransaction(request);
      let result: T;
      try {
        result = await fn(tx);
      } catch (err) {
        if (!tx.finished) await tx.abort(request).catch(() => {});
        if (!this.#retryable(err) || attempt >= retries) throw err;
        retryable = err;
      }
      if (retryable === undefined) {
        try {
          await tx.commit(request);
          return result!;
        } catch (err) {
          if (!this.#retryable(err) || attempt >= retries) throw err;
          retryable = err;
        }
      }
      const delay =
        attempt === 0 ? 0 : Math.min(max, initial * 2 ** (attempt - 1)) * (0.5 + Math.random());
      if (xsChannels.transactionRetry.hasSubscribers) {
        xsChannels.transactionRetry.publish({
          client: this.description,
          attempt: attempt + 1,
          delay,
          error: retryable,
        });
      }
      if (options.signal?.aborted) throw retryable;
      if (delay > 0) await sleep(delay);
    }
  }

  #retryable(err: unknown): boolean {
    if (isXenconsError(err, 'EAGAIN')) return true;
    // The daemon restarted under the transaction: its id is gone, run it again once reconnected.
    return (
      this.#reconnect !== null && this.#state !== 'closed' && isXenconsError(err, 'ERR_XS_CLOSED')
    );
  }

  // ---- domain and daemon operations ----------------------------------------------------------

  /** GET_DOMAIN_PATH: `/local/domain/<domid>` (the server does not check that it exists). */
  async getDomainPath(domid: number, options?: XsRequestOptions): Promise<string> {
    return parseStringReply(
      await this.#request(XsType.GET_DOMAIN_PATH, 0, (w) => w.string(String(domid)), options),
      'domain path',
    );
  }

  /** INTRODUCE (privileged): hands xenstored a domain's ring (gfn; 4.17 maps grant 1) and event channel. */
  async introduce(
    domid: number,
    gfn: number | bigint,
    port: number,
    options?: XsRequestOptions,
  ): Promise<void> {
    parseOkReply(
      await this.#request(
        XsType.INTRODUCE,
        0,
        (w) => w.string(String(domid)).string(String(gfn)).string(String(port)),
        options,
      ),
    );
  }

  /** RELEASE (privileged): xenstored forgets the domain (fires @releaseDomain). */
  async release(domid: number, options?: XsRequestOptions): Promise<void> {
    parseOkReply(await this.#request(XsType.RELEASE, 0, (w) => w.string(String(domid)), options));
  }

  /** IS_DOMAIN_INTRODUCED (privileged in cxenstored). */
  async isDomainIntroduced(domid: number, options?: XsRequestOptions): Promise<boolean> {
    return parseBoolReply(
      await this.#request(XsType.IS_DOMAIN_INTRODUCED, 0, (w) => w.string(String(domid)), options),
    );
  }

  /** SET_TARGET (privileged): `domid` may act on `target`'s nodes (device models). */
  async setTarget(domid: number, target: number, options?: XsRequestOptions): Promise<void> {
    parseOkReply(
      await this.#request(
        XsType.SET_TARGET,
        0,
        (w) => w.string(String(domid)).string(String(target)),
        options,
      ),
    );
  }

  /** RESUME (privileged): clears the domain's shutdown state (re-arms @releaseDomain). */
  async resume(domid: number, options?: XsRequestOptions): Promise<void> {
    parseOkReply(await this.#request(XsType.RESUME, 0, (w) => w.string(String(domid)), options));
  }

  /** CONTROL (privileged): `print`, `check`, `quota`, `help`…; resolves with the reply text. */
  async control(
    command: string,
    args: readonly string[] = [],
    options?: XsRequestOptions,
  ): Promise<string> {
    const reply = await this.#request(
      XsType.CONTROL,
      0,
      (w) => {
        w.string(command);
        for (const a of args) w.string(a);
      },
      options,
    );
    const end = reply.length > 0 && reply[reply.length - 1] === 0 ? reply.length - 1 : reply.length;
    return fromUtf8(reply.subarray(0, end));
  }

  /**
   * RESET_WATCHES: the server drops all watches and transactions of this connection. The client's
   * watch objects end too.
   */
  async resetWatches(options?: XsRequestOptions): Promise<void> {
    parseOkReply(await this.#request(XsType.RESET_WATCHES, 0, (w) => w.string(''), options));
    for (const w of this.#watches.values()) w.end();
    this.#watches.clear();
  }

  /** [Xen 4.21+] GET_FEATURE: the feature bitmap of the server, or of a domain. ENOSYS before. */
  async getFeature(domid?: number, options?: XsRequestOptions): Promise<number> {
    return parseU32Reply(
      await this.#request(
        XsType.GET_FEATURE,
        0,
        (w) => {
          if (domid !== undefined) w.string(String(domid));
        },
        options,
      ),
      'feature bitmap',
    );
  }

  /** [Xen 4.21+] SET_FEATURE (privileged): a domain's features, before it is introduced. */
  async setFeature(domid: number, value: number, options?: XsRequestOptions): Promise<void> {
    parseOkReply(
      await this.#request(
        XsType.SET_FEATURE,
        0,
        (w) => w.string(String(domid)).string(String(value)),
        options,
      ),
    );
  }

  /**
   * [Xen 4.22+] GET_QUOTA (privileged): without a name, the list of quota names; with a name, its
   * global value or, with a domid, that domain's. ENOSYS before 4.22.
   */
  async getQuota(name?: string, domid?: number, options?: XsRequestOptions): Promise<string> {
    return parseStringReply(
      await this.#request(
        XsType.GET_QUOTA,
        0,
        (w) => {
          if (domid !== undefined) w.string(String(domid));
          if (name !== undefined) w.string(name);
        },
        options,
      ),
      'quota',
    );
  }

  /** [Xen 4.22+] SET_QUOTA (privileged): `0` disables the check. */
  async setQuota(
    name: string,
    value: number,
    domid?: number,
    options?: XsRequestOptions,
  ): Promise<void> {
    parseOkReply(
      await this.#request(
        XsType.SET_QUOTA,
        0,
        (w) => {
          if (domid !== undefined) w.string(String(domid));
          w.string(name).string(String(value));
        },
        options,
      ),
    );
  }
}

/** Connects a {@link XenstoreClient} (default: the unix socket, as libxenstore finds it). */
export async function openXenstore(options: XenstoreClientOptions = {}): Promise<XenstoreClient> {
  return new XenstoreClient(options).connect();
}
