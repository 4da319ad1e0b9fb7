/** Progress lines on stderr (stdout carries only check lines, timings and the summary). */
const started = Date.now();

export function progress(message: string): void {
  const t = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[xen-qemu ${t}s] ${message}\n`);
}

export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
