import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { Doorbells } from './doorbells.js';
import { isSimErrno, SimHypervisorError } from './errors.js';
import { EventFile } from './event-file.js';
import { SimEventHandle } from './event-handle.js';
import { simPaths } from './paths.js';
import { type DomainSummary, LineDecoder, type PageRef, type Reply } from './protocol.js';

/** Who a process is on the simulated host: the host folder, its domid and that domain's secret. */
export interface SimCredentials {
  dir: string;
  domid: number;
  token: string;
}

/**
 * Credentials from the environment: `XENCONS_SIM=DIR`, `XENCONS_SIM_DOMID` (default 0) and
 * `XENCONS_SIM_TOKEN` (for dom0, by default the contents of `DIR/dom0.token`). Null when
 * `XENCONS_SIM` is not set.
 */
export function simCredentialsFromEnv(env: NodeJS.ProcessEnv = process.env): SimCredentials | null {
  const dir = env.XENCONS_SIM;
  if (!dir) return null;
  const domid = env.XENCONS_SIM_DOMID === undefined ? 0 : Number(env.XENCONS_SIM_DOMID);
  if (!Number.isInteger(domid) || domid < 0) {
    throw new SimHypervisorError(
      'EINVAL',
      `XENCONS_SIM_DOMID must be a domid, got ${env.XENCONS_SIM_DOMID}`,
    );
  }
  let token = env.XENCONS_SIM_TOKEN;
  if (token === undefined && domid === 0) token = readDom0Token(dir);
  if (token === undefined)
    throw new SimHypervisorError('EACCES', `XENCONS_SIM_TOKEN is needed for domain ${domid}`);
  return { dir, domid, token };
}

/** dom0's credential, readable only by the host's user. */
export function readDom0Token(dir: string): string {
  try {
    return fs.readFileSync(simPaths.dom0Token(dir), 'utf8').trim();
  } catch (cause) {
    throw new SimHypervisorError(
      'ESRCH',
      `no simulated host in ${dir} (cannot read its dom0 token)`,
      { cause },
    );
  }
}

interface Pending {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
  op: string;
}

/** Pages of a domain's memory: contiguous from `offset` in `path`, one frame number each. */
export interface MemoryRegion {
  frames: number[];
  path: string;
  offset: number;
}

/**
 * One process's connection to the simulated hypervisor, as one domain. Closing it closes every
 * event-channel handle opened on it, releases its grant mappings and ends the grants it shared.
 */
export class HypervisorClient extends EventEmitter<{ close: [] }> {
  readonly dir: string;
  readonly domid: number;
  readonly privileged: boolean;
  readonly name: string;
  private readonly socket: net.Socket;
  private readonly pending = new Map<number, Pending>();
  private readonly eventFiles = new Map<number, EventFile>();
  private readonly handles = new Set<SimEventHandle>();
  private nextId = 1;
  private closedFlag = false;
  /** Rings other domains' handles (shared by every handle of this client). */
  readonly doorbells: Doorbells;

  private constructor(
    dir: string,
    socket: net.Socket,
    hello: { domid: number; privileged: boolean; name: string },
  ) {
    super();
    this.dir = dir;
    this.socket = socket;
    this.domid = hello.domid;
    this.privileged = hello.privileged;
    this.name = hello.name;
    this.doorbells = new Doorbells(dir);
  }

  static async connect(credentials: SimCredentials): Promise<HypervisorClient> {
    const socket = net.connect(simPaths.socket(credentials.dir));
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', (cause) =>
        reject(
          new SimHypervisorError('ESRCH', `no simulated host answers in ${credentials.dir}`, {
            cause,
          }),
        ),
      );
    });
    const decoder = new LineDecoder();
    let client: HypervisorClient | undefined;
    const early: Reply[] = [];
    socket.on('data', (chunk: Buffer) => {
      let lines: string[];
      try {
        lines = decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const line of lines) {
        let reply: Reply;
        try {
          reply = JSON.parse(line) as Reply;
        } catch {
          socket.destroy();
          return;
        }
        if (client) client.onReply(reply);
        else early.push(reply);
      }
    });
    socket.on('error', () => {});
    const hello = await new Promise<{ domid: number; privileged: boolean; name: string }>(
      (resolve, reject) => {
        const onData = () => {
          const reply = early.shift();
          if (!reply) return;
          socket.off('data', onData);
          socket.off('close', onClose);
          if (reply.ok)
            resolve(reply.result as { domid: number; privileged: boolean; name: string });
          else reject(toError(reply.code, reply.message));
        };
        const onClose = () =>
          reject(new SimHypervisorError('ECONNRESET', 'the simulated host closed the connection'));
        socket.on('data', onData);
        socket.once('close', onClose);
        socket.write(
          `${JSON.stringify({ id: 0, op: 'hello', args: { domid: credentials.domid, token: credentials.token } })}\n`,
        );
      },
    ).catch((error: unknown) => {
      socket.destroy();
      throw error;
    });
    client = new HypervisorClient(credentials.dir, socket, hello);
    for (const reply of early) client.onReply(reply);
    socket.on('close', () => client?.onClose());
    return client;
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Lets the process exit while this connection is open (it stays usable). */
  unref(): this {
    this.socket.unref();
    return this;
  }

  ref(): this {
    this.socket.ref();
    return this;
  }

  close(): void {
    this.socket.destroy();
    this.onClose();
  }

  /** Sends one request; rejects with the hypervisor's typed error. */
  request<T = Record<string, unknown>>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    if (this.closedFlag) {
      return Promise.reject(
        new SimHypervisorError('ECONNRESET', 'the connection to the simulated host is closed'),
      );
    }
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject, op });
      this.socket.write(`${JSON.stringify({ id, op, args })}\n`);
    });
  }

  private onReply(reply: Reply): void {
    const pending = this.pending.get(reply.id);
    if (!pending) {
      if (!reply.ok && reply.code === 'EPROTO') this.socket.destroy();
      return;
    }
    this.pending.delete(reply.id);
    if (reply.ok) pending.resolve(reply.result);
    else pending.reject(toError(reply.code, `${pending.op}: ${reply.message}`));
  }

  private onClose(): void {
    if (this.closedFlag) return;
    this.closedFlag = true;
    for (const pending of this.pending.values()) {
      pending.reject(
        new SimHypervisorError(
          'ECONNRESET',
          `${pending.op}: the connection to the simulated host closed`,
        ),
      );
    }
    this.pending.clear();
    for (const handle of this.handles) handle.detach();
    this.handles.clear();
    this.doorbells.close();
    for (const file of this.eventFiles.values()) file.unmap();
    this.eventFiles.clear();
    this.emit('close');
  }

  /** The event file of `domid`, mapped once and remapped when its domain was replaced. */
  eventFile(domid: number): EventFile | null {
    let file = this.eventFiles.get(domid);
    if (file && !file.dead) return file;
    if (file) {
      file.unmap();
      this.eventFiles.delete(domid);
    }
    if (this.closedFlag) return null;
    try {
      file = EventFile.open(simPaths.eventFile(this.dir, domid));
    } catch {
      return null;
    }
    if (file.dead) {
      file.unmap();
      return null;
    }
    this.eventFiles.set(domid, file);
    return file;
  }

  // ---- event channels ------------------------------------------------------------------------

  /**
   * Opens an event-channel handle: the simulator's `open("/dev/xen/evtchn")`. With
   * `listen: false` nothing in JS reads its doorbell (a native pump waits on it instead).
   */
  async openEventHandle(options: { listen?: boolean } = {}): Promise<SimEventHandle> {
    const { handle, doorbell } = await this.request<{ handle: number; doorbell: string }>(
      'evtchn.openHandle',
    );
    const own = this.eventFile(this.domid);
    if (!own) throw new SimHypervisorError('ESRCH', `domain ${this.domid} has no event file`);
    const eventHandle = new SimEventHandle(
      this,
      handle,
      doorbell,
      own,
      () => this.handles.delete(eventHandle),
      options.listen !== false,
    );
    this.handles.add(eventHandle);
    return eventHandle;
  }

  /** A port in `domid` for `remoteDomid`, attached to no handle (the toolstack's alloc_unbound). */
  allocUnboundFor(domid: number, remoteDomid: number): Promise<{ port: number }> {
    return this.request('evtchn.allocUnbound', { domid, remoteDomid });
  }

  portStatus(
    port: number,
    domid?: number,
  ): Promise<{
    state: 'closed' | 'unbound' | 'interdomain';
    remoteDomid?: number;
    remotePort?: number;
    handle?: number;
  }> {
    return this.request('evtchn.status', domid === undefined ? { port } : { port, domid });
  }

  // ---- grants and memory ---------------------------------------------------------------------

  /** Allocates `count` zeroed pages of our memory and grants each to `grantee` (gntalloc). */
  shareGrant(
    grantee: number,
    count: number,
    options: { readonly?: boolean } = {},
  ): Promise<MemoryRegion & { refs: number[] }> {
    return this.request('gnttab.share', { grantee, count, readonly: options.readonly === true });
  }

  /** Ends access to our grants (or, privileged, `domid`'s); existing mappings stay until unmapped. */
  async endGrant(refs: readonly number[], domid?: number): Promise<void> {
    await this.request('gnttab.end', domid === undefined ? { refs } : { refs, domid });
  }

  /** Maps grants `refs` of `domid` that were granted to us (gntdev). */
  mapGrants(
    domid: number,
    refs: readonly number[],
    writable: boolean,
  ): Promise<{ pages: PageRef[] }> {
    return this.request('gnttab.map', { domid, refs, writable });
  }

  async unmapGrants(domid: number, refs: readonly number[]): Promise<void> {
    await this.request('gnttab.unmap', { domid, refs });
  }

  /** Maps `domid`'s frames by number: privileged (privcmd), or a domain its own memory. */
  mapForeignFrames(
    domid: number,
    frames: readonly number[],
    writable: boolean,
  ): Promise<{ pages: PageRef[] }> {
    return this.request('mem.mapForeign', { domid, frames, writable });
  }

  // ---- domain builder (privileged) -----------------------------------------------------------

  createDomain(options: { name?: string } = {}): Promise<{ domid: number; token: string }> {
    return this.request('domain.create', { ...options });
  }

  async destroyDomain(domid: number): Promise<void> {
    await this.request('domain.destroy', { domid });
  }

  async listDomains(): Promise<DomainSummary[]> {
    return (await this.request<{ domains: DomainSummary[] }>('domain.list')).domains;
  }

  /** Allocates `count` pages of `domid`'s memory (its own when domid is ours). */
  allocMemory(domid: number, count: number): Promise<MemoryRegion> {
    return this.request('mem.alloc', { domid, count });
  }

  /** Writes a grant entry in `domid`'s table: `ref` (reserved refs 0-7 need privilege) grants `frame` to `grantee`. */
  grantFrame(
    domid: number,
    entry: { ref?: number; frame: number; grantee: number; readonly?: boolean },
  ): Promise<{ ref: number }> {
    return this.request('gnttab.grant', { domid, ...entry });
  }

  async setDomainInfo(domid: number, info: Record<string, unknown>): Promise<void> {
    await this.request('domain.setInfo', { domid, info });
  }

  async getDomainInfo(domid?: number): Promise<Record<string, unknown>> {
    return (
      await this.request<{ info: Record<string, unknown> }>(
        'domain.info',
        domid === undefined ? {} : { domid },
      )
    ).info;
  }
}

function toError(code: string, message: string): SimHypervisorError {
  return new SimHypervisorError(isSimErrno(code) ? code : 'EINVAL', message);
}

/** Connects to the simulated host in `credentials.dir` as `credentials.domid`. */
export function connectHypervisor(credentials: SimCredentials): Promise<HypervisorClient> {
  return HypervisorClient.connect(credentials);
}
