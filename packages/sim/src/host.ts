import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { XenconsError } from '@xencons/errors';
import { RingDuplex, xenstoreServerRings } from '@xencons/ring';
import {
  connectHypervisor,
  type Hypervisor,
  type HypervisorClient,
  readDom0Token,
  startHypervisor,
} from '@xencons/sim-hypervisor';
import {
  openXenstore,
  streamTransport,
  type XenstoreClient,
  type XsOperations,
} from '@xencons/xenstore';
import { duplexPair, type RunningXenstored, startXenstored } from '@xencons/xenstored';
import { mapPage, unmapPage } from './pages.js';
import { PortSignals } from './port-signals.js';

/** `LIBXL_XENCONSOLE_LIMIT`: the console backend's buffer cap, written to `console/limit`. */
export const CONSOLE_LIMIT = 1048576;
/** Grant refs the domain builder seeds (Xen's `GNTTAB_RESERVED_CONSOLE` / `_XENSTORE`). */
export const GNTTAB_RESERVED_CONSOLE = 0;
export const GNTTAB_RESERVED_XENSTORE = 1;

/** What a guest process finds in its start info (`getDomainInfo()`). */
export interface GuestStartInfo {
  name: string;
  console: { frame: number; port: number };
  xenstore: { frame: number; port: number };
}

export interface CreateDomainOptions {
  name: string;
  /** A program (run by `sh -c`) whose stdin/stdout are the guest's primary console. */
  cmd?: string;
  /** Runs this executable (with its arguments) as the guest process itself, e.g. the agent or a test script. */
  program?: string[];
  /** Extra environment for the guest process. */
  env?: Record<string, string>;
}

export interface SimDomain {
  domid: number;
  name: string;
  uuid: string;
  pid: number | null;
  consoleFrame: number;
  consolePort: number;
  xenstoreFrame: number;
  xenstorePort: number;
  /** Where the guest process's stderr goes. */
  logPath: string;
}

interface DomainRecord extends SimDomain {
  token: string;
  child: ChildProcess | null;
  xsPage: ArrayBuffer | null;
  xsLocalPort: number | null;
  xsStream: RingDuplex | null;
  exited: Promise<void>;
  destroying: boolean;
}

export interface SimHostOptions {
  dir: string;
  /** The default guest program (a script run by this node); default: this package's `guest-main.js`. */
  guestMain?: string;
  /** Trace file of the reference xenstored. */
  xenstoredTrace?: string;
}

export type SimHostEvents = {
  domainCreated: [SimDomain];
  domainDestroyed: [SimDomain];
  guestExited: [SimDomain, number | null, NodeJS.Signals | null];
};

const GUEST_MAIN = fileURLToPath(new URL('./guest-main.js', import.meta.url));

function simError(code: string, message: string): XenconsError {
  return new XenconsError(code, message);
}

/**
 * The simulated Xen host: the hypervisor, the reference xenstored (dom0 tools on
 * `DIR/xenstored.sock`, every guest over its xenstore ring) and the domain builder, which does
 * what libxl does for a PV guest and starts each guest as its own OS process.
 */
export class SimHost extends EventEmitter<SimHostEvents> {
  readonly dir: string;
  readonly hypervisor: Hypervisor;
  readonly xenstored: RunningXenstored;
  /** dom0's hypervisor connection and xenstore client, as the toolstack uses them. */
  readonly dom0: HypervisorClient;
  readonly xs: XenstoreClient;
  private readonly signals: PortSignals;
  private readonly domains = new Map<number, DomainRecord>();
  private closing = false;
  private guestMain = GUEST_MAIN;

  private constructor(
    dir: string,
    hypervisor: Hypervisor,
    xenstored: RunningXenstored,
    dom0: HypervisorClient,
    xs: XenstoreClient,
    signals: PortSignals,
  ) {
    super();
    this.dir = dir;
    this.hypervisor = hypervisor;
    this.xenstored = xenstored;
    this.dom0 = dom0;
    this.xs = xs;
    this.signals = signals;
  }

  static async start(options: SimHostOptions): Promise<SimHost> {
    const dir = path.resolve(options.dir);
    const hypervisor = await startHypervisor({ dir });
    let host: SimHost | undefined;
    try {
      const dom0 = await connectHypervisor({ dir, domid: 0, token: readDom0Token(dir) });
      const handle = await dom0.openEventHandle();
      const signals = new PortSignals(handle);
      const xenstored = await startXenstored({
        socketPath: path.join(dir, 'xenstored.sock'),
        ...(options.xenstoredTrace === undefined ? {} : { trace: options.xenstoredTrace }),
        domainExists: (domid) => domid === 0 || (host?.domains.has(domid) ?? false),
        introduce: (req) => host?.serveXenstoreRing(req.domid, req.port),
      });
      const xs = await openXenstore({
        transport: streamTransport(() => xenstored.connectDomain(0), {
          description: 'in-process xenstored',
        }),
      });
      host = new SimHost(dir, hypervisor, xenstored, dom0, xs, signals);
      if (options.guestMain !== undefined) host.guestMain = options.guestMain;
      await host.initDom0();
      return host;
    } catch (error) {
      await hypervisor.close();
      throw error;
    }
  }

  /** What xen-init-dom0 writes. */
  private async initDom0(): Promise<void> {
    await this.xs.write('/local/domain/0/name', 'Domain-0');
    await this.xs.write('/local/domain/0/domid', '0');
    await this.xs.mkdir('/local/domain/0/backend');
  }

  /** Domains alive now, by domid. */
  list(): SimDomain[] {
    return [...this.domains.values()].sort((a, b) => a.domid - b.domid).map((d) => publicView(d));
  }

  find(nameOrDomid: string | number): SimDomain | undefined {
    const record = this.record(nameOrDomid);
    return record ? publicView(record) : undefined;
  }

  private record(nameOrDomid: string | number): DomainRecord | undefined {
    if (typeof nameOrDomid === 'number' || /^\d+$/.test(nameOrDomid))
      return this.domains.get(Number(nameOrDomid));
    for (const record of this.domains.values()) if (record.name === nameOrDomid) return record;
    return undefined;
  }

  /** Builds a PV guest as libxl does and starts its process. */
  async createDomain(options: CreateDomainOptions): Promise<SimDomain> {
    if (this.closing) throw simError('ERR_SIM_CLOSING', 'the simulated host is stopping');
    const name = options.name;
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(name)) {
      throw simError(
        'ERR_INVALID_ARG',
        `invalid domain name ${JSON.stringify(name)} (letters, digits, _ . -)`,
      );
    }
    if (this.record(name)) throw simError('EEXIST', `a domain named ${name} already exists`);
    if (options.cmd !== undefined && options.program !== undefined) {
      throw simError('ERR_INVALID_ARG', 'give a command or a program, not both');
    }
    const { dom0 } = this;
    const { domid, token } = await dom0.createDomain({ name });
    const record: DomainRecord = {
      domid,
      name,
      uuid: randomUUID(),
      pid: null,
      consoleFrame: 0,
      consolePort: 0,
      xenstoreFrame: 0,
      xenstorePort: 0,
      logPath: path.join(this.dir, `guest-${name}.log`),
      token,
      child: null,
      xsPage: null,
      xsLocalPort: null,
      xsStream: null,
      exited: Promise.resolve(),
      destroying: false,
    };
    this.domains.set(domid, record);
    try {
      const memory = await dom0.allocMemory(domid, 2);
      const [consoleFrame, xenstoreFrame] = memory.frames as [number, number];
      record.consoleFrame = consoleFrame;
      record.xenstoreFrame = xenstoreFrame;
      await dom0.grantFrame(domid, {
        ref: GNTTAB_RESERVED_CONSOLE,
        frame: consoleFrame,
        grantee: 0,
      });
      await dom0.grantFrame(domid, {
        ref: GNTTAB_RESERVED_XENSTORE,
        frame: xenstoreFrame,
        grantee: 0,
      });
      record.consolePort = (await dom0.allocUnboundFor(domid, 0)).port;
      record.xenstorePort = (await dom0.allocUnboundFor(domid, 0)).port;
      const info: GuestStartInfo = {
        name,
        console: { frame: consoleFrame, port: record.consolePort },
        xenstore: { frame: xenstoreFrame, port: record.xenstorePort },
      };
      await dom0.setDomainInfo(domid, { ...info });
      await this.xs.transaction((tx) => writeDomainNodes(tx, record));
      await this.xs.introduce(domid, xenstoreFrame, record.xenstorePort);
      this.startGuest(record, options);
    } catch (error) {
      await this.destroyRecord(record).catch(() => {});
      throw error;
    }
    const view = publicView(record);
    this.emit('domainCreated', view);
    return view;
  }

  /**
   * The variables every guest process gets (`XENCONS_SIM`, `XENCONS_SIM_DOMID`,
   * `XENCONS_SIM_TOKEN`): with them, more code runs as that domain (its credential is in them).
   */
  guestEnvironment(nameOrDomid: string | number): Record<string, string> {
    const record = this.record(nameOrDomid);
    if (!record) throw simError('ENOENT', `no domain ${String(nameOrDomid)}`);
    return this.guestVariables(record);
  }

  private guestVariables(record: DomainRecord): Record<string, string> {
    return {
      XENCONS_SIM: this.dir,
      XENCONS_SIM_DOMID: String(record.domid),
      XENCONS_SIM_TOKEN: record.token,
    };
  }

  /**
   * Gives a domain's primary console a new ring, as libxl does after a soft reset (xl's
   * `on_soft_reset`, which kexec uses): a fresh page, grant 0 pointed at it, a fresh unbound
   * port, the start info updated, then `console/ring-ref` and `console/port` rewritten in one
   * transaction, so a console backend moves to the new ring. The guest's old port stays its own;
   * guest code that wants the new ring opens it again from its start info
   * (`openGuestPrimaryConsole` of `@xencons/device`).
   */
  async resetConsole(nameOrDomid: string | number): Promise<SimDomain> {
    const record = this.record(nameOrDomid);
    if (!record) throw simError('ENOENT', `no domain ${String(nameOrDomid)}`);
    const { dom0 } = this;
    const { domid } = record;
    const [frame] = (await dom0.allocMemory(domid, 1)).frames as [number];
    await dom0.endGrant([GNTTAB_RESERVED_CONSOLE], domid);
    await dom0.grantFrame(domid, { ref: GNTTAB_RESERVED_CONSOLE, frame, grantee: 0 });
    const { port } = await dom0.allocUnboundFor(domid, 0);
    const info = await dom0.getDomainInfo(domid);
    await dom0.setDomainInfo(domid, { ...info, console: { frame, port } });
    record.consoleFrame = frame;
    record.consolePort = port;
    const base = `/local/domain/${domid}/console`;
    await this.xs.transaction(async (tx) => {
      await tx.write(`${base}/ring-ref`, String(frame));
      await tx.write(`${base}/port`, String(port));
    });
    return publicView(record);
  }

  /** Stops the guest process, releases the domain in xenstore and the hypervisor. */
  async destroyDomain(nameOrDomid: string | number): Promise<void> {
    const record = this.record(nameOrDomid);
    if (!record) throw simError('ENOENT', `no domain ${String(nameOrDomid)}`);
    await this.destroyRecord(record);
  }

  private async destroyRecord(record: DomainRecord): Promise<void> {
    if (record.destroying) return record.exited;
    record.destroying = true;
    const child = record.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
      await record.exited;
      clearTimeout(timer);
    }
    const { domid } = record;
    // As libxl: the domain's nodes go first, then xenstored forgets it (@releaseDomain), so a
    // watcher that rescans on @releaseDomain no longer finds the domain.
    await this.xs.rm(`/local/domain/${domid}`).catch(() => {});
    await this.xs.rm(`/vm/${record.uuid}`).catch(() => {});
    await this.xs.rm(`/local/domain/0/backend/console/${domid}`).catch(() => {});
    await this.xs.release(domid).catch(() => {});
    record.xsStream?.destroy();
    if (record.xsLocalPort !== null) {
      this.signals.forget(record.xsLocalPort);
      await this.signals.handle.unbind(record.xsLocalPort).catch(() => {});
    }
    unmapPage(record.xsPage ?? undefined);
    record.xsPage = null;
    await this.dom0.destroyDomain(domid).catch(() => {});
    this.domains.delete(domid);
    this.emit('domainDestroyed', publicView(record));
  }

  /** xenstored's INTRODUCE hook: binds the guest's xenstore port, maps grant 1, serves the ring. */
  private serveXenstoreRing(domid: number, port: number) {
    const record = this.domains.get(domid);
    if (!record) return undefined;
    const [daemonSide, ringSide] = duplexPair();
    void (async () => {
      const localPort = await this.signals.handle.bindInterdomain(domid, port);
      record.xsLocalPort = localPort;
      const { pages } = await this.dom0.mapGrants(domid, [GNTTAB_RESERVED_XENSTORE], true);
      record.xsPage = mapPage(pages[0]);
      const rings = xenstoreServerRings(record.xsPage);
      const stream = new RingDuplex({
        rx: rings.req,
        tx: rings.rsp,
        signal: this.signals.signal(localPort),
      });
      record.xsStream = stream;
      stream.on('error', () => daemonSide.destroy());
      ringSide.on('error', () => stream.destroy());
      stream.pipe(ringSide).pipe(stream);
      stream.pump();
    })().catch(() => ringSide.destroy());
    return daemonSide;
  }

  private startGuest(record: DomainRecord, options: CreateDomainOptions): void {
    const args = options.program ?? [
      process.execPath,
      this.guestMain,
      ...(options.cmd === undefined ? [] : ['--cmd', options.cmd]),
    ];
    const [file, ...rest] = args as [string, ...string[]];
    const log = fs.openSync(record.logPath, 'a', 0o600);
    let child: ChildProcess;
    try {
      child = spawn(file, rest, {
        stdio: ['ignore', log, log],
        env: { ...process.env, ...options.env, ...this.guestVariables(record) },
      });
    } finally {
      fs.closeSync(log);
    }
    record.child = child;
    record.pid = child.pid ?? null;
    record.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.emit('guestExited', publicView(record), code, signal);
        resolve();
        // A guest that stops is a domain that shut down: destroy it (libxl's on_poweroff=destroy).
        if (!record.destroying && !this.closing) void this.destroyRecord(record).catch(() => {});
      });
      child.once('error', () => resolve());
    });
  }

  /** Destroys every domain, stops xenstored and the hypervisor, removes what they made. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await Promise.all(
      [...this.domains.values()].map((record) => this.destroyRecord(record).catch(() => {})),
    );
    this.xs.close();
    await this.xenstored.close();
    this.dom0.close();
    await this.hypervisor.close();
  }
}

function publicView(record: DomainRecord): SimDomain {
  return {
    domid: record.domid,
    name: record.name,
    uuid: record.uuid,
    pid: record.pid,
    consoleFrame: record.consoleFrame,
    consolePort: record.consolePort,
    xenstoreFrame: record.xenstoreFrame,
    xenstorePort: record.xenstorePort,
    logPath: record.logPath,
  };
}

/** The nodes and permissions libxl 4.17 writes for a PV guest with a primary console. */
async function writeDomainNodes(tx: XsOperations, record: SimDomain): Promise<void> {
  const { domid, name, uuid } = record;
  const dom = `/local/domain/${domid}`;
  const ro = [`n0`, `r${domid}`]; // owned by dom0, readable by the guest
  const rw = [`n${domid}`]; // owned by the guest
  const frontRw = [`n${domid}`, `r0`];
  const write = async (node: string, value: string, perms: string[]) => {
    await tx.write(node, value);
    await tx.setPerms(node, perms);
  };
  const mkdir = async (node: string, perms: string[]) => {
    await tx.mkdir(node);
    await tx.setPerms(node, perms);
  };
  await mkdir(dom, ro);
  await mkdir(`/vm/${uuid}`, ro);
  await write(`/vm/${uuid}/name`, name, ro);
  await write(`/vm/${uuid}/uuid`, uuid, ro);
  await write(`${dom}/vm`, `/vm/${uuid}`, ro);
  await write(`${dom}/name`, name, ro);
  await write(`${dom}/domid`, String(domid), ro);
  await mkdir(`${dom}/cpu`, ro);
  await mkdir(`${dom}/memory`, ro);
  await mkdir(`${dom}/device`, ro);
  await mkdir(`${dom}/control`, ro);
  await write(`${dom}/control/shutdown`, '', rw);
  await write(`${dom}/control/sysrq`, '', rw);
  await write(`${dom}/control/feature-poweroff`, '', rw);
  await write(`${dom}/control/feature-reboot`, '', rw);
  await mkdir(`${dom}/data`, rw);
  await mkdir(`${dom}/drivers`, rw);
  await mkdir(`${dom}/feature`, rw);
  await mkdir(`${dom}/attr`, rw);
  await mkdir(`${dom}/error`, rw);

  const front = `${dom}/console`;
  const back = `/local/domain/0/backend/console/${domid}/0`;
  await mkdir(front, ro);
  await write(`${front}/ring-ref`, String(record.consoleFrame), ro);
  await write(`${front}/port`, String(record.consolePort), ro);
  await write(`${front}/limit`, String(CONSOLE_LIMIT), ro);
  await write(`${front}/type`, 'xenconsoled', ro);
  await write(`${front}/output`, 'pty', ro);
  await write(`${front}/tty`, '', ro);
  await write(`${front}/backend`, back, frontRw);
  await write(`${front}/backend-id`, '0', frontRw);
  await mkdir(`/local/domain/0/backend/console/${domid}`, ro);
  await mkdir(back, ro);
  await write(`${back}/frontend`, front, ro);
  await write(`${back}/frontend-id`, String(domid), ro);
  await write(`${back}/online`, '1', ro);
  await write(`${back}/state`, '1', ro);
  await write(`${back}/protocol`, 'vt100', ro);
}

/** Starts a simulated host whose state lives in `options.dir`. */
export function startSimHost(options: SimHostOptions): Promise<SimHost> {
  return SimHost.start(options);
}
