import type { Duplex } from 'node:stream';
import type { XenstoreClient } from '@xencons/xenstore';

/** Which backend found a console. */
export type ConsoleKind = 'sim' | 'linux-hvc' | 'tty' | 'windows-xencons';

/** What is known about a console before it is opened: enough to decide what it is for. */
export interface ConsoleInfo {
  /** Stable id within the agent: `0`, `1` (device ids) on the simulated host, `hvc1` on Linux. */
  readonly id: string;
  /** Its name in banners and audit lines (`\l`, `console=`): `hvc0`, `console1`, `ttyS0`. */
  readonly name: string;
  readonly kind: ConsoleKind;
  /** The xenbus device id, when known (0 for the primary). */
  readonly devid: number | null;
  /** A channel's name (`name` node), when it has one. */
  readonly channel: string | null;
  readonly primary: boolean;
}

/** What the agent does with a console. */
export type ConsoleRole = 'login' | 'log';

/** A console the agent holds open. */
export interface AgentConsole extends ConsoleInfo {
  readonly role: ConsoleRole;
  /** The bytes: writes go to whoever is attached in dom0, reads are what they type. */
  readonly stream: Duplex;
  /** Resolves once the console is gone (its stream ended, the device was removed), with why. */
  readonly gone: Promise<string>;
  /** Where its ring (or device) stands, for the debug view. */
  describe(): Record<string, string | number | boolean | null>;
  /** Lets go of the console (idempotent). */
  close(): Promise<void>;
}

/**
 * One way of finding consoles: the simulated host's device nodes, Linux hvc ttys, explicit tty
 * paths, the Windows XENCONS device interface. A source opens only the consoles `decide` gives a
 * role, reports each to `onConsole`, notices when one goes away, and opens it again if it comes
 * back. The agent above it is the same for every platform.
 */
export interface ConsoleSource {
  /** `sim`, `linux`, `tty`, `windows`. */
  readonly platform: string;
  start(handlers: ConsoleSourceHandlers): Promise<void>;
  /** Looks for new or returning consoles now. */
  rescan(): void;
  /** This domain's xenstore, when the platform reaches it (for the out-of-band debug node). */
  xenstore(): Promise<{ xs: XenstoreClient; domid: number } | null>;
  /** Closes every console it opened and stops looking. */
  close(): Promise<void>;
}

export interface ConsoleSourceHandlers {
  /** The role of a console, or null to leave it alone. */
  decide(info: ConsoleInfo): ConsoleRole | null;
  onConsole(console: AgentConsole): void;
  /** Something worth a log line (a console that would not open, a scan that failed). */
  onProblem(message: string, fields?: Record<string, string | number>): void;
}
