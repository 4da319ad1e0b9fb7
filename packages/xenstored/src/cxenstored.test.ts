import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir, requirement } from '@xencons/test-utils';
import * as codec from '@xencons/xenstore';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  cxenstoredMissing,
  startCxenstored,
  type TestServer,
} from '../../xenstore/test/servers.js';
import { type RunningXenstored, startXenstored } from './server.js';

// Debian's C xenstored 4.17 (through the LD_PRELOAD shim of packages/xenstore/test/cxenstored)
// and this daemon get the same raw requests; every answer cxenstored's marks require must match.
// The requests are those the real-Xen run compares in dom0 (tools/xen-qemu/vm/checks).
interface Comparison {
  readonly steps: number;
  readonly differences: string[];
  readonly required: string[];
}
interface CompareModule {
  readonly AREAS: readonly string[];
  compareArea(
    area: string,
    options: {
      codec: typeof codec;
      realSocket: string;
      oursSocket: string;
      impl: 'c' | 'ocaml';
      tag?: string;
    },
  ): Promise<Comparison>;
}

const MODULE = fileURLToPath(
  new URL('../../../tools/xen-qemu/vm/checks/xenstore-compare.mjs', import.meta.url),
);
const compare = (await import(/* @vite-ignore */ MODULE)) as CompareModule;

let cxenstored: TestServer;
let ours: RunningXenstored;
let dir: { path: string; remove: () => void };

requirement(
  'Debian xen-utils-4.17 (C xenstored), gcc and libxen-dev',
  cxenstoredMissing(),
).describe('answers as cxenstored 4.17 does', () => {
  beforeAll(async () => {
    dir = makeTempDir('xencons-xenstored-cmp-');
    cxenstored = await startCxenstored();
    ours = await startXenstored({ socketPath: join(dir.path, 'socket') });
  });
  afterAll(async () => {
    await ours?.close();
    await cxenstored?.stop();
    dir?.remove();
  });

  for (const area of compare.AREAS) {
    it(`the same requests (${area}) get the same answers`, async () => {
      const r = await compare.compareArea(area, {
        codec,
        realSocket: cxenstored.socketPath,
        oursSocket: ours.socketPath!,
        impl: 'c',
        tag: 'test',
      });
      expect(r.steps).toBeGreaterThan(5);
      expect(r.required).toEqual([]);
    });
  }
});
