import { channel } from 'node:diagnostics_channel';

/**
 * `node:diagnostics_channel` channels of the client. Nothing is logged; subscribe to observe.
 * Messages are plain objects; `client` is the publishing {@link XenstoreClient}'s `description`.
 */
export const xsChannels = {
  /** `{ client, type, reqId, txId }` when a request is queued for sending. */
  request: channel('xencons:xenstore:request'),
  /** `{ client, type, reqId, txId, error? }` when a reply (or error reply) arrives. */
  reply: channel('xencons:xenstore:reply'),
  /** `{ client, path, token }` for every watch event received. */
  watchEvent: channel('xencons:xenstore:watch-event'),
  /** `{ client, token, path, dropped }` when a watch queue overflowed and an event was dropped. */
  watchDrop: channel('xencons:xenstore:watch-drop'),
  /** `{ client }` after a connection (or reconnection) is established. */
  connect: channel('xencons:xenstore:connect'),
  /** `{ client, error }` when the connection is lost. */
  disconnect: channel('xencons:xenstore:disconnect'),
  /** `{ client, attempt, delay }` before each reconnection attempt. */
  reconnect: channel('xencons:xenstore:reconnect'),
  /** `{ client, attempt, delay, error }` when a transaction is retried. */
  transactionRetry: channel('xencons:xenstore:transaction-retry'),
} as const;
