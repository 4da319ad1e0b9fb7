import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { isXenconsError, XenconsError } from '@xencons/errors';
import { LineDecoder, type Reply, type Request } from '@xencons/sim-hypervisor';
import type { CreateDomainOptions, SimDomain, SimHost } from './host.js';

/** The host's control socket: `sim create|destroy|list|stop` from other processes. */
export function hostSocketPath(dir: string): string {
  return path.join(dir, 'host.sock');
}

/** Serves `host` on `DIR/host.sock` (mode 0600). `onStop` runs when a client asks to stop. */
export async function serveHostControl(host: SimHost, onStop: () => void): Promise<net.Server> {
  const socketPath = hostSocketPath(host.dir);
  fs.rmSync(socketPath, { force: true });
  const server = net.createServer((socket) => {
    const decoder = new LineDecoder();
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      let lines: string[];
      try {
        lines = decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const line of lines)
        void answer(host, line, onStop).then((reply) => socket.write(`${JSON.stringify(reply)}\n`));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  fs.chmodSync(socketPath, 0o600);
  return server;
}

async function answer(host: SimHost, line: string, onStop: () => void): Promise<Reply> {
  let request: Request;
  try {
    request = JSON.parse(line) as Request;
    if (!Number.isSafeInteger(request.id) || typeof request.op !== 'string')
      throw new Error('needs id and op');
  } catch (error) {
    return {
      id: 0,
      ok: false,
      code: 'EPROTO',
      message: `malformed request: ${(error as Error).message}`,
    };
  }
  const args = (request.args ?? {}) as Record<string, unknown>;
  try {
    switch (request.op) {
      case 'create': {
        const options: CreateDomainOptions = { name: String(args.name ?? '') };
        if (typeof args.cmd === 'string') options.cmd = args.cmd;
        if (Array.isArray(args.program)) options.program = args.program.map(String);
        return { id: request.id, ok: true, result: await host.createDomain(options) };
      }
      case 'destroy':
        await host.destroyDomain(String(args.domain ?? ''));
        return { id: request.id, ok: true, result: {} };
      case 'list':
        return { id: request.id, ok: true, result: { domains: host.list() } };
      case 'stop':
        setImmediate(onStop);
        return { id: request.id, ok: true, result: {} };
      default:
        return {
          id: request.id,
          ok: false,
          code: 'ENOSYS',
          message: `unknown operation ${request.op}`,
        };
    }
  } catch (error) {
    const code = isXenconsError(error) ? error.code : 'EIO';
    return { id: request.id, ok: false, code, message: (error as Error).message };
  }
}

/** A client of a running host's control socket. */
export class SimHostClient {
  private readonly pending = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  private nextId = 1;

  private constructor(private readonly socket: net.Socket) {
    const decoder = new LineDecoder();
    socket.on('data', (chunk: Buffer) => {
      for (const line of decoder.push(chunk)) {
        const reply = JSON.parse(line) as Reply;
        const waiter = this.pending.get(reply.id);
        if (!waiter) continue;
        this.pending.delete(reply.id);
        if (reply.ok) waiter.resolve(reply.result);
        else waiter.reject(new XenconsError(reply.code, reply.message));
      }
    });
    socket.on('close', () => {
      for (const waiter of this.pending.values()) {
        waiter.reject(new XenconsError('ECONNRESET', 'the simulated host closed the connection'));
      }
      this.pending.clear();
    });
    socket.on('error', () => {});
  }

  static connect(dir: string): Promise<SimHostClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(hostSocketPath(dir));
      socket.once('connect', () => resolve(new SimHostClient(socket)));
      socket.once('error', (cause) =>
        reject(
          new XenconsError('ERR_SIM_NOT_RUNNING', `no simulated host is running in ${dir}`, {
            cause,
          }),
        ),
      );
    });
  }

  private request<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.socket.write(`${JSON.stringify({ id, op, args })}\n`);
    });
  }

  create(options: { name: string; cmd?: string; program?: string[] }): Promise<SimDomain> {
    return this.request('create', { ...options });
  }

  async destroy(domain: string): Promise<void> {
    await this.request('destroy', { domain });
  }

  async list(): Promise<SimDomain[]> {
    return (await this.request<{ domains: SimDomain[] }>('list')).domains;
  }

  async stop(): Promise<void> {
    await this.request('stop');
  }

  close(): void {
    this.socket.destroy();
  }
}
