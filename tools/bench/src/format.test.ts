import { describe, expect, it } from 'vitest';
import { formatTable } from './format.js';

describe('formatTable', () => {
  it('aligns columns and prints extras as key=value', () => {
    const text = formatTable([
      {
        bench: 'ring',
        case: 'ts/1024',
        metric: 'throughput',
        value: 1234.5,
        unit: 'MiB/s',
        backend: 'ts',
      },
      { bench: 'ring', case: 'native/1', metric: 'throughput', value: 9.876, unit: 'MiB/s' },
    ]);
    const lines = text.split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^ring\s+ts\/1024\s+throughput\s+1235\s+MiB\/s\s+backend=ts$/);
    expect(lines[2]).toContain('9.88');
  });
});
