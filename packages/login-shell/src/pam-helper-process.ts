import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { LoginShellError } from './errors.js';
import { encodeFrame, FrameDecoder, type SessionEnd, type StageResult } from './pam-protocol.js';

export type PamEvent =
  | { type: 'prompt'; echo: boolean; text: string }
  | { type: 'message'; error: boolean; text: string }
  | { type: 'result'; result: StageResult }
  | { type: 'started'; pid: number }
  | { type: 'ended'; end: SessionEnd }
  /** The helper went away without saying how the session ended. */
  | { type: 'gone'; detail: string };

export interface PamHelperOptions {
  service: string;
  user: string;
  /** PAM_TTY: the pty the shell will run on. */
  tty: string;
  /** The pty slave; the helper gets its own copy (close ours after `start`). */
  slaveFd: number;
  /** Environment for the shell before PAM's (PATH, TERM, extras). */
  env: Record<string, string>;
  allowNullPassword?: boolean;
  /** Path of pam-helper.mjs / pam-helper.js; found next to this module by default. */
  helperPath?: string;
}

/** Where the helper script is: next to this module in src/ (`.mjs`) or dist/ (`.js`). */
export function defaultPamHelperPath(): string {
  for (const name of ['pam-helper.js', 'pam-helper.mjs']) {
    const path = fileURLToPath(new URL(`./${name}`, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new LoginShellError(
    'ERR_LOGIN_BACKEND_UNAVAILABLE',
    `the PAM helper script is missing next to ${fileURLToPath(import.meta.url)}; pass pamHelper`,
  );
}

/**
 * One PAM login in a helper process (see pam-helper.mjs for why): its events in order through
 * `next()`, answers through `answer()`. The helper runs with our privileges (root for PAM).
 */
export class PamHelperProcess {
  readonly #child: ChildProcess;
  readonly #conv: Duplex;
  readonly #decoder = new FrameDecoder();
  readonly #queue: PamEvent[] = [];
  #waiter: ((e: PamEvent) => void) | null = null;
  #stderr = '';
  #finished = false;
  readonly exited: Promise<void>;

  private constructor(child: ChildProcess) {
    this.#child = child;
    this.#conv = child.stdio[3] as Duplex;
    this.#conv.on('data', (chunk: Buffer) => {
      let frames: ReturnType<FrameDecoder['feed']>;
      try {
        frames = this.#decoder.feed(chunk);
      } catch (err) {
        this.#push({ type: 'gone', detail: (err as Error).message });
        this.kill();
        return;
      }
      for (const f of frames) this.#frame(f.kind, f.payload);
    });
    this.#conv.on('error', () => {});
    child.stderr?.on('data', (c: Buffer) => {
      if (this.#stderr.length < 4096) this.#stderr += c.toString();
    });
    this.exited = new Promise((resolve) => {
      child.on('close', (code, signal) => {
        if (!this.#finished) {
          const why = signal ? `signal ${signal}` : `status ${code}`;
          this.#push({
            type: 'gone',
            detail: `PAM helper exited with ${why}: ${this.#stderr.trim()}`,
          });
        }
        resolve();
      });
      child.on('error', (err) => {
        this.#push({ type: 'gone', detail: `PAM helper failed to start: ${err.message}` });
        resolve();
      });
    });
  }

  static start(options: PamHelperOptions): PamHelperProcess {
    const helper = options.helperPath ?? defaultPamHelperPath();
    const config = {
      service: options.service,
      user: options.user,
      tty: options.tty,
      env: options.env,
      allowNullPassword: options.allowNullPassword === true,
    };
    const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
    for (const k of ['XENCONS_NATIVE', 'XENCONS_NATIVE_PATH']) {
      const v = process.env[k];
      if (v !== undefined) env[k] = v;
    }
    const child = spawn(process.execPath, [helper, JSON.stringify(config)], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', options.slaveFd],
      env,
    });
    return new PamHelperProcess(child);
  }

  /** The next event (waits for it). After `ended` or `gone` there are no more. */
  next(): Promise<PamEvent> {
    const e = this.#queue.shift();
    if (e) return Promise.resolve(e);
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  /** Answers the pending prompt; the caller zeroes `answer` afterwards (we copy it into a frame we zero). */
  answer(answer: Uint8Array): void {
    const frame = encodeFrame('A', answer);
    this.#conv.write(frame, () => frame.fill(0));
  }

  /** Cancels the pending prompt (the PAM call fails with PAM_CONV_ERR). */
  cancel(): void {
    this.#conv.write(encodeFrame('C', new Uint8Array(0)));
  }

  /** Ends the helper (and with it any PAM transaction in progress). */
  kill(): void {
    if (this.#child.exitCode === null && this.#child.signalCode === null)
      this.#child.kill('SIGTERM');
  }

  #frame(kind: string, payload: Buffer): void {
    switch (kind) {
      case 'P':
      case 'p':
        this.#push({ type: 'prompt', echo: kind === 'p', text: payload.toString('utf8') });
        return;
      case 'E':
      case 'I':
        this.#push({ type: 'message', error: kind === 'E', text: payload.toString('utf8') });
        return;
      case 'R': {
        const result = JSON.parse(payload.toString('utf8')) as StageResult;
        // A failed stage is the helper's last word.
        if (!result.ok) this.#finished = true;
        this.#push({ type: 'result', result });
        return;
      }
      case 'S':
        this.#push({
          type: 'started',
          pid: (JSON.parse(payload.toString('utf8')) as { pid: number }).pid,
        });
        return;
      case 'X':
        this.#finished = true;
        this.#push({ type: 'ended', end: JSON.parse(payload.toString('utf8')) as SessionEnd });
        return;
      default:
        this.#push({
          type: 'gone',
          detail: `unknown frame ${JSON.stringify(kind)} from the PAM helper`,
        });
        this.kill();
    }
  }

  #push(e: PamEvent): void {
    if (e.type === 'gone') this.#finished = true;
    const w = this.#waiter;
    if (w) {
      this.#waiter = null;
      w(e);
    } else {
      this.#queue.push(e);
    }
  }
}
