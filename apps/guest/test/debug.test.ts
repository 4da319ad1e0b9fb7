import { describe, expect, it } from 'vitest';
import {
  DebugRegistry,
  formatDebugReply,
  globalDebugRegistry,
  MAX_REPLY_BYTES,
  parseDebugRequest,
  registerDebugCallback,
} from '../src/index.js';

describe('DebugRegistry', () => {
  it('runs every callback of a key, bracketed and prefixed, as XENBUS_DEBUG Trigger does', async () => {
    const reg = new DebugRegistry();
    reg.register('r', 'console hvc1', (out) => out.line('prod=5 cons=5'), 'console rings');
    reg.register(
      'r',
      'console hvc2',
      (out) => out.line('prod=9 cons=7\nsecond line'),
      'console rings',
    );
    reg.register('s', 'sessions', (out) => out.line('nobody'));
    expect(await reg.run('r', 'control')).toEqual([
      'XENCONS|DEBUG: ====> console hvc1',
      'console hvc1: prod=5 cons=5',
      'XENCONS|DEBUG: <==== console hvc1',
      'XENCONS|DEBUG: ====> console hvc2',
      'console hvc2: prod=9 cons=7',
      'console hvc2: second line',
      'XENCONS|DEBUG: <==== console hvc2',
    ]);
    const all = await reg.run('*', 'control');
    expect(all.filter((l) => l.includes('====>'))).toHaveLength(3);
  });

  it('a failing or stuck callback is reported and the others still run', async () => {
    const reg = new DebugRegistry();
    reg.register('x', 'broken', () => {
      throw new Error('boom');
    });
    reg.register('x', 'stuck', () => new Promise(() => {}));
    reg.register('x', 'fine', (out) => out.line('ok'));
    const lines = await reg.run('x', 'console', { timeoutMs: 50 });
    expect(lines).toContain('broken: failed: boom');
    expect(lines).toContain('stuck: (no answer within 50 ms; skipped)');
    expect(lines).toContain('fine: ok');
  });

  it('lists keys, says when a key has no callback, and deregisters', async () => {
    const reg = new DebugRegistry();
    const off = reg.register('s', 'sessions', () => {}, 'sessions');
    reg.register('a', 'agent', () => {}, 'agent statistics');
    expect(reg.keyList()).toBe('a agent statistics\ns sessions');
    expect(reg.has('s') && reg.has('?') && reg.has('*')).toBe(true);
    expect((await reg.run('?', 'control')).join('\n')).toMatch(
      /a {2}agent statistics\n {2}s {2}sessions/,
    );
    off();
    expect(reg.has('s')).toBe(false);
    expect(await reg.run('s', 'control')).toEqual([
      'XENCONS|DEBUG: no callback for key "s" (? lists them)',
    ]);
  });

  it('refuses keys that are not one printable character, and the reserved ? and *', () => {
    const reg = new DebugRegistry();
    for (const key of ['', 'ab', '\x07', ' ', '?', '*'])
      expect(() => reg.register(key, 'p', () => {})).toThrow(/debug key/);
  });

  it('strips control characters from prefixes and output (no forged lines on a console)', async () => {
    const reg = new DebugRegistry();
    reg.register('z', 'evil\r\nprefix', (out) => out.line('a\x1b[2Jb'));
    expect(await reg.run('z', 'control')).toContain('evil??prefix: a?[2Jb');
  });

  it('the process-wide registry is shared through Symbol.for', () => {
    const off = registerDebugCallback('q', 'elsewhere', () => {});
    const viaSymbol = (globalThis as Record<symbol, unknown>)[Symbol.for('xencons.debug.registry')];
    expect(viaSymbol).toBe(globalDebugRegistry());
    expect(globalDebugRegistry().has('q')).toBe(true);
    off();
  });
});

describe('the xenstore debug node format', () => {
  it('parses KEY and ID KEY, and nothing else', () => {
    expect(parseDebugRequest('s')).toEqual({ id: '', key: 's' });
    expect(parseDebugRequest('1a2b r\n')).toEqual({ id: '1a2b', key: 'r' });
    expect(parseDebugRequest('')).toBeNull();
    expect(parseDebugRequest('too many words')).toBeNull();
    expect(parseDebugRequest('id ab')).toBeNull();
  });
  it('cuts a long reply on a line boundary and says how much is left', () => {
    const lines = Array.from({ length: 500 }, (_, i) => `line ${i} ${'x'.repeat(20)}`);
    const reply = formatDebugReply('id1', lines);
    expect(Buffer.byteLength(reply)).toBeLessThanOrEqual(MAX_REPLY_BYTES);
    expect(reply.startsWith('id1\nline 0 ')).toBe(true);
    expect(reply).toMatch(/… \d+ more lines on the log console\n$/);
    expect(formatDebugReply('', ['a', 'b'])).toBe('\na\nb\n');
  });
});
