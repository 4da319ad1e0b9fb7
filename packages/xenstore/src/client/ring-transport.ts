import { XenconsError } from '@xencons/errors';
import {
  type PageMemory,
  PageView,
  type XenstoreClientRings,
  xenstoreClientRings,
} from '@xencons/ring';
import { XENSTORE_PAYLOAD_MAX } from '../wire/types.js';
import type { XsTransport, XsTransportConnection, XsTransportSink } from './transport.js';

/**
 * The event channel of a xenstore ring, abstracted: real `/dev/xen/evtchn` or the simulator
 * supplies it.
 */
export interface XsEventChannel {
  /** Signals the other end (after bytes were produced or consumed). */
  notify(): void;
  /** Calls `handler` whenever the other end signals; returns an unsubscribe function. */
  subscribe(handler: () => void): () => void;
}

export interface RingTransportOptions {
  /** The `struct xenstore_domain_interface` page (guest side). */
  page: PageMemory | PageView;
  evtchn: XsEventChannel;
  /** Names the peer in errors; default `ring`. */
  description?: string;
}

/**
 * A guest's xenstore ring: requests stream into `req`, replies and events come out of `rsp`, in
 * pieces (a message can be larger than the 1024-byte ring). Every produce or consume is followed by
 * a notification.
 */
export function ringTransport(options: RingTransportOptions): XsTransport {
  const description = options.description ?? 'ring';
  return {
    description,
    maxPayload: XENSTORE_PAYLOAD_MAX,
    reconnectByDefault: false,
    async open(sink: XsTransportSink): Promise<XsTransportConnection> {
      const rings: XenstoreClientRings = xenstoreClientRings(PageView.of(options.page));
      const out: Uint8Array[] = [];
      let outAt = 0;
      let closed = false;
      let pumping = false;
      let again = false;
      const scratch = new Uint8Array(1024);

      const pump = () => {
        if (pumping) {
          again = true;
          return;
        }
        pumping = true;
        try {
          do {
            again = false;
            let moved = false;
            // Drain replies first so the server can make progress.
            for (;;) {
              const n = rings.rsp.read(scratch);
              if (n <= 0) break;
              moved = true;
              sink.data(scratch.slice(0, n));
              if (closed) return;
            }
            while (out.length > 0) {
              const head = out[0]!;
              const n = rings.req.write(head, outAt, head.length - outAt);
              if (n <= 0) break;
              moved = true;
              outAt += n;
              if (outAt === head.length) {
                out.shift();
                outAt = 0;
              }
            }
            if (moved) options.evtchn.notify();
          } while (again && !closed);
        } catch (err) {
          closed = true;
          unsubscribe();
          sink.closed(
            new XenconsError(
              'ERR_XS_CLOSED',
              `xenstore ring ${description} failed: ${(err as Error).message}`,
              {
                cause: err,
              },
            ),
          );
        } finally {
          pumping = false;
        }
      };
      const unsubscribe = options.evtchn.subscribe(() => {
        if (!closed) pump();
      });
      return {
        write(bytes) {
          if (closed) return false;
          out.push(bytes);
          pump();
          return true;
        },
        close() {
          closed = true;
          unsubscribe();
        },
      };
    },
  };
}
