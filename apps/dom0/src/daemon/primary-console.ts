import type { EventChannels } from '@xencons/evtchn';
import { type Gnttab, mapPrimaryConsole, parseRingRef } from '@xencons/gnttab';
import { consoleBackendRings, RingDuplex, type RingSignal } from '@xencons/ring';
import type { XenstoreClient } from '@xencons/xenstore';

/** A guest's console as the daemon serves it. */
export interface ConsoleSource {
  readonly stream: RingDuplex;
  /** `console/limit` (0 when absent). */
  readonly limit: number;
  /** How the page was mapped. */
  readonly via: 'grant' | 'frame';
  readonly ringRef: number;
  readonly port: number;
  close(): Promise<void>;
}

/** Routes one handle's deliveries to per-port handlers, unmasking before the handler drains the ring. */
export class PortRouter {
  private readonly handlers = new Map<number, Set<() => void>>();

  constructor(readonly events: EventChannels) {
    events.onEvent((port) => {
      events.unmask(port);
      const set = this.handlers.get(port);
      if (set) for (const handler of [...set]) handler();
    });
  }

  signal(port: number): RingSignal {
    return {
      notify: () => this.events.notify(port),
      subscribe: (handler) => {
        let set = this.handlers.get(port);
        if (!set) {
          set = new Set();
          this.handlers.set(port, set);
        }
        set.add(handler);
        return () => set.delete(handler);
      },
    };
  }

  forget(port: number): void {
    this.handlers.delete(port);
  }
}

/** The console nodes, or null while the toolstack has not written them yet. */
export async function readPrimaryConsoleNodes(
  xs: XenstoreClient,
  domid: number,
): Promise<{ ringRef: number; port: number; type: string | undefined; limit: number } | null> {
  const base = `/local/domain/${domid}/console`;
  const [ringRef, port, type, limit] = await Promise.all([
    xs.readStringOptional(`${base}/ring-ref`),
    xs.readStringOptional(`${base}/port`),
    xs.readStringOptional(`${base}/type`),
    xs.readStringOptional(`${base}/limit`),
  ]);
  if (!ringRef || !port) return null;
  const portNumber = Number(port);
  if (!Number.isInteger(portNumber) || portNumber <= 0)
    throw new Error(`console/port is not a port: ${JSON.stringify(port)}`);
  return { ringRef: parseRingRef(ringRef), port: portNumber, type, limit: parseLimit(limit) };
}

/** `console/limit` as xenconsoled reads it (`strtoul`, base 0: decimal, 0x hex, 0 octal); 0 when absent or bad. */
export function parseLimit(value: string | undefined): number {
  const text = value?.trim() ?? '';
  let n = Number.NaN;
  if (/^0x[0-9a-f]+$/i.test(text)) n = Number.parseInt(text.slice(2), 16);
  else if (/^0[0-7]+$/.test(text)) n = Number.parseInt(text.slice(1), 8);
  else if (/^\d+$/.test(text)) n = Number(text);
  return Number.isSafeInteger(n) ? n : 0;
}

/**
 * Opens a guest's primary console as xenconsoled does: grant 0 first, then the `ring-ref` frame;
 * a bound event channel; a byte stream over the rings (backpressure both ways).
 */
export async function openPrimaryConsole(
  domid: number,
  nodes: { ringRef: number; port: number; limit: number },
  gnttab: Gnttab,
  router: PortRouter,
): Promise<ConsoleSource> {
  const { mapping, via } = await mapPrimaryConsole(gnttab, domid, nodes.ringRef);
  let local: number;
  try {
    local = await router.events.bindInterdomain(domid, nodes.port);
  } catch (error) {
    await mapping.unmap();
    throw error;
  }
  const rings = consoleBackendRings(mapping.buffer);
  const stream = new RingDuplex({ rx: rings.out, tx: rings.in, signal: router.signal(local) });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    router.forget(local);
    stream.destroy();
    await router.events.unbind(local).catch(() => {});
    await mapping.unmap().catch(() => {});
  };
  stream.once('close', () => void close());
  // Output the guest wrote before we bound: drain it now.
  queueMicrotask(() => stream.pump());
  return { stream, limit: nodes.limit, via, ringRef: nodes.ringRef, port: nodes.port, close };
}
