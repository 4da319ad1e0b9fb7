/**
 * Kernel module dependencies without depmod: the `depends=` field of each module's `.modinfo`
 * section, and a load order (dependencies first) for insmod in the images' /init.
 */

/** Module names compare with `-` and `_` as the same character, as the kernel does. */
export function moduleName(fileOrName: string): string {
  const base = fileOrName
    .slice(fileOrName.lastIndexOf('/') + 1)
    .replace(/\.ko(\.(xz|zst|gz))?$/, '');
  return base.replace(/-/g, '_');
}

/** The modules a `.ko` file names in its `depends=` modinfo field (empty when none). */
export function moduleDepends(ko: Uint8Array): string[] {
  const needle = Buffer.from('depends=');
  const buf = Buffer.from(ko.buffer, ko.byteOffset, ko.byteLength);
  let at = buf.indexOf(needle);
  while (at >= 0) {
    // A modinfo entry starts right after a NUL (or at the start of the section).
    if (at === 0 || buf[at - 1] === 0) {
      const end = buf.indexOf(0, at);
      const value = buf.toString('latin1', at + needle.length, end < 0 ? buf.length : end);
      return value
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
        .map(moduleName);
    }
    at = buf.indexOf(needle, at + 1);
  }
  return [];
}

export class MissingModuleError extends Error {
  override readonly name = 'MissingModuleError';
}

/**
 * Every module `wanted` needs, dependencies before dependents, each once, in the order first
 * needed. `dependsOf` returns a module's direct dependencies, or null when there is no such module.
 */
export function loadOrder(
  wanted: readonly string[],
  dependsOf: (name: string) => readonly string[] | null,
): string[] {
  const order: string[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();
  const visit = (raw: string, from: string | null) => {
    const name = moduleName(raw);
    if (done.has(name)) return;
    if (visiting.has(name)) throw new Error(`module dependency cycle at ${name}`);
    const deps = dependsOf(name);
    if (deps === null) {
      throw new MissingModuleError(
        `kernel module ${name}${from ? ` (needed by ${from})` : ''} not found`,
      );
    }
    visiting.add(name);
    for (const d of deps) visit(d, name);
    visiting.delete(name);
    done.add(name);
    order.push(name);
  };
  for (const w of wanted) visit(w, null);
  return order;
}
