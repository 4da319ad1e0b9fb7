import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { encodeMessage, XsDecoder, XsType } from '@xencons/xenstore';

export interface Reply {
  readonly type: number;
  readonly reqId: number;
  readonly txId: number;
  /** Payload as latin1 text (byte exact). */
  readonly text: string;
}

/** A bare xenstore client for tests: raw requests, replies matched by req_id, events collected. */
export class TestClient {
  readonly stream: Duplex;
  readonly events: { path: string; token: string }[] = [];
  #reqId = 1;
  readonly #pending = new Map<number, (r: Reply) => void>();
  readonly #eventWaiters: (() => void)[] = [];
  readonly #decoder = new XsDecoder({ peer: 'test daemon' });
  closed = false;

  constructor(stream: Duplex) {
    this.stream = stream;
    stream.on('data', (chunk: Buffer) =>
      this.#decoder.feed(chunk, (m) => {
        const text = Buffer.from(m.payload).toString('latin1');
        if (m.type === XsType.WATCH_EVENT) {
          const [path = '', token = ''] = text.split('\0');
          this.events.push({ path, token });
          for (const w of this.#eventWaiters.splice(0)) w();
          return;
        }
        const r = { type: m.type, reqId: m.reqId, txId: m.txId, text };
        this.#pending.get(m.reqId)?.(r);
        this.#pending.delete(m.reqId);
      }),
    );
    stream.on('close', () => {
      this.closed = true;
    });
    stream.on('error', () => {});
  }

  static socket(path: string): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path, () => resolve(new TestClient(s)));
      s.once('error', reject);
    });
  }

  /** Encodes one request frame. */
  frame(type: number, payload: string, txId = 0, reqId = this.#reqId++): Buffer {
    return Buffer.from(
      encodeMessage({ type, reqId, txId, payload: Buffer.from(payload, 'latin1') }),
    );
  }

  /** Sends a request and resolves with its reply (an ERROR reply included). */
  request(type: number, payload: string, txId = 0): Promise<Reply> {
    const reqId = this.#reqId++;
    const p = new Promise<Reply>((resolve) => this.#pending.set(reqId, resolve));
    this.stream.write(this.frame(type, payload, txId, reqId));
    return p;
  }

  /** The reply to a request sent as raw bytes (see {@link frame}; its req_id at offset 4). */
  replyTo(frame: Buffer): Promise<Reply> {
    const reqId = frame.readUInt32LE(4);
    return new Promise<Reply>((resolve) => this.#pending.set(reqId, resolve));
  }

  /** Reply text, or `ERR:<errno>` for an error reply. */
  async call(type: number, payload: string, txId = 0): Promise<string> {
    const r = await this.request(type, payload, txId);
    return r.type === XsType.ERROR ? `ERR:${r.text.replace(/\0$/, '')}` : r.text;
  }

  read = (path: string, tx = 0) => this.call(XsType.READ, `${path}\0`, tx);
  write = (path: string, value: string, tx = 0) => this.call(XsType.WRITE, `${path}\0${value}`, tx);
  mkdir = (path: string, tx = 0) => this.call(XsType.MKDIR, `${path}\0`, tx);
  rm = (path: string, tx = 0) => this.call(XsType.RM, `${path}\0`, tx);
  dir = (path: string, tx = 0) => this.call(XsType.DIRECTORY, `${path}\0`, tx);
  getPerms = (path: string) => this.call(XsType.GET_PERMS, `${path}\0`);
  setPerms = (path: string, ...perms: string[]) =>
    this.call(XsType.SET_PERMS, `${path}\0${perms.map((p) => `${p}\0`).join('')}`);
  watch = (path: string, token: string) => this.call(XsType.WATCH, `${path}\0${token}\0`);
  unwatch = (path: string, token: string) => this.call(XsType.UNWATCH, `${path}\0${token}\0`);
  async start(): Promise<number> {
    const r = await this.call(XsType.TRANSACTION_START, '\0');
    if (r.startsWith('ERR:')) throw new Error(r);
    return Number(r.replace(/\0$/, ''));
  }
  end = (tx: number, commit: boolean) =>
    this.call(XsType.TRANSACTION_END, commit ? 'T\0' : 'F\0', tx);

  /** Resolves once at least `n` events have arrived (or after `ms`). */
  async waitEvents(n: number, ms = 2000): Promise<{ path: string; token: string }[]> {
    const deadline = Date.now() + ms;
    while (this.events.length < n && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.#eventWaiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.events;
  }

  /** Lets queued events arrive: a round trip after them flushes everything before it. */
  async settle(): Promise<void> {
    await this.call(XsType.GET_DOMAIN_PATH, '0\0');
  }

  close(): void {
    this.stream.destroy();
  }
}
