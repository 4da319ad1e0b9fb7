import type { Duplex } from 'node:stream';
import { formatLogLine, type LogSink } from './log.js';

export interface LogConsoleOptions {
  /** Lines kept while no log console is attached (oldest dropped first), in bytes. Default 256 KiB. */
  backlogBytes?: number;
  /** Bytes queued on an attached console before lines are dropped. Default 1 MiB. */
  maxQueuedBytes?: number;
}

export interface LogConsoleStats {
  attached: string | null;
  forwarded: number;
  dropped: number;
  backlog: number;
}

/**
 * The dedicated console the agent's log goes to, so dom0 sees guest logs with no network (the
 * daemon writes it to `guest-NAME-N.log`), as win-xenbus logs through the PV console. Lines
 * written before the console is there wait in a bounded backlog; a console that does not keep
 * up loses whole lines (counted), never the agent's memory. Input from dom0 is read and dropped.
 */
export class LogConsole {
  readonly #backlogLimit: number;
  readonly #maxQueued: number;
  #stream: Duplex | null = null;
  #name: string | null = null;
  #backlog: string[] = [];
  #backlogBytes = 0;
  #forwarded = 0;
  #dropped = 0;
  readonly #onGone = () => this.detach();

  constructor(options: LogConsoleOptions = {}) {
    this.#backlogLimit = options.backlogBytes ?? 256 * 1024;
    this.#maxQueued = options.maxQueuedBytes ?? 1024 * 1024;
  }

  get attached(): string | null {
    return this.#name;
  }

  stats(): LogConsoleStats {
    return {
      attached: this.#name,
      forwarded: this.#forwarded,
      dropped: this.#dropped,
      backlog: this.#backlog.length,
    };
  }

  /** Starts writing to `stream` (the backlog first). A second attach replaces the first. */
  attach(stream: Duplex, name: string): void {
    this.detach();
    this.#stream = stream;
    this.#name = name;
    stream.on('data', () => {}); // dom0's input on the log console means nothing
    stream.once('close', this.#onGone);
    stream.once('end', this.#onGone);
    const backlog = this.#backlog;
    this.#backlog = [];
    this.#backlogBytes = 0;
    for (const line of backlog) this.#send(line);
  }

  /** Stops writing to the current console (it went away); lines collect in the backlog again. */
  detach(stream?: Duplex): void {
    const current = this.#stream;
    if (current === null || (stream !== undefined && stream !== current)) return;
    current.off('close', this.#onGone);
    current.off('end', this.#onGone);
    this.#stream = null;
    this.#name = null;
  }

  /** One line (without its newline). */
  writeLine(text: string): void {
    const line = `${text.replace(/[\r\n]+$/, '')}\n`;
    if (this.#stream !== null) {
      this.#send(line);
      return;
    }
    this.#backlog.push(line);
    this.#backlogBytes += line.length;
    while (this.#backlogBytes > this.#backlogLimit && this.#backlog.length > 0) {
      this.#backlogBytes -= this.#backlog.shift()?.length ?? 0;
      this.#dropped++;
    }
  }

  /** A log sink that writes formatted records here. */
  sink(): LogSink {
    return (record) => this.writeLine(formatLogLine(record));
  }

  #send(line: string): void {
    const stream = this.#stream;
    if (stream === null || stream.destroyed || !stream.writable) {
      this.#dropped++;
      return;
    }
    if (stream.writableLength > this.#maxQueued) {
      this.#dropped++;
      return;
    }
    stream.write(line, (error) => {
      if (error) this.#dropped++;
      else this.#forwarded++;
    });
  }
}
