// The other domain of the conformance suite: a separate OS process holding its own grant-table
// handle, driven over stdin/stdout (peer-protocol.ts). Started by spawnPeer().
//
//   node dist/conformance/peer.js --backend linux [--domid N]
//   XENCONS_SIM=DIR XENCONS_SIM_DOMID=N XENCONS_SIM_TOKEN=T node dist/conformance/peer.js --backend sim
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { ForeignMapping, Gnttab, SharedPages } from '../gnttab.js';
import { openLinuxGnttab } from '../linux-gnttab.js';
import { openSimGnttab, type SimGnttabHostLike } from '../sim-gnttab.js';
import { errorInfo } from './peer-protocol.js';

type Args = Record<string, unknown>;

const send = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

async function open(backend: string, domid: string | undefined): Promise<Gnttab> {
  if (backend === 'linux') {
    return openLinuxGnttab(domid === undefined ? {} : { domid: Number(domid) });
  }
  if (backend === 'sim') {
    const sim = await import('@xencons/sim-hypervisor');
    const credentials = sim.simCredentialsFromEnv(process.env);
    if (credentials === null) throw new Error('XENCONS_SIM is not set');
    const hc = await sim.connectHypervisor(credentials);
    return openSimGnttab(hc as SimGnttabHostLike);
  }
  throw new Error(`unknown backend ${backend}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { backend: { type: 'string', default: 'linux' }, domid: { type: 'string' } },
  });
  let gnttab: Gnttab;
  try {
    gnttab = await open(values.backend, values.domid);
  } catch (err) {
    send({ ready: false, error: errorInfo(err) });
    process.exitCode = 1;
    return;
  }
  const held = new Map<number, SharedPages | ForeignMapping>();
  let next = 1;
  const keep = (r: SharedPages | ForeignMapping) => {
    const handle = next++;
    held.set(handle, r);
    return handle;
  };
  const get = (args: Args) => {
    const r = held.get(Number(args.handle));
    if (!r) throw Object.assign(new Error(`no handle ${String(args.handle)}`), { code: 'EBADF' });
    return r;
  };

  const ops: Record<string, (args: Args) => Promise<unknown>> = {
    share: async (a) => {
      const s = await gnttab.share(Number(a.grantee), {
        count: Number(a.count),
        readonly: a.readonly === true,
      });
      return { handle: keep(s), refs: [...s.refs] };
    },
    map: async (a) => {
      const m = await gnttab.map(Number(a.domid), a.refs as number[], {
        writable: a.writable !== false,
      });
      return { handle: keep(m) };
    },
    mapFrames: async (a) => {
      const m = await gnttab.mapFrames(Number(a.domid), a.frames as number[], {
        writable: a.writable !== false,
      });
      return { handle: keep(m) };
    },
    write: async (a) => {
      const r = get(a);
      if ('writable' in r && !r.writable) throw new Error('refusing to write to a read-only view');
      r.bytes.set(Buffer.from(String(a.hex), 'hex'), Number(a.offset));
      return {};
    },
    read: async (a) => {
      const r = get(a);
      const offset = Number(a.offset);
      return {
        hex: Buffer.from(r.bytes.subarray(offset, offset + Number(a.length))).toString('hex'),
      };
    },
    release: async (a) => {
      const r = get(a);
      held.delete(Number(a.handle));
      await ('end' in r ? r.end() : r.unmap());
      return {};
    },
    close: async () => {
      await gnttab.close();
      return {};
    },
  };

  send({ ready: true, domid: gnttab.domid, pid: process.pid });
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) {
    let req: Args;
    try {
      req = JSON.parse(line) as Args;
    } catch {
      continue;
    }
    const op = ops[String(req.op)];
    try {
      if (!op) throw new Error(`unknown op ${String(req.op)}`);
      send({ id: req.id, ok: true, result: await op(req) });
    } catch (err) {
      send({ id: req.id, ok: false, error: errorInfo(err) });
    }
    if (req.op === 'close') break;
  }
  lines.close();
  await gnttab.close().catch(() => {});
  // The simulated host's connection would keep the loop alive; stdout is a pipe (synchronous).
  process.exit(0);
}

await main();
