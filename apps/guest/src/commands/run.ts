import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { EXIT, type ProgramIo } from '@xencons/cli';
import { isXenconsError } from '@xencons/errors';
import {
  DEFAULT_USERS_FILE,
  type LoginBackend,
  type LoginShellOptions,
} from '@xencons/login-shell';
import { Agent, type ConsoleSelection, type LogConsoleChoice } from '../agent.js';
import { SimConsoleSource } from '../consoles/sim-source.js';
import { TtyConsoleSource } from '../consoles/tty-source.js';
import type { ConsoleSource } from '../consoles/types.js';
import { WindowsConsoleSource } from '../consoles/windows-source.js';
import { defaultControlSocket } from '../control.js';
import { parseHotkeyPrefix } from '../hotkeys.js';
import { JOURNAL_COMMAND } from '../journal.js';
import { AgentLog, logLevelFromEnv, streamSink } from '../log.js';
import { VERSION } from '../version.js';

export const RUN_HELP = `xencons-agent run: a login on every Xen PV console of this guest

Usage: xencons-agent run [options]

Runs a getty-style login (banner, login:, Password:, a shell in a pty) on each console and
follows consoles as they appear and go away. On a Linux guest: /dev/hvc0 and /dev/hvc1..15 (put
in raw mode). On the simulated host (XENCONS_SIM set by 'xencons sim create'): the guest's primary
console and its device/console/N, found through xenstore. On Windows: the XENCONS device
interface (untested).

Consoles:
  --platform P          auto (default: sim when XENCONS_SIM is set, windows on Windows, else
                        linux), sim, linux, windows
  --consoles LIST       consoles that get a login: all (default; named channels excluded) or a
                        comma list of ids/names (0,1 on the simulated host; hvc0,hvc1 on Linux;
                        channel:NAME for a named channel)
  --skip LIST           consoles left alone, e.g. hvc0 when serial-getty@hvc0 runs there
  --tty PATH            serve this tty instead of looking for hvc consoles (repeatable; e.g.
                        /dev/ttyS0); it gets a login even if it is a pty
  --rescan SECONDS      linux: look for new consoles this often (default 5; as root a xenstore
                        watch on device/console also triggers a look)

Login:
  --auth BACKEND        login (default as root: login(1) does the rest), pam, file (default
                        otherwise: a users file of scrypt hashes), none (needs --allow-autologin)
  --users-file PATH     users file for --auth file (default ${DEFAULT_USERS_FILE};
                        manage it with xencons-login-users)
  --pam-service NAME    PAM service for --auth pam (default login)
  --pam-helper PATH     the PAM helper script (default: next to @xencons/login-shell)
  --allow-autologin     allow --auth none (a warning is shown and audited)
  --autologin-user NAME who --auth none logs in (default: the agent's user)
  --issue TEXT          banner template with agetty escapes (\\S \\n \\l ...), or none
  --issue-file PATH     read the banner from this file at every prompt (e.g. /etc/issue)
  --term TERM           TERM of sessions (default vt220)
  --no-size-probe       do not ask the terminal for its size at login
  --login-timeout S     a prompt left unanswered this long starts over (default 60; 0 never)
  --idle-timeout S      end sessions without console input for this long (default 0: never)

Log:
  --log-console C       the console the agent's log goes to: auto (default: the console whose
                        channel name is xencons-log), none, or a console id/name (e.g. hvc2)
  --journal             also forward the systemd journal (journalctl -f) to the log console
  XENCONS_LOG=debug|info|warn|error sets the level (default info); stderr gets JSON lines
  unless it is a terminal.

Debug hotkeys:
  --hotkey KEY          in-band prefix: KEY then a debug key on any console runs it (default
                        ^^, i.e. Ctrl-^; KEY KEY sends one KEY; off disables)
  --no-debug-node       no out-of-band trigger in xenstore (data/xencons-agent/request)
  --control PATH        local control socket for 'xencons-agent debug|status' (default
                        $XENCONS_AGENT_SOCKET, the simulated host's DIR/agent-DOMID.sock,
                        /run/xencons-agent.sock as root); none to disable

  -h, --help            show this help

Signals: SIGTERM and SIGINT hang up every session and stop (exit 0).
`;

class UsageError extends Error {}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function seconds(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`${name} must be a number of seconds`);
  return n;
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: false,
    strict: true,
    options: {
      platform: { type: 'string' },
      consoles: { type: 'string' },
      skip: { type: 'string' },
      tty: { type: 'string', multiple: true },
      rescan: { type: 'string' },
      auth: { type: 'string' },
      'users-file': { type: 'string' },
      'pam-service': { type: 'string' },
      'pam-helper': { type: 'string' },
      'allow-autologin': { type: 'boolean', default: false },
      'autologin-user': { type: 'string' },
      issue: { type: 'string' },
      'issue-file': { type: 'string' },
      term: { type: 'string' },
      'no-size-probe': { type: 'boolean', default: false },
      'login-timeout': { type: 'string' },
      'idle-timeout': { type: 'string' },
      'log-console': { type: 'string' },
      journal: { type: 'boolean', default: false },
      hotkey: { type: 'string' },
      'no-debug-node': { type: 'boolean', default: false },
      control: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

type Values = ReturnType<typeof parse>['values'];

export interface RunConfig {
  platform: 'sim' | 'linux' | 'windows';
  ttys: string[] | null;
  rescanMs: number;
  login: Omit<LoginShellOptions, 'console' | 'audit'>;
  logins: ConsoleSelection;
  logConsole: LogConsoleChoice;
  journal: boolean;
  hotkeyPrefix: number | null;
  debugNode: boolean;
  controlSocket: string | null;
}

/** The options of `run` as the agent's configuration (throws a usage error). */
export function runConfig(values: Values, env: ProgramIo['env']): RunConfig {
  const platformValue = values.platform ?? 'auto';
  let platform: RunConfig['platform'];
  if (platformValue === 'auto') {
    platform = env.XENCONS_SIM ? 'sim' : process.platform === 'win32' ? 'windows' : 'linux';
  } else if (platformValue === 'sim' || platformValue === 'linux' || platformValue === 'windows') {
    platform = platformValue;
  } else throw new UsageError('--platform must be auto, sim, linux or windows');
  if (values.tty && platform !== 'linux')
    throw new UsageError('--tty serves Linux ttys: it needs --platform linux');

  const login: Omit<LoginShellOptions, 'console' | 'audit'> = {};
  if (values.auth !== undefined) {
    if (!['login', 'pam', 'file', 'none'].includes(values.auth))
      throw new UsageError('--auth must be login, pam, file or none');
    login.backend = values.auth as LoginBackend;
  }
  const isRoot = process.getuid?.() === 0;
  const backend = login.backend ?? (isRoot ? 'login' : 'file');
  if (backend === 'none' && !values['allow-autologin'])
    throw new UsageError('--auth none logs in without a password: add --allow-autologin');
  if (backend === 'file') login.usersFile = values['users-file'] ?? DEFAULT_USERS_FILE;
  if (values['pam-service'] !== undefined) login.pamService = values['pam-service'];
  if (values['pam-helper'] !== undefined) login.pamHelper = values['pam-helper'];
  if (values['allow-autologin']) login.allowAutologin = true;
  if (values['autologin-user'] !== undefined) login.autologinUser = values['autologin-user'];
  if (values.issue !== undefined) login.issue = values.issue === 'none' ? false : values.issue;
  if (values['issue-file'] !== undefined) login.issueFile = values['issue-file'];
  if (values.term !== undefined) login.term = values.term;
  if (values['no-size-probe']) login.probeSize = false;
  login.loginTimeoutMs = seconds(values['login-timeout'], '--login-timeout', 60) * 1000;
  login.idleTimeoutMs = seconds(values['idle-timeout'], '--idle-timeout', 0) * 1000;

  const include =
    values.consoles === undefined || values.consoles === 'all' ? 'all' : list(values.consoles);
  if (include !== 'all' && include.length === 0) throw new UsageError('--consoles is empty');
  const logValue = values['log-console'] ?? 'auto';
  const logConsole: LogConsoleChoice =
    logValue === 'auto' || logValue === 'none' ? logValue : { match: logValue };

  let hotkeyPrefix: number | null;
  try {
    hotkeyPrefix = parseHotkeyPrefix(values.hotkey ?? '^^');
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const control = values.control ?? defaultControlSocket(env);
  return {
    platform,
    ttys: values.tty ?? null,
    rescanMs: seconds(values.rescan, '--rescan', 5) * 1000,
    login,
    logins: { include, exclude: list(values.skip) },
    logConsole,
    journal: values.journal === true,
    hotkeyPrefix,
    debugNode: !values['no-debug-node'],
    controlSocket: control === 'none' ? null : control,
  };
}

/** `run`'s arguments as a configuration (throws on a usage error). */
export function configFromArgs(argv: readonly string[], env: ProgramIo['env']): RunConfig {
  return runConfig(parse(argv).values, env);
}

export function sourceFor(config: RunConfig, env: ProgramIo['env']): ConsoleSource {
  switch (config.platform) {
    case 'sim':
      return new SimConsoleSource(env);
    case 'windows':
      return new WindowsConsoleSource({ rescanMs: config.rescanMs || 5000 });
    case 'linux':
      return new TtyConsoleSource({
        ...(config.ttys ? { paths: config.ttys } : {}),
        rescanMs: config.rescanMs,
      });
  }
}

/** `xencons-agent run`: returns the exit code once stopped by a signal; never exits the process. */
export async function runAgent(argv: readonly string[], io: ProgramIo): Promise<number> {
  let config: RunConfig;
  try {
    const { values } = parse(argv);
    if (values.help) {
      io.stdout.write(RUN_HELP);
      return EXIT.ok;
    }
    config = runConfig(values, io.env);
  } catch (error) {
    io.stderr.write(
      `xencons-agent run: ${(error as Error).message}\nTry: xencons-agent run --help\n`,
    );
    return EXIT.usage;
  }
  const log = new AgentLog(logLevelFromEnv(io.env), [streamSink(io.stderr)]);
  if (config.login.backend === 'file' || (config.login.usersFile && !config.login.backend)) {
    if (config.login.usersFile && !existsSync(config.login.usersFile))
      log.warn('the users file does not exist: every login will fail until it does', {
        file: config.login.usersFile,
      });
  }
  const agent = new Agent({
    source: sourceFor(config, io.env),
    log,
    login: config.login,
    logins: config.logins,
    logConsole: config.logConsole,
    hotkeyPrefix: config.hotkeyPrefix,
    debugNode: config.debugNode,
    controlSocket: config.controlSocket,
    journal: config.journal ? JOURNAL_COMMAND : null,
    version: VERSION,
  });
  let stop: (code: number) => void = () => {};
  const stopped = new Promise<number>((resolve) => {
    stop = resolve;
  });
  const onTerm = () => stop(EXIT.ok);
  const onInt = () => stop(EXIT.ok);
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  try {
    await agent.start();
  } catch (error) {
    const code = isXenconsError(error) ? ` (${error.code})` : '';
    log.error(`cannot start: ${(error as Error).message}${code}`);
    await agent.stop().catch(() => {});
    process.off('SIGTERM', onTerm);
    process.off('SIGINT', onInt);
    return EXIT.failure;
  }
  const code = await stopped;
  process.off('SIGTERM', onTerm);
  process.off('SIGINT', onInt);
  await agent.stop();
  return code;
}
