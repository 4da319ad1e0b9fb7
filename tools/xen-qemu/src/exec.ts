/** Running host commands: always bounded, output captured or passed to stderr. */
import { spawn } from 'node:child_process';

export interface RunOptions {
  /** Hard limit; the command's process group is killed when it passes. */
  readonly timeoutMs: number;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Bytes for stdin (otherwise stdin is /dev/null). */
  readonly input?: string | Uint8Array;
  /** Where the command's own output goes: captured (default) or copied to our stderr. */
  readonly output?: 'capture' | 'stderr';
  /** Resolve instead of throwing on a non-zero exit. */
  readonly allowFailure?: boolean;
  readonly signal?: AbortSignal;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    message: string,
    readonly result: RunResult | null,
  ) {
    super(message);
  }
}

const MAX_CAPTURE = 4 * 1024 * 1024;

/** Runs `cmd args` in its own process group; on timeout or abort kills that group (ours). */
export function run(cmd: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    const sink = (chunk: Buffer, which: 'out' | 'err') => {
      if (opts.output === 'stderr') process.stderr.write(chunk);
      const s = chunk.toString('utf8');
      if (which === 'out') stdout = (stdout + s).slice(-MAX_CAPTURE);
      else stderr = (stderr + s).slice(-MAX_CAPTURE);
    };
    child.stdout?.on('data', (c: Buffer) => sink(c, 'out'));
    child.stderr?.on('data', (c: Buffer) => sink(c, 'err'));
    if (opts.input !== undefined && child.stdin) {
      child.stdin.on('error', () => {});
      child.stdin.end(opts.input);
    }
    let why: string | null = null;
    const killGroup = (reason: string) => {
      why = reason;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(
      () => killGroup(`timed out after ${opts.timeoutMs / 1000} s`),
      opts.timeoutMs,
    );
    const onAbort = () => killGroup('aborted');
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      reject(new CommandError(`${cmd}: ${err.message}`, null));
    });
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      const result = { code: code ?? (sig ? 128 : 1), stdout, stderr };
      if (why !== null) {
        reject(new CommandError(`${cmd} ${args.join(' ')}: ${why}`, result));
      } else if (result.code !== 0 && !opts.allowFailure) {
        const tail = (stderr || stdout).trim().split('\n').slice(-8).join('\n');
        reject(new CommandError(`${cmd} ${args.join(' ')} exited ${result.code}\n${tail}`, result));
      } else {
        resolve(result);
      }
    });
  });
}

/** Runs a shell pipeline with `sh -c` (arguments go in as $1, $2... never interpolated). */
export function sh(script: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  return run('sh', ['-c', script, 'sh', ...args], opts);
}
