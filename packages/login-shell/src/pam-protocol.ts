/**
 * Frames between login-shell and its PAM helper process (and the native PAM conversation inside
 * it): `kind (1 byte) | length (u32 big-endian) | payload`.
 *
 * Helper → login-shell: `P` prompt without echo, `p` prompt with echo, `E` error message, `I`
 * information (payload: the text, from PAM), `R` a stage's result, `S` the shell started, `X` the
 * session ended (payload: JSON).
 * login-shell → helper: `A` the answer to a prompt (bytes), `C` cancel.
 */
export const FRAME_HEADER = 5;
/** Longest payload accepted from the helper (a long motd comes as one `I` message). */
export const MAX_FRAME_PAYLOAD = 1024 * 1024;

export interface Frame {
  kind: string;
  payload: Buffer;
}

export function encodeFrame(kind: string, payload: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER + payload.length);
  frame[0] = kind.charCodeAt(0);
  frame.writeUInt32BE(payload.length, 1);
  frame.set(payload, FRAME_HEADER);
  return frame;
}

/** A resumable decoder: feed chunks in any split, get whole frames. Throws on oversize frames. */
export class FrameDecoder {
  #buf: Buffer = Buffer.alloc(0);

  feed(chunk: Uint8Array): Frame[] {
    this.#buf = this.#buf.length === 0 ? Buffer.from(chunk) : Buffer.concat([this.#buf, chunk]);
    const frames: Frame[] = [];
    while (this.#buf.length >= FRAME_HEADER) {
      const len = this.#buf.readUInt32BE(1);
      if (len > MAX_FRAME_PAYLOAD) {
        throw new RangeError(
          `frame of ${len} bytes from the PAM helper exceeds ${MAX_FRAME_PAYLOAD}`,
        );
      }
      if (this.#buf.length < FRAME_HEADER + len) break;
      frames.push({
        kind: String.fromCharCode(this.#buf[0]!),
        payload: Buffer.from(this.#buf.subarray(FRAME_HEADER, FRAME_HEADER + len)),
      });
      this.#buf = this.#buf.subarray(FRAME_HEADER + len);
    }
    return frames;
  }
}

/** `R`: how a stage of the PAM transaction went. */
export interface StageResult {
  stage: 'start' | 'auth' | 'account' | 'chauthtok' | 'account-lookup' | 'setcred' | 'session';
  ok: boolean;
  /** The PAM status (0 = PAM_SUCCESS). */
  status: number;
  message: string;
  /** The failure delay PAM asked for (pam_faildelay), in ms. */
  delayMs: number;
  /** PAM_USER after the stage (modules may canonicalise it), when known. */
  user?: string;
}

/** `X`: how the shell ended, or why it did not start. */
export interface SessionEnd {
  exitCode: number | null;
  signal: number | null;
  error?: string;
}
