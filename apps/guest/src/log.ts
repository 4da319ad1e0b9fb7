import type { Writable } from 'node:stream';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface LogRecord {
  time: Date;
  level: LogLevel;
  msg: string;
  fields: LogFields;
}

/** Where log records go: stderr, the log console, a test array. */
export type LogSink = (record: LogRecord) => void;

/** `XENCONS_LOG=debug|info|warn|error` (default info). */
export function logLevelFromEnv(env: Readonly<Record<string, string | undefined>>): LogLevel {
  const value = env.XENCONS_LOG?.toLowerCase();
  return value === 'debug' || value === 'warn' || value === 'error' ? value : 'info';
}

/** `key=value` pairs; values with spaces or quotes are JSON-quoted; control characters never pass. */
export function formatFields(fields: LogFields): string {
  let out = '';
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    const text = String(value);
    out += ` ${key}=${/^[\w./:@+-]*$/.test(text) && text !== '' ? text : JSON.stringify(text)}`;
  }
  return out;
}

/** One line of text: `2025-01-02T03:04:05.678Z INFO message key=value`. */
export function formatLogLine(record: LogRecord): string {
  const msg = record.msg.replace(/\p{Cc}/gu, '?');
  return `${record.time.toISOString()} ${record.level.toUpperCase()} ${msg}${formatFields(record.fields)}`;
}

/** Human text on a terminal, JSON lines otherwise (the house style for programs). */
export function streamSink(stream: Writable & { isTTY?: boolean }): LogSink {
  const tty = stream.isTTY === true;
  return (record) => {
    if (tty) {
      stream.write(`${formatLogLine(record)}\n`);
      return;
    }
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(record.fields)) if (v !== undefined) fields[k] = v;
    stream.write(
      `${JSON.stringify({ time: record.time.toISOString(), level: record.level, msg: record.msg, ...fields })}\n`,
    );
  };
}

/** The agent's one logger: records at or above `level` go to every sink. */
export class AgentLog {
  level: LogLevel;
  readonly #sinks = new Set<LogSink>();

  constructor(level: LogLevel = 'info', sinks: LogSink[] = []) {
    this.level = level;
    for (const s of sinks) this.#sinks.add(s);
  }

  /** Adds a sink; returns its removal. */
  addSink(sink: LogSink): () => void {
    this.#sinks.add(sink);
    return () => this.#sinks.delete(sink);
  }

  debug(msg: string, fields: LogFields = {}): void {
    this.#emit('debug', msg, fields);
  }

  info(msg: string, fields: LogFields = {}): void {
    this.#emit('info', msg, fields);
  }

  warn(msg: string, fields: LogFields = {}): void {
    this.#emit('warn', msg, fields);
  }

  error(msg: string, fields: LogFields = {}): void {
    this.#emit('error', msg, fields);
  }

  #emit(level: LogLevel, msg: string, fields: LogFields): void {
    if (RANK[level] < RANK[this.level]) return;
    const record: LogRecord = { time: new Date(), level, msg, fields };
    for (const sink of this.#sinks) {
      try {
        sink(record);
      } catch {
        // A broken sink must not take the agent down (the others still get the record).
      }
    }
  }
}
