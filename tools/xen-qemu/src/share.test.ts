import { execFileSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { withTempDir } from '@xencons/test-utils';
import { describe, expect, it } from 'vitest';
import { configEnv, copyRepo, publishedEntries, shellQuote } from './share.js';

function write(path: string, text = ''): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

function link(path: string, target: string): void {
  mkdirSync(dirname(path), { recursive: true });
  symlinkSync(target, path);
}

describe('shellQuote / configEnv', () => {
  it('round-trips any single-line value through sh', () => {
    const values = ["it's", 'a b', '$(rm -rf /)', '`x`', 'native-(evtchn|grant)', '"', '\\', ''];
    const text = configEnv(Object.fromEntries(values.map((v, i) => [`V${i}`, v])));
    const script = `${text}${values.map((_, i) => `printf '%s\\n' "$V${i}"`).join('\n')}`;
    const out = execFileSync('sh', ['-c', script], { encoding: 'utf8' });
    expect(out.split('\n').slice(0, -1)).toEqual(values);
    expect(shellQuote("a'b")).toBe(`'a'\\''b'`);
  });

  it('refuses names that are not shell variables', () => {
    expect(() => configEnv({ 'A-B': 'x' })).toThrow();
  });
});

describe('publishedEntries', () => {
  it('takes package.json and what `files` names, dist by default, only what exists', async () => {
    await withTempDir((dir) => {
      write(join(dir, 'package.json'), '{}');
      write(join(dir, 'index.js'));
      write(join(dir, 'index.d.ts'));
      write(join(dir, 'xencons-native.linux-x64-gnu.node'));
      write(join(dir, 'src/lib.rs'));
      write(join(dir, 'dist/index.js'));
      expect(publishedEntries(dir, { files: ['index.js', 'index.d.ts', '*.node'] })).toEqual([
        'index.d.ts',
        'index.js',
        'package.json',
        'xencons-native.linux-x64-gnu.node',
      ]);
      expect(publishedEntries(dir, {})).toEqual(['dist', 'package.json']);
      expect(publishedEntries(dir, { files: ['lib', './dist/'] })).toEqual([
        'dist',
        'package.json',
      ]);
    });
  });
});

describe('copyRepo', () => {
  it('copies built workspace packages and their production dependencies with pnpm symlinks', async () => {
    await withTempDir((root) => {
      write(join(root, 'package.json'), '{"private":true}');
      // @xencons/a depends on @xencons/b (workspace) and dep-x (external, which needs dep-y).
      write(
        join(root, 'packages/a/package.json'),
        JSON.stringify({
          name: '@xencons/a',
          files: ['dist'],
          dependencies: { '@xencons/b': 'workspace:*', 'dep-x': '1' },
          devDependencies: { vitest: '1' },
        }),
      );
      write(join(root, 'packages/a/dist/index.js'), 'export {}');
      write(join(root, 'packages/a/src/index.ts'), 'secret');
      link(join(root, 'packages/a/node_modules/@xencons/b'), '../../../b');
      link(
        join(root, 'packages/a/node_modules/dep-x'),
        '../../../node_modules/.pnpm/dep-x@1.0.0/node_modules/dep-x',
      );
      link(
        join(root, 'packages/a/node_modules/vitest'),
        '../../../node_modules/.pnpm/vitest@4/node_modules/vitest',
      );
      write(join(root, 'packages/b/package.json'), JSON.stringify({ name: '@xencons/b' }));
      write(join(root, 'packages/b/dist/index.js'), 'export {}');
      const pnpm = join(root, 'node_modules/.pnpm');
      write(
        join(pnpm, 'dep-x@1.0.0/node_modules/dep-x/package.json'),
        JSON.stringify({ name: 'dep-x', dependencies: { 'dep-y': '2' } }),
      );
      write(join(pnpm, 'dep-x@1.0.0/node_modules/dep-x/index.js'), 'x');
      link(join(pnpm, 'dep-x@1.0.0/node_modules/dep-y'), '../../dep-y@2.0.0/node_modules/dep-y');
      write(
        join(pnpm, 'dep-y@2.0.0/node_modules/dep-y/package.json'),
        JSON.stringify({ name: 'dep-y' }),
      );
      write(join(pnpm, 'vitest@4/node_modules/vitest/package.json'), '{}');
      write(join(root, 'apps/unbuilt/package.json'), JSON.stringify({ name: 'unbuilt' }));

      const dest = join(root, '..', `${root.split('/').pop()}-out`);
      const pnpmOut = join(dest, 'node_modules/.pnpm');
      const r = copyRepo(root, dest);
      expect(r.packages.sort()).toEqual(['apps/unbuilt', 'packages/a', 'packages/b']);
      expect(r.dependencies.sort()).toEqual([
        'node_modules/.pnpm/dep-x@1.0.0/node_modules/dep-x',
        'node_modules/.pnpm/dep-y@2.0.0/node_modules/dep-y',
      ]);
      expect(existsSync(join(dest, 'packages/a/dist/index.js'))).toBe(true);
      expect(existsSync(join(dest, 'packages/a/src'))).toBe(false);
      expect(lstatSync(join(dest, 'packages/a/node_modules/@xencons/b')).isSymbolicLink()).toBe(
        true,
      );
      expect(readlinkSync(join(dest, 'packages/a/node_modules/dep-x'))).toBe(
        '../../../node_modules/.pnpm/dep-x@1.0.0/node_modules/dep-x',
      );
      expect(readFileSync(join(dest, 'packages/a/node_modules/dep-x/index.js'), 'utf8')).toBe('x');
      expect(
        readFileSync(join(pnpmOut, 'dep-x@1.0.0/node_modules/dep-y/package.json'), 'utf8'),
      ).toContain('dep-y');
      expect(existsSync(join(dest, 'packages/a/node_modules/vitest'))).toBe(false);
      expect(existsSync(join(dest, 'node_modules/.pnpm/vitest@4'))).toBe(false);
      execFileSync('rm', ['-rf', dest]);
    });
  });
});
