import { Duplex, PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { AgentLog, LogConsole, type LogRecord, streamSink } from '../src/index.js';
import { formatLogLine } from '../src/log.js';

function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => {
    text += d.toString();
  });
  return { stream, text: () => text };
}

describe('LogConsole', () => {
  it('keeps lines in a bounded backlog until a console is attached, then writes them first', async () => {
    const lc = new LogConsole({ backlogBytes: 40 });
    for (let i = 0; i < 10; i++) lc.writeLine(`line ${i}`);
    expect(lc.stats()).toMatchObject({ attached: null, backlog: 5, dropped: 5 });
    const out = sink();
    lc.attach(out.stream, 'hvc1');
    lc.writeLine('after');
    await new Promise((r) => setImmediate(r));
    expect(out.text()).toBe('line 5\nline 6\nline 7\nline 8\nline 9\nafter\n');
    expect(lc.stats()).toMatchObject({ attached: 'hvc1', forwarded: 6, backlog: 0 });
  });

  it('detaches when its console goes away and collects lines again', async () => {
    const lc = new LogConsole();
    const out = sink();
    lc.attach(out.stream, 'hvc1');
    out.stream.destroy();
    await new Promise((r) => setImmediate(r));
    expect(lc.attached).toBeNull();
    lc.writeLine('later');
    expect(lc.stats().backlog).toBe(1);
  });

  it('drops whole lines (counted) when the console does not keep up', () => {
    const lc = new LogConsole({ maxQueuedBytes: 100 });
    // A console that never takes anything.
    const stuck = new Duplex({ read() {}, write() {}, highWaterMark: 16 });
    lc.attach(stuck, 'hvc1');
    for (let i = 0; i < 50; i++) lc.writeLine('x'.repeat(30));
    expect(lc.stats().dropped).toBeGreaterThan(40);
    expect(stuck.writableLength).toBeLessThanOrEqual(100 + 31);
  });
});

describe('AgentLog', () => {
  it('filters by level and formats key=value lines without control characters', () => {
    const records: LogRecord[] = [];
    const log = new AgentLog('info', [(r) => records.push(r)]);
    log.debug('hidden');
    log.info('session started', { console: 'hvc1', user: 'a b', n: 3, skip: undefined });
    expect(records).toHaveLength(1);
    const line = formatLogLine({ ...records[0]!, msg: 'x\ry' });
    expect(line).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z INFO x\?y console=hvc1 user="a b" n=3$/);
  });
  it('writes JSON lines when the stream is not a terminal', () => {
    const out = sink();
    new AgentLog('info', [streamSink(out.stream)]).warn('careful', { console: 'hvc0' });
    expect(JSON.parse(out.text())).toMatchObject({
      level: 'warn',
      msg: 'careful',
      console: 'hvc0',
    });
  });
});
