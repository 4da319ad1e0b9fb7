import { PassThrough } from 'node:stream';
import type { ProgramIo } from './io.js';

/** A ProgramIo over in-memory streams, for running `main` in tests and embedding programs. */
export interface CapturedIo {
  readonly io: ProgramIo;
  readonly stdin: PassThrough;
  /** Everything written to stdout so far. */
  stdout(): string;
  /** Everything written to stderr so far. */
  stderr(): string;
}

export function captureIo(env: Record<string, string | undefined> = {}): CapturedIo {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  return {
    io: { stdin, stdout, stderr, env },
    stdin,
    stdout: () => out,
    stderr: () => err,
  };
}
