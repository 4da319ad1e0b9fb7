import { describe, expect, it } from 'vitest';
import { parseArgs, UsageError } from './args.js';

describe('parseArgs', () => {
  it('defaults test to both xenstored implementations, no filter, no keep', () => {
    expect(parseArgs(['test'])).toEqual({
      command: 'test',
      keep: false,
      only: null,
      xenstored: ['c', 'ocaml'],
    });
  });

  it('reads --keep, --only and --xenstored in both spellings', () => {
    expect(parseArgs(['test', '--keep', '--only', 'native-.*', '--xenstored', 'c'])).toEqual({
      command: 'test',
      keep: true,
      only: 'native-.*',
      xenstored: ['c'],
    });
    expect(parseArgs(['test', '--only=guest', '--xenstored=ocaml'])).toMatchObject({
      only: 'guest',
      xenstored: ['ocaml'],
    });
    expect(parseArgs(['test', '--xenstored', 'oxenstored'])).toMatchObject({
      xenstored: ['ocaml'],
    });
    expect(parseArgs(['test', '--xenstored', 'both'])).toMatchObject({ xenstored: ['c', 'ocaml'] });
  });

  it('shell defaults to oxenstored and refuses both', () => {
    expect(parseArgs(['shell'])).toEqual({ command: 'shell', xenstored: 'ocaml' });
    expect(parseArgs(['shell', '--xenstored', 'c'])).toEqual({ command: 'shell', xenstored: 'c' });
    expect(() => parseArgs(['shell', '--xenstored', 'both'])).toThrow(UsageError);
  });

  it('build takes --force', () => {
    expect(parseArgs(['build'])).toEqual({ command: 'build', force: false });
    expect(parseArgs(['build', '--force'])).toEqual({ command: 'build', force: true });
  });

  it('gives help for no arguments, --help, -h, and --help after a command', () => {
    for (const argv of [[], ['--help'], ['-h'], ['help'], ['test', '--help'], ['shell', '-h']]) {
      expect(parseArgs(argv)).toEqual({ command: 'help' });
    }
  });

  it('rejects unknown commands, unknown flags, missing values and bad patterns', () => {
    for (const argv of [
      ['frobnicate'],
      ['test', '--kep'],
      ['test', '--only'],
      ['test', '--only', ''],
      ['test', '--only', 'a\nb'],
      ['test', '--only', '('],
      ['test', '--xenstored'],
      ['test', '--xenstored', 'go'],
      ['build', '--keep'],
      ['test', '--keep=yes'],
    ]) {
      expect(() => parseArgs(argv), argv.join(' ')).toThrow(UsageError);
    }
  });
});
