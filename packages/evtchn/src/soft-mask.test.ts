import { describe, expect, it } from 'vitest';
import { SoftMask } from './soft-mask.js';

const microtasks = () => new Promise<void>((resolve) => setImmediate(resolve));

function mask() {
  const delivered: number[] = [];
  return { m: new SoftMask((p) => delivered.push(p)), delivered };
}

describe('SoftMask (Linux mask-until-unmask on raw deliveries)', () => {
  it('delivers once and masks; fires while masked come once after unmask', async () => {
    const { m, delivered } = mask();
    m.add(3);
    m.fire(3);
    expect(delivered).toEqual([3]);
    expect(m.isMasked(3)).toBe(true);
    m.fire(3);
    m.fire(3);
    await microtasks();
    expect(delivered).toEqual([3]);
    m.unmask(3);
    expect(delivered).toEqual([3]); // never from inside unmask
    await microtasks();
    expect(delivered).toEqual([3, 3]);
    expect(m.isMasked(3)).toBe(true);
    m.unmask(3);
    expect(m.isMasked(3)).toBe(false);
    await microtasks();
    expect(delivered).toEqual([3, 3]);
  });

  it('an unmask before the redelivery arrives does not cancel it', async () => {
    const { m, delivered } = mask();
    m.add(1);
    m.fire(1);
    m.fire(1);
    m.unmask(1);
    m.unmask(1);
    m.fire(1); // covered by the scheduled delivery
    await microtasks();
    expect(delivered).toEqual([1, 1]);
    m.unmask(1);
    await microtasks();
    expect(delivered).toEqual([1, 1]);
  });

  it('keeps a fire for a port it does not track yet, and drops redeliveries of removed ports', async () => {
    const { m, delivered } = mask();
    m.fire(7); // the event came before the bind's answer
    expect(delivered).toEqual([]);
    m.add(7);
    expect(delivered).toEqual([7]);
    m.fire(7);
    m.unmask(7);
    m.remove(7);
    await microtasks();
    expect(delivered).toEqual([7]);
    m.add(8);
    m.unmask(8); // unmasking an enabled port does nothing
    m.fire(8);
    expect(delivered).toEqual([7, 8]);
  });
});
