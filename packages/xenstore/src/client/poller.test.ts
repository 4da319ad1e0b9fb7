import { describe, expect, it } from 'vitest';
import { XsPoller } from './poller.js';

const turn = () => new Promise<void>((r) => setImmediate(r));

/** The process does not get to run for 5 ms (as when the CPUs are taken by others). */
async function heldUp(): Promise<void> {
  const until = performance.now() + 5;
  while (performance.now() < until) {}
  await turn();
  await turn();
}

describe('XsPoller', () => {
  it('polls only while messages stream and it is wanted, then sleeps', async () => {
    let wanted = true;
    const p = new XsPoller(50_000, () => wanted);
    p.kick();
    expect(p.polling).toBe(false); // a lone message: no polling
    p.kick();
    expect(p.polling).toBe(true);
    await turn();
    expect(p.polling).toBe(true);
    wanted = false;
    await turn();
    await turn();
    expect(p.polling).toBe(false);
  });

  it('a window of 0 never polls', () => {
    const p = new XsPoller(0);
    p.kick();
    p.kick();
    expect(p.polling).toBe(false);
  });

  it('pauses when held up, longer while that recurs', async () => {
    const p = new XsPoller(50_000);
    p.kick();
    p.kick();
    expect(p.polling).toBe(true);
    await heldUp();
    expect(p.polling).toBe(false);
    expect(p.pauses).toBe(1);
    const first = p.pauseMs;
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(1000);
    const deadline = Date.now() + 5000;
    while (!p.polling && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, first));
      p.kick();
      p.kick();
    }
    expect(p.polling).toBe(true);
    await heldUp();
    expect(p.polling).toBe(false);
    expect(p.pauseMs).toBeGreaterThan(first);
    p.stop();
  });

  it('stop() ends polling for good', async () => {
    const p = new XsPoller(50_000);
    p.kick();
    p.kick();
    p.stop();
    await turn();
    await turn();
    expect(p.polling).toBe(false);
    p.kick();
    p.kick();
    expect(p.polling).toBe(false);
  });
});
