import { describe, expect, it } from 'vitest';
import { mirrorsFrom, mirrorsFromSources, parsePolicy } from './apt.js';

const DEB822 = `Types: deb
# a snapshot comment
URIs: http://archive.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://archive.example/debian-security/
Suites: bookworm-security
Components: main
`;

describe('mirrors from the host apt sources', () => {
  it('reads deb822 stanzas', () => {
    expect(mirrorsFromSources(DEB822)).toEqual({
      debian: 'http://archive.example/debian',
      security: 'http://archive.example/debian-security',
    });
  });

  it('reads one-line entries, options included, and ignores deb-src and comments', () => {
    const text = [
      '# deb http://commented.example/debian bookworm main',
      'deb-src http://src.example/debian bookworm main',
      'deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main',
      'deb http://one.example/security bookworm-security main',
    ].join('\n');
    expect(mirrorsFromSources(text)).toEqual({
      debian: 'http://one.example/debian',
      security: 'http://one.example/security',
    });
  });

  it('lets the environment override, and fails clearly when nothing is found', () => {
    const env = {
      XENCONS_DEBIAN_MIRROR: 'http://m/d',
      XENCONS_DEBIAN_SECURITY_MIRROR: 'http://m/s',
    };
    expect(mirrorsFrom(env, '')).toEqual({ debian: 'http://m/d', security: 'http://m/s' });
    expect(mirrorsFrom({}, DEB822).security).toBe('http://archive.example/debian-security');
    expect(() => mirrorsFrom({}, '')).toThrow(/XENCONS_DEBIAN_MIRROR/);
  });
});

describe('parsePolicy', () => {
  it('maps packages to candidates and skips (none)', () => {
    const text = 'qemu:\n  Installed: (none)\n  Candidate: 1:7.2\nfoo:\n  Candidate: (none)\n';
    expect([...parsePolicy(text)]).toEqual([['qemu', '1:7.2']]);
  });
});
