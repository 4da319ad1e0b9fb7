import { chmodSync, createWriteStream, lstatSync, unlinkSync, type WriteStream } from 'node:fs';
import { createServer, type Server, Socket, type SocketConstructorOpts } from 'node:net';
import type { Duplex } from 'node:stream';
import { XenconsError } from '@xencons/errors';
import type { Connection } from './connection.js';
import { Xenstored, type XenstoredOptions } from './daemon.js';
import { duplexPair } from './duplex-pair.js';

export interface StartOptions extends Omit<XenstoredOptions, 'trace'> {
  /** Unix socket for dom0 tools (mode 0600, every connection is domid 0). Omit for none. */
  socketPath?: string;
  /** Appends a cxenstored-style trace of every request and reply to this file. */
  trace?: string;
}

export interface RunningXenstored {
  readonly daemon: Xenstored;
  readonly socketPath: string | undefined;
  /**
   * An in-process connection with the identity of `domid` (unprivileged unless 0 or the
   * privileged domain): write requests to the returned stream, read replies and events from it.
   */
  connectDomain(domid: number): Duplex;
  /** Serves a guest's ring (or any byte stream) as `domid`. */
  attachDomain(domid: number, stream: Duplex): Connection;
  /** Reopens the trace file (SIGHUP). */
  reopenTrace(): void;
  /** Stops listening, closes every connection and the trace; removes the socket file. */
  close(): Promise<void>;
}

/** Starts the reference xenstored in this process. */
export async function startXenstored(options: StartOptions = {}): Promise<RunningXenstored> {
  const { socketPath, trace, ...rest } = options;
  let tracePath = trace;
  let traceStream: WriteStream | undefined;
  const sink = (line: string) => traceStream?.write(`${line}\n`);
  const openTrace = () => {
    if (tracePath === undefined) return;
    traceStream?.end();
    traceStream = createWriteStream(tracePath, { flags: 'a', mode: 0o600 });
    traceStream.on('error', () => {});
    traceStream.write('\n***\n');
  };
  openTrace();
  const daemon: Xenstored = new Xenstored({
    ...rest,
    ...(trace === undefined ? {} : { trace: sink }),
    // CONTROL `logfile FILE`: trace there from now on (the daemon formats lines only when a
    // trace is open).
    traceFile: (path: string) => {
      tracePath = path;
      openTrace();
      daemon.setTrace(sink);
    },
  });
  let server: Server | undefined;
  const sockets = new Set<Socket>();
  if (socketPath !== undefined) {
    removeStaleSocket(socketPath);
    server = createServer({ allowHalfOpen: false, pauseOnConnect: true }, (accepted) => {
      let conn: Connection | undefined;
      const fed = readingIntoSharedBuffer(accepted, (bytes) => conn?.receive(bytes));
      const socket = fed ?? accepted;
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      conn = daemon.attach(socket, {
        kind: 'socket',
        domid: 0,
        label: 'socket',
        fedByCaller: fed !== undefined,
      });
      if (fed === undefined) socket.resume();
    });
    await new Promise<void>((resolve, reject) => {
      server!.once('error', (err) =>
        reject(
          new XenconsError(
            'ERR_XENSTORED_LISTEN',
            `xenstored: cannot listen on ${socketPath}: ${err.message}`,
            { cause: err },
          ),
        ),
      );
      server!.listen(socketPath, () => resolve());
    });
    chmodSync(socketPath, 0o600);
  }
  let closed = false;
  return {
    daemon,
    socketPath,
    connectDomain(domid: number): Duplex {
      const [client, serverSide] = duplexPair();
      daemon.attach(serverSide, { kind: 'domain', domid });
      return client;
    },
    attachDomain(domid: number, stream: Duplex): Connection {
      return daemon.attach(stream, { kind: 'domain', domid });
    },
    reopenTrace: openTrace,
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      daemon.closeAll('daemon shutting down');
      for (const s of sockets) s.destroy();
      if (server !== undefined) {
        await new Promise<void>((resolve) => server!.close(() => resolve()));
      }
      if (traceStream !== undefined) {
        const t = traceStream;
        await new Promise<void>((resolve) => t.end(() => resolve()));
      }
    },
  };
}

/** cxenstored unlinks the old socket before binding; only a socket is ever removed. */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // absent: nothing to remove
  }
}

/**
 * One buffer every socket connection reads into: a connection handles a read at once (and copies
 * the bytes of an incomplete request), so nothing refers to it after the callback.
 */
const sharedReadBuffer = Buffer.allocUnsafe(64 * 1024);

/**
 * The accepted (paused) socket as a socket that reads into {@link sharedReadBuffer} and hands
 * each read to `receive` (`net.Socket`'s `onread`): no buffer, stream chunk or `data` event per
 * read. `net.Server` has no `onread` option, so the accepted socket's handle moves to a new
 * Socket; undefined (the accepted socket stays in use) where that handle cannot be reached.
 */
function readingIntoSharedBuffer(
  accepted: Socket,
  receive: (bytes: Uint8Array) => void,
): Socket | undefined {
  const holder = accepted as unknown as { _handle?: object | null };
  const handle = holder._handle;
  if (handle === null || typeof handle !== 'object') return undefined;
  let socket: Socket;
  try {
    socket = new Socket({
      handle,
      allowHalfOpen: false,
      readable: true,
      writable: true,
      onread: {
        buffer: sharedReadBuffer,
        callback: (n: number, buf: Uint8Array) => {
          receive(buf.subarray(0, n));
          return true;
        },
      },
    } as SocketConstructorOpts);
  } catch {
    return undefined;
  }
  // The accepted socket lets go of the handle and ends without closing it (which also ends the
  // server's count of it, so `server.close()` does not wait for it).
  holder._handle = null;
  accepted.destroy();
  return socket;
}
