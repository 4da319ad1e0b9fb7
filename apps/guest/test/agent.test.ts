import { chmodSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Duplex, PassThrough } from 'node:stream';
import { makeTempDir, waitUntil } from '@xencons/test-utils';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  Agent,
  type AgentConsole,
  type AgentOptions,
  askAgent,
  type ConsoleInfo,
  type ConsoleSource,
  type ConsoleSourceHandlers,
  DebugRegistry,
  type LogRecord,
  type ShellLike,
} from '../src/index.js';
import { AgentLog } from '../src/log.js';

const scratch = makeTempDir('xencons-agent-unit-');
afterAll(() => scratch.remove());

/** A console the test plays dom0 on: `type` what a person types, `output()` what they see. */
class FakeConsole {
  readonly input = new PassThrough();
  readonly outputStream = new PassThrough();
  readonly stream: Duplex;
  #out = '';
  #gone!: (why: string) => void;
  readonly gone = new Promise<string>((resolve) => {
    this.#gone = resolve;
  });
  constructor(readonly info: ConsoleInfo) {
    this.stream = Duplex.from({ readable: this.input, writable: this.outputStream });
    this.outputStream.on('data', (d: Buffer) => {
      this.#out += d.toString();
    });
  }
  type(text: string): void {
    this.input.write(text);
  }
  output(): string {
    return this.#out;
  }
  vanish(why = 'removed'): void {
    this.input.end();
    this.#gone(why);
  }
}

class FakeSource implements ConsoleSource {
  readonly platform = 'fake';
  handlers: ConsoleSourceHandlers | null = null;
  readonly consoles: FakeConsole[];
  readonly offered: { info: ConsoleInfo; role: string | null }[] = [];
  closed = false;
  constructor(consoles: FakeConsole[]) {
    this.consoles = consoles;
  }
  async start(handlers: ConsoleSourceHandlers): Promise<void> {
    this.handlers = handlers;
    for (const c of this.consoles) this.offer(c);
  }
  offer(c: FakeConsole): void {
    const role = this.handlers?.decide(c.info) ?? null;
    this.offered.push({ info: c.info, role });
    if (role === null) return;
    const agentConsole: AgentConsole = {
      ...c.info,
      role,
      stream: c.stream,
      gone: c.gone,
      describe: () => ({ device: `fake ${c.info.id}` }),
      close: async () => c.vanish('closed'),
    };
    this.handlers?.onConsole(agentConsole);
  }
  rescan(): void {}
  async xenstore() {
    return null;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

function info(id: string, extra: Partial<ConsoleInfo> = {}): ConsoleInfo {
  return {
    id,
    name: `hvc${id}`,
    kind: 'sim',
    devid: Number(id),
    channel: null,
    primary: id === '0',
    ...extra,
  };
}

/** A login shell stand-in: prints a prompt, echoes lines as `got:LINE`, ends on `crash`. */
class FakeShell implements ShellLike {
  static made = 0;
  stopped = false;
  #end: (() => void) | null = null;
  constructor(readonly stream: Duplex) {
    FakeShell.made++;
  }
  run(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#end = resolve;
      this.stream.write('fake login: ');
      const onData = (d: Buffer) => {
        const text = d.toString();
        if (text.includes('crash')) {
          this.stream.off('data', onData);
          reject(new Error('simulated crash'));
          return;
        }
        this.stream.write(`got:${text}`);
      };
      this.stream.on('data', onData);
      this.stream.once('close', () => resolve());
    });
  }
  async stop(): Promise<void> {
    this.stopped = true;
    this.#end?.();
  }
  status() {
    return { console: 'x', backend: 'file' as const, session: null, size: { cols: 80, rows: 24 } };
  }
}

const until = (check: () => boolean | Promise<boolean>, what: string, ms = 5000) =>
  waitUntil(check, what, ms, 5);

const agents: Agent[] = [];
afterEach(async () => {
  for (const a of agents.splice(0)) await a.stop();
});

function startAgent(consoles: FakeConsole[], options: Partial<AgentOptions> = {}) {
  const source = new FakeSource(consoles);
  const records: LogRecord[] = [];
  const shells: FakeShell[] = [];
  const agent = new Agent({
    source,
    log: new AgentLog('debug', [(r) => records.push(r)]),
    registry: new DebugRegistry(),
    audit: () => {},
    controlSocket: null,
    restartDelayMs: 10,
    makeShell: (stream) => {
      const s = new FakeShell(stream);
      shells.push(s);
      return s;
    },
    ...options,
  });
  agents.push(agent);
  return { agent, source, records, shells };
}

describe('Agent with a fake console source', () => {
  it('gives logins to plain consoles, the log to the xencons-log channel, and leaves other channels alone', async () => {
    const primary = new FakeConsole(info('0'));
    const log = new FakeConsole(info('1', { channel: 'xencons-log' }));
    const other = new FakeConsole(info('2', { channel: 'org.qemu.guest_agent.0' }));
    const plain = new FakeConsole(info('3'));
    const { agent, source } = startAgent([primary, log, other, plain]);
    await agent.start();
    expect(source.offered.map((o) => [o.info.id, o.role])).toEqual([
      ['0', 'login'],
      ['1', 'log'],
      ['2', null],
      ['3', 'login'],
    ]);
    await until(() => primary.output().includes('fake login: '), 'the prompt on hvc0');
    expect(plain.output()).toContain('fake login: ');
    expect(log.output()).toContain('INFO xencons-agent ready platform=fake');
    expect(log.output()).not.toContain('fake login');
  });

  it('--consoles and --skip choose consoles; an explicit id includes a channel', async () => {
    const a = new FakeConsole(info('0'));
    const b = new FakeConsole(info('1'));
    const c = new FakeConsole(info('2', { channel: 'ttyname' }));
    const { agent, source } = startAgent([a, b, c], {
      logins: { include: ['hvc0', '1', 'channel:ttyname'], exclude: ['0'] },
      logConsole: 'none',
    });
    await agent.start();
    expect(source.offered.map((o) => o.role)).toEqual([null, 'login', 'login']);
  });

  it('starts a login shell again when it crashes while the console is still there', async () => {
    const con = new FakeConsole(info('0'));
    const { agent, records, shells } = startAgent([con]);
    await agent.start();
    await until(() => shells.length === 1, 'the first shell');
    con.type('crash');
    await until(() => shells.length === 2, 'a second shell');
    expect(agent.stats.restarts).toBe(1);
    expect(records.some((r) => r.level === 'warn' && r.fields.error === 'simulated crash')).toBe(
      true,
    );
    con.type('hello');
    await until(() => con.output().includes('got:hello'), 'the new shell answering');
  });

  it('a console that goes away stops its login shell and is forgotten', async () => {
    const con = new FakeConsole(info('2'));
    const { agent, records, shells } = startAgent([con]);
    await agent.start();
    await until(() => shells.length === 1, 'the shell');
    con.vanish('device removed');
    await until(() => shells[0]?.stopped === true, 'the shell to be stopped');
    await until(() => agent.status().consoles.length === 0, 'the console to be forgotten');
    expect(shells).toHaveLength(1);
    expect(
      records.some((r) => r.msg === 'console gone' && r.fields.reason === 'device removed'),
    ).toBe(true);
    expect(agent.stats.consolesGone).toBe(1);
  });

  it('an in-band hotkey runs debug callbacks; output on that console and the log console, not to the shell', async () => {
    const con = new FakeConsole(info('0'));
    const log = new FakeConsole(info('1', { channel: 'xencons-log' }));
    const { agent } = startAgent([con, log]);
    await agent.start();
    await until(() => con.output().includes('fake login: '), 'the prompt');
    con.type('ab\x1esc');
    await until(() => con.output().includes('<==== sessions'), 'the sessions output');
    expect(con.output()).toContain('sessions: hvc0 (primary): at the login prompt');
    expect(con.output()).toContain('got:ab');
    await until(() => con.output().includes('got:c'), 'the rest of the input');
    expect(con.output().includes('\x1e')).toBe(false);
    expect(log.output()).toContain('XENCONS|DEBUG: ====> sessions');
    expect(agent.stats.debug.console).toBe(1);
  });

  it('the control socket answers status and debug keys', async () => {
    const socket = path.join(scratch.path, 'control.sock');
    const con = new FakeConsole(info('0'));
    const { agent } = startAgent([con], { controlSocket: socket });
    await agent.start();
    const status = await askAgent(socket, { op: 'status' });
    expect(status).toMatchObject({
      ok: true,
      status: { platform: 'fake', consoles: [{ id: '0', role: 'login', primary: true }] },
    });
    const a = await askAgent(socket, { op: 'debug', key: 'a' });
    expect(a.ok && 'lines' in a && a.lines.join('\n')).toMatch(
      /agent: xencons-agent \S+ pid \d+ on fake/,
    );
    const r = await askAgent(socket, { op: 'debug', key: 'r' });
    expect(r.ok && 'lines' in r && r.lines).toContain(
      'console hvc0: login (primary): device=fake 0',
    );
  });

  it('forwards a journal command line by line to the log console, without its own lines', async () => {
    const fake = path.join(scratch.path, 'fake-journalctl');
    writeFileSync(
      fake,
      `#!/bin/sh\necho "Jan 01 host unit[1]: started"\necho "Jan 01 host node[${process.pid}]: our own line"\necho "second entry"\nexec sleep 30\n`,
    );
    chmodSync(fake, 0o755);
    const log = new FakeConsole(info('1', { channel: 'xencons-log' }));
    const { agent } = startAgent([log], { journal: [fake] });
    await agent.start();
    await until(() => log.output().includes('journal: second entry'), 'the journal lines');
    expect(log.output()).toContain('journal: Jan 01 host unit[1]: started\n');
    expect(log.output()).not.toContain('our own line'); // the agent's own stderr is there already
  });
});
