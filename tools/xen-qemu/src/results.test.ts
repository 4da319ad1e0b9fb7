import { describe, expect, it } from 'vitest';
import {
  exitCodeFor,
  formatCheck,
  formatSummary,
  parseCheckLine,
  parseCheckLines,
  parseMark,
  prefixed,
  summarize,
} from './results.js';

describe('parseCheckLine', () => {
  it('reads PASS and FAIL lines with and without a reason', () => {
    expect(parseCheckLine('PASS xl-list')).toEqual({ status: 'PASS', name: 'xl-list', reason: '' });
    expect(parseCheckLine('FAIL guest-node: no XQ-GUEST-NODE line')).toEqual({
      status: 'FAIL',
      name: 'guest-node',
      reason: 'no XQ-GUEST-NODE line',
    });
    expect(parseCheckLine('FAIL native')).toEqual({ status: 'FAIL', name: 'native', reason: '' });
  });

  it('keeps colons inside the reason', () => {
    expect(parseCheckLine('FAIL native-evtchn: EBADF: ioctl(x): bad fd')?.reason).toBe(
      'EBADF: ioctl(x): bad fd',
    );
  });

  it('tolerates what the serial console adds', () => {
    expect(parseCheckLine('XQ-RESULT PASS xenstored\r\r\r')).toEqual({
      status: 'PASS',
      name: 'xenstored',
      reason: '',
    });
    expect(parseCheckLine('\x1b[6n junk XQ-RESULT FAIL boot: x')).toMatchObject({
      status: 'FAIL',
      name: 'boot',
    });
    expect(parseCheckLine('  PASS c/boot  ')).toMatchObject({ name: 'c/boot' });
  });

  it('rejects lines that are not results', () => {
    for (const l of [
      '',
      'PASSED x',
      'pass x',
      'PASS',
      'PASS  x',
      'FAIL : reason',
      '[ 1.0] Linux version',
      'XQ-MARK dom0-ready',
    ]) {
      expect(parseCheckLine(l), JSON.stringify(l)).toBeNull();
    }
  });

  it('parses every result line of a log in order', () => {
    const text = 'noise\nPASS a\r\nXQ-MARK x\nFAIL b: why\n';
    expect(parseCheckLines(text).map((r) => r.name)).toEqual(['a', 'b']);
  });

  it('formats what it parses back to the same line', () => {
    for (const l of ['PASS c/boot', 'FAIL ocaml/guest-node: no line']) {
      expect(formatCheck(parseCheckLine(l)!)).toBe(l);
    }
    expect(formatCheck({ status: 'FAIL', name: 'x', reason: '' })).toBe('FAIL x: failed');
  });
});

describe('summary', () => {
  it('counts and prints "N passed, M failed"', () => {
    const results = parseCheckLines('PASS a\nPASS b\nFAIL c: x\n');
    expect(summarize(results)).toEqual({ passed: 2, failed: 1 });
    expect(formatSummary(summarize(results))).toBe('2 passed, 1 failed');
    expect(exitCodeFor(summarize(results))).toBe(1);
  });

  it('succeeds only when something passed and nothing failed', () => {
    expect(exitCodeFor({ passed: 3, failed: 0 })).toBe(0);
    expect(exitCodeFor({ passed: 0, failed: 0 })).toBe(1);
    expect(formatSummary({ passed: 0, failed: 0 })).toBe('0 passed, 0 failed');
  });

  it('prefixes names with the xenstored implementation', () => {
    expect(prefixed('ocaml', parseCheckLines('PASS boot')).map(formatCheck)).toEqual([
      'PASS ocaml/boot',
    ]);
  });
});

describe('parseMark', () => {
  it('finds a marker anywhere in a console line', () => {
    expect(parseMark('XQ-MARK dom0-ready c')).toEqual({ name: 'dom0-ready', detail: 'c' });
    expect(parseMark('[  3.1] garbage XQ-MARK guest-console\r')).toEqual({
      name: 'guest-console',
      detail: '',
    });
    expect(parseMark('XQ-MARKER x')).toBeNull();
    expect(parseMark('PASS x')).toBeNull();
  });
});
