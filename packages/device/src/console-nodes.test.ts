import { describe, expect, it } from 'vitest';
import {
  consoleBackendPath,
  consoleFrontendPath,
  consoleTypeServed,
  DEFAULT_CONSOLE_TYPES,
  parseConsoleLimit,
  parseU32Node,
} from './console-nodes.js';
import { checkSecondaryDevid, LINUX_MAX_CONSOLE_DEVID } from './toolstack.js';

describe('console nodes', () => {
  it('names the frontend and backend directories as libxl does', () => {
    expect(consoleFrontendPath(5, 0)).toBe('/local/domain/5/console');
    expect(consoleFrontendPath(5, 1)).toBe('/local/domain/5/device/console/1');
    expect(consoleBackendPath(0, 5, 1)).toBe('/local/domain/0/backend/console/5/1');
  });

  it('parses limit as strtoul base 0 does for well-formed values; absent, empty or 0 mean no limit', () => {
    expect(parseConsoleLimit('1048576')).toBe(1048576);
    expect(parseConsoleLimit(' 4096\n')).toBe(4096);
    expect(parseConsoleLimit('0x100000')).toBe(1048576);
    expect(parseConsoleLimit('0X10')).toBe(16);
    expect(parseConsoleLimit('010')).toBe(8);
    expect(parseConsoleLimit('0')).toBeNull();
    expect(parseConsoleLimit('')).toBeNull();
    expect(parseConsoleLimit(undefined)).toBeNull();
  });

  it('refuses a limit that is not a byte count with ERR_CONSOLE_BAD_NODE', () => {
    for (const bad of ['-1', '1e6', '12abc', 'abc', '0x', '09', '1 2', '99999999999999999999']) {
      expect(() => parseConsoleLimit(bad), bad).toThrow(
        expect.objectContaining({ code: 'ERR_CONSOLE_BAD_NODE' }),
      );
    }
  });

  it('parses port and ring-ref as unsigned 32-bit decimals', () => {
    expect(parseU32Node('port', '7')).toBe(7);
    expect(parseU32Node('ring-ref', '4294967295')).toBe(0xffffffff);
    for (const bad of ['4294967296', '-1', '', 'x', '0x10', '1.5']) {
      expect(() => parseU32Node('port', bad), bad).toThrow(
        expect.objectContaining({ code: 'ERR_CONSOLE_BAD_NODE' }),
      );
    }
  });

  it('serves xenconsoled and xencons consoles by default, and a console with no type', () => {
    expect(DEFAULT_CONSOLE_TYPES).toEqual(['xenconsoled', 'xencons']);
    expect(consoleTypeServed('xenconsoled')).toBe(true);
    expect(consoleTypeServed('xencons')).toBe(true);
    expect(consoleTypeServed(undefined)).toBe(true);
    expect(consoleTypeServed('ioemu')).toBe(false);
    expect(consoleTypeServed('')).toBe(false);
    expect(consoleTypeServed('ioemu', ['ioemu'])).toBe(true);
    expect(consoleTypeServed('xenconsoled', ['ioemu'])).toBe(false);
  });

  it('never hands a Linux guest a secondary console id above 9 (hvc_xen reads one digit)', () => {
    expect(LINUX_MAX_CONSOLE_DEVID).toBe(9);
    expect(() => checkSecondaryDevid(3, 9)).not.toThrow();
    expect(() => checkSecondaryDevid(3, 10)).toThrow(
      expect.objectContaining({ code: 'ERR_CONSOLE_DEVID' }),
    );
    expect(() => checkSecondaryDevid(3, 10, false)).not.toThrow();
    expect(() => checkSecondaryDevid(3, 0, false)).toThrow(
      expect.objectContaining({ code: 'ERR_CONSOLE_DEVID' }),
    );
  });
});
