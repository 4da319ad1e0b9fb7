/**
 * cxenstored 4.17's quotas (xen-protocols.md §1.13). They bind unprivileged domains only. The
 * comparisons keep cxenstored's off-by-ones: 129 watches and 11 transactions fit; nodes and node
 * size are tested with `>=`.
 */
export interface Quotas {
  /** Nodes owned per domain (`-E`). */
  nodes: number;
  /** Watches per domain (`-W`); E2BIG when already above. */
  watches: number;
  /** Open transactions per connection (`-t`); ENOSPC when already above. */
  transactions: number;
  /** Outstanding requests per domain (`-Q outstanding=`). */
  outstanding: number;
  /** Nodes accessed per transaction (`-Q transaction-nodes=`). */
  transactionNodes: number;
  /** Memory per domain (`-Q memory=`), reported only. */
  memory: number;
  /** Stored record size of one node (`-S`). */
  nodeSize: number;
  /** Path length below `/local/domain/<n>/` (`-M`); applies to everybody. */
  pathMax: number;
  /** Permission entries per node (`-A`). */
  permissions: number;
}

export const DEFAULT_QUOTAS: Readonly<Quotas> = Object.freeze({
  nodes: 1000,
  watches: 128,
  transactions: 10,
  outstanding: 20,
  transactionNodes: 1024,
  memory: 2 * 1024 * 1024 + 512 * 1024,
  nodeSize: 2048,
  pathMax: 2048,
  permissions: 5,
});

/** `xenstore-control quota` names and descriptions, in cxenstored's order. */
export const QUOTA_NAMES: readonly (readonly [string, keyof Quotas, string])[] = [
  ['nodes', 'nodes', 'Nodes per domain'],
  ['watches', 'watches', 'Watches per domain'],
  ['transactions', 'transactions', 'Transactions per domain'],
  ['outstanding', 'outstanding', 'Outstanding requests per domain'],
  ['transaction-nodes', 'transactionNodes', 'Max. number of accessed nodes per transaction'],
  ['memory', 'memory', 'Total Xenstore memory per domain (error level)'],
  ['node-size', 'nodeSize', 'Max. size of a node'],
  ['path-max', 'pathMax', 'Max. length of a node path'],
  ['permissions', 'permissions', 'Max. number of permissions per node'],
];

/** Soft memory quota: a warning only. */
export const DEFAULT_SOFT_MEMORY = 2 * 1024 * 1024;
