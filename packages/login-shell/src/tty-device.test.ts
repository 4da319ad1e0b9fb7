import { join } from 'node:path';
import * as tty from 'node:tty';
import { makeTempDir } from '@xencons/test-utils';
import { expect, it } from 'vitest';
import { currentAccount } from './accounts.js';
import { memoryAudit } from './audit.js';
import { LoginShell } from './login-shell.js';
import { native } from './native.js';
import { hasLines, nativeCore, testIssueContext } from './test-support.js';
import { addUser } from './users-file.js';

nativeCore.describe('LoginShell on a tty device', () => {
  it('serves a login on a raw-mode tty (a pty slave standing in for /dev/hvc1)', async () => {
    const n = native();
    const dir = makeTempDir('xencons-login-tty-');
    // The "console device" is the slave; the far terminal is the master.
    const pair = n.ptyOpen(80, 24);
    const saved = n.ttyMakeRaw(pair.slave);
    const device = new tty.ReadStream(pair.slave);
    const far = new tty.ReadStream(pair.master);
    let out = '';
    far.on('data', (d: Buffer) => {
      out += d.toString();
    });
    far.on('error', () => {});
    const waitFor = async (what: string) => {
      for (let i = 0; i < 200 && !out.includes(what); i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(out).toContain(what);
    };
    const user = currentAccount().name;
    const usersFile = join(dir.path, 'users');
    await addUser(usersFile, user, Buffer.from('dev-Pw-1'), { ln: 10, r: 8, p: 1 });
    const shell = new LoginShell(device, {
      console: 'hvc-test',
      backend: 'file',
      usersFile,
      probeSize: false,
      audit: memoryAudit(),
      issueContext: testIssueContext,
    });
    const done = shell.run();
    try {
      await waitFor('testhost login: ');
      far.write(`${user}\r`);
      await waitFor('Password: ');
      far.write('dev-Pw-1\r');
      far.write('id -un; echo D-$((7*6))\r');
      await waitFor('D-42\r\n');
      expect(hasLines(out, user, 'D-42')).toBe(true);
      // Raw mode: the device itself echoed nothing; the password never came back.
      expect(out).not.toContain('dev-Pw-1');
    } finally {
      await shell.stop();
      await done;
      n.ttyRestore(pair.slave, saved);
      device.destroy();
      far.destroy();
      dir.remove();
    }
  });
});
