import { XenbusState } from './xenbus-state.js';

const {
  Unknown,
  Initialising,
  InitWait,
  Initialised,
  Connected,
  Closing,
  Closed,
  Reconfiguring,
  Reconfigured,
} = XenbusState;

/** What a console backend knows when it decides what to do next. */
export interface BackendInputs {
  /** Our `state` node (the backend directory's). */
  readonly backend: XenbusState;
  /** The frontend's `state` node (`Unknown` when it is missing or garbage). */
  readonly frontend: XenbusState;
  /** The backend directory's `online` node is `1` (the toolstack wants the device). */
  readonly online: boolean;
  /** We hold the ring mapping and the bound port. */
  readonly connected: boolean;
}

/** One step of the backend; the driver performs it, re-reads the nodes and asks again. */
export type BackendStep =
  | { readonly action: 'wait' }
  /** Write our `state`. */
  | { readonly action: 'set'; readonly state: XenbusState }
  /** Map `ring-ref` (a grant), bind `port`, read `limit`; then `Connected`, or `Closing` on failure. */
  | { readonly action: 'connect' }
  /** Hang up the stream, unmap and unbind; then write `state`. */
  | { readonly action: 'disconnect'; readonly state: XenbusState }
  /** The toolstack took the device offline and both ends are closed: stop serving it. */
  | { readonly action: 'finish' };

const WAIT: BackendStep = { action: 'wait' };
const set = (state: XenbusState) => ({ action: 'set', state }) as const;

/**
 * The console backend's xenbus state machine (xen-protocols.md §2.4, after QEMU's `xen-bus` and
 * `xen-console`): a pure function of the nodes, so it can be driven by watch events that are only
 * hints (re-read, decide, act, repeat until `wait`).
 *
 * | frontend | backend does |
 * |---|---|
 * | Initialising (1) | `InitWait` (2); a frontend that restarted while we were connected is disconnected first |
 * | Initialised (3) or Connected (4), we are not connected | map the grant, bind the port, `Connected` (4); on failure `Closing` (5) |
 * | Closing (5) | `Closing` (5), keeping the mapping until the frontend is closed |
 * | Closed (6) or Unknown (0, node gone) | unmap and unbind, `Closed` (6) |
 * | any, `online` = 0 | `Closing` (5) until the frontend is closed, then `Closed` (6) and finish |
 *
 * After `Closed`, a frontend that goes back to Initialising brings the backend back to InitWait:
 * close and reconnect. While our state is `Closing` (after a failure or the toolstack's request)
 * nothing reconnects until the frontend has closed.
 */
export function backendStep(inputs: BackendInputs): BackendStep {
  const { backend, frontend, online, connected } = inputs;
  if (frontend === Closed || frontend === Unknown) {
    if (connected) return { action: 'disconnect', state: Closed };
    if (backend !== Closed) return set(Closed);
    return online ? WAIT : { action: 'finish' };
  }
  if (!online) {
    return backend === Closing || backend === Closed ? WAIT : set(Closing);
  }
  switch (frontend) {
    case Closing:
      return backend === Closing || backend === Closed ? WAIT : set(Closing);
    case Initialising:
      if (connected) return { action: 'disconnect', state: InitWait };
      return backend === InitWait ? WAIT : set(InitWait);
    case Initialised:
    case Connected:
      if (connected) return WAIT;
      return backend === Closing ? WAIT : { action: 'connect' };
    case InitWait:
    case Reconfiguring:
    case Reconfigured:
      return backend === Initialising ? set(InitWait) : WAIT;
  }
}

/** What a console frontend knows when it decides what to do next. */
export interface FrontendInputs {
  /** Our `state` node (the frontend directory's). */
  readonly frontend: XenbusState;
  /** The backend's `state` node (`Unknown` when it is missing or garbage). */
  readonly backend: XenbusState;
  /** What the guest asked for: a connected console, or none. */
  readonly want: 'connect' | 'close';
  /** We shared a page and allocated a port and wrote them (`ring-ref`, `port`). */
  readonly published: boolean;
}

export type FrontendStep =
  | { readonly action: 'wait' }
  /** Write our `state`. */
  | { readonly action: 'set'; readonly state: XenbusState }
  /** Share a page, allocate a port, write `ring-ref` and `port` in a transaction, then `Initialised`. */
  | { readonly action: 'publish' }
  /** The backend is connected: `Connected` (4), the console is up. */
  | { readonly action: 'connected' }
  /**
   * Hang up the stream, end the grant, unbind the port, then write `Closed` (6). `reason`:
   * `closed` (we asked, or the backend closed a running console) or `refused` (the backend
   * closed before it ever connected).
   */
  | { readonly action: 'release'; readonly reason: 'closed' | 'refused' }
  /** Nothing is held and the state is final. */
  | { readonly action: 'done' };

const FE_WAIT: FrontendStep = { action: 'wait' };

/**
 * The console frontend's xenbus state machine (xen-protocols.md §2.4, after Linux `hvc_xen` and
 * win-xencons). Connect: `Initialising`, then once the backend is Initialising or InitWait
 * publish `ring-ref` and `port` and go `Initialised`, then `Connected` when the backend is.
 * The backend closing (5, or 6, or its node gone) hangs the console up and the frontend goes
 * `Closed` (Linux `xenbus_frontend_closed`). Close: `Closing` until the backend is Closing or
 * Closed, then release and `Closed`. Reconnect: from `Closed` back to `Initialising`, which
 * brings the backend back to InitWait.
 */
export function frontendStep(inputs: FrontendInputs): FrontendStep {
  const { frontend, backend, want, published } = inputs;
  const backendGone = backend === Closing || backend === Closed || backend === Unknown;
  if (want === 'connect') {
    if (!published) {
      if (frontend !== Initialising) return { action: 'set', state: Initialising };
      return backend === Initialising || backend === InitWait ? { action: 'publish' } : FE_WAIT;
    }
    if (backendGone) {
      // Also when our own node is gone with the device (removed under us): let go.
      return { action: 'release', reason: frontend === Connected ? 'closed' : 'refused' };
    }
    if (frontend === Connected) return FE_WAIT;
    if (frontend !== Initialised) return { action: 'set', state: Initialised };
    return backend === Connected ? { action: 'connected' } : FE_WAIT;
  }
  if (!published) {
    return frontend === Closed ? { action: 'done' } : { action: 'set', state: Closed };
  }
  if (frontend === Closing) {
    return backendGone ? { action: 'release', reason: 'closed' } : FE_WAIT;
  }
  if (frontend === Closed) return { action: 'release', reason: 'closed' };
  // Initialised or Connected (or anything else we may have written): ask the backend to close,
  // unless it never mapped the page (still Initialising/InitWait) or already let go of it.
  if (backend === Connected || backend === Initialised) return { action: 'set', state: Closing };
  return { action: 'release', reason: 'closed' };
}
