import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { withTempDir } from '@xencons/test-utils';
import { describe, expect, it } from 'vitest';
import { artifactName, cacheKey, cacheRoot, hashTree } from './cache-key.js';

describe('cacheRoot', () => {
  it('prefers XENCONS_XEN_QEMU_CACHE, then XDG_CACHE_HOME, then ~/.cache', () => {
    expect(cacheRoot({ XENCONS_XEN_QEMU_CACHE: '/c', XDG_CACHE_HOME: '/x' }, '/home/u')).toBe('/c');
    expect(cacheRoot({ XDG_CACHE_HOME: '/x' }, '/home/u')).toBe('/x/xencons/xen-qemu');
    expect(cacheRoot({}, '/home/u')).toBe('/home/u/.cache/xencons/xen-qemu');
    expect(cacheRoot({ XENCONS_XEN_QEMU_CACHE: '', XDG_CACHE_HOME: '' }, '/h')).toBe(
      '/h/.cache/xencons/xen-qemu',
    );
  });
});

describe('cacheKey', () => {
  const inputs = {
    recipe: 1,
    pkg: 'xen-hypervisor-4.17-amd64',
    version: '4.17.7+13-g2445b30a44-0+deb12u1',
  };

  it('is a 16-digit hex string that does not depend on key order', () => {
    const k = cacheKey(inputs);
    expect(k).toMatch(/^[0-9a-f]{16}$/);
    expect(cacheKey({ version: inputs.version, recipe: 1, pkg: inputs.pkg })).toBe(k);
  });

  it('changes with any version, list entry or recipe', () => {
    const k = cacheKey(inputs);
    expect(cacheKey({ ...inputs, version: '4.17.5+72-g01140da4e8-1' })).not.toBe(k);
    expect(cacheKey({ ...inputs, recipe: 2 })).not.toBe(k);
    expect(cacheKey({ ...inputs, extra: ['a'] })).not.toBe(k);
    expect(cacheKey({ l: ['a', 'b'] })).not.toBe(cacheKey({ l: ['b', 'a'] }));
    expect(cacheKey({ l: ['a,b'] })).not.toBe(cacheKey({ l: ['a', 'b'] }));
    expect(cacheKey({ n: 1 })).not.toBe(cacheKey({ n: '1' }));
  });

  it('names artifact folders <kind>-<key>', () => {
    expect(artifactName('kernel', inputs)).toBe(`kernel-${cacheKey(inputs)}`);
  });
});

describe('hashTree', () => {
  it('changes with content, names, new files and the executable bit, not with mtimes', async () => {
    await withTempDir((dir) => {
      mkdirSync(join(dir, 'sub'));
      writeFileSync(join(dir, 'init'), '#!/bin/sh\n');
      writeFileSync(join(dir, 'sub', 'motd'), 'hello\n');
      const h0 = hashTree(dir);
      expect(hashTree(dir)).toBe(h0);
      writeFileSync(join(dir, 'init'), '#!/bin/sh\n');
      expect(hashTree(dir)).toBe(h0);
      chmodSync(join(dir, 'init'), 0o755);
      const h1 = hashTree(dir);
      expect(h1).not.toBe(h0);
      writeFileSync(join(dir, 'sub', 'motd'), 'hello!\n');
      const h2 = hashTree(dir);
      expect(h2).not.toBe(h1);
      writeFileSync(join(dir, 'sub', 'new'), '');
      expect(hashTree(dir)).not.toBe(h2);
    });
  });
});
