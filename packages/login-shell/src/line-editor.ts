import { graphemeWidth } from './text-width.js';

/**
 * The pre-login line discipline: what the kernel's canonical mode does for a getty, done in JS
 * because the console may be any byte stream (a Xen ring, a socket) with no tty in between.
 *
 * - Printable bytes are stored (valid UTF-8 only; a broken sequence is dropped) and echoed
 *   when `echo` is on. Nothing of the line is ever echoed when it is off.
 * - Backspace (0x08) and DEL (0x7f) erase the last character: a grapheme cluster with echo
 *   (the echo erases as many columns as it took), a code point without (the line is never
 *   decoded into a string then).
 * - Ctrl-U erases the line, Ctrl-W the last word, Ctrl-C interrupts, Ctrl-D on an empty line is
 *   end of input. Other control bytes and escape sequences (arrow and function keys: CSI, SS3,
 *   Alt+key) are ignored.
 * - CR, LF and CRLF each end one line; the LF of a CRLF split across chunks, or across two
 *   prompts (see `skipLeadingLf`), is dropped.
 * - At most `maxBytes` bytes; bytes beyond ring the bell instead. The buffer has that fixed size,
 *   so a secret is never copied by growth, and `wipe()` zeroes it.
 */
export interface LineEditorOptions {
  echo: boolean;
  maxBytes: number;
  /** Drop one LF before anything else: the rest of a CRLF whose CR ended the previous line. */
  skipLeadingLf?: boolean;
}

export type LineEvent =
  /** `line` is a view of the editor's buffer: use it, then `wipe()` the editor. */
  | {
      type: 'line';
      line: Buffer;
      /**
       * The line ended with a CR that was the chunk's last byte: an LF may still come (CRLF split
       * across reads). Pass it on as the next reader's `skipLeadingLf`.
       */
      awaitingLf: boolean;
    }
  | { type: 'interrupt' }
  | { type: 'eof' };

export interface FeedResult {
  /** Bytes of the chunk used; the rest belongs to whoever reads next (typeahead). */
  consumed: number;
  /** What to write back to the terminal. */
  echo: Buffer;
  /** Set when the line is complete or abandoned; the editor takes no more input after it. */
  event: LineEvent | null;
}

const BEL = 0x07;
const BS = 0x08;
const LF = 0x0a;
const CR = 0x0d;
const ESC = 0x1b;
const DEL = 0x7f;
const CTRL_C = 0x03;
const CTRL_D = 0x04;
const CTRL_U = 0x15;
const CTRL_W = 0x17;

const segmenter = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

type EscapeState = 'none' | 'esc' | 'csi' | 'ss3';

export class LineEditor {
  readonly #echo: boolean;
  readonly #buf: Buffer;
  #len = 0;
  /** Bytes of an incomplete UTF-8 sequence at the end of #buf (not echoed yet). */
  #pending = 0;
  /** Bytes that still complete that sequence. */
  #need = 0;
  /** Continuation bytes to drop (a sequence that did not fit). */
  #dropping = 0;
  #escape: EscapeState = 'none';
  #skipLf: boolean;
  #done = false;

  constructor(options: LineEditorOptions) {
    if (!Number.isInteger(options.maxBytes) || options.maxBytes < 1) {
      throw new RangeError(`maxBytes must be a positive integer, got ${options.maxBytes}`);
    }
    this.#echo = options.echo;
    this.#buf = Buffer.alloc(options.maxBytes);
    this.#skipLf = options.skipLeadingLf === true;
  }

  /** Bytes in the line so far (complete characters only). */
  get length(): number {
    return this.#len - this.#pending;
  }

  get done(): boolean {
    return this.#done;
  }

  /** Feeds input; stops at the first event. */
  feed(chunk: Uint8Array): FeedResult {
    const echo: number[] = [];
    let i = 0;
    let event: LineEvent | null = null;
    while (i < chunk.length && !this.#done) {
      const b = chunk[i++]!;
      const skipLf = this.#skipLf;
      this.#skipLf = false;
      if (b === LF && skipLf) continue;
      event = this.#byte(b, echo);
      if (event) this.#done = true;
    }
    // The LF of a CRLF in the same chunk belongs to this line.
    if (event?.type === 'line' && event.awaitingLf) {
      if (chunk[i] === LF) {
        i++;
        event.awaitingLf = false;
      } else if (i < chunk.length) {
        event.awaitingLf = false;
      }
    }
    return { consumed: i, echo: Buffer.from(echo), event };
  }

  /** Zeroes the buffer (call after using a line that held a secret). */
  wipe(): void {
    this.#buf.fill(0);
    this.#len = 0;
    this.#pending = 0;
  }

  #byte(b: number, echo: number[]): LineEvent | null {
    if (this.#escape !== 'none') {
      this.#escapeByte(b);
      return null;
    }
    if (this.#dropping > 0) {
      if (b >= 0x80 && b <= 0xbf) {
        this.#dropping--;
        return null;
      }
      this.#dropping = 0;
    }
    if (this.#need > 0) {
      if (b >= 0x80 && b <= 0xbf && this.#continuationOk(b)) {
        this.#buf[this.#len++] = b;
        this.#pending++;
        if (--this.#need === 0) {
          if (this.#echo)
            for (let k = this.#len - this.#pending; k < this.#len; k++) echo.push(this.#buf[k]!);
          this.#pending = 0;
        }
        return null;
      }
      this.#dropPending();
    }
    if (b === CR || b === LF) {
      this.#dropPending();
      echo.push(CR, LF);
      return { type: 'line', line: this.#buf.subarray(0, this.#len), awaitingLf: b === CR };
    }
    if (b === CTRL_C) {
      echo.push(0x5e, 0x43, CR, LF); // ^C
      this.wipe();
      return { type: 'interrupt' };
    }
    if (b === CTRL_D) {
      if (this.length === 0) {
        echo.push(CR, LF);
        return { type: 'eof' };
      }
      return null;
    }
    if (b === BS || b === DEL) {
      this.#erase(echo);
      return null;
    }
    if (b === CTRL_U) {
      while (this.length > 0) this.#erase(echo);
      return null;
    }
    if (b === CTRL_W) {
      this.#eraseWord(echo);
      return null;
    }
    if (b === ESC) {
      this.#escape = 'esc';
      return null;
    }
    if (b < 0x20) return null;
    if (b < 0x80) {
      if (this.#len >= this.#buf.length) {
        echo.push(BEL);
        return null;
      }
      this.#buf[this.#len++] = b;
      if (this.#echo) echo.push(b);
      return null;
    }
    // A UTF-8 lead byte: 2, 3 or 4 bytes in all (C0, C1 and F5..FF never start a sequence).
    const need =
      b >= 0xc2 && b <= 0xdf ? 1 : b >= 0xe0 && b <= 0xef ? 2 : b >= 0xf0 && b <= 0xf4 ? 3 : -1;
    if (need < 0) return null;
    if (this.#len + need + 1 > this.#buf.length) {
      echo.push(BEL);
      this.#dropping = need;
      return null;
    }
    this.#buf[this.#len++] = b;
    this.#pending = 1;
    this.#need = need;
    return null;
  }

  /** The second byte of E0, ED, F0 and F4 sequences is restricted (no overlongs, no surrogates, ≤ U+10FFFF). */
  #continuationOk(b: number): boolean {
    if (this.#pending !== 1) return true;
    const lead = this.#buf[this.#len - 1]!;
    if (lead === 0xe0) return b >= 0xa0;
    if (lead === 0xed) return b <= 0x9f;
    if (lead === 0xf0) return b >= 0x90;
    if (lead === 0xf4) return b <= 0x8f;
    return true;
  }

  #dropPending(): void {
    if (this.#pending === 0) return;
    this.#buf.fill(0, this.#len - this.#pending, this.#len);
    this.#len -= this.#pending;
    this.#pending = 0;
    this.#need = 0;
  }

  #escapeByte(b: number): void {
    if (this.#escape === 'esc') {
      this.#escape = b === 0x5b ? 'csi' : b === 0x4f ? 'ss3' : 'none';
      return;
    }
    if (this.#escape === 'ss3') {
      this.#escape = 'none';
      return;
    }
    // CSI: parameter and intermediate bytes until a final byte 0x40..0x7e.
    // Parameter (0x30..0x3f) and intermediate (0x20..0x2f) bytes continue it; a control byte or
    // anything above aborts it.
    if (b < 0x20 || b > 0x3f) this.#escape = 'none';
  }

  /** Removes the last character; echoes the erase when echo is on. */
  #erase(echo: number[]): void {
    this.#dropPending();
    if (this.#len === 0) return;
    let cut: number;
    let width = 1;
    if (this.#echo) {
      // Only the echoed (non-secret) line is ever decoded.
      const text = this.#buf.toString('utf8', 0, this.#len);
      let last = '';
      for (const s of segmenter.segment(text)) last = s.segment;
      cut = this.#len - Buffer.byteLength(last);
      width = graphemeWidth(last);
    } else {
      cut = this.#len - 1;
      while (cut > 0 && (this.#buf[cut]! & 0xc0) === 0x80) cut--;
    }
    this.#buf.fill(0, cut, this.#len);
    this.#len = cut;
    if (this.#echo) for (let k = 0; k < width; k++) echo.push(BS, 0x20, BS);
  }

  /** Ctrl-W: erases trailing spaces, then back to the previous space. */
  #eraseWord(echo: number[]): void {
    this.#dropPending();
    while (this.#len > 0 && this.#buf[this.#len - 1] === 0x20) this.#erase(echo);
    while (this.#len > 0 && this.#buf[this.#len - 1] !== 0x20) this.#erase(echo);
  }
}
