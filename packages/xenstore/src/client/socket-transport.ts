import { createConnection, type Socket } from 'node:net';
import { XenconsError } from '@xencons/errors';
import { XENSTORE_PAYLOAD_MAX } from '../wire/types.js';
import type { XsTransport, XsTransportConnection, XsTransportSink } from './transport.js';

/** The compiled-in run directory of Debian's xenstored (`/var/run` is a symlink to `/run`). */
export const XENSTORED_DEFAULT_RUNDIR = '/run/xenstored';

/**
 * The unix socket path as libxenstore computes it: `XENSTORED_PATH` overrides the whole path,
 * `XENSTORED_RUNDIR` the directory (`<rundir>/socket`), else `/run/xenstored/socket`.
 */
export function xenstoredSocketPath(
  env: Readonly<Record<string, string | undefined>> = process.env,
): string {
  const path = env.XENSTORED_PATH;
  if (path !== undefined && path !== '') return path;
  const dir = env.XENSTORED_RUNDIR;
  return `${dir !== undefined && dir !== '' ? dir : XENSTORED_DEFAULT_RUNDIR}/socket`;
}

/** xenstored's unix socket (dom0 tools); reconnects by default. */
export function socketTransport(path: string = xenstoredSocketPath()): XsTransport {
  return {
    description: `unix:${path}`,
    maxPayload: XENSTORE_PAYLOAD_MAX,
    reconnectByDefault: true,
    async open(sink: XsTransportSink): Promise<XsTransportConnection> {
      // cxenstored listens with a backlog of 1: simultaneous connects get EAGAIN. Retry briefly.
      for (let attempt = 1; ; attempt++) {
        try {
          return await connectOnce(path, sink);
        } catch (err) {
          if ((err as { code?: string }).code !== 'EAGAIN' || attempt >= CONNECT_EAGAIN_RETRIES)
            throw err;
          await new Promise((r) => setTimeout(r, Math.min(50, attempt * 2)));
        }
      }
    },
  };
}

/** What every socket connection reads into; see {@link XsTransportSink.data}. */
const sharedReadBuffer = Buffer.allocUnsafe(64 * 1024);

/** Connection attempts on EAGAIN (full listen backlog) before giving up, about 2 s in all. */
const CONNECT_EAGAIN_RETRIES = 60;

function connectOnce(path: string, sink: XsTransportSink): Promise<XsTransportConnection> {
  return new Promise((resolve, reject) => {
    // Reads land in one buffer shared by every connection (no buffer or stream chunk per read):
    // the client decodes each read at once and copies what it keeps.
    const socket: Socket = createConnection({
      path,
      onread: {
        buffer: sharedReadBuffer,
        callback: (n: number, buf: Uint8Array) => {
          sink.data(buf.subarray(0, n));
          return true;
        },
      },
    });
    let open = false;
    let closedByUs = false;
    let lastError: Error | undefined;
    socket.once('connect', () => {
      open = true;
      resolve({
        write: (bytes) => socket.write(bytes),
        close: () => {
          closedByUs = true;
          socket.destroy();
        },
      });
    });
    socket.on('drain', () => sink.drain());
    socket.on('error', (err) => {
      lastError = err;
      if (!open) {
        reject(
          new XenconsError(
            (err as NodeJS.ErrnoException).code ?? 'ERR_XS_CONNECT',
            `cannot connect to xenstored at ${path}: ${err.message}`,
            { cause: err, details: { path } },
          ),
        );
      }
    });
    let reported = false;
    const lost = () => {
      if (!open || closedByUs || reported) return;
      reported = true;
      // Report at EOF, not at 'close': in between, writes would be accepted and lost.
      socket.destroy();
      sink.closed(
        new XenconsError('ERR_XS_CLOSED', `xenstored at ${path} closed the connection`, {
          ...(lastError === undefined ? {} : { cause: lastError }),
          details: { path },
        }),
      );
    };
    socket.on('end', lost);
    socket.on('close', lost);
  });
}
