import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

type Env = Readonly<Record<string, string | undefined>>;

/** A request on the control socket: one JSON line. */
export type ControlRequest = { op: 'debug'; key: string } | { op: 'status' };

/** The answer: one JSON line, then the agent closes the connection. */
export type ControlReply =
  | { ok: true; lines: string[] }
  | { ok: true; status: unknown }
  | { ok: false; error: string };

const MAX_REQUEST = 4096;

/**
 * Where the agent listens for `xencons-agent debug|status`: `XENCONS_AGENT_SOCKET`; on the
 * simulated host `DIR/agent-DOMID.sock`; as root `/run/xencons-agent.sock`; otherwise
 * `$XDG_RUNTIME_DIR/xencons-agent.sock` or `/tmp/xencons-agent-UID.sock`.
 */
export function defaultControlSocket(env: Env): string {
  if (env.XENCONS_AGENT_SOCKET) return env.XENCONS_AGENT_SOCKET;
  if (env.XENCONS_SIM && env.XENCONS_SIM_DOMID)
    return path.join(path.resolve(env.XENCONS_SIM), `agent-${env.XENCONS_SIM_DOMID}.sock`);
  if (process.getuid?.() === 0) return '/run/xencons-agent.sock';
  if (env.XDG_RUNTIME_DIR) return path.join(env.XDG_RUNTIME_DIR, 'xencons-agent.sock');
  return path.join(os.tmpdir(), `xencons-agent-${os.userInfo().uid}.sock`);
}

function parseRequest(text: string): ControlRequest | null {
  try {
    const v = JSON.parse(text) as { op?: unknown; key?: unknown };
    if (v.op === 'status') return { op: 'status' };
    if (v.op === 'debug' && typeof v.key === 'string' && v.key.length === 1)
      return { op: 'debug', key: v.key };
  } catch {
    // not JSON
  }
  return null;
}

/** Serves the control socket (mode 0600: the agent's own user only). */
export async function serveControl(
  socketPath: string,
  handle: (request: ControlRequest) => Promise<ControlReply>,
): Promise<net.Server> {
  fs.mkdirSync(path.dirname(socketPath), { recursive: true });
  fs.rmSync(socketPath, { force: true });
  const server = net.createServer((socket) => {
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('error', () => {});
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const nl = buffer.indexOf('\n');
      if (nl < 0) {
        if (buffer.length > MAX_REQUEST) socket.destroy();
        return;
      }
      socket.removeAllListeners('data');
      const request = parseRequest(buffer.slice(0, nl));
      const reply: Promise<ControlReply> =
        request === null
          ? Promise.resolve({ ok: false, error: 'bad request' })
          : handle(request).catch((error) => ({ ok: false, error: (error as Error).message }));
      void reply.then((r) => socket.end(`${JSON.stringify(r)}\n`));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  fs.chmodSync(socketPath, 0o600);
  server.unref();
  return server;
}

/** Sends one request to a running agent. */
export function askAgent(
  socketPath: string,
  request: ControlRequest,
  timeoutMs = 10_000,
): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the agent at ${socketPath} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      try {
        resolve(JSON.parse(text) as ControlReply);
      } catch {
        reject(
          new Error(`the agent at ${socketPath} answered ${JSON.stringify(text.slice(0, 80))}`),
        );
      }
    });
  });
}
