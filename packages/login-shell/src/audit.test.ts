import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { withTempDir } from '@xencons/test-utils';
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

  it('runs logger(1) with authpriv.notice, the tag, socket errors on, and the line as one argument', async () => {
    await withTempDir(async (dir) => {
      const fake = join(dir, 'logger');
      const out = join(dir, 'args');
      writeFileSync(fake, `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > ${out}\n`);
      chmodSync(fake, 0o755);
      systemLogAudit({ logger: fake })(rec);
      for (let i = 0; i < 100 && !existsSync(out); i++) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 50));
      expect(readFileSync(out, 'utf8').split('\n').slice(0, -1)).toEqual([
        '--socket-errors=on',
        '-p',
        'authpriv.notice',
        '-t',
        'xencons-login',
        '--',
        formatAuditLine(rec),
      ]);
    });
  });

  it('a logger that fails (no /dev/log) also falls back to stderr', async () => {
    await withTempDir(async (dir) => {
      const fake = join(dir, 'logger');
      writeFileSync(fake, '#!/bin/sh\nexit 1\n');
      chmodSync(fake, 0o755);
      const writes: string[] = [];
      const orig = process.stderr.write.bind(process.stderr);
      process.stderr.write = ((chunk: string) => {
        writes.push(String(chunk));
        return true;
      }) as typeof process.stderr.write;
      try {
        systemLogAudit({ logger: fake })(rec);
        for (let i = 0; i < 100 && writes.length === 0; i++)
          await new Promise((r) => setTimeout(r, 20));
      } finally {
        process.stderr.write = orig;
      }
      expect(writes.join('')).toContain('logger exited with 1'.replace('logger', fake));
    });
  });
});
