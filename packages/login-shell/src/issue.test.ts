import { describe, expect, it } from 'vitest';
import {
  DEFAULT_ISSUE,
  expandIssue,
  type IssueContext,
  parseOsRelease,
  systemIssueContext,
} from './issue.js';

const ctx: IssueContext = {
  nodename: 'guest1',
  sysname: 'Linux',
  release: '6.1.0-28-amd64',
  version: '#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1',
  machine: 'x86_64',
  tty: 'hvc0',
  now: new Date(2026, 10, 26, 9, 5, 7),
  osRelease: { PRETTY_NAME: 'Debian GNU/Linux 12 (bookworm)', VERSION_ID: '12' },
  domainname: 'nisdom',
  dnsDomain: 'example.org',
  users: 1,
  address: (family, iface) =>
    family === 4 ? (iface === 'eth1' ? '10.0.0.2' : '192.0.2.7') : '2001:db8::7',
};

describe('expandIssue', () => {
  it.each([
    ['\\n', 'guest1'],
    ['\\s', 'Linux'],
    ['\\r', '6.1.0-28-amd64'],
    ['\\v', '#1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1'],
    ['\\m', 'x86_64'],
    ['\\l', 'hvc0'],
    ['\\d', 'Thu Nov 26 2026'],
    ['\\t', '09:05:07'],
    ['\\o', 'nisdom'],
    ['\\O', 'example.org'],
    ['\\S', 'Debian GNU/Linux 12 (bookworm)'],
    ['\\S{VERSION_ID}', '12'],
    ['\\S{NOPE}', ''],
    ['\\u', '1'],
    ['\\U', '1 user'],
    ['\\4', '192.0.2.7'],
    ['\\4{eth1}', '10.0.0.2'],
    ['\\6', '2001:db8::7'],
    ['\\e{red}x\\e{reset}', '\x1b[31mx\x1b[0m'],
    ['\\e', '\x1b'],
    ['\\\\n', '\\n'],
    ['\\q', '\\q'],
    ['trailing \\', 'trailing \\'],
  ])('%s → %j', (template, expected) => {
    expect(expandIssue(template, ctx)).toBe(expected);
  });

  it('turns every line end into CRLF (LF and CRLF alike)', () => {
    expect(expandIssue('a\nb\r\nc\n', ctx)).toBe('a\r\nb\r\nc\r\n');
  });

  it('expands the default banner to OS, kernel, architecture, host and console', () => {
    expect(expandIssue(DEFAULT_ISSUE, ctx)).toBe(
      'Debian GNU/Linux 12 (bookworm) (Linux 6.1.0-28-amd64 x86_64) guest1 hvc0\r\n\r\n',
    );
  });

  it('says "users" in the plural and "?" when unknown', () => {
    expect(expandIssue('\\U', { ...ctx, users: 3 })).toBe('3 users');
    const { users: _, ...noUsers } = ctx;
    expect(expandIssue('\\u \\U', noUsers)).toBe('? ? users');
  });
});

describe('parseOsRelease', () => {
  it('reads quoted, single-quoted and bare values and skips comments', () => {
    expect(
      parseOsRelease('# c\nNAME="Debian GNU/Linux"\nID=debian\nX=\'a b\'\nY="say \\"hi\\""\n'),
    ).toEqual({ NAME: 'Debian GNU/Linux', ID: 'debian', X: 'a b', Y: 'say "hi"' });
  });
});

describe('systemIssueContext', () => {
  it('describes this machine', () => {
    const c = systemIssueContext('ttyX', 2);
    expect(c.tty).toBe('ttyX');
    expect(c.sysname).toBe('Linux');
    expect(c.nodename.length).toBeGreaterThan(0);
    expect(c.nodename).not.toContain('.');
    expect(expandIssue('\\U', c)).toBe('2 users');
  });
});
