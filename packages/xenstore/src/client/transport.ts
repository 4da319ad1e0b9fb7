/** What a transport hands the client: bytes in, close notifications, write readiness. */
export interface XsTransportSink {
  /**
   * Bytes from the server (any chunking). The chunk is only valid during the call: a transport
   * may read the next bytes into the same memory, so keep a copy of anything kept.
   */
  data(chunk: Uint8Array): void;
  /** The connection ended; `error` is set unless it was closed on purpose. */
  closed(error: Error | undefined): void;
  /** A write that returned `false` has been flushed; writing may continue. */
  drain(): void;
}

/** One open connection of a transport. */
export interface XsTransportConnection {
  /** Queues whole messages; `false` means the caller should wait for `drain`. */
  write(bytes: Uint8Array): boolean;
  /** Closes the connection; `closed` is not called for a close requested here. */
  close(): void;
}

/**
 * A way to reach xenstored: a unix socket, `/dev/xen/xenbus`, a guest's xenstore ring. `open` may
 * be called again after a connection closed (reconnect).
 */
export interface XsTransport {
  /** Names the peer in errors and diagnostics, e.g. `unix:/run/xenstored/socket`. */
  readonly description: string;
  /** Largest payload the transport carries (4096; 4080 through `/dev/xen/xenbus`). */
  readonly maxPayload: number;
  /** Whether the client reconnects after an unexpected close unless told otherwise. */
  readonly reconnectByDefault: boolean;
  open(sink: XsTransportSink): Promise<XsTransportConnection>;
}
