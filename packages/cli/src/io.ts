import type { Readable, Writable } from 'node:stream';

/** Everything a program touches of its process, so tests can run `main` in-process. */
export interface ProgramIo {
  readonly stdin: Readable & { isTTY?: boolean };
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly env: Readonly<Record<string, string | undefined>>;
}

export function processIo(): ProgramIo {
  return { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env };
}
