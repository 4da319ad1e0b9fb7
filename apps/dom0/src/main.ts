import { type Program, type ProgramIo, runProgram } from '@xencons/cli';
import { runConsole } from './commands/console.js';
import { runDaemon } from './commands/daemon.js';
import { runDebug } from './commands/debug.js';
import { runList, runLog } from './commands/list-log.js';
import { runSim } from './commands/sim.js';
import { runXs } from './commands/xs.js';
import { runDemo } from './demo/demo.js';

export const VERSION = '0.0.0';

export const program: Program = {
  name: 'xencons',
  tagline: 'Xen PV consoles from dom0',
  version: VERSION,
  commands: {
    console: {
      summary: 'attach this terminal to a guest console (xencons console --help)',
      run: (argv, io) => runConsole(argv, io),
    },
    list: {
      summary: 'domains and their consoles (xencons list --json)',
      run: (argv, io) => runList(argv, io),
    },
    log: { summary: "print or follow a guest's console log", run: (argv, io) => runLog(argv, io) },
    daemon: {
      summary: 'serve every guest console: logs, viewers, replay (xencons daemon --help)',
      run: (argv, io) => runDaemon(argv, io),
    },
    demo: {
      summary:
        'a simulated Xen host, a guest, the console daemon, and this terminal on its console',
      run: (_argv, io) => runDemo(io),
    },
    xs: {
      summary: 'read|write|ls|rm|mkdir|watch|perms|chmod xenstore nodes (xencons xs --help)',
      run: (argv, io) => runXs(argv, io),
    },
    sim: {
      summary: 'start|stop|create|destroy|list a simulated Xen host (xencons sim --help)',
      run: (argv, io) => runSim(argv, io),
    },
    debug: {
      summary: "run a guest agent's debug callbacks by key (xencons debug --help)",
      run: (argv, io) => runDebug(argv, io),
    },
  },
};

/** Runs the CLI and returns its exit code; never calls process.exit. */
export function main(argv: readonly string[], io: ProgramIo): Promise<number> {
  return runProgram(program, argv, io);
}
