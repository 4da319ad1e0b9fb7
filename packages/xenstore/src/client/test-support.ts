/** In-process doubles for client unit tests (not exported from the package). */
import { Duplex } from 'node:stream';
import { XsDecoder } from '../wire/decoder.js';
import { encodeMessage, type XsMessage } from '../wire/message.js';
import { streamTransport } from './stream-transport.js';
import type { XsTransport } from './transport.js';

/** Two connected in-memory duplex streams. */
export function duplexPair(): [Duplex, Duplex] {
  let a!: Duplex;
  let b!: Duplex;
  const make = (peer: () => Duplex) =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        peer().push(chunk);
        cb();
      },
      final(cb) {
        peer().push(null);
        cb();
      },
      destroy(err, cb) {
        const p = peer();
        if (!p.destroyed) p.push(null);
        cb(err);
      },
    });
  a = make(() => b);
  b = make(() => a);
  return [a, b];
}

/** What a scripted server does with one request: reply messages, raw bytes, or nothing. */
export type FakeHandler = (
  request: XsMessage,
  server: FakeServer,
) => XsMessage[] | Uint8Array | undefined;

/** A scripted xenstore server on an in-memory stream. */
export class FakeServer {
  readonly requests: XsMessage[] = [];
  connections = 0;
  #side: Duplex | null = null;
  handler: FakeHandler;

  constructor(handler: FakeHandler) {
    this.handler = handler;
  }

  transport(options: { maxPayload?: number; reconnect?: boolean } = {}): XsTransport {
    return streamTransport(
      () => {
        const [client, server] = duplexPair();
        this.#side = server;
        this.connections++;
        const decoder = new XsDecoder({ peer: 'fake client' });
        server.on('data', (chunk: Uint8Array) =>
          decoder.feed(chunk, (m) => {
            this.requests.push(m);
            const out = this.handler(m, this);
            if (out instanceof Uint8Array) server.write(out);
            else if (out !== undefined) for (const r of out) server.write(encodeMessage(r));
          }),
        );
        return client;
      },
      { description: 'fake', ...options },
    );
  }

  /** Sends a message to the client unprompted (a watch event, a bogus reply). */
  send(m: XsMessage | Uint8Array): void {
    this.#side?.write(m instanceof Uint8Array ? m : encodeMessage(m));
  }

  /** Drops the connection as a crashing daemon would. */
  drop(): void {
    this.#side?.destroy();
  }
}

export const text = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));
export const reply = (
  req: XsMessage,
  payload: string | Uint8Array,
  type = req.type,
): XsMessage => ({
  type,
  reqId: req.reqId,
  txId: req.txId,
  payload: typeof payload === 'string' ? text(payload) : payload,
});
