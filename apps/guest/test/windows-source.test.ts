import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  type AgentConsole,
  GUID_XENCONS_DEVICE,
  parsePnputilInterfaces,
  WindowsConsoleSource,
  xenconsDevid,
} from '../src/index.js';

// The layout of `pnputil /enum-interfaces` output as Microsoft documents it; the values are
// made up (no Windows guest here: this is the parser and the source's logic only).
const SAMPLE = `Microsoft PnP Utility

Interface Path:         \\\\?\\XENCONS#VEN_XN&DEV_CONSOLE#0#{0d3edd21-8ef9-4dff-856c-8c68bf4fdca3}
Interface Description:  XCP-ng PV Console #0
Interface Class GUID:   ${GUID_XENCONS_DEVICE}
Device Instance ID:     XENCONS\\VEN_XN&DEV_CONSOLE\\0
Interface Status:       Enabled

Interface Path:         \\\\?\\XENCONS#VEN_XN&DEV_CONSOLE#2#{0d3edd21-8ef9-4dff-856c-8c68bf4fdca3}
Interface Description:  XCP-ng PV Console #2
Interface Class GUID:   ${GUID_XENCONS_DEVICE}
Device Instance ID:     XENCONS\\VEN_XN&DEV_CONSOLE\\2
Interface Status:       Enabled

Interface Path:         \\\\?\\XENCONS#VEN_XN&DEV_CONSOLE#3#{0d3edd21-8ef9-4dff-856c-8c68bf4fdca3}
Device Instance ID:     XENCONS\\VEN_XN&DEV_CONSOLE\\3
Interface Status:       Disabled
`;

describe('Windows XENCONS source (logic only; untested on Windows)', () => {
  it('parses pnputil interface blocks', () => {
    const list = parsePnputilInterfaces(SAMPLE.replaceAll('\n', '\r\n'));
    expect(list.map((i) => [xenconsDevid(i.instanceId), i.enabled])).toEqual([
      [0, true],
      [2, true],
      [3, false],
    ]);
    expect(list[0]?.path).toBe(
      '\\\\?\\XENCONS#VEN_XN&DEV_CONSOLE#0#{0d3edd21-8ef9-4dff-856c-8c68bf4fdca3}',
    );
  });

  it('opens each enabled console once, says [ATTACHED], and notices one going away', async () => {
    const streams = new Map<string, PassThrough>();
    const source = new WindowsConsoleSource({
      rescanMs: 60_000,
      enumerate: async () => SAMPLE,
      open: (path) => {
        const s = new PassThrough();
        streams.set(path, s);
        return s;
      },
    });
    const got: AgentConsole[] = [];
    await source.start({
      decide: (info) => (info.primary ? 'login' : 'log'),
      onConsole: (c) => got.push(c),
      onProblem: (m) => {
        throw new Error(m);
      },
    });
    expect(got.map((c) => [c.id, c.name, c.role, c.primary])).toEqual([
      ['0', 'xencons0', 'login', true],
      ['2', 'xencons2', 'log', false],
    ]);
    const first = [...streams.values()][0]!;
    expect(first.read()?.toString()).toBe('\r\n[ATTACHED]\r\n');
    source.rescan();
    await new Promise((r) => setImmediate(r));
    expect(streams.size).toBe(2);
    first.destroy();
    expect(await got[0]!.gone).toBe('the device closed');
    await source.close();
  });
});
