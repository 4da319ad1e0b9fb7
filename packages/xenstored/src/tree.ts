import { TreeNode } from './node.js';
import { baseName, parentOf } from './path.js';
import type { Perms } from './perms.js';

/**
 * The global tree: nodes hang off their parents' child maps, so a path costs its components, not
 * a full copy per node. `generation` is cxenstored's global counter: every modification stamps
 * the node with the next value, which is what transactions compare at commit.
 */
export class Tree {
  readonly root: TreeNode;
  /** Last generation handed out. */
  generation = 0;
  /** Nodes owned (perms entry 0) per domid: the `nodes` quota counts these. */
  readonly owned = new Map<number, number>();
  /** Total nodes, root included. */
  size = 1;

  constructor(rootPerms: Perms) {
    this.root = new TreeNode('', null, '', rootPerms, 0);
    this.#own(rootPerms[0]!.id, 1);
  }

  next(): number {
    return ++this.generation;
  }

  /** The node at an absolute, valid path. */
  find(path: string): TreeNode | undefined {
    if (path === '/') return this.root;
    let node: TreeNode | undefined = this.root;
    let start = 1;
    while (node !== undefined) {
      const slash = path.indexOf('/', start);
      if (slash < 0) return node.child(path.slice(start));
      node = node.child(path.slice(start, slash));
      start = slash + 1;
    }
    return undefined;
  }

  /** Creates a node under an existing parent; stamps parent and child. */
  create(path: string, value: string, perms: Perms): TreeNode {
    const parent = this.find(parentOf(path));
    if (parent === undefined) throw new Error(`xenstored tree: no parent for ${path}`);
    const node = new TreeNode(ownString(baseName(path)), parent, value, perms, this.next());
    parent.addChild(node);
    parent.generation = this.next();
    this.size++;
    this.#own(perms[0]!.id, 1);
    return node;
  }

  /** Detaches a node (and whatever is below it) from its parent; counts only this node. */
  remove(node: TreeNode): void {
    const parent = node.parent;
    if (parent === null) throw new Error('xenstored tree: cannot remove the root');
    parent.removeChild(node.name);
    parent.generation = this.next();
    node.parent = null;
    this.size--;
    this.#own(node.perms[0]!.id, -1);
  }

  setValue(node: TreeNode, value: string): void {
    node.value = value;
    node.generation = this.next();
  }

  setPerms(node: TreeNode, perms: Perms): void {
    this.#own(node.perms[0]!.id, -1);
    node.perms = perms;
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
