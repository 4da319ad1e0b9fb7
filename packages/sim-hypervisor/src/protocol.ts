/**
 * The control protocol: one JSON object per line over a unix stream socket.
 * Request `{"id":N,"op":"name","args":{...}}`; reply `{"id":N,"ok":true,"result":{...}}` or
 * `{"id":N,"ok":false,"code":"EACCES","message":"..."}`. The first request must be `hello`.
 */
export const MAX_LINE = 64 * 1024;

export interface Request {
  id: number;
  op: string;
  args?: Record<string, unknown>;
}

export type Reply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; code: string; message: string };

/** Splits a byte stream into lines; a line longer than `MAX_LINE` is a protocol error. */
export class LineDecoder {
  private pending = '';

  /** Returns the complete lines in `chunk`; throws when a line exceeds the limit. */
  push(chunk: Buffer): string[] {
    const text = this.pending + chunk.toString('utf8');
    const lines = text.split('\n');
    this.pending = lines.pop() ?? '';
    if (this.pending.length > MAX_LINE) throw new RangeError(`line longer than ${MAX_LINE} bytes`);
    for (const line of lines) {
      if (line.length > MAX_LINE) throw new RangeError(`line longer than ${MAX_LINE} bytes`);
    }
    return lines.filter((line) => line.length > 0);
  }
}

/** A page region: `length` pages of `path` starting at byte `offset`. */
export interface PageRef {
  path: string;
  offset: number;
}

export interface DomainSummary {
  domid: number;
  name: string;
}
