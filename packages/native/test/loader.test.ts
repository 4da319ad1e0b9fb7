import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  loadNative,
  nativeBinaryPath,
  nativeUnavailableReason,
  RING_CORRUPT,
  requireNative,
} from '../index.js';
import { indexUrl, native, runNode, tempDir } from './support.js';

/** Child script: loads the package fresh and prints what the loader says, as JSON. */
const probe = `
  const m = await import(${JSON.stringify(indexUrl)});
  const b = m.loadNative();
  let required = null;
  try { m.requireNative(); } catch (e) {
    required = { code: e.code, message: e.message, brand: e[Symbol.for('xencons.error')] === true };
  }
  console.log(JSON.stringify({
    loaded: b !== null, version: b?.version ?? null, reason: m.nativeUnavailableReason(),
    path: m.nativeBinaryPath(), required,
  }));
`;

function probeWith(env: Record<string, string | undefined>) {
  const r = runNode(probe, { env });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as {
    loaded: boolean;
    version: string | null;
    reason: string | null;
    path: string | null;
    required: { code: string; message: string; brand: boolean } | null;
  };
}

const clean = { XENCONS_NATIVE: undefined, XENCONS_NATIVE_PATH: undefined };

describe('loader', () => {
  it('exports RING_CORRUPT = -1', () => {
    expect(RING_CORRUPT).toBe(-1);
  });

  it('XENCONS_NATIVE=0 disables the addon and says so', () => {
    const r = probeWith({ ...clean, XENCONS_NATIVE: '0' });
    expect(r.loaded).toBe(false);
    expect(r.reason).toBe('disabled by XENCONS_NATIVE=0');
    expect(r.path).toBeNull();
    expect(r.required).toEqual({
      code: 'ERR_NATIVE_UNAVAILABLE',
      message: '@xencons/native is unavailable: disabled by XENCONS_NATIVE=0',
      brand: true,
    });
  });

  it('XENCONS_NATIVE_PATH to a missing file returns null with a reason naming it', () => {
    const dir = tempDir();
    try {
      const missing = join(dir.path, 'nope.node');
      const r = probeWith({ ...clean, XENCONS_NATIVE_PATH: missing });
      expect(r.loaded).toBe(false);
      expect(r.reason).toContain(missing);
      expect(r.reason).toContain('does not exist');
    } finally {
      dir.remove();
    }
  });

  it('XENCONS_NATIVE_PATH to a file that is not a shared object reports the dlopen error', () => {
    const dir = tempDir();
    try {
      const bogus = join(dir.path, 'bogus.node');
      writeFileSync(bogus, 'not an ELF file');
      const r = probeWith({ ...clean, XENCONS_NATIVE_PATH: bogus });
      expect(r.loaded).toBe(false);
      expect(r.reason).toContain(`failed to load ${bogus}`);
      expect(r.required?.code).toBe('ERR_NATIVE_UNAVAILABLE');
    } finally {
      dir.remove();
    }
  });
});

native.describe('loader with the addon built', () => {
  it('loads the binary next to index.js and reports no reason', () => {
    const b = loadNative();
    expect(b).not.toBeNull();
    expect(nativeUnavailableReason()).toBeNull();
    expect(nativeBinaryPath()).toMatch(/xencons-native\.linux-(x64|arm64)-(gnu|musl)\.node$/);
    expect(requireNative()).toBe(b);
    expect(b?.version).toBe('0.0.0');
  });

  it('XENCONS_NATIVE_PATH loads a copy of the binary from elsewhere', () => {
    const dir = tempDir();
    try {
      const copy = join(dir.path, 'copy.node');
      copyFileSync(nativeBinaryPath()!, copy);
      const r = probeWith({ ...clean, XENCONS_NATIVE_PATH: copy });
      expect(r).toMatchObject({ loaded: true, version: '0.0.0', reason: null, path: copy });
    } finally {
      dir.remove();
    }
  });

  it('a fresh process loads it too (no reason, a path)', () => {
    const r = probeWith(clean);
    expect(r).toMatchObject({ loaded: true, reason: null, required: null });
  });
});
