import { describe, expect, it } from 'vitest';
import { EventQueue } from './event-queue.js';

describe('EventQueue (one events() iterator)', () => {
  it('keeps ports delivered while nobody waits, each once, in order', async () => {
    let ended = 0;
    const q = new EventQueue(() => ended++);
    q.push(5);
    q.push(2);
    q.push(5);
    expect(await q.next()).toEqual({ value: 5, done: false });
    expect(await q.next()).toEqual({ value: 2, done: false });
    const waiting = q.next();
    q.push(9);
    expect(await waiting).toEqual({ value: 9, done: false });
    q.end();
    expect(await q.next()).toEqual({ value: undefined, done: true });
    expect(ended).toBe(1);
  });

  it('ends waiting consumers; an error is thrown once, then the end', async () => {
    const q = new EventQueue(() => {});
    const a = q.next();
    const b = q.next();
    q.end(new Error('host gone'));
    await expect(a).rejects.toThrow('host gone');
    await expect(b).rejects.toThrow('host gone');
    const q2 = new EventQueue(() => {});
    q2.push(1);
    q2.end(new Error('boom'));
    await expect(q2.next()).rejects.toThrow('boom');
    expect(await q2.next()).toEqual({ value: undefined, done: true });
  });

  it('return() ends it and drops what was queued', async () => {
    let ended = 0;
    const q = new EventQueue(() => ended++);
    q.push(1);
    await q.return();
    q.push(2);
    expect(await q.next()).toEqual({ value: undefined, done: true });
    expect(ended).toBe(1);
  });
});
