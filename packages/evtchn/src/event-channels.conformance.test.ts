import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { nativeUnavailableReason } from '@xencons/native';
import { type Hypervisor, startHypervisor } from '@xencons/sim-hypervisor';
import { bundleChildScript, makeTempDir, requirement } from '@xencons/test-utils';
import { afterAll, beforeAll, describe, it } from 'vitest';
import {
  type ConformanceTarget,
  conformanceCases,
  linuxConformanceTarget,
  runCase,
  simConformanceTarget,
} from './conformance/index.js';
import { LINUX_EVTCHN_DEVICE } from './linux-event-channels.js';

// The EventChannels conformance suite (src/conformance/cases.ts) on every backend this machine
// has: always the simulated host (an in-process startHypervisor in a temp dir; peers are separate
// node processes running the peer program bundled from these sources), and Linux's
// /dev/xen/evtchn when this runs in a Xen dom0. On real Xen the same cases run from the built
// package in `pnpm test:xen` (tools/xen-qemu/vm/checks/evtchn-checks.mjs).

interface Backend {
  readonly name: string;
  setup(
    scratch: string,
    peerScript: string,
  ): Promise<{ target: ConformanceTarget; stop(): Promise<void> }>;
}

const sim: Backend = {
  name: 'sim',
  async setup(scratch, peerScript) {
    const dir = join(scratch, 'host');
    const hv: Hypervisor = await startHypervisor({ dir });
    const target = await simConformanceTarget({ dir, peerScript });
    return {
      target,
      async stop() {
        await target.close();
        await hv.close();
      },
    };
  },
};

const linux: Backend = {
  name: 'linux',
  async setup(_scratch, peerScript) {
    const target = linuxConformanceTarget({ peerScript });
    return { target, stop: () => target.close() };
  },
};

const backends = existsSync(LINUX_EVTCHN_DEVICE) ? [sim, linux] : [sim];
const native = requirement('the native addon', nativeUnavailableReason());

/** The cases that move a lot of data get more time than the default 30 s. */
const timeouts: Record<string, number> = { 'ring-exchange': 180_000 };

native.describe('EventChannels conformance', () => {
  describe.each(backends)('$name', (backend) => {
    let scratch: ReturnType<typeof makeTempDir>;
    let env: Awaited<ReturnType<Backend['setup']>> | undefined;

    beforeAll(async () => {
      scratch = makeTempDir('xencons-evtchn-');
      const peerScript = await bundleChildScript(
        new URL('./conformance/peer.ts', import.meta.url),
        scratch.path,
      );
      env = await backend.setup(scratch.path, peerScript);
    });

    afterAll(async () => {
      try {
        await env?.stop();
      } finally {
        scratch.remove();
      }
    });

    for (const c of conformanceCases) {
      it(c.name, () => runCase(env!.target, c), timeouts[c.name] ?? 60_000);
    }
  });
});
