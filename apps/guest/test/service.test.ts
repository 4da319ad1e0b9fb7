import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { commandExists, makeTempDir } from '@xencons/test-utils';
import { describe, expect, it } from 'vitest';
import { configFromArgs } from '../src/commands/run.js';

const unitPath = new URL('../xencons-agent.service', import.meta.url);
const unit = readFileSync(unitPath, 'utf8');

function setting(name: string): string[] {
  return unit
    .split('\n')
    .filter((l) => l.startsWith(`${name}=`))
    .map((l) => l.slice(name.length + 1));
}

describe('the systemd unit', () => {
  it('runs `xencons-agent run` with options the agent accepts', () => {
    const [exec] = setting('ExecStart');
    expect(exec).toMatch(/^\/usr\/bin\/env xencons-agent run\b/);
    const args = (exec ?? '').split(/\s+/).slice(2);
    expect(args[0]).toBe('run');
    const config = configFromArgs(args.slice(1), {});
    expect(config.platform).toBe('linux');
    expect(config.logins.include).toBe('all');
  });

  it('keeps agetty off hvc0, restarts the agent, starts at boot on Xen only', () => {
    expect(setting('Conflicts')).toContain('serial-getty@hvc0.service');
    expect(setting('Restart')).toEqual(['always']);
    expect(setting('ConditionVirtualization')).toEqual(['xen']);
    expect(setting('WantedBy')).toEqual(['multi-user.target']);
  });

  it('passes systemd-analyze verify where systemd is installed', () => {
    if (!commandExists('systemd-analyze')) return; // the parse checks above still ran
    const dir = makeTempDir('xencons-agent-unit-');
    try {
      const copy = path.join(dir.path, 'xencons-agent.service');
      copyFileSync(unitPath, copy);
      const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).not.toMatch(/xencons-agent\.service:\d+:/); // no warnings about our lines
    } finally {
      dir.remove();
    }
  });
});
