import type { NodeData, TreeNode } from './node.js';
import type { Perms } from './perms.js';
import type { Tree } from './tree.js';

/**
 * The store as one request sees it: the global tree, or a transaction's private view of it.
 * Paths are absolute and valid. `create` needs the parent to exist; `remove` needs the node's
 * children to be gone already (RM walks the subtree bottom up, as cxenstored does).
 */
export interface View {
  get(path: string): NodeData | undefined;
  create(path: string, value: string, perms: Perms): void;
  setValue(path: string, value: string): void;
  setPerms(path: string, perms: Perms): void;
  remove(path: string): void;
}

export class GlobalView implements View {
  readonly #tree: Tree;

  constructor(tree: Tree) {
    this.#tree = tree;
  }

  get(path: string): TreeNode | undefined {
    return this.#tree.find(path);
  }

  create(path: string, value: string, perms: Perms): void {
    this.#tree.create(path, value, perms);
  }

  setValue(path: string, value: string): void {
    this.#tree.setValue(path, this.#must(path), value);
  }

  setPerms(path: string, perms: Perms): void {
    this.#tree.setPerms(path, this.#must(path), perms);
  }

  remove(path: string): void {
    this.#tree.remove(path, this.#must(path));
  }

  #must(path: string): TreeNode {
    const node = this.#tree.find(path);
    if (node === undefined) throw new Error(`xenstored: ${path} vanished during a request`);
    return node;
  }
}
