import { channel } from 'node:diagnostics_channel';
import type { Duplex } from 'node:stream';
import {
  DEFAULT_POLL_MICROS,
  XENSTORE_PAYLOAD_MAX,
  XENSTORE_REL_PATH_MAX,
  type XsMessage,
  XsPoller,
  XsType,
} from '@xencons/xenstore';
import { atou } from './c-number.js';
import { Connection, type ConnectionHandler, type ConnectionKind } from './connection.js';
import { runControl } from './control.js';
import { type NodeData, recordSize } from './node.js';
import { canonicalize, childPath, domainPath, isValidNodename, parentOf } from './path.js';
import {
  type Caller,
  PERM_IGNORE,
  PERM_NONE,
  PERM_OWNER,
  PERM_READ,
  PERM_WRITE,
  type PermEntry,
  type Perms,
  parsePerms,
  permFor,
  permsToPayload,
} from './perms.js';
import { DEFAULT_QUOTAS, DEFAULT_SOFT_MEMORY, type Quotas } from './quotas.js';
import { RequestError, Transaction } from './transaction.js';
import { Tree } from './tree.js';
import { GlobalView, type View } from './view.js';
import { eventPath, WatchIndex } from './watches.js';

/** `DOMID_SELF`: IS_DOMAIN_INTRODUCED answers T for it. */
const DOMID_SELF = 0x7ff0;
/** Domids from here up are reserved (`DOMID_FIRST_RESERVED`). */
const DOMID_FIRST_RESERVED = 0x7ff0;

/** Published on `node:diagnostics_channel` as `xencons:xenstored`. */
export type XenstoredEvent =
  | { type: 'connect'; label: string; domid: number; kind: ConnectionKind }
  | { type: 'disconnect'; label: string; domid: number; reason: string; dropped: boolean }
  | {
      type: 'request';
      label: string;
      msgType: number;
      reqId: number;
      txId: number;
      payload: Uint8Array;
    }
  | { type: 'control-print'; text: string }
  /** CONTROL `check` found the tree and its counters inconsistent. */
  | { type: 'check'; problems: string[] }
  /**
   * A domain reached its soft `memory` quota (a warning), or an operation was refused because it
   * would reach the hard one (once until the domain is below the soft quota again).
   */
  | { type: 'memory-quota'; domid: number; memory: number; level: 'soft' | 'hard' }
  | { type: 'internal-error'; label: string; error: unknown };

export const diagnostics = channel('xencons:xenstored');

/** A guest's xenstore ring offered by INTRODUCE: the hook maps it and returns its byte stream. */
export interface IntroduceRequest {
  readonly domid: number;
  /** The gfn as sent (signed decimal text); cxenstored 4.17 ignores it and maps grant 1. */
  readonly gfn: string;
  readonly port: number;
}

export interface XenstoredOptions {
  quotas?: Partial<Quotas>;
  /** A domain besides dom0 treated as privileged (cxenstored `-p`). */
  privilegedDomid?: number;
  /**
   * Whether a domain exists in the hypervisor (SET_PERMS marks entries of missing domains
   * ignored). Default: every domid below DOMID_FIRST_RESERVED, since no hypervisor is asked.
   */
  domainExists?: (domid: number) => boolean;
  /** Maps a guest's ring on INTRODUCE. Without it the domain is introduced with no connection. */
  introduce?: (req: IntroduceRequest) => Duplex | undefined;
  /** Bytes a connection may have waiting for its peer before it is dropped. Default 1 MiB. */
  maxOutputBytes?: number;
  /** Undelivered watch events of unprivileged readers expire after this. Default 20 s. */
  watchEventTimeoutMs?: number;
  /** Receives every request and reply for the trace file. */
  trace?: (line: string) => void;
  /**
   * CONTROL `logfile FILE`: trace to FILE from now on (the program reopens its trace there).
   * Without it, `logfile` answers EINVAL.
   */
  traceFile?: (path: string) => void;
  /**
   * While requests stream in (the previous one less than 1 ms ago), the event loop polls for
   * this long (µs) after each instead of sleeping, so a client's next request is picked up
   * without a wake-up (about 10 µs less per request here). Every connection is still served in
   * turn; the polling pauses (10 ms, doubling while it recurs, up to a second) when the process
   * finds itself held up (CPUs busy), and an idle daemon never polls ({@link XsPoller}). 0 turns
   * it off. Default {@link DEFAULT_SPIN_MICROS}.
   */
  spinMicros?: number;
}

/** "Spin briefly, then sleep" (DESIGN.md): the default polling window after a request, µs. */
export const DEFAULT_SPIN_MICROS = DEFAULT_POLL_MICROS;

/** A domain as the daemon knows it (cxenstored's `struct domain`). */
export interface DomainState {
  readonly domid: number;
  /** Global generation when the record was made: perms naming it on older nodes are stale. */
  readonly generation: number;
  introduced: boolean;
  shutdown: boolean;
  /** SET_TARGET: the domain this one is device model of, or -1. */
  target: number;
  watches: number;
  /** Connections speaking for this domain (its ring, in-process test connections). */
  readonly connections: Set<Connection>;
  /** The last `memory-quota` level published for it, until it is below the soft quota. */
  memoryWarned: 'soft' | 'hard' | null;
}

/** Counters for `stats()`. */
export interface XenstoredStats {
  connections: number;
  nodes: number;
  watches: number;
  transactions: number;
  requests: number;
  droppedSlowConnections: number;
  protocolErrors: number;
  coalescedEvents: number;
  expiredEvents: number;
  /** Watch events not queued because the watcher's domain was at its `memory` quota. */
  refusedEvents: number;
  /** Times polling after requests (`spinMicros`) paused because the process was held up. */
  pollingPauses: number;
}

class Fail extends RequestError {}
function fail(errno: string): never {
  throw new Fail(errno);
}

const OK = 'OK\0';

/**
 * The reference xenstore daemon without its transports: the tree, permissions, watches,
 * transactions, quotas and every request of Xen 4.17, with cxenstored's answers.
 */
export class Xenstored implements ConnectionHandler {
  readonly tree: Tree;
  readonly quotas: Quotas;
  /** The soft `memory` quota (a warning only); CONTROL `quota-soft set memory N` changes it. */
  softMemory = DEFAULT_SOFT_MEMORY;
  readonly domains = new Map<number, DomainState>();
  readonly connections = new Set<Connection>();
  readonly watches = new WatchIndex<Connection>();
  /** Permissions of `@releaseDomain` and `@introduceDomain` (default `n0`). */
  readonly specialPerms = new Map<string, Perms>([
    ['@releaseDomain', [{ id: 0, perms: PERM_NONE }]],
    ['@introduceDomain', [{ id: 0, perms: PERM_NONE }]],
  ]);
  readonly privilegedDomid: number;
  readonly #global: GlobalView;
  readonly #domainExists: (domid: number) => boolean;
  readonly #introduce: XenstoredOptions['introduce'];
  readonly #maxOutput: number;
  readonly #eventTimeout: number;
  #trace: ((line: string) => void) | undefined;
  #tracing = true;
  readonly #traceFile: ((path: string) => void) | undefined;
  readonly #poller: XsPoller;
  readonly #stats = {
    requests: 0,
    droppedSlowConnections: 0,
    protocolErrors: 0,
    coalesced: 0,
    expired: 0,
    refused: 0,
  };

  constructor(options: XenstoredOptions = {}) {
    this.quotas = { ...DEFAULT_QUOTAS, ...options.quotas };
    this.privilegedDomid = options.privilegedDomid ?? 0;
    this.#domainExists = options.domainExists ?? ((d) => d < DOMID_FIRST_RESERVED);
    this.#introduce = options.introduce;
    this.#maxOutput = options.maxOutputBytes ?? 1024 * 1024;
    this.#eventTimeout = options.watchEventTimeoutMs ?? 20_000;
    this.#trace = options.trace;
    this.#traceFile = options.traceFile;
    this.#poller = new XsPoller(options.spinMicros ?? DEFAULT_SPIN_MICROS);
    // setup_structure: / → tool → xenstored, all owned by dom0 with `n0`.
    const n0: Perms = [{ id: 0, perms: PERM_NONE }];
    this.tree = new Tree(n0);
    this.tree.create('/tool', '', n0);
    this.tree.create('/tool/xenstored', '', n0);
    this.#global = new GlobalView(this.tree);
    const dom0 = this.#domain(0);
    dom0.introduced = true;
  }

  // ---- connections -------------------------------------------------------------------------

  /**
   * Serves a peer over a byte stream. `domid` 0 on a socket is dom0's tools; a guest's ring (or
   * an in-process test connection) passes its domid and is unprivileged unless it is dom0 or the
   * privileged domain.
   */
  attach(
    stream: Duplex,
    init: { kind: ConnectionKind; domid?: number; label?: string; fedByCaller?: boolean },
  ): Connection {
    const domid = (init.domid ?? 0) >>> 0;
    const privileged = init.kind === 'socket' || domid === 0 || domid === this.privilegedDomid;
    const conn = new Connection(
      stream,
      {
        kind: init.kind,
        domid,
        privileged,
        label: init.label ?? (init.kind === 'socket' ? 'socket' : `domain ${domid}`),
        maxOutputBytes: this.#maxOutput,
        eventTimeoutMs: this.#eventTimeout,
        maxOutstanding: privileged ? 0 : this.quotas.outstanding,
        fedByCaller: init.fedByCaller === true,
      },
      this,
    );
    if (this.#limited(domid)) conn.memoryGate = (bytes) => !this.#memoryFull(domid, bytes);
    this.connections.add(conn);
    if (init.kind === 'domain') this.#domain(domid).connections.add(conn);
    this.#traceLine(`CREATE connection ${conn.label}#${conn.seq}`);
    diagnostics.publish({
      type: 'connect',
      label: conn.label,
      domid,
      kind: init.kind,
    } satisfies XenstoredEvent);
    return conn;
  }

  closed(conn: Connection, reason: string): void {
    if (!this.connections.delete(conn)) return;
    if (conn.dropped) this.#stats.droppedSlowConnections++;
    if (reason.startsWith('protocol error')) this.#stats.protocolErrors++;
    this.#stats.coalesced += conn.coalescedEvents;
    this.#stats.expired += conn.expiredEvents;
    this.#stats.refused += conn.refusedEvents;
    this.#dropWatches(conn);
    conn.transactions.clear();
    this.domains.get(conn.domid)?.connections.delete(conn);
    this.#traceLine(`DESTROY connection ${conn.label}#${conn.seq}: ${reason}`);
    diagnostics.publish({
      type: 'disconnect',
      label: conn.label,
      domid: conn.domid,
      reason,
      dropped: conn.dropped,
    } satisfies XenstoredEvent);
  }

  traceOut(conn: Connection, bytes: Uint8Array): void {
    if (this.#trace === undefined || !this.#tracing) return;
    let at = 0;
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    while (at + 16 <= buf.length) {
      const type = buf.readUInt32LE(at);
      const len = buf.readUInt32LE(at + 12);
      this.#traceIo('OUT', conn, type, buf.subarray(at + 16, at + 16 + len));
      at += 16 + len;
    }
  }

  /** Replaces the trace sink (CONTROL `logfile`, SIGHUP) or turns tracing off and on (`log`). */
  setTrace(trace: ((line: string) => void) | undefined): void {
    this.#trace = trace;
  }

  /** CONTROL `logfile`: false when there is no way to open a trace file. */
  setTraceFile(path: string): boolean {
    if (this.#traceFile === undefined) return false;
    this.#traceFile(path);
    return true;
  }

  /** Writes lines to the trace when it is on (CONTROL `memreport` without a file); false if off. */
  writeTrace(text: string): boolean {
    if (this.#trace === undefined || !this.#tracing) return false;
    for (const line of text.split('\n')) if (line !== '') this.#trace(line);
    return true;
  }

  setTracing(on: boolean): void {
    this.#tracing = on;
  }

  stats(): XenstoredStats {
    let coalesced = this.#stats.coalesced;
    let expired = this.#stats.expired;
    let refused = this.#stats.refused;
    let transactions = 0;
    for (const c of this.connections) {
      coalesced += c.coalescedEvents;
      expired += c.expiredEvents;
      refused += c.refusedEvents;
      transactions += c.transactions.size;
    }
    return {
      connections: this.connections.size,
      nodes: this.tree.size,
      watches: this.watches.count,
      transactions,
      requests: this.#stats.requests,
      droppedSlowConnections: this.#stats.droppedSlowConnections,
      protocolErrors: this.#stats.protocolErrors,
      coalescedEvents: coalesced,
      expiredEvents: expired,
      refusedEvents: refused,
      pollingPauses: this.#poller.pauses,
    };
  }

  /** Closes every connection (and stops polling). */
  closeAll(reason: string): void {
    this.#poller.stop();
    for (const conn of [...this.connections]) conn.close(reason);
  }

  // ---- memory accounting (cxenstored 4.17's `memory` quota) -----------------------------------

  /**
   * Bytes charged to a domain as cxenstored 4.17 counts them: the records (and paths) of the
   * nodes it owns, the paths and tokens of its connections' watches, their replies and events
   * not yet taken by the peer (payload plus header), and their open transactions' node copies.
   * Socket connections count as dom0's.
   */
  memoryOf(domid: number): number {
    let m = this.tree.memoryOf(domid);
    const conns = domid === 0 ? this.connections : (this.domains.get(domid)?.connections ?? []);
    for (const c of conns) {
      if (c.domid !== domid) continue;
      m += c.watchBytes + c.pendingBytes;
      for (const tx of c.transactions.values()) m += tx.memory;
    }
    return m;
  }

  /** Only domains other than dom0 and the privileged domain are held to the memory quota. */
  #limited(domid: number): boolean {
    return domid !== 0 && domid !== this.privilegedDomid;
  }

  /**
   * `domain_chk_quota`: would charging `add` more bytes bring `domid` to its hard quota? Publishes
   * a `memory-quota` event when the domain reaches the soft quota or is refused.
   */
  #memoryFull(domid: number, add: number): boolean {
    if (!this.#limited(domid)) return false;
    const hard = this.quotas.memory;
    const soft = this.softMemory;
    const mem = this.memoryOf(domid) + add;
    const d = this.domains.get(domid);
    if (mem >= hard && hard > 0) {
      if (d !== undefined && d.memoryWarned !== 'hard') {
        d.memoryWarned = 'hard';
        diagnostics.publish({
          type: 'memory-quota',
          domid,
          memory: mem,
          level: 'hard',
        } satisfies XenstoredEvent);
      }
      return true;
    }
    if (d !== undefined) {
      if (mem >= soft && soft > 0 && d.memoryWarned === null) {
        d.memoryWarned = 'soft';
        diagnostics.publish({
          type: 'memory-quota',
          domid,
          memory: mem,
          level: 'soft',
        } satisfies XenstoredEvent);
      } else if (mem < soft) {
        d.memoryWarned = null;
      }
    }
    return false;
  }

  /** ENOMEM when charging `add` bytes to `domid` would reach its hard `memory` quota. */
  #chargeOrFail(domid: number, add: number): void {
    if (this.#memoryFull(domid, add)) fail('ENOMEM');
  }

  /** True while the event loop is kept polling after requests (`spinMicros`). */
  get polling(): boolean {
    return this.#poller.polling;
  }

  /** How long (ms) polling pauses after the latest hold-up; 0 before the first. */
  get pollingPauseMs(): number {
    return this.#poller.pauseMs;
  }

  // ---- domains (also driven by the simulated hypervisor) ------------------------------------

  /** Marks a domain shut down or crashed: `@releaseDomain` fires once until RESUME. */
  domainShutdown(domid: number): void {
    const d = this.domains.get(domid);
    if (d === undefined || !d.introduced || d.shutdown) return;
    d.shutdown = true;
    this.#fireSpecial('@releaseDomain');
  }

  /** The domain died: its connections close, its nodes go, `@releaseDomain` fires. */
  domainDestroyed(domid: number): void {
    const d = this.domains.get(domid);
    if (d === undefined || domid === 0) return;
    this.#destroyDomain(d);
  }

  /** Gives an introduced (or any) domain a connection over `stream`, e.g. its ring. */
  attachDomain(domid: number, stream: Duplex): Connection {
    return this.attach(stream, { kind: 'domain', domid });
  }

  #domain(domid: number): DomainState {
    let d = this.domains.get(domid);
    if (d === undefined) {
      d = {
        domid,
        generation: this.tree.generation,
        introduced: false,
        shutdown: false,
        target: -1,
        watches: 0,
        connections: new Set(),
        memoryWarned: null,
      };
      this.domains.set(domid, d);
    }
    return d;
  }

  #destroyDomain(d: DomainState): void {
    for (const conn of [...d.connections]) conn.close('domain released');
    // domain_tree_remove: nodes the domain owns go, with everything below them.
    if (this.tree.ownedBy(d.domid) > 0) {
      const visit = (path: string) => {
        const node = this.tree.find(path);
        if (node === undefined) return;
        if (node.perms[0]!.id === d.domid) {
          this.#rmNode(null, this.#global, path);
          return;
        }
        for (const name of node.childNames()) visit(childPath(path, name));
      };
      visit('/');
    }
    for (const [name, perms] of this.specialPerms) {
      const kept = perms.filter((p, i) => i === 0 || p.id !== d.domid);
      if (kept[0]!.id === d.domid) kept[0] = { id: this.privilegedDomid, perms: kept[0]!.perms };
      this.specialPerms.set(name, kept);
    }
    this.domains.delete(d.domid);
    if (d.introduced) this.#fireSpecial('@releaseDomain');
  }

  // ---- requests ------------------------------------------------------------------------------

  message(conn: Connection, msg: XsMessage): void {
    this.#stats.requests++;
    const p = msg.payload;
    // A socket's payloads are Buffers already (views of what was read); a ring's may not be.
    const payload = Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.length);
    if (this.#trace !== undefined && this.#tracing) this.#traceIo('IN', conn, msg.type, payload);
    if (diagnostics.hasSubscribers)
      diagnostics.publish({
        type: 'request',
        label: conn.label,
        msgType: msg.type,
        reqId: msg.reqId,
        txId: msg.txId,
        payload: new Uint8Array(msg.payload),
      } satisfies XenstoredEvent);
    this.#poller.kick();
    try {
      this.#process(conn, msg, payload);
    } catch (err) {
      if (err instanceof RequestError) {
        this.#error(conn, msg, err.errno);
      } else {
        diagnostics.publish({
          type: 'internal-error',
          label: conn.label,
          error: err,
        } satisfies XenstoredEvent);
        this.#error(conn, msg, 'EIO');
      }
    }
  }

  #error(conn: Connection, msg: XsMessage, errno: string): void {
    conn.reply(XsType.ERROR, msg.reqId, msg.txId, `${errno}\0`);
  }

  #reply(conn: Connection, msg: XsMessage, payload: string): void {
    // send_reply: a reply over the payload limit becomes E2BIG.
    if (payload.length > XENSTORE_PAYLOAD_MAX) {
      this.#error(conn, msg, 'E2BIG');
      return;
    }
    conn.reply(msg.type, msg.reqId, msg.txId, payload);
  }

  #caller(conn: Connection): Caller {
    return {
      domid: conn.domid,
      privileged: conn.privileged,
      target: this.domains.get(conn.domid)?.target ?? -1,
    };
  }

  /** `process_message`: ENOSYS for unknown types, EACCES for privileged ones, then the tx. */
  #process(conn: Connection, msg: XsMessage, payload: Buffer): void {
    const type = msg.type;
    const handler = HANDLERS[type];
    if (handler === undefined) {
      this.#error(conn, msg, 'ENOSYS');
      return;
    }
    if (PRIVILEGED.has(type) && !conn.privileged) {
      this.#error(conn, msg, 'EACCES');
      return;
    }
    let tx: Transaction | null = null;
    if (!NO_TX.has(type) && msg.txId !== 0) {
      tx = conn.transactions.get(msg.txId) ?? null;
      if (tx === null) {
        this.#error(conn, msg, 'ENOENT');
        return;
      }
    }
    const text = payload.toString('latin1');
    handler.call(this, { conn, msg, payload, text, tx, view: tx ?? this.#global });
  }

  // ---- node helpers --------------------------------------------------------------------------

  #ignored(generation: number): (entry: PermEntry) => boolean {
    return (entry) => {
      const d = this.domains.get(entry.id);
      return d === undefined || d.generation > generation;
    };
  }

  #permFor(caller: Caller, node: NodeData): number {
    return permFor(caller, node.perms, this.#ignored(node.generation));
  }

  /** `get_node`: the node if the caller has `perm`; errors masked by the parents' perms. */
  #getNode(req: Req, name: string | null, perm: number): NodeData {
    const found = this.#lookup(req, name, perm);
    if (typeof found === 'string') throw new Fail(found);
    return found;
  }

  /** {@link #getNode} without the throw: the node, or the errno name it would fail with. */
  #lookup(req: Req, name: string | null, perm: number): NodeData | string {
    // A payload that is not exactly one string (`onearg` gives NULL): cxenstored 4.17's
    // get_node_canonicalized returns without setting errno, and the request answers with the
    // errno left from before, which is ENOENT (seen on real Xen and through the shim).
    if (name === null) return 'ENOENT';
    if (!isValidNodename(name, this.quotas.pathMax)) return 'EINVAL';
    const node = req.view.get(name);
    // A privileged caller has every permission everywhere, so no parent can mask the answer.
    if (req.conn.privileged) return node ?? 'ENOENT';
    const caller = this.#caller(req.conn);
    let errno = 'ENOENT';
    if (node !== undefined) {
      if ((this.#permFor(caller, node) & perm) === perm) return node;
      errno = 'EACCES';
    }
    // errno_from_parents: only say more than EACCES if the closest ancestor grants `perm`.
    let path = name;
    let parent: NodeData | undefined;
    do {
      path = parentOf(path);
      parent = req.view.get(path);
    } while (parent === undefined && path !== '/');
    const parentPerm = parent === undefined ? PERM_NONE : this.#permFor(caller, parent);
    return (parentPerm & perm) !== 0 ? errno : 'EACCES';
  }

  #canonical(req: Req, name: string | null): string | null {
    return name === null ? null : canonicalize(name, req.conn.home);
  }

  #unprivileged(req: Req): boolean {
    return !req.conn.privileged;
  }

  /** `create_node`: the node and missing parents, inheriting perms; quotas for guests. */
  #createNode(req: Req, name: string, value: string): void {
    const view = req.view;
    const missing: string[] = [name];
    let parentPath = parentOf(name);
    let parent = view.get(parentPath);
    while (parent === undefined) {
      if (parentPath === '/') fail('EIO');
      missing.push(parentPath);
      parentPath = parentOf(parentPath);
      parent = view.get(parentPath);
    }
    let perms = parent.perms;
    const unprivileged = this.#unprivileged(req);
    if (unprivileged && perms[0]!.id !== req.conn.domid) {
      perms = [{ id: req.conn.domid, perms: perms[0]!.perms }, ...perms.slice(1)];
    }
    if (unprivileged) {
      let count = this.tree.ownedBy(req.conn.domid);
      for (let i = 0; i < missing.length; i++) {
        if (count >= this.quotas.nodes) fail('ENOSPC');
        if (req.tx === null) count++;
      }
      const max = this.quotas.nodeSize;
      if (recordSize(perms.length, value.length, 0) >= max) fail('ENOSPC');
      for (let i = 1; i < missing.length; i++) {
        const below = missing[i - 1]!;
        if (recordSize(perms.length, 0, below.length - missing[i]!.length) >= max) fail('ENOSPC');
      }
      const top = missing[missing.length - 1]!;
      const topName = top.length - (parentPath === '/' ? 1 : parentPath.length + 1);
      if (
        recordSize(parent.perms.length, parent.value.length, parent.childLen() + topName + 1) >= max
      ) {
        fail('ENOSPC');
      }
    }
    // The memory quota (do_tdb_write): new records go to their owner, or to the transaction's
    // domain as its copies; the parent's record grows by the new child's name.
    const tx = req.tx;
    const top = missing[missing.length - 1]!;
    const grow = top.length - (parentPath === '/' ? 1 : parentPath.length + 1) + 1;
    let add = 0;
    for (let i = 0; i < missing.length; i++) {
      const p = missing[i]!;
      const childLen = i === 0 ? 0 : missing[i - 1]!.length - p.length;
      const pathLen = p.length + (tx === null ? 0 : tx.keyPrefix);
      add += Tree.nodeMemory(pathLen, perms.length, i === 0 ? value.length : 0, childLen);
    }
    if (tx !== null) {
      this.#chargeOrFail(req.conn.domid, add + grow);
    } else {
      const owner = perms[0]!.id;
      const parentOwner = parent.perms[0]!.id;
      this.#chargeOrFail(owner, add + (parentOwner === owner ? grow : 0));
      if (parentOwner !== owner) this.#chargeOrFail(parentOwner, grow);
    }
    for (let i = missing.length - 1; i > 0; i--) view.create(missing[i]!, '', perms);
    view.create(name, value, perms);
  }

  /** `fire_watches`: queued in a transaction, else sent to every permitted watcher. */
  #fire(req: Req | null, path: string, exact: boolean, oldPerms: Perms | null = null): void {
    if (req?.tx) {
      req.tx.queueWatch(path, exact);
      return;
    }
    this.#fireGlobal(path, exact, oldPerms);
  }

  #fireGlobal(path: string, exact: boolean, oldPerms: Perms | null): void {
    const matches = this.watches.match(path, exact);
    if (matches.length === 0) return;
    let lastConn: Connection | null = null;
    let permitted = false;
    for (const w of matches) {
      if (w.conn !== lastConn) {
        lastConn = w.conn;
        permitted = this.#watchPermitted(w.conn, path, oldPerms);
      }
      if (permitted) w.conn.event(eventPath(w, path), w.token);
    }
  }

  /** `watch_permitted`: the watcher can read the node (or its old perms), or its parent. */
  #watchPermitted(conn: Connection, path: string, oldPerms: Perms | null): boolean {
    if (conn.privileged) return true;
    const caller = this.#caller(conn);
    if (oldPerms !== null && (permFor(caller, oldPerms, this.#ignored(Infinity)) & PERM_READ) !== 0)
      return true;
    const node = this.tree.find(path);
    if (node === undefined) return false;
    if ((this.#permFor(caller, node) & PERM_READ) !== 0) return true;
    const parent = node.parent ?? this.tree.find(parentOf(path));
    return parent !== undefined && (this.#permFor(caller, parent) & PERM_READ) !== 0;
  }

  #fireSpecial(name: string): void {
    const perms = this.specialPerms.get(name)!;
    for (const w of this.watches.match(name, true)) {
      const caller = this.#caller(w.conn);
      if ((permFor(caller, perms, () => false) & PERM_READ) !== 0) w.conn.event(name, w.token);
    }
  }

  /** `rm_node`: the subtree bottom up, each descendant firing exact watches, the top normal ones. */
  #rmNode(req: Req | null, view: View, name: string): void {
    const walk = (path: string) => {
      const node = view.get(path);
      if (node === undefined) return;
      for (const child of node.childNames()) walk(childPath(path, child));
      this.#fire(req, path, path !== name);
      view.remove(path);
    };
    walk(name);
  }

  #dropWatches(conn: Connection): void {
    const d = this.domains.get(conn.domid);
    for (const w of conn.watches.values()) {
      this.watches.remove(w);
      if (d !== undefined && conn.kind === 'domain') d.watches--;
    }
    conn.watches.clear();
    conn.watchBytes = 0;
  }

  // ---- request handlers ----------------------------------------------------------------------

  /** READ */
  doRead(req: Req): void {
    const node = this.#getNode(req, this.#canonical(req, oneArg(req.text)), PERM_READ);
    this.#reply(req.conn, req.msg, node.value);
  }

  /** DIRECTORY */
  doDirectory(req: Req): void {
    const node = this.#getNode(req, this.#canonical(req, oneArg(req.text)), PERM_READ);
    let out = '';
    for (const name of node.childNames()) out += `${name}\0`;
    this.#reply(req.conn, req.msg, out);
  }

  /** DIRECTORY_PART: `path\0offset\0` → `gen\0` + children from offset, `\0` at the end. */
  doDirectoryPart(req: Req): void {
    const strings = splitStrings(req.text);
    if (strings.length !== 2) fail('EINVAL');
    const node = this.#getNode(req, this.#canonical(req, strings[0]!), PERM_READ);
    const off = atou(strings[1]!);
    let children = '';
    for (const name of node.childNames()) children += `${name}\0`;
    const gen = `${node.generation}\0`;
    if (off >= children.length) {
      this.#reply(req.conn, req.msg, `${gen}\0`);
      return;
    }
    const maxlen = XENSTORE_PAYLOAD_MAX - gen.length - 1;
    let len = 0;
    let at = off;
    for (;;) {
      const end = children.indexOf('\0', at);
      const strlen = end - at;
      if (len + strlen >= maxlen) break;
      len += strlen + 1;
      at = end + 1;
      if (off + len === children.length) break;
    }
    const tail = off + len === children.length ? '\0' : '';
    this.#reply(req.conn, req.msg, gen + children.slice(off, off + len) + tail);
  }

  /** GET_PERMS */
  doGetPerms(req: Req): void {
    const node = this.#getNode(req, this.#canonical(req, oneArg(req.text)), PERM_READ);
    this.#reply(req.conn, req.msg, permsToPayload(node.perms));
  }

  /** SET_PERMS: `path\0perm\0…`; owner changes need privilege; `@` names set special perms. */
  doSetPerms(req: Req): void {
    const { text, conn } = req;
    const count = countStrings(text);
    if (count < 2) fail('EINVAL');
    if (this.#unprivileged(req) && count - 1 > this.quotas.permissions) fail('ENOSPC');
    const first = text.indexOf('\0');
    const parsed = parsePerms(text, first + 1, count - 1);
    if (parsed === null) throw new Fail('EINVAL');
    // domain_alloc_permrefs: entries for domains that do not exist are ignored from now on.
    const perms: PermEntry[] = parsed.map((p) => {
      if (this.domains.has(p.id)) return p;
      if (!this.#domainExists(p.id)) return { id: p.id, perms: p.perms | PERM_IGNORE };
      this.#domain(p.id);
      return p;
    });
    if ((perms[0]!.perms & PERM_IGNORE) !== 0) fail('ENOENT');
    const rawName = text.slice(0, first);
    if (rawName.charCodeAt(0) === 64) {
      const current = this.specialPerms.get(rawName);
      if (current === undefined) fail('EINVAL');
      const want = PERM_WRITE | PERM_OWNER;
      if ((permFor(this.#caller(conn), current!, () => false) & want) !== want) fail('EACCES');
      this.specialPerms.set(rawName, perms);
      this.#reply(conn, req.msg, OK);
      return;
    }
    const name = canonicalize(rawName, conn.home);
    const node = this.#getNode(req, name, PERM_WRITE | PERM_OWNER);
    if (this.#unprivileged(req) && perms[0]!.id !== node.perms[0]!.id) fail('EPERM');
    if (
      this.#unprivileged(req) &&
      recordSize(perms.length, node.value.length, node.childLen()) >= this.quotas.nodeSize
    ) {
      fail('ENOSPC');
    }
    if (req.tx !== null) {
      this.#chargeOrFail(conn.domid, req.tx.costOfWrite(name, null, perms));
    } else if (perms[0]!.id === node.perms[0]!.id) {
      this.#chargeOrFail(perms[0]!.id, 8 * (perms.length - node.perms.length));
    } else {
      const size = Tree.nodeMemory(name.length, perms.length, node.value.length, node.childLen());
      this.#chargeOrFail(perms[0]!.id, size);
    }
    const old = node.perms;
    req.view.setPerms(name, perms);
    this.#fire(req, name, false, old);
    this.#reply(conn, req.msg, OK);
  }

  /** WRITE: `path\0value`; creates missing parents; always fires. */
  doWrite(req: Req): void {
    const nul = req.text.indexOf('\0');
    if (nul < 0) fail('EINVAL');
    const name = canonicalize(req.text.slice(0, nul), req.conn.home);
    // Decoded on its own so the stored value is a flat string, not a slice pinning the payload.
    const value = req.payload.toString('latin1', nul + 1);
    const node = this.#lookup(req, name, PERM_WRITE);
    if (node === 'ENOENT') {
      this.#createNode(req, name, value);
    } else if (typeof node === 'string') {
      fail(node);
    } else {
      if (
        this.#unprivileged(req) &&
        recordSize(node.perms.length, value.length, node.childLen()) >= this.quotas.nodeSize
      ) {
        fail('ENOSPC');
      }
      if (req.tx !== null)
        this.#chargeOrFail(req.conn.domid, req.tx.costOfWrite(name, value, null));
      else this.#chargeOrFail(node.perms[0]!.id, value.length - node.value.length);
      req.view.setValue(name, value);
    }
    this.#fire(req, name, false);
    this.#reply(req.conn, req.msg, OK);
  }

  /** MKDIR: creates (and fires) only if missing. */
  doMkdir(req: Req): void {
    const name = this.#canonical(req, oneArg(req.text));
    const node = this.#lookup(req, name, PERM_WRITE);
    // do_mkdir: "if (!name) return ENOMEM" after the stale ENOENT of a malformed payload.
    if (node === 'ENOENT' && name === null) fail('ENOMEM');
    if (node === 'ENOENT') {
      this.#createNode(req, name!, '');
      this.#fire(req, name!, false);
    } else if (typeof node === 'string') {
      fail(node);
    }
    this.#reply(req.conn, req.msg, OK);
  }

  /** RM: recursive; a missing node with an existing parent is fine. */
  doRm(req: Req): void {
    const name = this.#canonical(req, oneArg(req.text));
    const node = this.#lookup(req, name, PERM_WRITE);
    // do_rm: "if (!name) return ENOMEM" after the stale ENOENT of a malformed payload.
    if (node === 'ENOENT' && name === null) fail('ENOMEM');
    if (node === 'ENOENT' && req.view.get(parentOf(name!)) !== undefined) {
      this.#reply(req.conn, req.msg, OK);
      return;
    }
    if (typeof node === 'string') fail(node);
    if (name === '/') fail('EINVAL');
    this.#rmNode(req, req.view, name!);
    this.#reply(req.conn, req.msg, OK);
  }

  /** WATCH: `path\0token\0`; OK, then the initial event. */
  doWatch(req: Req): void {
    const { conn } = req;
    const strings = splitStrings(req.text);
    if (strings.length !== 2) fail('EINVAL');
    let path = strings[0]!;
    const token = strings[1]!;
    let relativeTo: string | null = null;
    if (path.charCodeAt(0) === 64) {
      if (path.length > XENSTORE_REL_PATH_MAX) fail('EINVAL');
    } else {
      if (path.charCodeAt(0) !== 47) relativeTo = conn.home;
      path = canonicalize(path, conn.home);
      if (!isValidNodename(path, this.quotas.pathMax)) fail('EINVAL');
    }
    const key = `${path}\0${token}`;
    if (conn.watches.has(key)) fail('EEXIST');
    const d = this.domains.get(conn.domid);
    if (!conn.privileged && d !== undefined && d.watches > this.quotas.watches) fail('E2BIG');
    const bytes = path.length + token.length;
    this.#chargeOrFail(conn.domid, bytes);
    const watch = this.watches.add(conn, path, token, relativeTo);
    conn.watches.set(key, watch);
    conn.watchBytes += bytes;
    // domain_watch_inc: the watches of a domain's own connections count, the socket's do not.
    if (conn.kind === 'domain' && d !== undefined) d.watches++;
    this.#reply(conn, req.msg, OK);
    conn.event(eventPath(watch, path), token);
  }

  /** UNWATCH: the same (path, token); ENOENT if there is no such watch (cxenstored). */
  doUnwatch(req: Req): void {
    const { conn } = req;
    const strings = splitStrings(req.text);
    if (strings.length !== 2) fail('EINVAL');
    const key = `${canonicalize(strings[0]!, conn.home)}\0${strings[1]}`;
    const watch = conn.watches.get(key);
    if (watch === undefined) fail('ENOENT');
    conn.watches.delete(key);
    this.watches.remove(watch!);
    conn.watchBytes -= watch!.path.length + watch!.token.length;
    const d = this.domains.get(conn.domid);
    if (conn.kind === 'domain' && d !== undefined) d.watches--;
    this.#reply(conn, req.msg, OK);
  }

  /** TRANSACTION_START: no nesting; ids per connection. */
  doTransactionStart(req: Req): void {
    const { conn } = req;
    if (req.tx !== null) fail('EBUSY');
    if (!conn.privileged && conn.transactions.size > this.quotas.transactions) fail('ENOSPC');
    let id: number;
    do {
      id = conn.nextTxId;
      conn.nextTxId = (conn.nextTxId + 1) >>> 0;
    } while (id === 0 || conn.transactions.has(id));
    const maxNodes = conn.privileged ? Number.POSITIVE_INFINITY : this.quotas.transactionNodes;
    conn.transactions.set(id, new Transaction(id, this.tree, maxNodes));
    this.#reply(conn, req.msg, `${id}\0`);
  }

  /** TRANSACTION_END: `T` commits (EAGAIN on conflict), `F` aborts. */
  doTransactionEnd(req: Req): void {
    const arg = oneArg(req.text);
    if (arg !== 'T' && arg !== 'F') fail('EINVAL');
    const tx = req.tx;
    if (tx === null) throw new Fail('ENOENT');
    req.conn.transactions.delete(tx.id);
    if (arg === 'T') {
      if (tx.failed) fail('ENOMEM');
      if (tx.nodeCreated && !req.conn.privileged) {
        for (const [domid, delta] of tx.deltas) {
          const unprivileged = domid !== 0 && domid !== this.privilegedDomid;
          if (unprivileged && this.tree.ownedBy(domid) + delta >= this.quotas.nodes) fail('ENOSPC');
        }
      }
      if (!tx.conflictFree()) fail('EAGAIN');
      for (const e of tx.apply()) this.#fireGlobal(e.path, e.exact, e.oldPerms);
    }
    this.#reply(req.conn, req.msg, OK);
  }

  /** GET_DOMAIN_PATH: no existence check. */
  doGetDomainPath(req: Req): void {
    const arg = oneArg(req.text);
    if (arg === null) fail('EINVAL');
    this.#reply(req.conn, req.msg, `${domainPath(atou(arg!))}\0`);
  }

  /** INTRODUCE: `domid\0gfn\0port\0`. */
  doIntroduce(req: Req): void {
    const strings = splitStrings(req.text);
    if (strings.length < 3) fail('EINVAL');
    const domid = atou(strings[0]!);
    const port = atou(strings[2]!);
    if (port === 0) fail('EINVAL');
    const d = this.#domain(domid);
    if (domid === 0) {
      // The master domain is introduced at start; cxenstored only rebinds its port.
    } else if (!d.introduced) {
      let stream: Duplex | undefined;
      if (this.#introduce !== undefined) {
        try {
          stream = this.#introduce({ domid, gfn: strings[1]!, port });
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          throw new Fail(typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : 'EINVAL');
        }
      }
      d.introduced = true;
      d.shutdown = false;
      if (stream !== undefined) this.attach(stream, { kind: 'domain', domid });
      this.#fireSpecial('@introduceDomain');
    } else {
      // domain_conn_reset: a re-introduced domain starts without watches and transactions.
      for (const c of d.connections) {
        this.#dropWatches(c);
        c.transactions.clear();
      }
    }
    this.#reply(req.conn, req.msg, OK);
  }

  #introducedArg(req: Req): DomainState {
    const arg = oneArg(req.text);
    if (arg === null) fail('EINVAL');
    const domid = atou(arg!);
    if (domid === 0) fail('EINVAL');
    const d = this.domains.get(domid);
    if (d === undefined || !d.introduced) fail('ENOENT');
    return d!;
  }

  /** RELEASE: the domain's connection goes, with its nodes; `@releaseDomain` fires. */
  doRelease(req: Req): void {
    const d = this.#introducedArg(req);
    this.#destroyDomain(d);
    this.#reply(req.conn, req.msg, OK);
  }

  /** RESUME: re-arms `@releaseDomain` for a domain that was shut down. */
  doResume(req: Req): void {
    this.#introducedArg(req).shutdown = false;
    this.#reply(req.conn, req.msg, OK);
  }

  /** IS_DOMAIN_INTRODUCED: `T` or `F`. */
  doIsDomainIntroduced(req: Req): void {
    const arg = oneArg(req.text);
    if (arg === null) fail('EINVAL');
    const domid = atou(arg!);
    const yes = domid === DOMID_SELF || this.domains.get(domid)?.introduced === true;
    this.#reply(req.conn, req.msg, yes ? 'T\0' : 'F\0');
  }

  /** SET_TARGET: `domid\0target\0`; the domain then acts for its target in perms. */
  doSetTarget(req: Req): void {
    const strings = splitStrings(req.text);
    if (strings.length < 2) fail('EINVAL');
    const d = this.domains.get(atou(strings[0]!));
    const t = this.domains.get(atou(strings[1]!));
    if (d === undefined || !d.introduced || t === undefined || !t.introduced) fail('ENOENT');
    d!.target = t!.domid;
    this.#reply(req.conn, req.msg, OK);
  }

  /** RESET_WATCHES: drops the caller's watches and transactions. */
  doResetWatches(req: Req): void {
    this.#dropWatches(req.conn);
    req.conn.transactions.clear();
    this.#reply(req.conn, req.msg, OK);
  }

  /** CONTROL */
  doControl(req: Req): void {
    const first = req.text.indexOf('\0');
    if (first < 0) fail('EINVAL');
    const args = splitStrings(req.text);
    const out = runControl(
      this,
      args[0]!,
      args.slice(1),
      (text) => diagnostics.publish({ type: 'control-print', text } satisfies XenstoredEvent),
      (problems) => diagnostics.publish({ type: 'check', problems } satisfies XenstoredEvent),
    );
    if (typeof out !== 'string') throw new Fail(out.errno);
    this.#reply(req.conn, req.msg, out);
  }

  /** Consistency check of the tree and the counters (CONTROL `check`); problems as text. */
  check(): string[] {
    const problems: string[] = [];
    const owned = new Map<number, number>();
    const memory = new Map<number, number>();
    let size = 0;
    const visit = (node: import('./node.js').TreeNode, path: string) => {
      size++;
      const owner = node.perms[0]!.id;
      owned.set(owner, (owned.get(owner) ?? 0) + 1);
      let childBytes = 0;
      for (const name of node.childNames()) childBytes += name.length + 1;
      if (childBytes !== node.childBytes) problems.push(`${path}: children list size is stale`);
      const bytes = Tree.nodeMemory(path.length, node.perms.length, node.value.length, childBytes);
      memory.set(owner, (memory.get(owner) ?? 0) + bytes);
      if (node.children !== null) {
        for (const [name, child] of node.children) {
          if (child.parent !== node) problems.push(`${childPath(path, name)}: wrong parent link`);
          if (child.name !== name) problems.push(`${childPath(path, name)}: name mismatch`);
          visit(child, childPath(path, name));
        }
      }
    };
    visit(this.tree.root, '/');
    if (size !== this.tree.size) problems.push(`node count ${this.tree.size}, found ${size}`);
    let indexed = 0;
    for (const [path, node] of this.tree.indexedPaths()) {
      indexed++;
      let walked: import('./node.js').TreeNode | undefined = this.tree.root;
      if (path !== '/') {
        for (const part of path.slice(1).split('/')) walked = walked?.child(part);
      }
      if (walked !== node) problems.push(`${path}: the path index and the tree disagree`);
    }
    if (indexed !== size) problems.push(`path index holds ${indexed} nodes, the tree ${size}`);
    for (const [domid, n] of owned) {
      if (this.tree.ownedBy(domid) !== n)
        problems.push(`domain ${domid} owns ${n} nodes, counted ${this.tree.ownedBy(domid)}`);
    }
    for (const domid of new Set([...memory.keys(), ...this.tree.memory.keys()])) {
      const n = memory.get(domid) ?? 0;
      if (this.tree.memoryOf(domid) !== n)
        problems.push(
          `domain ${domid}'s nodes take ${n} bytes, accounted ${this.tree.memoryOf(domid)}`,
        );
    }
    return problems;
  }

  #traceLine(line: string): void {
    if (this.#trace !== undefined && this.#tracing) this.#trace(line);
  }

  #traceIo(dir: 'IN' | 'OUT', conn: Connection, type: number, payload: Buffer): void {
    const name = TYPE_NAMES[type] ?? '**UNKNOWN**';
    const body = payload.toString('latin1').replaceAll('\0', ' ');
    this.#trace!(`${dir} ${conn.label}#${conn.seq} ${new Date().toISOString()} ${name} (${body})`);
  }
}

/** One request being handled. */
interface Req {
  readonly conn: Connection;
  readonly msg: XsMessage;
  readonly payload: Buffer;
  /** The payload as latin1 (byte-exact) text. */
  readonly text: string;
  readonly tx: Transaction | null;
  readonly view: View;
}

type Handler = (this: Xenstored, req: Req) => void;

const P = Xenstored.prototype;
/** `wire_funcs[]` of cxenstored 4.17: types 15, 16, 20 and from 23 up have none (ENOSYS). */
const HANDLERS: Partial<Record<number, Handler>> = {
  [XsType.CONTROL]: P.doControl,
  [XsType.DIRECTORY]: P.doDirectory,
  [XsType.READ]: P.doRead,
  [XsType.GET_PERMS]: P.doGetPerms,
  [XsType.WATCH]: P.doWatch,
  [XsType.UNWATCH]: P.doUnwatch,
  [XsType.TRANSACTION_START]: P.doTransactionStart,
  [XsType.TRANSACTION_END]: P.doTransactionEnd,
  [XsType.INTRODUCE]: P.doIntroduce,
  [XsType.RELEASE]: P.doRelease,
  [XsType.GET_DOMAIN_PATH]: P.doGetDomainPath,
  [XsType.WRITE]: P.doWrite,
  [XsType.MKDIR]: P.doMkdir,
  [XsType.RM]: P.doRm,
  [XsType.SET_PERMS]: P.doSetPerms,
  [XsType.IS_DOMAIN_INTRODUCED]: P.doIsDomainIntroduced,
  [XsType.RESUME]: P.doResume,
  [XsType.SET_TARGET]: P.doSetTarget,
  [XsType.RESET_WATCHES]: P.doResetWatches,
  [XsType.DIRECTORY_PART]: P.doDirectoryPart,
};

const PRIVILEGED = new Set<number>([
  XsType.CONTROL,
  XsType.INTRODUCE,
  XsType.RELEASE,
  XsType.IS_DOMAIN_INTRODUCED,
  XsType.RESUME,
  XsType.SET_TARGET,
]);
const NO_TX = new Set<number>([XsType.WATCH, XsType.UNWATCH]);

const TYPE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(XsType).map(([name, n]) => [n, name]),
);

/** `onearg`: the payload is exactly one string, its only NUL at the end. */
function oneArg(text: string): string | null {
  if (text.length === 0 || text.indexOf('\0') !== text.length - 1) return null;
  return text.slice(0, -1);
}

/** `get_strings`: every NUL-terminated string; bytes after the last NUL are ignored. */
function splitStrings(text: string): string[] {
  const out: string[] = [];
  let start = 0;
  for (;;) {
    const nul = text.indexOf('\0', start);
    if (nul < 0) return out;
    out.push(text.slice(start, nul));
    start = nul + 1;
  }
}

function countStrings(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\0'); i >= 0; i = text.indexOf('\0', i + 1)) n++;
  return n;
}
