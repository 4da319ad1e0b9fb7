import type { RingSignal } from '@xencons/ring';
import type { SimEventHandle } from '@xencons/sim-hypervisor';

/**
 * Shares one event-channel handle among many rings: each bound port gets a `RingSignal` whose
 * `notify` signals the port's peer and whose subscribers run when the port fires.
 */
export class PortSignals {
  private readonly listeners = new Map<number, Set<() => void>>();

  constructor(readonly handle: SimEventHandle) {
    handle.onPending = (ports) => {
      for (const port of ports) {
        const set = this.listeners.get(port);
        if (set) for (const listener of [...set]) listener();
      }
    };
  }

  signal(port: number): RingSignal {
    return {
      notify: () => this.handle.notify(port),
      subscribe: (handler) => {
        let set = this.listeners.get(port);
        if (!set) {
          set = new Set();
          this.listeners.set(port, set);
        }
        set.add(handler);
        return () => {
          set.delete(handler);
          if (set.size === 0) this.listeners.delete(port);
        };
      },
    };
  }

  forget(port: number): void {
    this.listeners.delete(port);
  }
}
