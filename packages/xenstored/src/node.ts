import type { Perms } from './perms.js';

/**
 * What an operation sees of a node, in the global tree or in a transaction's private copy.
 * Values are kept as latin1 strings (one byte per character): a 32-byte value costs a 32-byte
 * one-byte string instead of a typed array with its own backing store.
 */
export interface NodeData {
  readonly value: string;
  readonly perms: Perms;
  readonly generation: number;
  readonly childCount: number;
  /** Child names in the order they were added. */
  childNames(): string[];
  /** Bytes of the children list as cxenstored stores it: each name plus a NUL. */
  childLen(): number;
}

/** A node of the global tree. Leaves carry no children map. */
export class TreeNode implements NodeData {
  name: string;
  parent: TreeNode | null;
  value: string;
  perms: Perms;
  generation: number;
  children: Map<string, TreeNode> | null = null;
  /** Bytes of the children list (each name plus a NUL), kept as children come and go. */
  childBytes = 0;

  constructor(
    name: string,
    parent: TreeNode | null,
    value: string,
    perms: Perms,
    generation: number,
  ) {
    this.name = name;
    this.parent = parent;
    this.value = value;
    this.perms = perms;
    this.generation = generation;
  }

  get childCount(): number {
    return this.children === null ? 0 : this.children.size;
  }

  childNames(): string[] {
    return this.children === null ? [] : [...this.children.keys()];
  }

  childLen(): number {
    return this.childBytes;
  }

  child(name: string): TreeNode | undefined {
    return this.children?.get(name);
  }

  addChild(node: TreeNode): void {
    if (this.children === null) this.children = new Map();
    this.children.set(node.name, node);
    this.childBytes += node.name.length + 1;
  }

  removeChild(name: string): void {
    if (this.children === null || !this.children.delete(name)) return;
    this.childBytes -= name.length + 1;
    if (this.children.size === 0) this.children = null;
  }

  /** Replaces the children map (transaction commit). */
  setChildren(children: Map<string, TreeNode> | null): void {
    this.children = children !== null && children.size > 0 ? children : null;
    let n = 0;
    if (this.children !== null) for (const k of this.children.keys()) n += k.length + 1;
    this.childBytes = n;
  }
}

/**
 * Size of a node record in cxenstored's database: the quota `node-size` is checked against it,
 * and the record plus its key (the path) is what the node costs its owner's `memory` quota.
 */
export function recordSize(permCount: number, valueLen: number, childLen: number): number {
  // struct xs_tdb_record_hdr: u64 generation, u32 num_perms, datalen, childlen (24 with padding),
  // then 8 bytes per struct xs_permissions.
  return 24 + 8 * permCount + valueLen + childLen;
}
