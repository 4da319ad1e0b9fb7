import * as net from 'node:net';
import { XenconsError } from '@xencons/errors';
import type { AttachRequest, ConsoleSummary, DaemonReply } from './protocol.js';

/** Sends one request line and reads the reply line; the socket stays open for attach. */
function request(
  socketPath: string,
  body: object,
): Promise<{ reply: DaemonReply; socket: net.Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let buffered = Buffer.alloc(0);
    const fail = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.once('error', (cause) =>
      fail(
        new XenconsError(
          'ERR_DAEMON_UNREACHABLE',
          `no console daemon answers on ${socketPath} (start one with: xencons daemon)`,
          { cause },
        ),
      ),
    );
    socket.once('connect', () => socket.write(`${JSON.stringify(body)}\n`));
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const newline = buffered.indexOf(0x0a);
      if (newline < 0) {
        if (buffered.length > 1 << 20)
          fail(new XenconsError('EPROTO', 'the daemon sent an over-long reply'));
        return;
      }
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      let reply: DaemonReply;
      try {
        reply = JSON.parse(buffered.subarray(0, newline).toString('utf8')) as DaemonReply;
      } catch {
        fail(new XenconsError('EPROTO', 'the daemon sent a malformed reply'));
        return;
      }
      socket.removeAllListeners('error');
      socket.on('error', () => {});
      resolve({ reply, socket, rest: buffered.subarray(newline + 1) });
    };
    const onEnd = () =>
      fail(new XenconsError('EPROTO', 'the daemon closed the connection without a reply'));
    socket.on('data', onData);
    socket.once('end', onEnd);
  });
}

export async function listConsoles(socketPath: string): Promise<ConsoleSummary[]> {
  const { reply, socket } = await request(socketPath, { op: 'list' });
  socket.destroy();
  if (!reply.ok) throw new XenconsError(reply.code, reply.message);
  if (!('consoles' in reply)) throw new XenconsError('EPROTO', 'unexpected reply to list');
  return reply.consoles;
}

export interface Attached {
  socket: net.Socket;
  console: { domid: number; name: string; num: number };
  writer: boolean;
  /** Console bytes that arrived with the reply (replay); deliver them before the socket's data. */
  first: Buffer;
}

/** Attaches to a console; the socket then carries raw console bytes both ways. */
export async function attachConsole(
  socketPath: string,
  attach: Omit<AttachRequest, 'op'>,
): Promise<Attached> {
  const { reply, socket, rest } = await request(socketPath, { op: 'attach', ...attach });
  if (!reply.ok) {
    socket.destroy();
    throw new XenconsError(reply.code, reply.message);
  }
  if (!('console' in reply)) {
    socket.destroy();
    throw new XenconsError('EPROTO', 'unexpected reply to attach');
  }
  return { socket, console: reply.console, writer: reply.writer, first: rest };
}
