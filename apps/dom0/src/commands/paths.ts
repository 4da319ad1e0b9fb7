import * as path from 'node:path';
import { simDirFromEnv } from '../world.js';

type Env = Readonly<Record<string, string | undefined>>;

/** The console daemon's socket: `XENCONS_DAEMON_SOCKET`, else in the simulated host's folder, else /run/xencons. */
export function defaultDaemonSocket(env: Env): string {
  if (env.XENCONS_DAEMON_SOCKET) return env.XENCONS_DAEMON_SOCKET;
  const sim = simDirFromEnv(env);
  return sim ? path.join(sim, 'xencons', 'daemon.sock') : '/run/xencons/daemon.sock';
}

/** Where guest logs go: `XENCONS_LOG_DIR`, else the simulated host's `logs/`, else /var/log/xencons. */
export function defaultLogDir(env: Env): string {
  if (env.XENCONS_LOG_DIR) return env.XENCONS_LOG_DIR;
  const sim = simDirFromEnv(env);
  return sim ? path.join(sim, 'logs') : '/var/log/xencons';
}
