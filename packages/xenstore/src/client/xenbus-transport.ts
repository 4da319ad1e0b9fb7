import { constants, existsSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { XenconsError } from '@xencons/errors';
import { XsWriter } from '../wire/message.js';
import { XENBUS_DEV_PAYLOAD_MAX, XsType } from '../wire/types.js';
import type { XsTransport, XsTransportConnection, XsTransportSink } from './transport.js';

export const XENBUS_DEVICE_PATHS = ['/dev/xen/xenbus', '/proc/xen/xenbus'] as const;

/** The first of `/dev/xen/xenbus`, `/proc/xen/xenbus` that exists, or undefined. */
export function findXenbusDevice(): string | undefined {
  return XENBUS_DEVICE_PATHS.find((p) => existsSync(p));
}

/**
 * The Linux kernel's xenstore device (`/dev/xen/xenbus`, else `/proc/xen/xenbus`): same framing
 * as the socket, but a payload of at most 4080 bytes, watches emulated by the kernel (event
 * headers carry garbage req_id/tx_id, unknown UNWATCH is OK) and transactions tracked per fd.
 * Each write is one whole message. Reads block a libuv threadpool thread while the device is
 * open; `close()` wakes it with a harmless GET_DOMAIN_PATH before closing the fd.
 */
export function xenbusTransport(path: string | undefined = findXenbusDevice()): XsTransport {
  const device = path ?? XENBUS_DEVICE_PATHS[0];
  return {
    description: `xenbus:${device}`,
    maxPayload: XENBUS_DEV_PAYLOAD_MAX,
    reconnectByDefault: false,
    async open(sink: XsTransportSink): Promise<XsTransportConnection> {
      let fh: FileHandle;
      try {
        fh = await open(device, constants.O_RDWR);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? 'ERR_XS_CONNECT';
        throw new XenconsError(code, `cannot open ${device}: ${(err as Error).message}`, {
          cause: err,
          details: { path: device },
        });
      }
      let closing = false;
      let writes: Promise<unknown> = Promise.resolve();
      const readLoop = async () => {
        const buf = Buffer.allocUnsafe(65536);
        for (;;) {
          let n: number;
          try {
            ({ bytesRead: n } = await fh.read(buf, 0, buf.length, null));
          } catch (err) {
            if (!closing) {
              sink.closed(
                new XenconsError(
                  'ERR_XS_CLOSED',
                  `read from ${device} failed: ${(err as Error).message}`,
                  {
                    cause: err,
                  },
                ),
              );
            }
            break;
          }
          if (closing) break;
          if (n === 0) {
            sink.closed(new XenconsError('ERR_XS_CLOSED', `${device} reported end of file`));
            break;
          }
          sink.data(Buffer.from(buf.subarray(0, n)));
        }
        await fh.close().catch(() => {});
      };
      void readLoop();
      /** Messages must reach the kernel one write() each, in order. */
      const writeMessages = (bytes: Uint8Array) => {
        let at = 0;
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        while (at + 16 <= bytes.length) {
          const len = view.getUint32(at + 12, true);
          const one = bytes.subarray(at, at + 16 + len);
          at += 16 + len;
          writes = writes.then(() =>
            fh.write(one).catch((err: unknown) => {
              if (!closing) {
                sink.closed(
                  new XenconsError(
                    'ERR_XS_CLOSED',
                    `write to ${device} failed: ${(err as Error).message}`,
                    {
                      cause: err,
                    },
                  ),
                );
              }
            }),
          );
        }
      };
      return {
        write(bytes) {
          writeMessages(bytes);
          return true;
        },
        close() {
          if (closing) return;
          closing = true;
          // Wake the read blocked in the kernel: any request gets a reply.
          const ping = new XsWriter().begin(XsType.GET_DOMAIN_PATH, 0).string('0').end().flush();
          writes = writes.then(() => fh.write(ping).catch(() => {}));
        },
      };
    },
  };
}
