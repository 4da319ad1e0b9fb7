/**
 * Asking the terminal at the far end of a console for its size: a serial or PV console carries
 * no SIGWINCH and no size, so, like resize(1) and systemd ≥ 257, we ask.
 *
 * One write carries both questions:
 * - `CSI 18 t` (xterm window ops): the answer is `CSI 8 ; rows ; cols t`. Exact, but many
 *   terminals (xterm.js by default) ignore it;
 * - the cursor-position probe: save the cursor, reset the scroll region, move to 999;999 (the
 *   terminal clamps it to its bottom-right corner), ask for the position with `CSI 6 n`, restore.
 *   The answer is `CSI rows ; cols R`. Every VT100-class terminal answers this one.
 *
 * Terminals answer in order, so the CPR answer ends the probe; a `CSI 18 t` answer seen before
 * it wins. With no answer at all the probe gives up after a short timeout (systemd #43735: on a
 * line with nothing attached every probe costs its whole timeout, so it can be turned off).
 */
export interface TermSize {
  cols: number;
  rows: number;
}

export const SIZE_QUERY = '\x1b[18t\x1b7\x1b[r\x1b[999;999H\x1b[6n\x1b8';

/** Sizes outside this are not believed (a garbled or hostile answer). */
const MAX_DIM = 9999;

export type SizeReply = { kind: 'xterm' | 'cpr'; size: TermSize };

/**
 * Filters answers out of an input byte stream: bytes that are part of an answer are removed,
 * everything else passes through unchanged and in order. A sequence that starts like an answer
 * but turns out not to be one is passed through whole. Feed in any chunking.
 */
export class SizeReplyFilter {
  /** Bytes of a possible answer seen so far (ESC, '[', digits and ';'). */
  #held: number[] = [];

  feed(chunk: Uint8Array): { pass: Buffer; replies: SizeReply[] } {
    const pass: number[] = [];
    const replies: SizeReply[] = [];
    for (const b of chunk) {
      const h = this.#held;
      if (h.length === 0) {
        if (b === 0x1b) h.push(b);
        else pass.push(b);
        continue;
      }
      if (h.length === 1) {
        if (b === 0x5b) {
          h.push(b);
        } else {
          pass.push(...h.splice(0));
          if (b === 0x1b) h.push(b);
          else pass.push(b);
        }
        continue;
      }
      if ((b >= 0x30 && b <= 0x39) || b === 0x3b) {
        if (h.length < 24) {
          h.push(b);
          continue;
        }
      } else if (b === 0x74 || b === 0x52) {
        const reply = parseReply(String.fromCharCode(...h.slice(2)), b === 0x74 ? 't' : 'R');
        if (reply) {
          replies.push(reply);
          h.length = 0;
          continue;
        }
      }
      pass.push(...h.splice(0));
      if (b === 0x1b) h.push(b);
      else pass.push(b);
    }
    return { pass: Buffer.from(pass), replies };
  }

  /** Bytes held as a possible answer (give them back when the probe ends). */
  release(): Buffer {
    return Buffer.from(this.#held.splice(0));
  }
}

function parseReply(params: string, final: 't' | 'R'): SizeReply | null {
  const parts = params.split(';');
  if (final === 't') {
    if (parts.length !== 3 || parts[0] !== '8') return null;
    const size = dims(parts[1]!, parts[2]!);
    return size && { kind: 'xterm', size };
  }
  if (parts.length !== 2) return null;
  const size = dims(parts[0]!, parts[1]!);
  return size && { kind: 'cpr', size };
}

function dims(rows: string, cols: string): TermSize | null {
  const r = Number(rows);
  const c = Number(cols);
  if (
    !Number.isInteger(r) ||
    !Number.isInteger(c) ||
    r < 1 ||
    c < 1 ||
    r > MAX_DIM ||
    c > MAX_DIM
  ) {
    return null;
  }
  return { cols: c, rows: r };
}

/**
 * Tracks one probe: feed input while it runs; `done` once the CPR answer came; `size` is the
 * best answer so far (xterm's over CPR).
 */
export class SizeProbe {
  readonly filter = new SizeReplyFilter();
  #xterm: TermSize | null = null;
  #cpr: TermSize | null = null;

  feed(chunk: Uint8Array): Buffer {
    const { pass, replies } = this.filter.feed(chunk);
    for (const r of replies) {
      if (r.kind === 'xterm') this.#xterm = r.size;
      else this.#cpr = r.size;
    }
    return pass;
  }

  get done(): boolean {
    return this.#cpr !== null;
  }

  get size(): TermSize | null {
    return this.#xterm ?? this.#cpr;
  }
}
