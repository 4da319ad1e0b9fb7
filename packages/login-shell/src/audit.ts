import { spawn } from 'node:child_process';
import { channel } from 'node:diagnostics_channel';
import type { Writable } from 'node:stream';

/**
 * One record per login attempt (and one per session end). The user is the account name only
 * when it names a known account; otherwise `UNKNOWN`, as login(1) does, because people type
 * their password at the `login:` prompt and it must not end up in a log.
 */
export interface AuditRecord {
  time: Date;
  console: string;
  user: string;
  backend: string;
  outcome:
    | 'success'
    | 'failure'
    | 'locked'
    | 'error'
    | 'autologin'
    /** login(1) took over: it does its own checks and logs the outcome itself. */
    | 'delegated'
    | 'logout';
  /** Free text without secrets (a PAM message, an exit status). */
  detail?: string;
}

export type AuditSink = (record: AuditRecord) => void;

/** Diagnostics channel where a sink's own failures (e.g. logger(1) missing) are published. */
export const auditErrorChannel = channel('xencons:login-shell:audit-error');

/** `console=hvc0 user=alice backend=file outcome=failure detail="..."` (no time: syslog adds it). */
export function formatAuditLine(r: AuditRecord): string {
  const detail =
    r.detail === undefined
      ? ''
      : ` detail=${JSON.stringify(r.detail.replace(/\p{Cc}/gu, '?').slice(0, 200))}`;
  return `console=${clean(r.console)} user=${clean(r.user)} backend=${r.backend} outcome=${r.outcome}${detail}`;
}

/** No control characters or spaces in fields (they could forge log lines). */
function clean(s: string): string {
  return s.replace(/[\p{Cc}\s]/gu, '?').slice(0, 200);
}

export interface SystemLogOptions {
  /** syslog tag. */
  tag?: string;
  /** syslog facility.level; authpriv is where login(1) and sshd log. */
  priority?: string;
  /** The logger program. */
  logger?: string;
}

/**
 * The system log through logger(1) (util-linux, on every Debian): Node cannot send to the
 * `/dev/log` datagram socket itself. One short-lived process per record; logins are rare.
 * When logger cannot run or finds no system log, the record goes to `auditErrorChannel` and to
 * stderr, so it is not lost silently.
 */
export function systemLogAudit(options: SystemLogOptions = {}): AuditSink {
  const tag = options.tag ?? 'xencons-login';
  const priority = options.priority ?? 'authpriv.notice';
  const program = options.logger ?? 'logger';
  return (record) => {
    const line = formatAuditLine(record);
    const fallback = (why: string) => {
      auditErrorChannel.publish({ record, line, error: why });
      process.stderr.write(`${tag}: ${line} (system log unavailable: ${why})\n`);
    };
    try {
      // --socket-errors=on: without it logger exits 0 when there is no /dev/log (no syslog
      // daemon and no journald), and the line would vanish.
      const child = spawn(program, ['--socket-errors=on', '-p', priority, '-t', tag, '--', line], {
        stdio: 'ignore',
      });
      child.on('error', (err) => fallback(err.message));
      child.on('exit', (code) => {
        if (code !== 0 && code !== null) fallback(`${program} exited with ${code}`);
      });
      child.unref();
    } catch (err) {
      fallback((err as Error).message);
    }
  };
}

/** Audit lines written to a stream (a file, stderr), with an ISO time stamp. */
export function streamAudit(stream: Writable): AuditSink {
  return (r) => {
    stream.write(`${r.time.toISOString()} ${formatAuditLine(r)}\n`);
  };
}

/** Keeps records in memory (tests, or a program that forwards them elsewhere). */
export function memoryAudit(): AuditSink & { records: AuditRecord[] } {
  const records: AuditRecord[] = [];
  const sink = ((r: AuditRecord) => {
    records.push(r);
  }) as AuditSink & { records: AuditRecord[] };
  sink.records = records;
  return sink;
}
