import { execFileSync } from 'node:child_process';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { Doorbells } from './doorbells.js';
import { type SimErrno, SimHypervisorError } from './errors.js';
import { EventFile, MAX_PORTS } from './event-file.js';
import { simPaths } from './paths.js';
import { LineDecoder, type PageRef, type Reply, type Request } from './protocol.js';

export const PAGE_SIZE = 4096;
/** Grant refs below this are reserved for the toolstack (0: console, 1: xenstore), as in Xen. */
export const GNTTAB_NR_RESERVED_ENTRIES = 8;
export const MAX_GRANTS = 8192;
/** First guest frame number handed out; frames are per domain. */
export const FIRST_FRAME = 0x1000;
const MAX_PAGES_PER_ALLOC = 256;
const MAX_DOMID = 0x7fef; // DOMID_FIRST_RESERVED - 1

interface PortState {
  state: 'unbound' | 'interdomain';
  remoteDomid: number;
  remotePort: number;
  handle: number;
}

interface GrantEntry {
  frame: number;
  grantee: number;
  readonly: boolean;
  maps: number;
}

interface Memory {
  path: string;
  firstFrame: number;
  pages: number;
}

interface Domain {
  domid: number;
  name: string;
  token: Buffer;
  privileged: boolean;
  events: EventFile;
  ports: Map<number, PortState>;
  grants: Map<number, GrantEntry>;
  memory: Memory[];
  nextFrame: number;
  memSeq: number;
  info: Record<string, unknown>;
}

interface Handle {
  id: number;
  domid: number;
  conn: Connection;
}

interface Connection {
  socket: net.Socket;
  domid: number | null;
  handles: Set<number>;
  /** `${granter}:${ref}` → maps made over this connection. */
  maps: Map<string, number>;
  /** Grants made by shareGrant over this connection: ended when it closes (gntalloc). */
  shares: Set<number>;
}

export interface HypervisorOptions {
  /** Host folder; created if missing. */
  dir: string;
}

function fail(code: SimErrno, message: string): never {
  throw new SimHypervisorError(code, message);
}

function intArg(args: Record<string, unknown>, name: string, min: number, max: number): number {
  const value = args[name];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail('EINVAL', `${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(value)}`);
  }
  return value;
}

function optIntArg(
  args: Record<string, unknown>,
  name: string,
  min: number,
  max: number,
): number | undefined {
  return args[name] === undefined ? undefined : intArg(args, name, min, max);
}

function intListArg(args: Record<string, unknown>, name: string, max: number): number[] {
  const value = args[name];
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_PAGES_PER_ALLOC) {
    fail('EINVAL', `${name} must be a list of 1..${MAX_PAGES_PER_ALLOC} integers`);
  }
  return value.map((item, index) =>
    intArg({ [`${name}[${index}]`]: item }, `${name}[${index}]`, 0, max),
  );
}

/**
 * The simulated hypervisor. It owns every domain's credential, event-channel port table, grant
 * table and memory, and answers requests on `DIR/hypervisor.sock`. It never relays events:
 * peers notify each other through the domains' event files and the handles' doorbells.
 */
export class Hypervisor {
  readonly dir: string;
  private readonly server: net.Server;
  private readonly domains = new Map<number, Domain>();
  private readonly handles = new Map<number, Handle>();
  private readonly connections = new Set<Connection>();
  private readonly doorbells: Doorbells;
  private nextHandle = 1;
  private closed = false;

  private constructor(dir: string, server: net.Server) {
    this.dir = dir;
    this.server = server;
    this.doorbells = new Doorbells(dir);
  }

  /** Starts a hypervisor in `dir`, clearing what a killed one left behind. */
  static async start(options: HypervisorOptions): Promise<Hypervisor> {
    const { dir } = options;
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const socketPath = simPaths.socket(dir);
    if (fs.existsSync(socketPath)) {
      if (await socketAnswers(socketPath)) {
        fail('EADDRINUSE', `a simulated host is already running in ${dir}`);
      }
      fs.rmSync(socketPath, { force: true }); // left by a host that was killed
    }
    fs.rmSync(simPaths.evtchnDir(dir), { recursive: true, force: true });
    fs.rmSync(simPaths.memDir(dir), { recursive: true, force: true });
    fs.mkdirSync(simPaths.evtchnDir(dir), { mode: 0o700 });
    fs.mkdirSync(simPaths.memDir(dir), { mode: 0o700 });

    const server = net.createServer();
    const hv = new Hypervisor(dir, server);
    const dom0 = hv.addDomain(0, 'Domain-0', true);
    fs.writeFileSync(simPaths.dom0Token(dir), `${dom0.token.toString('hex')}\n`, { mode: 0o600 });
    server.on('connection', (socket) => hv.accept(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
    fs.chmodSync(socketPath, 0o600);
    return hv;
  }

  /** Keeps or releases the event loop (the socket server). */
  unref(): void {
    this.server.unref();
  }

  /** Stops serving, closes every connection and removes everything it made in `dir`. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const closing = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const conn of this.connections) conn.socket.destroy();
    await closing;
    this.doorbells.close();
    for (const domain of this.domains.values()) {
      domain.events.markDead();
      domain.events.unmap();
    }
    this.domains.clear();
    fs.rmSync(simPaths.evtchnDir(this.dir), { recursive: true, force: true });
    fs.rmSync(simPaths.memDir(this.dir), { recursive: true, force: true });
    fs.rmSync(simPaths.dom0Token(this.dir), { force: true });
    fs.rmSync(simPaths.socket(this.dir), { force: true });
  }

  /** Domains alive now (dom0 included). */
  listDomains(): { domid: number; name: string }[] {
    return [...this.domains.values()].map((d) => ({ domid: d.domid, name: d.name }));
  }

  // ---- connections ---------------------------------------------------------------------------

  private accept(socket: net.Socket): void {
    const conn: Connection = {
      socket,
      domid: null,
      handles: new Set(),
      maps: new Map(),
      shares: new Set(),
    };
    this.connections.add(conn);
    const decoder = new LineDecoder();
    socket.on('data', (chunk: Buffer) => {
      let lines: string[];
      try {
        lines = decoder.push(chunk);
      } catch (error) {
        this.protocolError(conn, (error as Error).message);
        return;
      }
      for (const line of lines) {
        if (socket.destroyed) return;
        this.handleLine(conn, line);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => this.dropConnection(conn));
  }

  private protocolError(conn: Connection, message: string): void {
    const reply: Reply = { id: 0, ok: false, code: 'EPROTO', message };
    conn.socket.end(`${JSON.stringify(reply)}\n`);
    conn.socket.destroySoon();
  }

  private handleLine(conn: Connection, line: string): void {
    let request: Request;
    try {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed !== 'object' || parsed === null) throw new Error('not an object');
      request = parsed as Request;
      if (!Number.isSafeInteger(request.id) || typeof request.op !== 'string')
        throw new Error('needs id and op');
      if (
        request.args !== undefined &&
        (typeof request.args !== 'object' || request.args === null)
      ) {
        throw new Error('args must be an object');
      }
    } catch (error) {
      this.protocolError(conn, `malformed request: ${(error as Error).message}`);
      return;
    }
    let reply: Reply;
    try {
      const result = this.dispatch(conn, request.op, request.args ?? {});
      reply = { id: request.id, ok: true, result: result ?? {} };
    } catch (error) {
      if (error instanceof SimHypervisorError) {
        reply = { id: request.id, ok: false, code: error.code, message: error.message };
      } else {
        reply = {
          id: request.id,
          ok: false,
          code: 'EINVAL',
          message: String((error as Error)?.message ?? error),
        };
      }
    }
    if (!conn.socket.destroyed) conn.socket.write(`${JSON.stringify(reply)}\n`);
  }

  private dropConnection(conn: Connection): void {
    if (!this.connections.delete(conn)) return;
    for (const id of [...conn.handles]) this.closeHandle(id);
    for (const [key, count] of conn.maps) {
      const [granter, ref] = key.split(':').map(Number) as [number, number];
      const entry = this.domains.get(granter)?.grants.get(ref);
      if (entry) entry.maps = Math.max(0, entry.maps - count);
    }
    conn.maps.clear();
    const owner = conn.domid === null ? undefined : this.domains.get(conn.domid);
    if (owner) for (const ref of conn.shares) owner.grants.delete(ref);
    conn.shares.clear();
  }

  private caller(conn: Connection): Domain {
    const domain = conn.domid === null ? undefined : this.domains.get(conn.domid);
    if (!domain) fail('ESRCH', 'this connection has no live domain (say hello first)');
    return domain;
  }

  private privileged(conn: Connection): Domain {
    const domain = this.caller(conn);
    if (!domain.privileged) fail('EPERM', `domain ${domain.domid} is not privileged`);
    return domain;
  }

  private domain(domid: number): Domain {
    const domain = this.domains.get(domid);
    if (!domain) fail('ESRCH', `no domain ${domid}`);
    return domain;
  }

  /** Acts on `args.domid` when given (privileged callers only), else on the caller's domain. */
  private target(conn: Connection, args: Record<string, unknown>): Domain {
    const domid = optIntArg(args, 'domid', 0, MAX_DOMID);
    const self = this.caller(conn);
    if (domid === undefined || domid === self.domid) return self;
    if (!self.privileged) fail('EPERM', `domain ${self.domid} may not act on domain ${domid}`);
    return this.domain(domid);
  }

  private dispatch(conn: Connection, op: string, args: Record<string, unknown>): unknown {
    if (op === 'hello') return this.hello(conn, args);
    if (conn.domid === null) fail('EPERM', 'say hello first');
    switch (op) {
      case 'evtchn.openHandle':
        return this.openHandle(conn);
      case 'evtchn.closeHandle':
        return this.closeHandle(this.ownHandle(conn, args).id);
      case 'evtchn.allocUnbound':
        return this.allocUnbound(conn, args);
      case 'evtchn.bindInterdomain':
        return this.bindInterdomain(conn, args);
      case 'evtchn.attach':
        return this.attach(conn, args);
      case 'evtchn.close':
        return this.closePortOp(conn, args);
      case 'evtchn.status':
        return this.portStatus(conn, args);
      case 'gnttab.share':
        return this.share(conn, args);
      case 'gnttab.grant':
        return this.grantFrame(conn, args);
      case 'gnttab.end':
        return this.endGrants(conn, args);
      case 'gnttab.map':
        return this.mapGrants(conn, args);
      case 'gnttab.unmap':
        return this.unmapGrants(conn, args);
      case 'mem.alloc':
        return this.allocMemoryOp(conn, args);
      case 'mem.mapForeign':
        return this.mapForeign(conn, args);
      case 'domain.create':
        return this.createDomain(conn, args);
      case 'domain.destroy':
        return this.destroyDomainOp(conn, args);
      case 'domain.list':
        this.privileged(conn);
        return { domains: this.listDomains() };
      case 'domain.setInfo':
        return this.setInfo(conn, args);
      case 'domain.info':
        return { info: this.target(conn, args).info };
      default:
        fail('ENOSYS', `unknown operation ${JSON.stringify(op).slice(0, 80)}`);
    }
  }

  private hello(conn: Connection, args: Record<string, unknown>): unknown {
    if (conn.domid !== null) fail('EINVAL', 'hello was already said on this connection');
    const domid = intArg(args, 'domid', 0, MAX_DOMID);
    const token = typeof args.token === 'string' ? Buffer.from(args.token, 'hex') : Buffer.alloc(0);
    const domain = this.domains.get(domid);
    if (!domain || token.length !== domain.token.length || !timingSafeEqual(token, domain.token)) {
      fail('EACCES', `wrong credential for domain ${domid}`);
    }
    conn.domid = domid;
    return { domid, privileged: domain.privileged, name: domain.name };
  }

  // ---- domains -------------------------------------------------------------------------------

  private addDomain(domid: number, name: string, privileged: boolean): Domain {
    const domain: Domain = {
      domid,
      name,
      token: randomBytes(32),
      privileged,
      events: EventFile.create(simPaths.eventFile(this.dir, domid), domid),
      ports: new Map(),
      grants: new Map(),
      memory: [],
      nextFrame: FIRST_FRAME,
      memSeq: 0,
      info: {},
    };
    this.domains.set(domid, domain);
    return domain;
  }

  private createDomain(conn: Connection, args: Record<string, unknown>): unknown {
    this.privileged(conn);
    const name = typeof args.name === 'string' && args.name.length > 0 ? args.name : '';
    let domid = 1;
    while (this.domains.has(domid)) domid++;
    if (domid > MAX_DOMID) fail('ENOSPC', 'no free domid');
    const domain = this.addDomain(domid, name || `domain-${domid}`, false);
    return { domid, token: domain.token.toString('hex') };
  }

  private destroyDomainOp(conn: Connection, args: Record<string, unknown>): unknown {
    this.privileged(conn);
    const domid = intArg(args, 'domid', 1, MAX_DOMID);
    this.destroyDomain(this.domain(domid));
    return {};
  }

  /** Closes the domain's ports, revokes its grants, frees its memory and drops its connections. */
  private destroyDomain(domain: Domain): void {
    for (const handle of [...this.handles.values()]) {
      if (handle.domid === domain.domid) this.closeHandle(handle.id);
    }
    for (const port of [...domain.ports.keys()]) this.closePort(domain, port);
    domain.grants.clear();
    this.domains.delete(domain.domid);
    domain.events.markDead();
    domain.events.unmap();
    fs.rmSync(domain.events.path, { force: true });
    for (const memory of domain.memory) fs.rmSync(memory.path, { force: true });
    for (const conn of this.connections) {
      if (conn.domid === domain.domid) conn.socket.destroy();
    }
  }

  private setInfo(conn: Connection, args: Record<string, unknown>): unknown {
    this.privileged(conn);
    const domain = this.domain(intArg(args, 'domid', 0, MAX_DOMID));
    const info = args.info;
    if (typeof info !== 'object' || info === null || Array.isArray(info))
      fail('EINVAL', 'info must be an object');
    domain.info = { ...(info as Record<string, unknown>) };
    return {};
  }

  // ---- memory --------------------------------------------------------------------------------

  private allocMemory(
    domain: Domain,
    pages: number,
  ): { frames: number[]; path: string; offset: number } {
    const path = simPaths.memory(this.dir, domain.domid, domain.memSeq++);
    const fd = fs.openSync(
      path,
      fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL,
      0o600,
    );
    try {
      fs.ftruncateSync(fd, pages * PAGE_SIZE);
    } finally {
      fs.closeSync(fd);
    }
    const firstFrame = domain.nextFrame;
    domain.nextFrame += pages;
    domain.memory.push({ path, firstFrame, pages });
    return { frames: Array.from({ length: pages }, (_, i) => firstFrame + i), path, offset: 0 };
  }

  private allocMemoryOp(conn: Connection, args: Record<string, unknown>): unknown {
    const domain = this.target(conn, args);
    return this.allocMemory(domain, intArg(args, 'count', 1, MAX_PAGES_PER_ALLOC));
  }

  private frame(domain: Domain, frame: number): PageRef {
    for (const memory of domain.memory) {
      if (frame >= memory.firstFrame && frame < memory.firstFrame + memory.pages) {
        return { path: memory.path, offset: (frame - memory.firstFrame) * PAGE_SIZE };
      }
    }
    fail('EINVAL', `domain ${domain.domid} has no frame ${frame}`);
  }

  /** Maps frames by number: privileged callers any domain's (privcmd), a guest its own memory. */
  private mapForeign(conn: Connection, args: Record<string, unknown>): unknown {
    const domid = intArg(args, 'domid', 0, MAX_DOMID);
    const self = this.caller(conn);
    if (domid !== self.domid && !self.privileged)
      fail('EPERM', `domain ${self.domid} may not map domain ${domid}'s memory`);
    const domain = this.domain(domid);
    const frames = intListArg(args, 'frames', 0xffffffff);
    return { pages: frames.map((frame) => this.frame(domain, frame)) };
  }

  // ---- grants --------------------------------------------------------------------------------

  private freeRef(domain: Domain): number {
    for (let ref = GNTTAB_NR_RESERVED_ENTRIES; ref < MAX_GRANTS; ref++) {
      if (!domain.grants.has(ref)) return ref;
    }
    fail('ENOSPC', `domain ${domain.domid} has no free grant reference`);
  }

  private share(conn: Connection, args: Record<string, unknown>): unknown {
    const domain = this.caller(conn);
    const grantee = intArg(args, 'grantee', 0, MAX_DOMID);
    const count = intArg(args, 'count', 1, MAX_PAGES_PER_ALLOC);
    const readonly = args.readonly === true;
    const memory = this.allocMemory(domain, count);
    const refs: number[] = [];
    for (const frame of memory.frames) {
      const ref = this.freeRef(domain);
      domain.grants.set(ref, { frame, grantee, readonly, maps: 0 });
      conn.shares.add(ref);
      refs.push(ref);
    }
    return { refs, ...memory };
  }

  private grantFrame(conn: Connection, args: Record<string, unknown>): unknown {
    const domain = this.target(conn, args);
    const frame = intArg(args, 'frame', 0, 0xffffffff);
    this.frame(domain, frame);
    const grantee = intArg(args, 'grantee', 0, MAX_DOMID);
    let ref = optIntArg(args, 'ref', 0, MAX_GRANTS - 1);
    if (ref === undefined) ref = this.freeRef(domain);
    else if (ref < GNTTAB_NR_RESERVED_ENTRIES && !this.caller(conn).privileged) {
      fail('EPERM', `grant reference ${ref} is reserved for the toolstack`);
    } else if (domain.grants.has(ref))
      fail('EBUSY', `grant reference ${ref} of domain ${domain.domid} is in use`);
    domain.grants.set(ref, { frame, grantee, readonly: args.readonly === true, maps: 0 });
    return { ref };
  }

  private endGrants(conn: Connection, args: Record<string, unknown>): unknown {
    const domain = this.target(conn, args);
    const refs = intListArg(args, 'refs', MAX_GRANTS - 1);
    for (const ref of refs) {
      if (!domain.grants.has(ref)) fail('ENOENT', `domain ${domain.domid} has no grant ${ref}`);
    }
    for (const ref of refs) {
      domain.grants.delete(ref);
      conn.shares.delete(ref);
    }
    return {};
  }

  private mapGrants(conn: Connection, args: Record<string, unknown>): unknown {
    const self = this.caller(conn);
    const granter = this.domains.get(intArg(args, 'domid', 0, MAX_DOMID));
    const refs = intListArg(args, 'refs', MAX_GRANTS - 1);
    const writable = args.writable !== false;
    const pages: PageRef[] = [];
    for (const ref of refs) {
      const entry = granter?.grants.get(ref);
      if (!granter || !entry) fail('ENOENT', `no grant ${ref} from domain ${String(args.domid)}`);
      if (entry.grantee !== self.domid) {
        fail(
          'EACCES',
          `grant ${ref} of domain ${granter.domid} is not granted to domain ${self.domid}`,
        );
      }
      if (writable && entry.readonly)
        fail('EPERM', `grant ${ref} of domain ${granter.domid} is read-only`);
      pages.push(this.frame(granter, entry.frame));
    }
    for (const ref of refs) {
      const entry = granter?.grants.get(ref);
      if (!entry || !granter) continue;
      entry.maps++;
      const key = `${granter.domid}:${ref}`;
      conn.maps.set(key, (conn.maps.get(key) ?? 0) + 1);
    }
    return { pages };
  }

  private unmapGrants(conn: Connection, args: Record<string, unknown>): unknown {
    const granter = intArg(args, 'domid', 0, MAX_DOMID);
    const refs = intListArg(args, 'refs', MAX_GRANTS - 1);
    for (const ref of refs) {
      const key = `${granter}:${ref}`;
      const count = conn.maps.get(key);
      if (!count)
        fail('EINVAL', `grant ${ref} of domain ${granter} is not mapped by this connection`);
      if (count === 1) conn.maps.delete(key);
      else conn.maps.set(key, count - 1);
      const entry = this.domains.get(granter)?.grants.get(ref);
      if (entry) entry.maps = Math.max(0, entry.maps - 1);
    }
    return {};
  }

  // ---- event channels ------------------------------------------------------------------------

  private openHandle(conn: Connection): unknown {
    const domain = this.caller(conn);
    const id = this.nextHandle++;
    const fifo = simPaths.doorbell(this.dir, id);
    execFileSync('mkfifo', ['-m', '600', fifo]);
    this.handles.set(id, { id, domid: domain.domid, conn });
    conn.handles.add(id);
    return { handle: id, doorbell: fifo, eventFile: domain.events.path };
  }

  private ownHandle(conn: Connection, args: Record<string, unknown>): Handle {
    const id = intArg(args, 'handle', 1, Number.MAX_SAFE_INTEGER);
    const handle = this.handles.get(id);
    if (!handle || handle.conn !== conn)
      fail('EINVAL', `handle ${id} is not open on this connection`);
    return handle;
  }

  private closeHandle(id: number): unknown {
    const handle = this.handles.get(id);
    if (!handle) return {};
    this.handles.delete(id);
    handle.conn.handles.delete(id);
    const domain = this.domains.get(handle.domid);
    if (domain) {
      for (const [port, state] of [...domain.ports])
        if (state.handle === id) this.closePort(domain, port);
    }
    this.doorbells.forget(id);
    fs.rmSync(simPaths.doorbell(this.dir, id), { force: true });
    return {};
  }

  private freePort(domain: Domain): number {
    for (let port = 1; port < MAX_PORTS; port++) if (!domain.ports.has(port)) return port;
    fail('ENOSPC', `domain ${domain.domid} has no free event channel port`);
  }

  private attachPort(domain: Domain, port: number, handle: number): void {
    const state = domain.ports.get(port);
    if (!state) return;
    state.handle = handle;
    domain.events.clearPolling(port);
    domain.events.setAttached(port, handle);
    // A notify that raced the attach set the pending bit but may have seen no handle to ring.
    if (handle !== 0 && domain.events.isPending(port)) this.doorbells.ring(handle);
  }

  private allocUnbound(conn: Connection, args: Record<string, unknown>): unknown {
    const domain = this.target(conn, args);
    const remoteDomid = intArg(args, 'remoteDomid', 0, MAX_DOMID);
    const handleId = args.handle === undefined ? 0 : this.ownHandle(conn, args).id;
    if (handleId !== 0 && domain.domid !== this.caller(conn).domid) {
      fail('EINVAL', 'a handle can only receive its own domain events');
    }
    const port = this.freePort(domain);
    domain.ports.set(port, { state: 'unbound', remoteDomid, remotePort: 0, handle: 0 });
    domain.events.clearRoute(port);
    domain.events.clearPending(port);
    this.attachPort(domain, port, handleId);
    return { port };
  }

  private bindInterdomain(conn: Connection, args: Record<string, unknown>): unknown {
    const domain = this.caller(conn);
    const handle = this.ownHandle(conn, args);
    const remoteDomid = intArg(args, 'remoteDomid', 0, MAX_DOMID);
    const remotePort = intArg(args, 'remotePort', 1, MAX_PORTS - 1);
    const remote = this.domain(remoteDomid);
    const rstate = remote.ports.get(remotePort);
    if (!rstate || rstate.state !== 'unbound' || rstate.remoteDomid !== domain.domid) {
      fail(
        'EINVAL',
        `port ${remotePort} of domain ${remoteDomid} is not an unbound port for domain ${domain.domid}`,
      );
    }
    const port = this.freePort(domain);
    domain.ports.set(port, { state: 'interdomain', remoteDomid, remotePort, handle: 0 });
    domain.events.clearPending(port);
    domain.events.setRoute(port, remoteDomid, remotePort);
    rstate.state = 'interdomain';
    rstate.remotePort = port;
    remote.events.setRoute(remotePort, domain.domid, port);
    this.attachPort(domain, port, handle.id);
    // Xen marks the new local port pending: notifies sent to the unbound remote port are lost.
    domain.events.setPending(port);
    this.doorbells.ring(handle.id);
    return { port };
  }

  private attach(conn: Connection, args: Record<string, unknown>): unknown {
    const domain = this.caller(conn);
    const handle = this.ownHandle(conn, args);
    const port = intArg(args, 'port', 1, MAX_PORTS - 1);
    const state = domain.ports.get(port);
    if (!state) fail('EINVAL', `domain ${domain.domid} has no port ${port}`);
    if (state.handle !== 0 && state.handle !== handle.id)
      fail('EBUSY', `port ${port} is attached to another handle`);
    this.attachPort(domain, port, handle.id);
    return {};
  }

  private closePortOp(conn: Connection, args: Record<string, unknown>): unknown {
    const domain = this.caller(conn);
    const port = intArg(args, 'port', 1, MAX_PORTS - 1);
    const state = domain.ports.get(port);
    if (!state) fail('EINVAL', `domain ${domain.domid} has no port ${port}`);
    if (args.handle !== undefined && state.handle !== this.ownHandle(conn, args).id) {
      fail('EINVAL', `port ${port} is not bound through handle ${String(args.handle)}`);
    }
    this.closePort(domain, port);
    return {};
  }

  /** EVTCHNOP_close: frees the port; an interdomain peer goes back to unbound, as in Xen. */
  private closePort(domain: Domain, port: number): void {
    const state = domain.ports.get(port);
    if (!state) return;
    domain.events.clearRoute(port);
    domain.events.setAttached(port, 0);
    domain.events.clearPending(port);
    domain.ports.delete(port);
    if (state.state !== 'interdomain') return;
    const remote = this.domains.get(state.remoteDomid);
    const rstate = remote?.ports.get(state.remotePort);
    if (remote && rstate && rstate.state === 'interdomain' && rstate.remotePort === port) {
      rstate.state = 'unbound';
      rstate.remoteDomid = domain.domid;
      rstate.remotePort = 0;
      remote.events.clearRoute(state.remotePort);
    }
  }

  private portStatus(conn: Connection, args: Record<string, unknown>): unknown {
    const domain = this.target(conn, args);
    const port = intArg(args, 'port', 1, MAX_PORTS - 1);
    const state = domain.ports.get(port);
    if (!state) return { state: 'closed' };
    return {
      state: state.state,
      remoteDomid: state.remoteDomid,
      remotePort: state.remotePort,
      handle: state.handle,
    };
  }
}

/** True when something accepts connections on `socketPath`. */
function socketAnswers(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Starts a simulated hypervisor in `options.dir`. */
export function startHypervisor(options: HypervisorOptions): Promise<Hypervisor> {
  return Hypervisor.start(options);
}
