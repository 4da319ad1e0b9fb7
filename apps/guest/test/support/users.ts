import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** GECOS of the users these tests make: the pid says whose they are. */
const TAG = 'xencons-agent test pid';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes users an earlier run made and could not remove (its process died before afterAll):
 * only ours, recognised by the GECOS tag, and only when the process that made them is gone.
 */
export function removeStaleTestUsers(): void {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const [name, , , , gecos] = line.split(':');
    if (!name || !gecos?.startsWith(`${TAG} `)) continue;
    const pid = Number(gecos.slice(TAG.length + 1));
    if (Number.isInteger(pid) && pid > 0 && !alive(pid))
      spawnSync('userdel', ['-f', '-r', name], { stdio: 'ignore' });
  }
}

/** A local user with a home and bash (and a password when given); `remove()` even if in use. */
export function makeTestUser(prefix: string, password?: string) {
  removeStaleTestUsers();
  const name = `${prefix}${randomBytes(3).toString('hex')}`;
  const run = (cmd: string, args: string[], input?: string) => {
    const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${args[0] ?? ''}: ${r.stderr}`);
  };
  run('useradd', ['-m', '-s', '/bin/bash', '-c', `${TAG} ${process.pid}`, name]);
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    spawnSync('userdel', ['-f', '-r', name], { stdio: 'ignore' });
  };
  try {
    if (password !== undefined) run('chpasswd', [], `${name}:${password}\n`);
  } catch (error) {
    remove();
    throw error;
  }
  const uid = Number(spawnSync('id', ['-u', name], { encoding: 'utf8' }).stdout.trim());
  const gid = Number(spawnSync('id', ['-g', name], { encoding: 'utf8' }).stdout.trim());
  return { name, uid, gid, remove };
}
