/** Loads the hex fixtures of `__fixtures__/` (test support; not exported from the package). */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { XsMessage } from './message.js';
import { XsType, type XsTypeName } from './types.js';

export interface Fixture {
  readonly name: string;
  readonly title: string;
  readonly source: string;
  readonly bytes: Uint8Array;
  readonly messages: XsMessage[];
  readonly parse: { fn: string; result: unknown } | undefined;
  /** The error code the stream ends with, if any. */
  readonly error: string | undefined;
}

const DIR = join(fileURLToPath(new URL('.', import.meta.url)), '__fixtures__');

interface Expect {
  type: XsTypeName | number;
  reqId: number;
  txId: number;
  payload?: string;
  payloadHex?: string;
}

export function hexToBytes(hex: string): Uint8Array {
  const clean = hex.replace(/\s+/g, '');
  if (clean.length % 2 !== 0 || /[^0-9a-fA-F]/.test(clean)) throw new Error(`bad hex: ${hex}`);
  return Uint8Array.from(clean.match(/../g) ?? [], (h) => Number.parseInt(h, 16));
}

export function parseFixture(name: string, text: string): Fixture {
  let title = '';
  let source = '';
  let parse: Fixture['parse'];
  let error: string | undefined;
  const messages: XsMessage[] = [];
  const hex: string[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) {
      const body = line.slice(1).trim();
      if (body.startsWith('source:')) source = body.slice(7).trim();
      else if (body.startsWith('expect ')) {
        const e = JSON.parse(body.slice(7)) as Expect;
        const type = typeof e.type === 'number' ? e.type : XsType[e.type];
        const payload =
          e.payloadHex !== undefined
            ? hexToBytes(e.payloadHex)
            : Uint8Array.from(e.payload ?? '', (c) => c.charCodeAt(0));
        messages.push({ type, reqId: e.reqId, txId: e.txId, payload });
      } else if (body.startsWith('parse ')) parse = JSON.parse(body.slice(6));
      else if (body.startsWith('error ')) error = body.slice(6).trim();
      else if (title === '') title = body;
    } else if (line.trim() !== '') hex.push(line);
  }
  if (source === '') throw new Error(`fixture ${name} has no source line`);
  return { name, title, source, bytes: hexToBytes(hex.join('')), messages, parse, error };
}

export function loadFixtures(): Fixture[] {
  return readdirSync(DIR)
    .filter((f) => f.endsWith('.hex'))
    .sort()
    .map((f) => parseFixture(f.replace(/\.hex$/, ''), readFileSync(join(DIR, f), 'utf8')));
}
