import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  type AuditRecord,
  formatAuditLine,
  memoryAudit,
  streamAudit,
  systemLogAudit,
} from './audit.js';

const rec: AuditRecord = {
  time: new Date('2026-11-26T10:00:00Z'),
  console: 'hvc0',
  user: 'alice',
  backend: 'pam',
  outcome: 'failure',
  detail: 'auth: Authentication failure',
};

describe('audit', () => {
  it('formats one line with console, user, backend, outcome and quoted detail', () => {
    expect(formatAuditLine(rec)).toBe(
      'console=hvc0 user=alice backend=pam outcome=failure detail="auth: Authentication failure"',
    );
  });

  it('cannot be made to forge lines: control characters and spaces in fields are replaced', () => {
    const line = formatAuditLine({ ...rec, user: 'a b\nconsole=x', detail: 'x\ny' });
    expect(line).not.toContain('\n');
    expect(line.startsWith('console=hvc0 user=a?b?console=x ')).toBe(true);
  });

  it('stream and memory sinks', () => {
    const s = new PassThrough();
    let out = '';
    s.on('data', (d) => {
      out += d;
    });
    streamAudit(s)(rec);
    expect(out).toBe(`2026-11-26T10:00:00.000Z ${formatAuditLine(rec)}\n`);
    const m = memoryAudit();
    m(rec);
    expect(m.records).toEqual([rec]);
  });

  it('the system-log sink falls back to stderr when logger(1) cannot run, never silently', async () => {
    const writes: string[] = [];
    const orig = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((chunk: string) => {
      writes.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      systemLogAudit({ logger: '/nonexistent/logger' })(rec);
      for (let i = 0; i < 50 && writes.length === 0; i++)
        await new Promise((r) => setTimeout(r, 20));
    } finally {
      process.stderr.write = orig;
    }
    expect(writes.join('')).toContain('xencons-login: console=hvc0 user=alice');
    expect(writes.join('')).toContain('system log unavailable');
  });
});
