import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { EXIT, type ProgramIo } from '@xencons/cli';
import { addUser } from '@xencons/login-shell';
import { nativeUnavailableReason } from '@xencons/native';
import { type SimHost, startSimHost } from '@xencons/sim';
import { runConsole } from '../commands/console.js';
import { ConsoleDaemon, describeError } from '../daemon/daemon.js';
import { type Dom0World, openDom0World } from '../world.js';

/** The guest's program until the agent (issue 7) runs a login there: a shell on a pty of its own. */
export function demoGuestCommand(): string {
  const script = spawnSync('script', ['--version'], { stdio: 'ignore' });
  return script.status === 0 ? `script -qfec '/bin/sh -i' /dev/null` : '/bin/sh -i';
}

/** The agent to run in the guest: `XENCONS_AGENT` (the bootstrap sets it to this checkout's). */
function agentEntry(env: ProgramIo['env']): string | null {
  const agent = env.XENCONS_AGENT;
  return agent && existsSync(agent) ? agent : null;
}

/** A throwaway password: 4 groups of 4 letters and digits, easy to type. */
function throwawayPassword(): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
  const bytes = randomBytes(16);
  let out = '';
  for (let i = 0; i < 16; i++)
    out += (i > 0 && i % 4 === 0 ? '-' : '') + alphabet[(bytes[i] ?? 0) % alphabet.length];
  return out;
}

export interface DemoOptions {
  /** The default guest program of the simulated host (tests pass a bundled one). */
  guestMain?: string;
  /** The guest's command (default: an interactive shell). */
  cmd?: string;
}

/**
 * `xencons demo`: a simulated Xen host, one guest process with a shell on its primary console,
 * the console daemon, and this terminal attached to the guest's console through it. The detach
 * key (Ctrl-]) or the shell's `exit` ends it and tears everything down.
 */
export async function runDemo(io: ProgramIo, options: DemoOptions = {}): Promise<number> {
  const missing = nativeUnavailableReason();
  if (missing) {
    io.stderr.write(`xencons demo: needs the native addon: ${missing}\n`);
    return EXIT.failure;
  }
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const dir = mkdtempSync(join(base, 'xencons-demo-'));
  let host: SimHost | null = null;
  let world: Dom0World | null = null;
  let daemon: ConsoleDaemon | null = null;
  try {
    io.stderr.write(`Starting a simulated Xen host in ${dir}...\n`);
    host = await startSimHost({
      dir,
      ...(options.guestMain ? { guestMain: options.guestMain } : {}),
    });
    world = await openDom0World({ ...io.env, XENCONS_SIM: dir });
    const socketPath = join(dir, 'xencons', 'daemon.sock');
    daemon = new ConsoleDaemon({
      xs: world.xs,
      gnttab: world.gnttab,
      events: world.events,
      socketPath,
      logDir: join(dir, 'logs'),
    });
    const up = new Promise<void>((resolve) => {
      daemon?.on('event', (event) => {
        if (event.type === 'console-up' && event.name === 'demo') resolve();
      });
    });
    await daemon.start();
    const agent = options.cmd === undefined ? agentEntry(io.env) : null;
    let guest: Awaited<ReturnType<SimHost['createDomain']>>;
    if (agent) {
      // The agent runs a login on the console: a users file for this demo holds one entry, the
      // current user, with a password made up now (the session runs as that user).
      const user = userInfo().username;
      const password = throwawayPassword();
      const usersFile = join(dir, 'demo-users');
      await addUser(usersFile, user, Buffer.from(password));
      guest = await host.createDomain({
        name: 'demo',
        program: [process.execPath, agent, 'run', '--auth', 'file', '--users-file', usersFile],
      });
      io.stderr.write(
        `The guest runs xencons-agent: log in as '${user}' with password '${password}' (valid for this demo only).\n`,
      );
    } else {
      guest = await host.createDomain({ name: 'demo', cmd: options.cmd ?? demoGuestCommand() });
    }
    io.stderr.write(
      `Guest 'demo' is domain ${guest.domid} (process ${guest.pid}); its console is served by the daemon.\n`,
    );
    await up;
    return await runConsole(['demo', '--socket', socketPath], io);
  } catch (error) {
    io.stderr.write(`xencons demo: ${describeError(error)}\n`);
    return EXIT.failure;
  } finally {
    await daemon?.close().catch(() => {});
    await world?.close().catch(() => {});
    await host?.close().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
    io.stderr.write('Simulated host stopped.\n');
  }
}
