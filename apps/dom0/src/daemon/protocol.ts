/**
 * The console daemon's socket: a client sends one JSON line and gets one JSON line back.
 * `{"op":"list"}` → `{"ok":true,"consoles":[...]}`, then the daemon closes.
 * `{"op":"attach","domain":"web","num":0,"mode":"rw","replay":4096,"takeOver":false}` →
 * `{"ok":true,"console":{...},"writer":true}`, then the connection carries raw console bytes
 * both ways (replay first) until either side closes.
 */
export const MAX_REQUEST = 4096;

export interface ListRequest {
  op: 'list';
}

export interface AttachRequest {
  op: 'attach';
  domain: string;
  num: number;
  mode: 'rw' | 'ro';
  replay: number;
  takeOver: boolean;
  label: string;
}

export type DaemonRequest = ListRequest | AttachRequest;

export interface ConsoleSummary {
  domid: number;
  name: string;
  num: number;
  type: 'pv';
  state: 'waiting' | 'connected' | 'closed';
  tty: string | null;
  viewers: number;
  writer: string | null;
  counters: {
    fromGuest: number;
    toGuest: number;
    dropped: number;
    slowViewers: number;
    ptyDropped: number;
  } | null;
  log: string | null;
}

export type DaemonReply =
  | { ok: true; consoles: ConsoleSummary[] }
  | { ok: true; console: { domid: number; name: string; num: number }; writer: boolean }
  | { ok: false; code: string; message: string };

/** Parses and checks one request line; throws with a message for the client. */
export function parseRequest(line: string): DaemonRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new Error('the request is not JSON');
  }
  if (typeof value !== 'object' || value === null) throw new Error('the request is not an object');
  const r = value as Record<string, unknown>;
  if (r.op === 'list') return { op: 'list' };
  if (r.op !== 'attach') throw new Error(`unknown op ${JSON.stringify(r.op)}`);
  const domain = typeof r.domain === 'number' ? String(r.domain) : r.domain;
  if (typeof domain !== 'string' || domain.length === 0 || domain.length > 64)
    throw new Error('attach needs a domain name or id');
  const num = r.num ?? 0;
  if (typeof num !== 'number' || !Number.isInteger(num) || num < 0 || num > 255)
    throw new Error('num must be a console number');
  const mode = r.mode ?? 'rw';
  if (mode !== 'rw' && mode !== 'ro') throw new Error('mode must be rw or ro');
  const replay = r.replay ?? 0;
  if (typeof replay !== 'number' || !Number.isInteger(replay) || replay < 0)
    throw new Error('replay must be a byte count');
  const label = typeof r.label === 'string' ? r.label.slice(0, 64) : 'viewer';
  return { op: 'attach', domain, num, mode, replay, takeOver: r.takeOver === true, label };
}
