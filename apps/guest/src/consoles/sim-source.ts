import {
  attachPrimaryConsoleFrontend,
  type ConsoleStream,
  consoleFrontendPath,
  listSecondaryConsoles,
  openSecondaryConsole,
  type SecondaryConsoleFrontend,
} from '@xencons/device';
import { openSimEventChannels, type SimEventChannels } from '@xencons/evtchn';
import { type ForeignMapping, type Gnttab, openSimGnttab } from '@xencons/gnttab';
import type { GuestStartInfo } from '@xencons/sim';
import {
  connectHypervisor,
  type HypervisorClient,
  simCredentialsFromEnv,
} from '@xencons/sim-hypervisor';
import {
  openXenstore,
  ringTransport,
  type XenstoreClient,
  type XsEventChannel,
  type XsWatch,
} from '@xencons/xenstore';
import type {
  AgentConsole,
  ConsoleInfo,
  ConsoleRole,
  ConsoleSource,
  ConsoleSourceHandlers,
} from './types.js';

type Env = Readonly<Record<string, string | undefined>>;

/** How long a secondary console that failed to open waits before the next try (ms). */
const RETRY_MS = 2000;

function streamFacts(stream: ConsoleStream) {
  const s = stream.stats();
  return {
    state: stream.state,
    port: stream.port,
    bytesIn: s.bytesIn,
    bytesOut: s.bytesOut,
    rxQueued: s.rxQueued,
    txQueued: s.txQueued,
  };
}

/**
 * Consoles of a guest process on the simulated host (`XENCONS_SIM*` in its environment): the
 * primary console from the start info, and its secondary consoles `device/console/N`, followed by
 * a xenstore watch: a new device is connected as its frontend (what Linux hvc_xen does), a
 * removed one is closed, a returning one is connected again.
 */
export class SimConsoleSource implements ConsoleSource {
  readonly platform = 'sim';
  readonly #env: Env;
  #handlers: ConsoleSourceHandlers | null = null;
  #hc: HypervisorClient | null = null;
  #domid: number | null = null;
  #xs: XenstoreClient | null = null;
  #evtchn: SimEventChannels | null = null;
  #gnttab: Gnttab | null = null;
  readonly #mappings: ForeignMapping[] = [];
  #primary: ConsoleStream | null = null;
  #watch: XsWatch | null = null;
  readonly #secondaries = new Map<number, SecondaryConsoleFrontend>();
  readonly #opening = new Map<number, AbortController>();
  readonly #retryAt = new Map<number, number>();
  /** Devices whose backend is not serving yet: a watch on its state each. */
  readonly #backendWatches = new Map<number, XsWatch>();
  #retryTimer: NodeJS.Timeout | null = null;
  #scanning: Promise<void> | null = null;
  #again = false;
  #closed = false;

  constructor(env: Env) {
    this.#env = env;
  }

  get domid(): number | null {
    return this.#domid;
  }

  async start(handlers: ConsoleSourceHandlers): Promise<void> {
    this.#handlers = handlers;
    const env = this.#env;
    const credentials =
      env.XENCONS_SIM_DOMID && env.XENCONS_SIM_TOKEN
        ? simCredentialsFromEnv({ ...env } as NodeJS.ProcessEnv)
        : null;
    if (credentials === null || credentials.domid === 0) {
      throw new Error(
        'not a guest of the simulated host: XENCONS_SIM, XENCONS_SIM_DOMID and XENCONS_SIM_TOKEN are set by `xencons sim create`',
      );
    }
    // What a PV kernel does at boot: the start info, the xenstore ring, the console ring, all
    // through one hypervisor connection and one event-channel handle shared by every console.
    const hc = await connectHypervisor(credentials);
    this.#hc = hc;
    this.#domid = hc.domid;
    const info = (await hc.getDomainInfo()) as unknown as GuestStartInfo;
    if (!info.console || !info.xenstore) throw new Error(`domain ${hc.domid} has no start info`);
    const evtchn = await openSimEventChannels(hc);
    this.#evtchn = evtchn;
    this.#gnttab = openSimGnttab(hc);
    this.#xs = await openXenstore({
      transport: ringTransport({
        page: await this.#map(info.xenstore.frame),
        evtchn: await this.#portSignal(info.xenstore.port),
        description: `domain ${hc.domid} xenstore ring`,
      }),
    });
    const primaryInfo: ConsoleInfo = {
      id: '0',
      name: 'hvc0',
      kind: 'sim',
      devid: 0,
      channel: null,
      primary: true,
    };
    const role = handlers.decide(primaryInfo);
    if (role !== null) {
      await evtchn.attach(info.console.port);
      const stream = attachPrimaryConsoleFrontend({
        domid: hc.domid,
        page: await this.#map(info.console.frame),
        evtchn,
        port: info.console.port,
      });
      this.#primary = stream;
      handlers.onConsole(this.#primaryConsole(primaryInfo, role, stream));
    }
    this.#watch = await this.#xs.watch(`/local/domain/${hc.domid}/device/console`, {
      onEvent: () => this.rescan(),
    });
    this.rescan();
    await this.#scanning;
  }

  async xenstore(): Promise<{ xs: XenstoreClient; domid: number } | null> {
    return this.#xs && this.#domid !== null ? { xs: this.#xs, domid: this.#domid } : null;
  }

  rescan(): void {
    if (this.#closed || this.#xs === null) return;
    if (this.#scanning) {
      this.#again = true;
      return;
    }
    this.#scanning = this.#scan()
      .catch((error) =>
        this.#handlers?.onProblem(`console scan failed: ${(error as Error).message}`),
      )
      .finally(() => {
        this.#scanning = null;
        if (this.#again && !this.#closed) {
          this.#again = false;
          this.rescan();
        }
      });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#retryTimer) clearTimeout(this.#retryTimer);
    for (const ac of this.#opening.values()) ac.abort();
    await this.#scanning;
    await this.#watch?.close().catch(() => {});
    for (const w of this.#backendWatches.values()) await w.close().catch(() => {});
    await Promise.all([...this.#secondaries.values()].map((f) => f.close().catch(() => {})));
    this.#primary?.hangup();
    this.#xs?.close();
    await this.#evtchn?.close().catch(() => {});
    for (const m of this.#mappings) await m.unmap().catch(() => {});
    await this.#gnttab?.close().catch(() => {});
    this.#hc?.close();
  }

  /** Maps one of our own frames (from the start info). */
  async #map(frame: number): Promise<ArrayBuffer> {
    const gnttab = this.#gnttab;
    if (gnttab === null || this.#domid === null) throw new Error('not started');
    const mapping = await gnttab.mapFrames(this.#domid, [frame]);
    this.#mappings.push(mapping);
    return mapping.buffer;
  }

  /** The xenstore ring's port as the ring transport wants it (unmask first, then the handler). */
  async #portSignal(port: number): Promise<XsEventChannel> {
    const evtchn = this.#evtchn;
    if (evtchn === null) throw new Error('not started');
    await evtchn.attach(port);
    const handlers = new Set<() => void>();
    evtchn.onEvent((p) => {
      if (p !== port) return;
      evtchn.unmask(port);
      for (const h of handlers) h();
    });
    evtchn.unmask(port);
    return {
      notify: () => evtchn.notify(port),
      subscribe: (handler) => {
        handlers.add(handler);
        return () => handlers.delete(handler);
      },
    };
  }

  #primaryConsole(info: ConsoleInfo, role: ConsoleRole, stream: ConsoleStream): AgentConsole {
    const gone = new Promise<string>((resolve) => {
      stream.once('end', () => resolve('the console hung up'));
      stream.once('close', () => resolve('the console closed'));
    });
    return {
      ...info,
      role,
      stream,
      gone,
      describe: () => ({
        device: 'start info console (ring-ref is a frame)',
        ...streamFacts(stream),
      }),
      close: async () => {
        stream.hangup();
      },
    };
  }

  async #scan(): Promise<void> {
    const xs = this.#xs;
    const domid = this.#domid;
    const handlers = this.#handlers;
    if (xs === null || domid === null || handlers === null) return;
    const present = new Set(await listSecondaryConsoles(xs, domid));
    for (const [devid, ac] of this.#opening) if (!present.has(devid)) ac.abort();
    for (const [devid, w] of this.#backendWatches) {
      if (present.has(devid)) continue;
      this.#backendWatches.delete(devid);
      void w.close().catch(() => {});
    }
    const now = Date.now();
    for (const devid of present) {
      if (this.#closed) return;
      if (this.#secondaries.has(devid) || this.#opening.has(devid)) continue;
      const retryAt = this.#retryAt.get(devid) ?? 0;
      if (retryAt > now) {
        this.#scheduleRetry(retryAt - now);
        continue;
      }
      const path = consoleFrontendPath(domid, devid);
      const [channel, backend] = await Promise.all([
        xs.readStringOptional(`${path}/name`).catch(() => undefined),
        xs.readStringOptional(`${path}/backend`).catch(() => undefined),
      ]);
      if (backend === undefined) continue; // half made or half removed
      // A device being removed (online 0) is not connected again. As the win-xencons frontend
      // does, wait for a backend that is there (InitWait or later) before publishing our ring:
      // until then, watch its state.
      const [online, backendState] = await Promise.all([
        xs.readStringOptional(`${backend}/online`).catch(() => undefined),
        xs.readStringOptional(`${backend}/state`).catch(() => undefined),
      ]);
      if (online === '0') continue;
      const ready = backendState !== undefined && Number(backendState) >= 2;
      if (!ready) {
        await this.#awaitBackend(devid, backend);
        continue;
      }
      void this.#backendWatches
        .get(devid)
        ?.close()
        .catch(() => {});
      this.#backendWatches.delete(devid);
      const info: ConsoleInfo = {
        id: String(devid),
        name: `hvc${devid}`,
        kind: 'sim',
        devid,
        channel: channel ?? null,
        primary: false,
      };
      const role = handlers.decide(info);
      if (role === null) continue;
      void this.#open(info, devid, role);
    }
  }

  async #awaitBackend(devid: number, backend: string): Promise<void> {
    const xs = this.#xs;
    if (xs === null || this.#backendWatches.has(devid) || this.#closed) return;
    try {
      const watch = await xs.watch(`${backend}/state`, {
        initial: false,
        onEvent: () => this.rescan(),
      });
      if (this.#closed) void watch.close().catch(() => {});
      else this.#backendWatches.set(devid, watch);
    } catch (error) {
      this.#handlers?.onProblem(`cannot watch ${backend}: ${(error as Error).message}`);
    }
  }

  #scheduleRetry(ms: number): void {
    if (this.#retryTimer || this.#closed) return;
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = null;
      this.rescan();
    }, ms);
    this.#retryTimer.unref();
  }

  async #open(info: ConsoleInfo, devid: number, role: ConsoleRole): Promise<void> {
    const { xs, evtchn, gnttab, domid, handlers } = {
      xs: this.#xs,
      evtchn: this.#evtchn,
      gnttab: this.#gnttab,
      domid: this.#domid,
      handlers: this.#handlers,
    };
    if (!xs || !evtchn || !gnttab || domid === null || !handlers) return;
    const ac = new AbortController();
    this.#opening.set(devid, ac);
    let frontend: SecondaryConsoleFrontend;
    try {
      frontend = await openSecondaryConsole({
        xs,
        evtchn,
        gnttab,
        domid,
        devid,
        signal: ac.signal,
      });
    } catch (error) {
      if (!ac.signal.aborted && !this.#closed) {
        handlers.onProblem(`console ${info.name} did not connect: ${(error as Error).message}`, {
          console: info.name,
        });
        this.#retryAt.set(devid, Date.now() + RETRY_MS);
        this.#scheduleRetry(RETRY_MS);
      }
      return;
    } finally {
      this.#opening.delete(devid);
    }
    if (this.#closed) {
      await frontend.close().catch(() => {});
      return;
    }
    this.#retryAt.delete(devid);
    this.#secondaries.set(devid, frontend);
    const stream = frontend.stream;
    const gone = new Promise<string>((resolve) => {
      frontend.once('close', (by) => {
        this.#secondaries.delete(devid);
        resolve(
          by === 'backend'
            ? 'dom0 closed the console (device removed or backend gone)'
            : 'the agent closed the console',
        );
        // It may be back already, or still there after a backend restart.
        this.rescan();
      });
    });
    handlers.onConsole({
      ...info,
      role,
      stream,
      gone,
      describe: () => ({
        device: `device/console/${devid}`,
        xenbus: `${frontend.state}/${frontend.backendState}`,
        ...streamFacts(stream),
      }),
      close: () => frontend.close(),
    });
  }
}
