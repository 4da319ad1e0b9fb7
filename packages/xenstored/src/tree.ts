import { recordSize, TreeNode } from './node.js';
import { childPath, parentOf } from './path.js';
import type { Perms } from './perms.js';

/**
 * The global tree: nodes hang off their parents' child maps (which keep the children's order),
 * and an index from full path to node makes a lookup one hash of the path instead of one per
 * component. A node's name is a slice of its indexed path, so the path is stored once.
 * `generation` is cxenstored's global counter: every modification stamps the node with the next
 * value, which is what transactions compare at commit.
 */
export class Tree {
  readonly root: TreeNode;
  readonly #index = new Map<string, TreeNode>();
  /** Last generation handed out. */
  generation = 0;
  /** Nodes owned (perms entry 0) per domid: the `nodes` quota counts these. */
  readonly owned = new Map<number, number>();
  /**
   * Bytes of node records (plus their keys, the paths) per owner, as cxenstored 4.17 accounts
   * them against the `memory` quota (`do_tdb_write`): path + 24 + 8 per perm + value + children.
   */
  readonly memory = new Map<number, number>();
  /** Total nodes, root included. */
  size = 1;

  constructor(rootPerms: Perms) {
    this.root = new TreeNode('', null, '', rootPerms, 0);
    this.#index.set('/', this.root);
    this.#own(rootPerms[0]!.id, 1);
    this.#charge(1, this.root, 1);
  }

  next(): number {
    return ++this.generation;
  }

  /** The node at an absolute, valid path. */
  find(path: string): TreeNode | undefined {
    return this.#index.get(path);
  }

  /** Creates a node under an existing parent; stamps parent and child. */
  create(path: string, value: string, perms: Perms): TreeNode {
    const parent = this.find(parentOf(path));
    if (parent === undefined) throw new Error(`xenstored tree: no parent for ${path}`);
    const node = this.insert(parent, path, value, perms, this.next());
    parent.generation = this.next();
    this.#own(perms[0]!.id, 1);
    return node;
  }

  /** Adds a node below `parent` without stamping or counting owners (transaction commit). */
  insert(
    parent: TreeNode,
    path: string,
    value: string,
    perms: Perms,
    generation: number,
  ): TreeNode {
    const key = ownString(path);
    const slash = key.lastIndexOf('/');
    const node = new TreeNode(key.slice(slash + 1), parent, value, perms, generation);
    const parentLen = slash === 0 ? 1 : slash;
    this.#charge(parentLen, parent, -1);
    parent.addChild(node);
    this.#charge(parentLen, parent, 1);
    this.#charge(key.length, node, 1);
    this.#index.set(key, node);
    this.size++;
    return node;
  }

  /** Detaches a node (and whatever is below it) from its parent; counts only this node. */
  remove(path: string, node: TreeNode): void {
    const parent = node.parent;
    if (parent === null) throw new Error('xenstored tree: cannot remove the root');
    this.detach(path, node);
    parent.generation = this.next();
    this.#own(node.perms[0]!.id, -1);
  }

  /**
   * Unlinks `node` from its parent and drops it and everything still below it from the index;
   * counts `size` down by the nodes dropped (transaction commit: no stamps, no owner counts).
   */
  detach(path: string, node: TreeNode): void {
    const parent = node.parent;
    // Below a node detached before (a commit removes a subtree top first), only unlink.
    const attached = this.#index.get(path) === node;
    if (parent !== null && attached) {
      const slash = path.lastIndexOf('/');
      const parentLen = slash === 0 ? 1 : slash;
      this.#charge(parentLen, parent, -1);
      parent.removeChild(node.name);
      this.#charge(parentLen, parent, 1);
    } else {
      parent?.removeChild(node.name);
    }
    node.parent = null;
    if (!attached) return;
    const drop = (p: string, n: TreeNode) => {
      if (this.#index.get(p) !== n) return;
      this.#index.delete(p);
      this.#charge(p.length, n, -1);
      this.size--;
      if (n.children !== null) for (const [name, c] of n.children) drop(childPath(p, name), c);
    };
    drop(path, node);
  }

  /** Sets value and permissions of an existing node without stamping it (transaction commit). */
  update(path: string, node: TreeNode, value: string, perms: Perms): void {
    this.#charge(path.length, node, -1);
    node.value = value;
    node.perms = perms;
    this.#charge(path.length, node, 1);
  }

  /** Replaces a node's children (transaction commit). */
  setChildren(path: string, node: TreeNode, children: Map<string, TreeNode> | null): void {
    this.#charge(path.length, node, -1);
    node.setChildren(children);
    this.#charge(path.length, node, 1);
  }

  /** Bytes the nodes owned by `domid` cost its `memory` quota. */
  memoryOf(domid: number): number {
    return this.memory.get(domid) ?? 0;
  }

  /** What a node (at a path of `pathLen` bytes) costs its owner, by cxenstored's accounting. */
  static nodeMemory(pathLen: number, permCount: number, valueLen: number, childLen: number) {
    return pathLen + recordSize(permCount, valueLen, childLen);
  }

  #charge(pathLen: number, node: TreeNode, sign: 1 | -1): void {
    const domid = node.perms[0]!.id;
    const bytes = Tree.nodeMemory(pathLen, node.perms.length, node.value.length, node.childBytes);
    const n = (this.memory.get(domid) ?? 0) + sign * bytes;
    if (n === 0) this.memory.delete(domid);
    else this.memory.set(domid, n);
  }

  /** Every indexed path (CONTROL `check`). */
  indexedPaths(): IterableIterator<[string, TreeNode]> {
    return this.#index.entries();
  }

  setValue(path: string, node: TreeNode, value: string): void {
    this.#charge(path.length, node, -1);
    node.value = value;
    this.#charge(path.length, node, 1);
    node.generation = this.next();
  }

  setPerms(path: string, node: TreeNode, perms: Perms): void {
    this.#own(node.perms[0]!.id, -1);
    this.#charge(path.length, node, -1);
    node.perms = perms;
    this.#charge(path.length, node, 1);
    this.#own(perms[0]!.id, 1);
    node.generation = this.next();
  }

  /** Adjusts the owner counts by a transaction's net changes. */
  adjustOwned(domid: number, delta: number): void {
    this.#own(domid, delta);
  }

  ownedBy(domid: number): number {
    return this.owned.get(domid) ?? 0;
  }

  #own(domid: number, delta: number): void {
    const n = (this.owned.get(domid) ?? 0) + delta;
    if (n === 0) this.owned.delete(domid);
    else this.owned.set(domid, n);
  }
}

/**
 * V8 keeps a slice of 13 or more characters as a view that pins the whole string it came from
 * (here: the request payload). Names stay in the tree for long, so they get their own copy.
 */
export function ownString(s: string): string {
  return s.length < 13 ? s : Buffer.from(s, 'latin1').toString('latin1');
}
