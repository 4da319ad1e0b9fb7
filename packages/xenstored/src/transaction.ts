import type { NodeData, TreeNode } from './node.js';
import { baseName, childPath, depthOf, parentOf } from './path.js';
import type { Perms } from './perms.js';
import { Tree } from './tree.js';
import type { View } from './view.js';

/** Generation of a node that does not exist (cxenstored's `NO_GENERATION`). */
const NO_GENERATION = -1;

/** A transaction's private copy of one node. */
class TxNode implements NodeData {
  value: string;
  perms: Perms;
  generation: number;
  children: string[];
  #childBytes: number;

  constructor(value: string, perms: Perms, generation: number, children: string[], bytes = 0) {
    this.value = value;
    this.perms = perms;
    this.generation = generation;
    this.children = children;
    this.#childBytes = bytes;
  }

  get childCount(): number {
    return this.children.length;
  }

  childNames(): string[] {
    return this.children.slice();
  }

  childLen(): number {
    return this.#childBytes;
  }

  addChild(name: string): void {
    this.children.push(name);
    this.#childBytes += name.length + 1;
  }

  removeChild(name: string): void {
    const i = this.children.indexOf(name);
    if (i < 0) return;
    this.children.splice(i, 1);
    this.#childBytes -= name.length + 1;
  }
}

/** One node the transaction touched (cxenstored's `struct accessed_node`). */
interface Accessed {
  /** Global generation at first access, compared at commit. */
  readonly generation: number;
  /** The node as this transaction sees it; null when absent or removed. */
  node: TxNode | null;
  modified: boolean;
  fireWatch: boolean;
  watchExact: boolean;
  /** Permissions at first access, for the watch permission check at commit. */
  readonly oldPerms: Perms | null;
}

/**
 * Thrown by a view operation to answer the request with an errno name. It is an ordinary answer,
 * not a fault, so it carries no stack trace: capturing one cost more than the rest of a request.
 */
export class RequestError extends Error {
  readonly errno: string;

  constructor(errno: string) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(errno);
    Error.stackTraceLimit = limit;
    this.errno = errno;
  }
}

/** A pending watch event of a committed transaction. */
export interface CommitEvent {
  readonly path: string;
  readonly exact: boolean;
  readonly oldPerms: Perms | null;
}

/**
 * A transaction with cxenstored 4.17 semantics: every node it touches is copied on first access
 * (so later reads see that copy, not concurrent changes), its generation is remembered, and the
 * commit fails with EAGAIN if any of those nodes changed globally in the meantime.
 */
export class Transaction implements View {
  readonly id: number;
  readonly #tree: Tree;
  readonly #accessed = new Map<string, Accessed>();
  /** Net change of owned nodes per domid. */
  readonly deltas = new Map<number, number>();
  /** Accessed-node limit (`transaction-nodes` quota) or Infinity. */
  readonly #maxNodes: number;
  nodeCreated = false;
  /** Set when an operation failed half way; the commit then answers ENOMEM, as cxenstored does. */
  failed = false;
  /** cxenstored's transaction generation: its copies are keyed `<generation>/<path>`. */
  readonly generation: number;
  /**
   * Bytes of this transaction's node copies, which cxenstored 4.17 keeps in its database (keyed
   * `<generation>/<path>`) and charges to the connection's domain until the transaction ends: one
   * for every existing node it read, and the new contents of what it wrote.
   */
  memory = 0;
  readonly #keyPrefix: number;

  constructor(id: number, tree: Tree, maxNodes: number) {
    this.id = id;
    this.#tree = tree;
    this.#maxNodes = maxNodes;
    this.generation = tree.next();
    this.#keyPrefix = String(this.generation).length + 1;
  }

  /** Bytes of the `<generation>/` prefix of this transaction's keys. */
  get keyPrefix(): number {
    return this.#keyPrefix;
  }

  /** What the copy of `path` costs, as it is now. */
  #cost(path: string, entry: Accessed): number {
    const n = entry.node;
    if (n === null) return 0;
    return Tree.nodeMemory(
      this.#keyPrefix + path.length,
      n.perms.length,
      n.value.length,
      n.childLen(),
    );
  }

  /** What writing `value` / `perms` to the copy of `path` would add to {@link memory}. */
  costOfWrite(path: string, value: string | null, perms: Perms | null): number {
    const entry = this.#accessed.get(path);
    const n = entry?.node ?? null;
    const permCount = perms?.length ?? n?.perms.length ?? 1;
    const valueLen = value?.length ?? n?.value.length ?? 0;
    const now = entry === undefined ? 0 : this.#cost(path, entry);
    return (
      Tree.nodeMemory(this.#keyPrefix + path.length, permCount, valueLen, n?.childLen() ?? 0) - now
    );
  }

  get accessedCount(): number {
    return this.#accessed.size;
  }

  get(path: string): NodeData | undefined {
    return this.#access(path).node ?? undefined;
  }

  create(path: string, value: string, perms: Perms): void {
    const parentPath = parentOf(path);
    const parent = this.#access(parentPath);
    if (parent.node === null) throw new Error(`xenstored transaction: no parent for ${path}`);
    const entry = this.#access(path);
    this.memory -= this.#cost(parentPath, parent) + this.#cost(path, entry);
    parent.node.addChild(baseName(path));
    parent.node.generation = this.#tree.next();
    parent.modified = true;
    entry.node = new TxNode(value, perms, this.#tree.next(), []);
    entry.modified = true;
    this.memory += this.#cost(parentPath, parent) + this.#cost(path, entry);
    this.nodeCreated = true;
    this.#delta(perms[0]!.id, 1);
  }

  setValue(path: string, value: string): void {
    const entry = this.#existing(path);
    this.memory -= this.#cost(path, entry);
    entry.node!.value = value;
    entry.node!.generation = this.#tree.next();
    entry.modified = true;
    this.memory += this.#cost(path, entry);
  }

  setPerms(path: string, perms: Perms): void {
    const entry = this.#existing(path);
    const node = entry.node!;
    this.memory -= this.#cost(path, entry);
    this.#delta(node.perms[0]!.id, -1);
    this.#delta(perms[0]!.id, 1);
    node.perms = perms;
    node.generation = this.#tree.next();
    entry.modified = true;
    this.memory += this.#cost(path, entry);
  }

  remove(path: string): void {
    const entry = this.#existing(path);
    const parentPath = parentOf(path);
    const parent = this.#access(parentPath);
    if (parent.node !== null) {
      this.memory -= this.#cost(parentPath, parent);
      parent.node.removeChild(baseName(path));
      parent.node.generation = this.#tree.next();
      parent.modified = true;
      this.memory += this.#cost(parentPath, parent);
    }
    const gone = entry.node!;
    this.memory -= this.#cost(path, entry);
    this.#delta(gone.perms[0]!.id, -1);
    entry.node = null;
    entry.modified = true;
  }

  /** Records a watch event to fire at commit; a non-exact event replaces an exact one. */
  queueWatch(path: string, exact: boolean): void {
    const entry = this.#accessed.get(path);
    if (entry === undefined) {
      this.failed = true;
      return;
    }
    if (!entry.fireWatch) {
      entry.fireWatch = true;
      entry.watchExact = exact;
    } else if (!exact) {
      entry.watchExact = false;
    }
  }

  /** Generation check of every accessed node; true when the commit may go ahead. */
  conflictFree(): boolean {
    for (const [path, entry] of this.#accessed) {
      const node = this.#tree.find(path);
      const now = node === undefined ? NO_GENERATION : node.generation;
      if (now !== entry.generation) return false;
    }
    return true;
  }

  /**
   * Applies the modified nodes to the global tree (call after {@link conflictFree}) and returns
   * the watch events to fire, in access order.
   */
  apply(): CommitEvent[] {
    const tree = this.#tree;
    const modified: [string, Accessed][] = [];
    for (const item of this.#accessed) if (item[1].modified) modified.push(item);
    // Removals first (the subtree goes with its top node), then creations and updates top down,
    // then every modified node's child order is made the transaction's.
    const gone: [string, TreeNode][] = [];
    for (const [path, entry] of modified) {
      if (entry.node !== null || path === '/') continue;
      const node = tree.find(path);
      if (node !== undefined) gone.push([path, node]);
    }
    for (const [path, node] of gone) tree.detach(path, node);
    const live = modified.filter(([, e]) => e.node !== null);
    live.sort((a, b) => depthOf(a[0]) - depthOf(b[0]));
    const nodes: [string, TreeNode, TxNode][] = [];
    for (const [path, entry] of live) {
      const data = entry.node!;
      let node = tree.find(path);
      if (node === undefined) {
        const parent = tree.find(parentOf(path));
        if (parent === undefined) continue;
        node = tree.insert(parent, path, data.value, data.perms, 0);
      }
      tree.update(path, node, data.value, data.perms);
      node.generation = tree.next();
      nodes.push([path, node, data]);
    }
    for (const [path, node, data] of nodes) {
      const old = node.children;
      const next = new Map<string, TreeNode>();
      for (const name of data.children) {
        const child = old?.get(name);
        if (child !== undefined) next.set(name, child);
      }
      // A child the transaction does not list (none when the commit had no conflict) goes.
      if (old !== null && old.size > next.size) {
        for (const [name, child] of old)
          if (!next.has(name)) tree.detach(childPath(path, name), child);
      }
      tree.setChildren(path, node, next);
    }
    for (const [domid, delta] of this.deltas) tree.adjustOwned(domid, delta);
    const events: CommitEvent[] = [];
    for (const [path, entry] of this.#accessed) {
      if (entry.fireWatch) events.push({ path, exact: entry.watchExact, oldPerms: entry.oldPerms });
    }
    return events;
  }

  #existing(path: string): Accessed {
    const entry = this.#access(path);
    if (entry.node === null) throw new Error(`xenstored transaction: ${path} does not exist`);
    return entry;
  }

  #access(path: string): Accessed {
    let entry = this.#accessed.get(path);
    if (entry !== undefined) return entry;
    if (this.#accessed.size >= this.#maxNodes) {
      this.failed = true;
      throw new RequestError('ENOSPC');
    }
    const node = this.#tree.find(path);
    entry = {
      generation: node === undefined ? NO_GENERATION : node.generation,
      node:
        node === undefined
          ? null
          : new TxNode(node.value, node.perms, node.generation, node.childNames(), node.childBytes),
      modified: false,
      fireWatch: false,
      watchExact: false,
      oldPerms: node === undefined ? null : node.perms,
    };
    this.#accessed.set(path, entry);
    this.memory += this.#cost(path, entry);
    return entry;
  }

  #delta(domid: number, n: number): void {
    this.deltas.set(domid, (this.deltas.get(domid) ?? 0) + n);
  }
}
