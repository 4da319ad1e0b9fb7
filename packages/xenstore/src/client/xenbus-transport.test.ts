import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { isXenconsError } from '@xencons/errors';
import { makeTempDir } from '@xencons/test-utils';
import { describe, expect, it } from 'vitest';
import { fromUtf8 } from '../wire/payload.js';
import { openXenstore } from './client.js';
import { xenbusTransport } from './xenbus-transport.js';

// No /dev/xen/xenbus here (the real device is exercised on real Xen, `pnpm test:xen`). A FIFO
// opened read-write stands in for the plumbing: every message we write comes back to us, so a
// READ's "reply" is the request itself (same type and req_id, payload `path\0`).
describe('xenbus device transport (FIFO loopback)', () => {
  it('writes whole messages, reads the stream back, and closes without leaving a read blocked', async () => {
    const dir = makeTempDir();
    try {
      const fifo = join(dir.path, 'xenbus');
      execFileSync('mkfifo', [fifo]);
      const transport = xenbusTransport(fifo);
      expect(transport.maxPayload).toBe(4080);
      expect(transport.reconnectByDefault).toBe(false);
      const xs = await openXenstore({ transport });
      const replies = await Promise.all(['/a', '/local/domain/0/b', '/c'].map((p) => xs.read(p)));
      expect(replies.map((r) => fromUtf8(r))).toEqual(['/a\0', '/local/domain/0/b\0', '/c\0']);
      expect(
        isXenconsError(await xs.write('/big', new Uint8Array(4080)).catch((e) => e), 'E2BIG'),
      ).toBe(true);
      await xs.close();
    } finally {
      dir.remove();
    }
  });

  it('a missing device is an error naming the path', async () => {
    const err = await openXenstore({ transport: xenbusTransport('/nonexistent/xenbus') }).catch(
      (e) => e,
    );
    expect(isXenconsError(err, 'ENOENT')).toBe(true);
    expect((err as Error).message).toContain('/nonexistent/xenbus');
  });
});
