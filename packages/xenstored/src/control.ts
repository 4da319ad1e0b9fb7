import { appendFileSync } from 'node:fs';
import type { Xenstored } from './daemon.js';
import { QUOTA_NAMES } from './quotas.js';

/** A CONTROL answer: reply text (NUL-terminated), or an errno name. */
export type ControlResult = string | { errno: string };

const OK = 'OK\0';

interface Command {
  readonly pars: string;
  run(
    d: Xenstored,
    args: string[],
    print: (text: string) => void,
    problems: (found: string[]) => void,
  ): ControlResult;
}

const inval = { errno: 'EINVAL' } as const;

/** CONTROL commands as cxenstored 4.17 names them (`xenstore-control help`); no live-update. */
const COMMANDS: Record<string, Command> = {
  check: {
    pars: '',
    run(d, args, _print, problems) {
      if (args.length !== 0) return inval;
      // cxenstored repairs what it can, logs, and always answers OK.
      const found = d.check();
      if (found.length > 0) problems(found);
      return OK;
    },
  },
  log: {
    pars: 'on|off',
    run(d, args) {
      if (args.length !== 1) return inval;
      if (args[0] === 'on') d.setTracing(true);
      else if (args[0] === 'off') d.setTracing(false);
      else return inval;
      return OK;
    },
  },
  logfile: {
    pars: '<file>',
    run(d, args) {
      if (args.length !== 1) return inval;
      return d.setTraceFile(args[0]!) ? OK : inval;
    },
  },
  memreport: {
    pars: '[<file>]',
    run(d, args) {
      if (args.length > 1) return inval;
      // Appended to FILE, or to the trace; without either cxenstored fails (EBADF, sent as EINVAL).
      const report = memoryReport(d);
      if (args.length === 0) return d.writeTrace(report) ? OK : inval;
      try {
        appendFileSync(args[0]!, report, { mode: 0o600 });
      } catch {
        return inval;
      }
      return OK;
    },
  },
  print: {
    pars: '<string>',
    run(_d, args, print) {
      if (args.length !== 1) return inval;
      print(args[0]!);
      return OK;
    },
  },
  quota: {
    pars: '[set <name> <val>|<domid>]',
    run(d, args) {
      if (args.length === 0) {
        let out = 'Quota settings:\n';
        for (const [name, key, descr] of QUOTA_NAMES) {
          out += `${name.padEnd(17)}: ${String(d.quotas[key]).padStart(8)} ${descr}\n`;
        }
        return `${out}\0`;
      }
      if (args[0] === 'set') {
        if (args.length !== 3) return inval;
        const val = Number.parseInt(args[2]!, 10);
        const entry = QUOTA_NAMES.find(([name]) => name === args[1]);
        if (!(val >= 1) || entry === undefined) return inval;
        d.quotas[entry[1]] = val;
        return OK;
      }
      if (args.length !== 1) return inval;
      const domid = Number.parseInt(args[0]!, 10) >>> 0;
      const dom = d.domains.get(domid);
      if (dom === undefined) return { errno: 'ENOENT' };
      let transactions = 0;
      let outstanding = 0;
      for (const c of dom.connections) {
        transactions += c.transactions.size;
        outstanding += c.outstanding;
      }
      const line = (k: string, v: number) => `${k.padEnd(16)}: ${String(v).padStart(8)}\n`;
      return (
        `Domain ${domid}:\n${line('nodes', d.tree.ownedBy(domid))}${line('watches', dom.watches)}` +
        `${line('transactions', transactions)}${line('outstanding', outstanding)}` +
        `${line('memory', d.memoryOf(domid))}\0`
      );
    },
  },
  'quota-soft': {
    pars: '[set <name> <val>]',
    run(d, args) {
      if (args.length === 0) {
        return `Quota settings:\n${'memory'.padEnd(17)}: ${String(d.softMemory).padStart(8)} Total Xenstore memory per domain (warning level)\n\0`;
      }
      if (args[0] !== 'set' || args.length !== 3 || args[1] !== 'memory') return inval;
      const val = Number.parseInt(args[2]!, 10);
      if (!(val >= 1)) return inval;
      d.softMemory = val;
      return OK;
    },
  },
  help: {
    pars: '',
    run(_d, args) {
      if (args.length !== 0) return inval;
      let out = '';
      for (const [name, cmd] of Object.entries(COMMANDS)) out += `${name}\t${cmd.pars}\n`;
      return `${out}\0`;
    },
  },
};

/** Runs one CONTROL command; unknown commands are EINVAL, as in cxenstored. */
export function runControl(
  d: Xenstored,
  cmd: string,
  args: string[],
  print: (text: string) => void,
  problems: (found: string[]) => void = () => {},
): ControlResult {
  const command = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (command === undefined) return inval;
  return command.run(d, args, print, problems);
}

/** CONTROL `memreport`: the daemon's counts, memory per domain and the process's memory. */
function memoryReport(d: Xenstored): string {
  const s = d.stats();
  const m = process.memoryUsage();
  let out = `xencons-xenstored memory report ${new Date().toISOString()}\n`;
  out += `nodes ${s.nodes} watches ${s.watches} transactions ${s.transactions} connections ${s.connections}\n`;
  out += `requests ${s.requests} polling pauses ${s.pollingPauses}\n`;
  for (const domid of [...d.domains.keys()].sort((a, b) => a - b)) {
    out += `domain ${domid}: memory ${d.memoryOf(domid)} nodes ${d.tree.ownedBy(domid)}\n`;
  }
  out += `process: rss ${m.rss} heapUsed ${m.heapUsed} heapTotal ${m.heapTotal} external ${m.external}\n`;
  return out;
}
