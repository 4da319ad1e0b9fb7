import { describe, expect, it } from 'vitest';
import type { ForeignMapping, Gnttab } from './gnttab.js';
import { GnttabCode, GnttabError } from './gnttab-errors.js';
import { mapPrimaryConsole, parseRingRef } from './primary-console.js';

// The order and error handling of mapPrimaryConsole on a handle whose answers are scripted; the
// conformance suite maps real console pages with it (grant 0, and the frame fallback).

const page = (kind: 'grant' | 'frame', refs: readonly number[]) =>
  ({ kind, refs, domid: 4 }) as unknown as ForeignMapping;

function handle(answers: { grant: GnttabError | null; frame: GnttabError | Error | null }) {
  const calls: string[] = [];
  const g = {
    map: async (domid: number, refs: readonly number[]) => {
      calls.push(`map ${domid} ${refs.join(',')}`);
      if (answers.grant) throw answers.grant;
      return page('grant', refs);
    },
    mapFrames: async (domid: number, frames: readonly number[]) => {
      calls.push(`mapFrames ${domid} ${frames.join(',')}`);
      if (answers.frame) throw answers.frame;
      return page('frame', frames);
    },
  } as unknown as Gnttab;
  return { g, calls };
}

const noAccess = new GnttabError(GnttabCode.NO_ACCESS, 'grant 0 refused');
const notPrivileged = new GnttabError(GnttabCode.NOT_PRIVILEGED, 'frame refused');

describe('mapPrimaryConsole', () => {
  it('maps grant 0 and does not touch the frame when that works', async () => {
    const { g, calls } = handle({ grant: null, frame: null });
    const r = await mapPrimaryConsole(g, 4, 0x1234);
    expect(r.via).toBe('grant');
    expect(r.grantError).toBeNull();
    expect(calls).toEqual(['map 4 0']);
  });

  it('falls back to the ring-ref frame and says why', async () => {
    const { g, calls } = handle({ grant: noAccess, frame: null });
    const r = await mapPrimaryConsole(g, 4, 0x1234);
    expect(r.via).toBe('frame');
    expect(r.grantError).toBe(noAccess);
    expect(r.mapping.refs).toEqual([0x1234]);
    expect(calls).toEqual(['map 4 0', 'mapFrames 4 4660']);
  });

  it("throws the frame's code, with grant 0's error in details, when both fail", async () => {
    const { g } = handle({ grant: noAccess, frame: notPrivileged });
    const err = (await mapPrimaryConsole(g, 4, 7).catch((e: unknown) => e)) as GnttabError;
    expect(err).toBeInstanceOf(GnttabError);
    expect(err.code).toBe('ERR_GNTTAB_NOT_PRIVILEGED');
    expect(err.cause).toBe(notPrivileged);
    expect(err.details.grantError).toBe(noAccess);
    expect(err.message).toContain('grant 0: grant 0 refused');
  });

  it("without a ring-ref, grant 0's error is the answer; other errors pass through", async () => {
    const { g, calls } = handle({ grant: noAccess, frame: null });
    await expect(mapPrimaryConsole(g, 4)).rejects.toBe(noAccess);
    expect(calls).toEqual(['map 4 0']);
    const boom = new Error('not a GnttabError');
    const h = handle({ grant: noAccess, frame: boom });
    await expect(mapPrimaryConsole(h.g, 4, 7)).rejects.toBe(boom);
  });
});

describe('parseRingRef', () => {
  it('takes the decimal frame number xenstore holds', () => {
    expect(parseRingRef('1052688')).toBe(1052688);
    expect(parseRingRef(' 42\n')).toBe(42);
  });

  it('refuses anything else with ERR_INVALID_ARG', () => {
    for (const bad of ['', '0x10', '-1', '1e3', '12a', '99999999999999999999']) {
      expect(() => parseRingRef(bad), bad).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_ARG' }),
      );
    }
  });
});
