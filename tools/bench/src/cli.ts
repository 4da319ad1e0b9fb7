#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { formatTable } from './format.js';
import { benches } from './registry.js';
import type { BenchResult } from './result.js';

const HELP = `pnpm bench [NAME...] [--json] [--quick]

Runs benchmarks from tools/bench and prints a table (or one JSON object per line with --json:
{"bench", "case", "metric", "value", "unit", ...extra}).

Benchmarks:
${benches.map((b) => `  ${b.name.padEnd(12)} ${b.description}`).join('\n') || '  (none yet)'}
`;

async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<
    typeof parseArgs<{
      options: {
        json: { type: 'boolean' };
        quick: { type: 'boolean' };
        help: { type: 'boolean'; short: 'h' };
      };
      allowPositionals: true;
    }>
  >;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        json: { type: 'boolean' },
        quick: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
    });
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    return 2;
  }
  if (parsed.values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const names = parsed.positionals;
  const unknown = names.filter((n) => !benches.some((b) => b.name === n));
  if (unknown.length > 0) {
    process.stderr.write(
      `bench: unknown benchmark ${unknown.join(', ')}; known: ${benches.map((b) => b.name).join(', ')}\n`,
    );
    return 2;
  }
  const selected = names.length === 0 ? benches : benches.filter((b) => names.includes(b.name));
  const json = parsed.values.json === true;
  const all: BenchResult[] = [];
  for (const bench of selected) {
    if (!json) process.stderr.write(`running ${bench.name}: ${bench.description}\n`);
    for await (const result of bench.run({ quick: parsed.values.quick === true })) {
      if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
      else all.push(result);
    }
  }
  if (!json) process.stdout.write(`${formatTable(all)}\n`);
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
