/**
 * Polls `check` until it holds, every `intervalMs`, failing after `timeoutMs` with
 * `timed out waiting for WHAT`. For conditions a test cannot await directly (a file filling, a
 * process noticing); never for timing assertions.
 */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
  intervalMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${timeoutMs} ms)`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
