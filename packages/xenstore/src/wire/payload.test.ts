import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { XSD_ERRORS, xsErrnoName, xsErrnoNumber } from './errors.js';
import { isSubpath, joinPath, pathProblem } from './paths.js';
import {
  DirectoryPartReader,
  decodeStrings,
  encodeDirectoryPartReply,
  encodeStrings,
  parseBoolReply,
  parseErrorReply,
  parseOkReply,
  parseOneArg,
  parseU32Reply,
  parseWriteRequest,
} from './payload.js';
import { acl, formatAcl, parseAcl, parsePerm } from './perms.js';

const b = (s: string) => new Uint8Array(Buffer.from(s, 'latin1'));

describe('payload rules', () => {
  it('splits string lists as xenstore writes them', () => {
    expect(decodeStrings(b(''))).toEqual([]);
    expect(decodeStrings(b('\0'))).toEqual(['']);
    expect(decodeStrings(b('a\0b\0'))).toEqual(['a', 'b']);
    expect(decodeStrings(b('a\0b'))).toEqual(['a', 'b']);
    expect(Buffer.from(encodeStrings(['a', '', 'bc'])).toString('latin1')).toBe('a\0\0bc\0');
  });

  it('one-argument requests need exactly one NUL, at the end (cxenstored onearg)', () => {
    expect(parseOneArg(b('/a\0'))).toBe('/a');
    expect(parseOneArg(b('/a'))).toBeUndefined();
    expect(parseOneArg(b('/a\0b\0'))).toBeUndefined();
    expect(parseOneArg(b(''))).toBeUndefined();
  });

  it('WRITE values are everything after the first NUL', () => {
    expect(parseWriteRequest(b('/a\0x\0y'))).toEqual({ path: '/a', value: b('x\0y') });
    expect(parseWriteRequest(b('/a\0'))).toEqual({ path: '/a', value: b('') });
    expect(parseWriteRequest(b('/a'))).toBeUndefined();
  });

  it('reply parsers reject malformed replies with ERR_XS_PROTOCOL', () => {
    expect(() => parseOkReply(b('OK\0'))).not.toThrow();
    expect(() => parseOkReply(b('NO\0'))).toThrow(/malformed/);
    expect(parseErrorReply(b('EACCES\0'))).toBe('EACCES');
    expect(() => parseErrorReply(b('hello\0'))).toThrow(/malformed/);
    expect(parseBoolReply(b('F\0'))).toBe(false);
    expect(() => parseBoolReply(b('X\0'))).toThrow();
    expect(parseU32Reply(b('17\0'))).toBe(17);
    expect(() => parseU32Reply(b('4294967296\0'))).toThrow();
    expect(() => parseU32Reply(b('-1\0'))).toThrow();
  });

  it('DIRECTORY_PART: server pages and the reader reassembles, for any list', () => {
    fc.assert(
      fc.property(
        fc.array(fc.stringMatching(/^[a-z0-9_-]{1,60}$/), { maxLength: 300 }),
        fc.integer({ min: 64, max: 4096 }),
        (children, max) => {
          const reader = new DirectoryPartReader();
          for (let guard = 0; guard < 10_000; guard++) {
            const reply = encodeDirectoryPartReply('7', children, reader.offset, max);
            expect(reply).toBeDefined();
            expect(reply!.length).toBeLessThanOrEqual(max);
            const r = reader.push(reply!);
            if (Array.isArray(r)) {
              expect(r).toEqual(children);
              return;
            }
            expect(r).toBe('more');
          }
          throw new Error('never finished');
        },
      ),
    );
  });

  it('DIRECTORY_PART: restarts from 0 when the generation changes', () => {
    const reader = new DirectoryPartReader();
    expect(reader.push(b('1\0a\0'))).toBe('more');
    expect(reader.offset).toBe(2);
    expect(reader.push(b('2\0b\0\0'))).toBe('restart');
    expect(reader.offset).toBe(0);
    expect(reader.push(b('2\0x\0y\0\0'))).toEqual(['x', 'y']);
    expect(reader.restarts).toBe(1);
    expect(new DirectoryPartReader().push(b('5\0\0'))).toEqual([]);
  });

  it('DIRECTORY_PART: an offset inside a name is refused (EINVAL)', () => {
    expect(encodeDirectoryPartReply('1', ['abc', 'd'], 1)).toBeUndefined();
    expect(Buffer.from(encodeDirectoryPartReply('1', ['abc', 'd'], 4)!).toString('latin1')).toBe(
      '1\0d\0\0',
    );
    expect(Buffer.from(encodeDirectoryPartReply('1', ['abc'], 99)!).toString('latin1')).toBe(
      '1\0\0',
    );
  });
});

describe('permissions', () => {
  it('parses letters and strtol(…, 0) ids', () => {
    expect(parsePerm('n0')).toEqual({ domid: 0, access: 'none' });
    expect(parsePerm('r5')).toEqual({ domid: 5, access: 'read' });
    expect(parsePerm('w0x10')).toEqual({ domid: 16, access: 'write' });
    expect(parsePerm('b010')).toEqual({ domid: 8, access: 'both' });
    for (const bad of ['', 'x1', 'r', 'r1a', 'r-1', 'r 1', 'r70000'])
      expect(parsePerm(bad)).toBeUndefined();
  });

  it('ACL: the first entry is the owner and the default for everyone else', () => {
    const parsed = parseAcl(['r1', 'w0', 'b7']);
    expect(parsed).toEqual({
      owner: 1,
      others: 'read',
      entries: [
        { domid: 0, access: 'write' },
        { domid: 7, access: 'both' },
      ],
    });
    expect(formatAcl(parsed!)).toEqual(['r1', 'w0', 'b7']);
    expect(formatAcl(acl(0, 'none', { 5: 'read' }))).toEqual(['n0', 'r5']);
    expect(parseAcl([])).toBeUndefined();
  });

  it('round trips any ACL', () => {
    const access = fc.constantFrom(
      'none' as const,
      'read' as const,
      'write' as const,
      'both' as const,
    );
    const domid = fc.integer({ min: 0, max: 0xffff });
    fc.assert(
      fc.property(
        domid,
        access,
        fc.array(fc.record({ domid, access })),
        (owner, others, entries) => {
          const a = acl(owner, others, entries);
          expect(parseAcl(formatAcl(a))).toEqual(a);
        },
      ),
    );
  });
});

describe('paths and errors', () => {
  it('validates paths as cxenstored does', () => {
    expect(pathProblem('/local/domain/0')).toBeNull();
    expect(pathProblem('/')).toBeNull();
    expect(pathProblem('data/x')).toBeNull();
    expect(pathProblem('')).toMatch(/empty/);
    expect(pathProblem('/a/')).toMatch(/ends/);
    expect(pathProblem('/a//b')).toMatch(/\/\//);
    expect(pathProblem('/a b')).toMatch(/character/);
    expect(pathProblem('@releaseDomain')).toMatch(/watches/);
    expect(pathProblem('@releaseDomain', { allowSpecial: true })).toBeNull();
    expect(pathProblem(`/${'a'.repeat(3072)}`)).toMatch(/longer/);
  });

  it('subpaths and joins', () => {
    expect(isSubpath('/a', '/a/b')).toBe(true);
    expect(isSubpath('/a', '/ab')).toBe(false);
    expect(isSubpath('/', '/x')).toBe(true);
    expect(joinPath('/', 'a', 'b')).toBe('/a/b');
  });

  it('maps xsd_errors names and numbers both ways, unknown numbers to EINVAL', () => {
    expect(XSD_ERRORS.map(([n]) => n).slice(0, 5)).toEqual([
      'EINVAL',
      'EACCES',
      'EEXIST',
      'EISDIR',
      'ENOENT',
    ]);
    expect(XSD_ERRORS[15]).toEqual(['EPERM', 1]);
    for (const [name, n] of XSD_ERRORS) {
      expect(xsErrnoNumber(name)).toBe(n);
      expect(xsErrnoName(n)).toBe(name);
    }
    expect(xsErrnoName(9999)).toBe('EINVAL');
  });
});
