import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type BackendInputs,
  backendStep,
  type FrontendInputs,
  frontendStep,
} from './xenbus-machine.js';
import {
  formatXenbusState,
  parseXenbusState,
  XenbusState,
  xenbusStateName,
} from './xenbus-state.js';

const { Unknown, Initialising, InitWait, Initialised, Connected, Closing, Closed, Reconfiguring } =
  XenbusState;

describe('XenbusState (io/xenbus.h, xen-protocols.md §2.4)', () => {
  it('has the numbers of the table', () => {
    expect(XenbusState).toEqual({
      Unknown: 0,
      Initialising: 1,
      InitWait: 2,
      Initialised: 3,
      Connected: 4,
      Closing: 5,
      Closed: 6,
      Reconfiguring: 7,
      Reconfigured: 8,
    });
    expect(xenbusStateName(4)).toBe('Connected');
    expect(xenbusStateName(9)).toBe('9?');
    expect(formatXenbusState(5)).toBe('5 (Closing)');
  });

  it('reads a state node as Linux does: missing or garbage is Unknown', () => {
    expect(parseXenbusState('4')).toBe(Connected);
    expect(parseXenbusState(' 6\n')).toBe(Closed);
    expect(parseXenbusState('0')).toBe(Unknown);
    expect(parseXenbusState(undefined)).toBe(Unknown);
    expect(parseXenbusState('')).toBe(Unknown);
    expect(parseXenbusState('connected')).toBe(Unknown);
    expect(parseXenbusState('-1')).toBe(Unknown);
    expect(parseXenbusState('9')).toBe(Unknown);
    expect(parseXenbusState('4.0')).toBe(Unknown);
  });
});

const be = (backend: number, frontend: number, extra: Partial<BackendInputs> = {}) =>
  backendStep({
    backend: backend as XenbusState,
    frontend: frontend as XenbusState,
    online: true,
    connected: false,
    ...extra,
  });

describe('backendStep: the Backend (QEMU) column of the handshake table', () => {
  it('create: a fresh backend (libxl wrote 1 on both sides) goes to InitWait', () => {
    expect(be(Initialising, Initialising)).toEqual({ action: 'set', state: InitWait });
    expect(be(InitWait, Initialising)).toEqual({ action: 'wait' });
  });

  it('connect: on frontend 3 or 4 and backend not yet 4 it maps, binds and connects', () => {
    expect(be(InitWait, Initialised)).toEqual({ action: 'connect' });
    // win-xencons goes to Connected directly when the backend is in InitWait.
    expect(be(InitWait, Connected)).toEqual({ action: 'connect' });
    // A backend that was never started (libxl's 1) connects a frontend that did not wait (Linux).
    expect(be(Initialising, Initialised)).toEqual({ action: 'connect' });
    expect(be(Connected, Connected, { connected: true })).toEqual({ action: 'wait' });
    expect(be(Connected, Initialised, { connected: true })).toEqual({ action: 'wait' });
  });

  it('a restarted backend (state 4 in xenstore, nothing mapped here) connects again', () => {
    expect(be(Connected, Connected)).toEqual({ action: 'connect' });
  });

  it('close: frontend 5 gets backend 5; frontend 6 or 0 gets unmap and backend 6', () => {
    expect(be(Connected, Closing, { connected: true })).toEqual({ action: 'set', state: Closing });
    expect(be(Closing, Closing, { connected: true })).toEqual({ action: 'wait' });
    expect(be(Closing, Closed, { connected: true })).toEqual({
      action: 'disconnect',
      state: Closed,
    });
    expect(be(Connected, Unknown, { connected: true })).toEqual({
      action: 'disconnect',
      state: Closed,
    });
    expect(be(Closing, Closed)).toEqual({ action: 'set', state: Closed });
    expect(be(Closed, Closed)).toEqual({ action: 'wait' });
  });

  it('reconnect: backend 6, online, frontend back to 1 gives InitWait again', () => {
    expect(be(Closed, Initialising)).toEqual({ action: 'set', state: InitWait });
    // A frontend that restarted without closing is disconnected first.
    expect(be(Connected, Initialising, { connected: true })).toEqual({
      action: 'disconnect',
      state: InitWait,
    });
    // Frontend 3 seen while we are Closed (its 1 was coalesced away): connect.
    expect(be(Closed, Initialised)).toEqual({ action: 'connect' });
  });

  it('after a failure (backend 5) nothing reconnects until the frontend has closed', () => {
    expect(be(Closing, Initialised)).toEqual({ action: 'wait' });
    expect(be(Closing, Connected)).toEqual({ action: 'wait' });
    expect(be(Closing, Closed)).toEqual({ action: 'set', state: Closed });
  });

  it('offline (toolstack remove): Closing until the frontend closes, then Closed and finish', () => {
    const off = { online: false };
    expect(be(Connected, Connected, { ...off, connected: true })).toEqual({
      action: 'set',
      state: Closing,
    });
    expect(be(Closing, Connected, { ...off, connected: true })).toEqual({ action: 'wait' });
    expect(be(Closing, Closed, { ...off, connected: true })).toEqual({
      action: 'disconnect',
      state: Closed,
    });
    expect(be(Closed, Closed, off)).toEqual({ action: 'finish' });
    expect(be(Closed, Initialising, off)).toEqual({ action: 'wait' });
    expect(be(InitWait, Initialised, off)).toEqual({ action: 'set', state: Closing });
  });

  it('ignores frontend states that carry no meaning for a console', () => {
    expect(be(InitWait, InitWait)).toEqual({ action: 'wait' });
    expect(be(Connected, Reconfiguring, { connected: true })).toEqual({ action: 'wait' });
  });
});

const fe = (frontend: number, backend: number, want: 'connect' | 'close', published: boolean) =>
  frontendStep({
    frontend: frontend as XenbusState,
    backend: backend as XenbusState,
    want,
    published,
  } satisfies FrontendInputs);

describe('frontendStep: the Linux hvc_xen and win-xencons columns', () => {
  it('connect: publish once the backend is Initialising or InitWait, then Initialised, then Connected', () => {
    expect(fe(Initialising, Initialising, 'connect', false)).toEqual({ action: 'publish' });
    expect(fe(Initialising, InitWait, 'connect', false)).toEqual({ action: 'publish' });
    expect(fe(Initialised, InitWait, 'connect', true)).toEqual({ action: 'wait' });
    expect(fe(Initialised, Connected, 'connect', true)).toEqual({ action: 'connected' });
    expect(fe(Connected, Connected, 'connect', true)).toEqual({ action: 'wait' });
  });

  it('running: backend 5, or 6 while we are not 6 (missed Closing), or gone: release and Closed', () => {
    expect(fe(Connected, Closing, 'connect', true)).toEqual({
      action: 'release',
      reason: 'closed',
    });
    expect(fe(Connected, Closed, 'connect', true)).toEqual({ action: 'release', reason: 'closed' });
    expect(fe(Connected, Unknown, 'connect', true)).toEqual({
      action: 'release',
      reason: 'closed',
    });
    // The device removed under us: both nodes gone.
    expect(fe(Unknown, Unknown, 'connect', true)).toEqual({ action: 'release', reason: 'refused' });
    // A backend restarting (back to InitWait) is ignored, as Linux does.
    expect(fe(Connected, InitWait, 'connect', true)).toEqual({ action: 'wait' });
  });

  it('a backend that closes before connecting refuses the console', () => {
    expect(fe(Initialised, Closing, 'connect', true)).toEqual({
      action: 'release',
      reason: 'refused',
    });
  });

  it('reopen: from Closed back to Initialising, and publish only once the backend is back in InitWait', () => {
    expect(fe(Closed, Closed, 'connect', false)).toEqual({ action: 'set', state: Initialising });
    expect(fe(Initialising, Closed, 'connect', false)).toEqual({ action: 'wait' });
    expect(fe(Initialising, Connected, 'connect', false)).toEqual({ action: 'wait' });
    expect(fe(Initialising, InitWait, 'connect', false)).toEqual({ action: 'publish' });
  });

  it('close (win-xencons loop): Closing until the backend is 5 or 6, then release and Closed', () => {
    expect(fe(Connected, Connected, 'close', true)).toEqual({ action: 'set', state: Closing });
    expect(fe(Closing, Connected, 'close', true)).toEqual({ action: 'wait' });
    expect(fe(Closing, Closing, 'close', true)).toEqual({ action: 'release', reason: 'closed' });
    expect(fe(Closing, Closed, 'close', true)).toEqual({ action: 'release', reason: 'closed' });
    // The backend never mapped the page (or is gone): no need to wait for it.
    expect(fe(Initialised, InitWait, 'close', true)).toEqual({
      action: 'release',
      reason: 'closed',
    });
    expect(fe(Initialising, InitWait, 'close', false)).toEqual({ action: 'set', state: Closed });
    expect(fe(Closed, InitWait, 'close', false)).toEqual({ action: 'done' });
  });
});

/** Both machines against one shared pair of state nodes, the sides acting in any order. */
class Handshake {
  fe: XenbusState = Initialising;
  be: XenbusState = Initialising;
  online = true;
  want: 'connect' | 'close' = 'connect';
  /** The frontend's grant and port exist. */
  published = false;
  /** The backend maps them. */
  connected = false;
  backendFinished = false;
  frontendReleases = 0;
  /** Every connect saw a live grant (a backend never maps a page the frontend let go of). */
  mappedReleased = 0;

  frontendStep() {
    return frontendStep({
      frontend: this.fe,
      backend: this.be,
      want: this.want,
      published: this.published,
    });
  }

  backendStep() {
    if (this.backendFinished) return { action: 'wait' } as const;
    return backendStep({
      backend: this.be,
      frontend: this.fe,
      online: this.online,
      connected: this.connected,
    });
  }

  /** One step of one side; false when it has nothing to do. */
  act(side: 'fe' | 'be'): boolean {
    if (side === 'fe') {
      const step = this.frontendStep();
      switch (step.action) {
        case 'wait':
        case 'done':
          return false;
        case 'set':
          this.fe = step.state;
          return true;
        case 'publish':
          this.published = true;
          this.fe = Initialised;
          return true;
        case 'connected':
          this.fe = Connected;
          return true;
        case 'release':
          this.published = false;
          this.frontendReleases++;
          this.fe = Closed;
          // The guest asked for a connection and the backend closed it: the guest's app is told,
          // and stays closed until it opens again.
          this.want = 'close';
          return true;
      }
    }
    const step = this.backendStep();
    switch (step.action) {
      case 'wait':
        return false;
      case 'set':
        this.be = step.state;
        return true;
      case 'connect':
        if (this.published) {
          this.connected = true;
          this.be = Connected;
        } else {
          this.mappedReleased++;
          this.be = Closing; // the grant does not map
        }
        return true;
      case 'disconnect':
        this.connected = false;
        this.be = step.state;
        return true;
      case 'finish':
        this.backendFinished = true;
        return true;
    }
  }

  /** Runs the sides in the order `schedule` picks until neither has anything to do. */
  settle(schedule: readonly boolean[]): number {
    let i = 0;
    for (let steps = 0; steps < 200; steps++) {
      const first = schedule[i++ % Math.max(1, schedule.length)] ? 'fe' : 'be';
      if (this.act(first)) continue;
      if (this.act(first === 'fe' ? 'be' : 'fe')) continue;
      return steps;
    }
    throw new Error(`no quiescence: fe ${this.fe} be ${this.be}`);
  }
}

describe('frontend and backend machines together, in any interleaving', () => {
  const schedules = fc.array(fc.boolean(), { minLength: 1, maxLength: 40 });

  it('connect, guest close, reopen, toolstack remove: both ends agree at every rest point', () => {
    fc.assert(
      fc.property(schedules, schedules, schedules, schedules, (s1, s2, s3, s4) => {
        const h = new Handshake();
        h.settle(s1);
        expect([h.fe, h.be, h.published, h.connected]).toEqual([Connected, Connected, true, true]);

        h.want = 'close';
        h.settle(s2);
        expect([h.fe, h.be, h.published, h.connected]).toEqual([Closed, Closed, false, false]);

        h.want = 'connect';
        h.settle(s3);
        expect([h.fe, h.be, h.published, h.connected]).toEqual([Connected, Connected, true, true]);

        // libxl's remove: online 0 and backend Closing in one transaction.
        h.online = false;
        h.be = Closing;
        h.settle(s4);
        expect([h.fe, h.be, h.published, h.connected]).toEqual([Closed, Closed, false, false]);
        expect(h.backendFinished).toBe(true);
        expect(h.mappedReleased).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('a backend that fails to connect leaves both ends Closed, and a reopen works', () => {
    fc.assert(
      fc.property(schedules, schedules, (s1, s2) => {
        const h = new Handshake();
        // Publish, then the backend's map fails (a bad grant): it says Closing.
        while (!h.published) h.act('fe');
        h.be = Closing;
        h.settle(s1);
        expect([h.fe, h.be, h.connected]).toEqual([Closed, Closed, false]);
        h.want = 'connect';
        h.settle(s2);
        expect([h.fe, h.be, h.connected]).toEqual([Connected, Connected, true]);
      }),
      { numRuns: 200 },
    );
  });

  it('a backend that restarts mid-connection picks it up again without the frontend noticing', () => {
    fc.assert(
      fc.property(schedules, schedules, (s1, s2) => {
        const h = new Handshake();
        h.settle(s1);
        const releases = h.frontendReleases;
        h.connected = false; // the old backend process died; its mapping went with it
        h.settle(s2);
        expect([h.fe, h.be, h.connected]).toEqual([Connected, Connected, true]);
        expect(h.frontendReleases).toBe(releases);
      }),
      { numRuns: 100 },
    );
  });
});
