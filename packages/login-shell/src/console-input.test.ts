import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConsoleInput } from './console-input.js';

function setup(max?: number) {
  const stream = new PassThrough();
  return { stream, input: new ConsoleInput(stream, max) };
}
const tick = () => new Promise((r) => setImmediate(r));

describe('ConsoleInput', () => {
  it('keeps typeahead for the next consumer, in order, including what a consumer left', async () => {
    const { stream, input } = setup();
    stream.write('abc');
    await tick();
    const got: string[] = [];
    input.setSink((c) => {
      got.push(`1:${c.toString()}`);
      return 1; // takes one byte and is done
    });
    stream.write('de');
    await tick();
    input.setSink((c) => {
      got.push(`2:${c.toString()}`);
      return c.length;
    });
    expect(got).toEqual(['1:abc', '2:bc', '2:de']);
  });

  it('bounds typeahead and counts what it dropped', async () => {
    const { stream, input } = setup(4);
    stream.write('123456');
    await tick();
    expect(input.dropped).toBe(2);
    let got = '';
    input.setSink((c) => {
      got += c.toString();
      return c.length;
    });
    expect(got).toBe('1234');
  });

  it('flush() discards typeahead; unshift() puts bytes back in front', async () => {
    const { stream, input } = setup();
    stream.write('secret');
    await tick();
    input.flush();
    input.unshift(Buffer.from('x'));
    stream.write('y');
    await tick();
    let got = '';
    input.setSink((c) => {
      got += c.toString();
      return c.length;
    });
    expect(got).toBe('xy');
  });

  it('tells listeners when the stream ends, once, and unsubscribes', async () => {
    const { stream, input } = setup();
    const calls: string[] = [];
    const off = input.onClose(() => calls.push('a'));
    input.onClose(() => calls.push('b'));
    off();
    stream.end();
    stream.resume();
    await tick();
    await tick();
    expect(input.closed).toBe(true);
    expect(calls).toEqual(['b']);
  });
});
