import type { Duplex } from 'node:stream';
import { XenconsError } from '@xencons/errors';
import { XENSTORE_PAYLOAD_MAX } from '../wire/types.js';
import type { XsTransport, XsTransportConnection, XsTransportSink } from './transport.js';

/**
 * Any byte stream to a xenstore server (an in-process daemon's domain connection, a TCP relay, a
 * test double). `connect` is called for each (re)connection.
 */
export function streamTransport(
  connect: () => Duplex | Promise<Duplex>,
  options: { description?: string; maxPayload?: number; reconnect?: boolean } = {},
): XsTransport {
  const description = options.description ?? 'stream';
  return {
    description,
    maxPayload: options.maxPayload ?? XENSTORE_PAYLOAD_MAX,
    reconnectByDefault: options.reconnect ?? false,
    async open(sink: XsTransportSink): Promise<XsTransportConnection> {
      const stream = await connect();
      let closedByUs = false;
      let lastError: Error | undefined;
      stream.on('data', (chunk: Uint8Array) => sink.data(chunk));
      stream.on('drain', () => sink.drain());
      stream.on('error', (err: Error) => {
        lastError = err;
      });
      let reported = false;
      const lost = () => {
        if (closedByUs || reported) return;
        reported = true;
        stream.destroy();
        sink.closed(
          new XenconsError(
            'ERR_XS_CLOSED',
            `${description} closed`,
            lastError === undefined ? {} : { cause: lastError },
          ),
        );
      };
      stream.on('end', lost);
      stream.on('close', lost);
      return {
        write: (bytes) => stream.write(bytes),
        close: () => {
          closedByUs = true;
          stream.destroy();
        },
      };
    },
  };
}
