// @xencons/native: the Rust N-API core. Hand-written types for the hand-written loader (index.js).
//
// Every function that fails with an errno throws an Error whose `code` is the errno name
// (`'EBADF'`, `'ENOTTY'`…), with `errno` (number) and `syscall` (e.g. `'ioctl(IOCTL_EVTCHN_NOTIFY)'`,
// `'mmap'`); invalid arguments throw with `code` `'ERR_INVALID_ARG'`. Thrown errors carry the
// `Symbol.for('xencons.error')` brand, so `isXenconsError()` from @xencons/errors accepts them.
// No Rust panic ever crosses into JS: a caught panic becomes `code: 'ERR_NATIVE_PANIC'`. An
// unexpected Node-API failure (not seen in practice) is `code: 'ERR_NATIVE_NAPI'`.

/** Result codes returned (never thrown) by the hot ring functions. */
export declare const RING_CORRUPT: -1;
/**
 * Returned (never thrown) by the bound ring functions when the page's buffer was detached (a
 * native mapping after `unmap()`, a transferred ArrayBuffer) or shrunk since `ringBind`: nothing
 * was read, written or published.
 */
export declare const RING_DETACHED: -2;

declare const ringHandleBrand: unique symbol;
/**
 * A ring bound by `ringBind`: an opaque External that only the bound ring functions of the thread
 * that made it accept. It keeps the page's buffer alive; once the handle is garbage collected,
 * that reference is released.
 */
export interface RingHandle {
  readonly [ringHandleBrand]: true;
}

/** A passwd(5) entry. */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  dir: string;
  shell: string;
}

/** What a ring pump did so far (`pumpStats`). */
export interface PumpStats {
  /** Bytes received and not yet taken by `pumpRead`. */
  readonly rxBuffered: number;
  /** Bytes queued by `pumpWrite` and not yet in the ring. */
  readonly txBuffered: number;
  /** Bytes consumed from the rx ring. */
  readonly bytesIn: number;
  /** Bytes produced into the tx ring. */
  readonly bytesOut: number;
  /** Notifications sent to the peer (one per pass that moved bytes). */
  readonly notifies: number;
  /** Times the thread went to sleep. */
  readonly sleeps: number;
  /** Callbacks queued for JS. */
  readonly signals: number;
  /** 0, or the PUMP_BROKEN_* bit of the ring found corrupt. */
  readonly broken: number;
  readonly running: boolean;
}

export declare const PUMP_READABLE: 1;
export declare const PUMP_WRITABLE: 2;
export declare const PUMP_BROKEN_RX: 4;
export declare const PUMP_BROKEN_TX: 8;

export interface NativeBinding {
  /** Crate version, e.g. `0.0.0`. */
  readonly version: string;

  // ---- page mapping -------------------------------------------------------------------------
  /**
   * Maps `length` bytes of the file at `path` from `offset` (a multiple of the page size)
   * `MAP_SHARED`, read-write or read-only. The returned ArrayBuffer *is* the mapping. It is
   * unmapped by `unmap()` or when garbage collected, whichever comes first; after `unmap()` the
   * buffer is detached (byteLength 0), so stale views read nothing instead of crashing.
   *
   * Read-only (`writable: false`) mappings are `PROT_READ`: writing through any view of them
   * faults exactly like in C (SIGSEGV kills the process). Nothing in JS can catch that, so never
   * write to a read-only mapping. For regular files the range must lie inside the file
   * (ERR_INVALID_ARG otherwise); a file truncated by someone else later still raises SIGBUS.
   */
  mapFile(path: string, offset: number, length: number, writable: boolean): ArrayBuffer;
  /** As `mapFile`, on an open fd (e.g. a memfd or a tmpfs file opened by JS). The fd may be closed afterwards. */
  mapFd(fd: number, offset: number, length: number, writable: boolean): ArrayBuffer;
  /**
   * Unmaps a buffer returned by any map function and detaches it. Idempotent. Returns true if it was mapped.
   * For grant mappings a failing teardown ioctl (UNMAP_GRANT_REF / DEALLOC_GREF) is thrown, after
   * the buffer was detached and unmapped anyway.
   */
  unmap(buffer: ArrayBuffer): boolean;
  /** True while `buffer` is a live mapping made by this addon. */
  isMapped(buffer: ArrayBuffer): boolean;
  /** Number of live mappings (for leak tests). */
  mappingCount(): number;
  /** The system page size. */
  pageSize(): number;

  // ---- fenced ring copies (the hot path) ----------------------------------------------------
  //
  // A Xen-style byte ring lives inside `page` (an ArrayBuffer or a view of one): data at
  // `dataOffset` of `size` bytes (a power of two), free-running u32 indices at `prodOffset` and
  // `consOffset` (4-byte aligned). The layout is validated on every call (throws ERR_INVALID_ARG).
  //
  // ringProduce: loads the consumer index once (acquire), copies up to `length` bytes from
  // `src[srcOffset..]` into free space with wrap-around, then stores the new producer index
  // (release). ringConsume: loads the producer index once (acquire), copies up to `length`
  // available bytes into `dst[dstOffset..]`, then stores the new consumer index (release).
  // Both return the number of bytes moved (0 if full / empty), or RING_CORRUPT (-1) when
  // `prod - cons` (mod 2^32) exceeds `size`; in that case nothing is read, written or published.
  // The index we own is read with a plain load: only we write it.
  ringProduce(
    page: ArrayBuffer | ArrayBufferView,
    dataOffset: number,
    size: number,
    prodOffset: number,
    consOffset: number,
    src: Uint8Array,
    srcOffset: number,
    length: number,
  ): number;
  ringConsume(
    page: ArrayBuffer | ArrayBufferView,
    dataOffset: number,
    size: number,
    prodOffset: number,
    consOffset: number,
    dst: Uint8Array,
    dstOffset: number,
    length: number,
  ): number;
  /**
   * Bytes queued (`prod - cons`), loading both indices with acquire order, or RING_CORRUPT.
   */
  ringQueued(
    page: ArrayBuffer | ArrayBufferView,
    size: number,
    prodOffset: number,
    consOffset: number,
  ): number;

  // ---- bound rings: the layout validated once, 4 arguments per operation (the hot path) -------
  //
  // `ringBind` checks the layout once (same page kinds, rules and ERR_INVALID_ARG errors as
  // `ringProduce`) and returns a handle holding a strong reference to the page's buffer. Every
  // operation re-reads that buffer's data pointer and length and compares them with what was
  // validated: a page that was unmapped (detached), transferred or shrunk below the ring since
  // binding is never touched, the operation returns RING_DETACHED. A page in a
  // SharedArrayBuffer (passed as a view) needs no such check: it can be neither detached nor
  // shrunk.
  //
  // `src` / `dst` is a Uint8Array (or Buffer) or an ArrayBuffer; offsets and lengths are bytes.
  // Copies, orderings and results are those of ringProduce / ringConsume / ringQueued, plus
  // RING_DETACHED. Anything but a live handle of this thread, and bad spans, throw
  // ERR_INVALID_ARG.
  /** Validates a ring inside `page` once; the handle is for ringWrite / ringRead / ringQueuedBound. */
  ringBind(
    page: ArrayBuffer | ArrayBufferView,
    dataOffset: number,
    size: number,
    prodOffset: number,
    consOffset: number,
  ): RingHandle;
  /** As `ringProduce` on a bound ring: bytes written (0 when full), RING_CORRUPT or RING_DETACHED. */
  ringWrite(
    handle: RingHandle,
    src: Uint8Array | ArrayBuffer,
    srcOffset: number,
    length: number,
  ): number;
  /** As `ringConsume` on a bound ring: bytes read (0 when empty), RING_CORRUPT or RING_DETACHED. */
  ringRead(
    handle: RingHandle,
    dst: Uint8Array | ArrayBuffer,
    dstOffset: number,
    length: number,
  ): number;
  /** As `ringQueued` on a bound ring: `prod - cons`, RING_CORRUPT or RING_DETACHED. */
  ringQueuedBound(handle: RingHandle): number;

  // ---- /dev/xen/evtchn (fds are opened by JS: fs.openSync('/dev/xen/evtchn', 'r+')) --------
  evtchnBindInterdomain(fd: number, remoteDomain: number, remotePort: number): number;
  evtchnBindUnboundPort(fd: number, remoteDomain: number): number;
  evtchnBindVirq(fd: number, virq: number): number;
  evtchnUnbind(fd: number, port: number): void;
  evtchnNotify(fd: number, port: number): void;
  evtchnReset(fd: number): void;
  evtchnRestrictDomid(fd: number, domid: number): void;
  /**
   * Non-blocking read of pending ports into `out`; returns how many (0 if none, i.e. EAGAIN).
   * Works on a blocking fd too: it polls with a zero timeout first and reads only when readable,
   * so it must be the only reader of that fd. Throws EFBIG after a ring overflow (then RESET).
   */
  evtchnPending(fd: number, out: Uint32Array): number;
  /** Re-enables delivery of `port` (the kernel masks a port when it fires): one 4-byte write. */
  evtchnUnmask(fd: number, port: number): void;

  // ---- /dev/xen/gntdev: map another domain's grants --------------------------------------
  /** MAP_GRANT_REF + mmap of `refs.length` pages granted by `domid`. Unmap does munmap + UNMAP_GRANT_REF. */
  gntdevMap(fd: number, domid: number, refs: readonly number[], writable: boolean): ArrayBuffer;
  /**
   * SET_UNMAP_NOTIFY on a gntdev or gntalloc mapping: byte `offset` cleared and/or `port` notified on unmap.
   * `action` is a mask of `constants.UNMAP_NOTIFY_CLEAR_BYTE` (1) and `constants.UNMAP_NOTIFY_SEND_EVENT` (2).
   */
  setUnmapNotify(buffer: ArrayBuffer, offset: number, action: number, port: number): void;

  // ---- /dev/xen/gntalloc: share our own pages --------------------------------------------
  /**
   * ALLOC_GREF + mmap: `count` pages granted to `domid`. Unmap does munmap + DEALLOC_GREF.
   * `writable` is the grant's flag (may the peer write?); our own mapping is always read-write.
   */
  gntallocShare(
    fd: number,
    domid: number,
    count: number,
    writable: boolean,
  ): { buffer: ArrayBuffer; refs: number[] };

  // ---- /dev/xen/privcmd: foreign mapping of guest frames ---------------------------------
  /** Reserves a range, then IOCTL_PRIVCMD_MMAPBATCH_V2 for `gfns` of `domid` (retrying ENOENT a few times). */
  privcmdMapForeign(
    fd: number,
    domid: number,
    gfns: readonly number[],
    writable: boolean,
  ): ArrayBuffer;

  // ---- the ioctl numbers and struct layouts we use, for the layout test against libxen-dev --
  readonly ioctls: Readonly<Record<string, number>>;
  readonly layouts: Readonly<Record<string, Readonly<Record<string, number>>>>;
  /**
   * Flag values from the same headers (`UNMAP_NOTIFY_CLEAR_BYTE`, `UNMAP_NOTIFY_SEND_EVENT`,
   * `GNTALLOC_FLAG_WRITABLE`) and the poll(2) bits passed to `watchFd` callbacks (`POLLIN`,
   * `POLLPRI`, `POLLOUT`, `POLLERR`, `POLLHUP`).
   */
  readonly constants: Readonly<Record<string, number>>;

  // ---- console ring pumps --------------------------------------------------------------------
  /**
   * Starts a ring pump: a native thread that moves bytes between two rings of `page` (a view
   * into a mapping made by this addon, which stays mapped until the pump stops even if
   * `unmap()`ped) and two process-side buffers, notifies the peer after every pass that moved
   * bytes, spins `config[2]` ns when nothing moves, then sleeps on the event channel.
   *
   * - `layouts`: `[rxDataOffset, rxSize, rxProdOffset, rxConsOffset, txDataOffset, txSize,
   *   txProdOffset, txConsOffset]`: the ring the pump consumes (rx) and the one it produces (tx).
   * - `wake`: `[0, fd, port, 0]` for Linux (`fd` an open of /dev/xen/evtchn through which `port`
   *   is bound; the pump dups it and reads its deliveries, so nobody else must) or
   *   `[1, domid, handle, port]` for the simulated host (`dir` its folder; the pump reads the
   *   handle's doorbell and takes `port`'s pending bit).
   * - `config`: `[rxCapacity, txCapacity, spinNs]` (capacities powers of two, 4 KiB..64 MiB).
   * - `callback(events)`: `PUMP_READABLE` (1: bytes to `pumpRead`, after a read found none),
   *   `PUMP_WRITABLE` (2: room for `pumpWrite` after it took less than offered),
   *   `PUMP_BROKEN_RX`/`PUMP_BROKEN_TX` (4/8: impossible indices; the pump stopped moving).
   *
   * The running pump keeps the event loop alive. Returns the pump id.
   */
  pumpStart(
    page: Uint8Array,
    layouts: readonly number[],
    wake: readonly number[],
    dir: string | null,
    config: readonly number[],
    callback: (events: number) => void,
  ): number;
  /** Up to `max` received bytes as a new Buffer, or null when none (arms `PUMP_READABLE`). */
  pumpRead(id: number, max: number): Buffer | null;
  /**
   * Takes up to `length` bytes of `src` from `srcOffset` for the tx ring; returns how many, or
   * -1 when the tx ring's indices are impossible. With nothing queued, the bytes go straight
   * into the ring and the peer is notified from the calling thread.
   */
  pumpWrite(id: number, src: Uint8Array, srcOffset: number, length: number): number;
  /** Stops the thread and lets go of the page (idempotent); `pumpRead` still drains. */
  pumpStop(id: number): void;
  /** Stops the pump if needed and frees it (idempotent). */
  pumpClose(id: number): void;
  pumpStats(id: number): PumpStats;

  // ---- fd readiness on one native poll thread ----------------------------------------------
  /**
   * Watches `fd` for readability (or what `interest` names) on the addon's single epoll thread
   * (not libuv's pool). When it becomes ready, `callback` runs on the JS thread once; the watch then stays disarmed until
   * `rearmFd(id)` (so a slow consumer never sees a storm). Returns a watch id. Active watches keep
   * the event loop alive unless `unrefFd(id)`. `events` holds poll(2) bits (`constants.POLLIN`,
   * `POLLERR`, `POLLHUP`). One watch per fd. Call `unwatchFd(id)` *before* closing the fd: epoll
   * tracks the open file, not the number, so a closed-but-watched fd can keep firing (if dup'ed)
   * or block a later watch of the reused number with EEXIST. A callback that throws is reported
   * through `process.on('uncaughtException')`, like a throwing event listener.
   */
  watchFd(fd: number, callback: (events: number) => void, interest?: number): number;
  /**
   * Re-enables a watch after its callback ran, or changes what an armed one waits for
   * (ERR_INVALID_ARG for an unknown id). `interest`: `constants.POLLIN` (the default),
   * `constants.POLLOUT` (room to write: a full pty or pipe) or both.
   */
  rearmFd(id: number, interest?: number): void;
  /** Stops watching; a callback already queued for this watch is dropped. Unknown ids are ignored. */
  unwatchFd(id: number): void;
  refFd(id: number): void;
  unrefFd(id: number): void;

  // ---- pseudo-terminals and sessions --------------------------------------------------------
  /**
   * Opens a pty pair sized `cols` x `rows` (`posix_openpt`, `grantpt`, `unlockpt`, `ptsname_r`).
   * Both fds are close-on-exec and neither becomes our controlling terminal; close the slave once
   * the program on it is running, so reading the master ends with EIO when the program's side
   * closes (every byte written before is read first).
   */
  ptyOpen(cols: number, rows: number): { master: number; slave: number; path: string };
  /** TIOCSWINSZ on a pty fd (either end): the foreground process group gets SIGWINCH. */
  ptyResize(fd: number, cols: number, rows: number): void;
  /** TIOCGWINSZ. */
  ptyGetSize(fd: number): { cols: number; rows: number };
  /**
   * fork + exec `file` (an absolute path; `args[0]` is argv[0], e.g. `-bash` for a login shell)
   * with exactly `env` (`NAME=value` strings). In the child, before exec: default signal
   * dispositions and an empty signal mask, `setsid()`, the tty `slave` as controlling terminal
   * (TIOCSCTTY) and as fds 0-2, then `setgroups(groups)` (unless null: inherit ours), `setgid`,
   * `setuid` (each unless null), `chdir(cwd)` (falling back to `/`, as login(1) does), every other
   * fd close-on-exec. Only async-signal-safe calls run between fork and exec. A failing step
   * throws here with its errno and `syscall` (`execve`, `setuid`, `ioctl(TIOCSCTTY)`…) and the
   * child is reaped.
   *
   * Returns the pid and a pidfd (readable once the child exited; watch it with `watchFd`), or
   * pidfd -1 where `pidfd_open` is unavailable. The caller reaps the child with `childReap`.
   */
  ptySpawn(
    slave: number,
    file: string,
    args: readonly string[],
    env: readonly string[],
    cwd: string | null,
    uid: number | null,
    gid: number | null,
    groups: readonly number[] | null,
  ): { pid: number; pidfd: number };
  /**
   * waitpid(pid): null while the child runs (non-blocking), else how it ended (`signal` is a
   * number; `exitCode` null when a signal killed it). `block` waits (for helper processes only:
   * it blocks the JS thread). Throws ECHILD for a pid that is not our unreaped child.
   */
  childReap(
    pid: number,
    block?: boolean,
  ): { exitCode: number | null; signal: number | null } | null;
  /** Clears (true) or sets (false) O_NONBLOCK on an fd. */
  fdSetBlocking(fd: number, blocking: boolean): void;
  /**
   * Puts a tty (e.g. `/dev/hvc1` opened by a guest agent) in raw mode with cfmakeraw(3): no
   * echo, no line editing, no signal keys, 8-bit. Returns the previous settings (opaque bytes)
   * for `ttyRestore`. ENOTTY for anything that is not a tty.
   */
  ttyMakeRaw(fd: number): Buffer;
  /** Restores settings returned by `ttyMakeRaw`. */
  ttyRestore(fd: number, saved: Uint8Array): void;

  // ---- users and groups (libc, so NSS sources count) -----------------------------------------
  getpwnam(name: string): PasswdEntry | null;
  getpwuid(uid: number): PasswdEntry | null;
  /** The groups `name` is in, as initgroups(3) would set them (`gid` included). */
  getgrouplist(name: string, gid: number): number[];
  /** Sets this process's supplementary groups (needs CAP_SETGID). */
  setgroups(groups: readonly number[]): void;
  getgroups(): number[];

  // ---- PAM (libpam.so.0 loaded on first use; ERR_PAM_UNAVAILABLE without it) -----------------
  //
  // The conversation runs synchronously over `fd` (a socket or pipe to whoever talks to the
  // person), in frames `kind (1 byte) | length (u32 BE) | payload`: to the peer `P` (prompt, no
  // echo), `p` (prompt with echo), `E` (error message), `I` (information); after a prompt the
  // peer answers `A` + the bytes (at most 4096), or `C` to cancel (the PAM call then fails with
  // PAM_CONV_ERR). Answers are copied into memory PAM frees and our copy is zeroed. PAM calls
  // block the thread for as long as the person takes: use them in a helper process.
  //
  // A PAM_FAIL_DELAY callback is installed: PAM does not sleep after a failure; the delay it
  // asked for is returned (once) by `pamTakeFailDelay`, and the caller applies it.
  /** Why PAM cannot be used here, or null (loads libpam.so.0 on first call). */
  pamUnavailableReason(): string | null;
  /** pam_start; returns a handle number valid on this thread until `pamEnd`. */
  pamStart(service: string, user: string | null, fd: number): number;
  /** pam_authenticate / pam_acct_mgmt / pam_chauthtok / pam_setcred / pam_open_session / pam_close_session: the PAM status. */
  pamCall(
    handle: number,
    op: 'authenticate' | 'acct_mgmt' | 'chauthtok' | 'setcred' | 'open_session' | 'close_session',
    flags: number,
  ): number;
  /** pam_set_item for string items (SERVICE 1, USER 2, TTY 3, RHOST 4, RUSER 8, USER_PROMPT 9, XDISPLAY 11). */
  pamSetItem(handle: number, item: number, value: string): number;
  pamGetItem(handle: number, item: number): string | null;
  /** pam_getenvlist: `NAME=value` strings set by modules (pam_env, pam_systemd…). */
  pamGetenvlist(handle: number): string[];
  pamStrerror(handle: number, status: number): string;
  /** Microseconds PAM asked to wait after the last failure (0 if none), then reset. */
  pamTakeFailDelay(handle: number): number;
  /** pam_end; the handle is dead afterwards. */
  pamEnd(handle: number, status: number): number;

  // ---- test hooks ----------------------------------------------------------------------------
  /** Panics inside Rust, to prove no panic crosses the FFI (throws ERR_NATIVE_PANIC). */
  testPanic(): never;
}

/** The binding, or null when no binary fits this platform (see `nativeUnavailableReason`). */
export declare function loadNative(): NativeBinding | null;
/** Why `loadNative()` returned null, or null when it loaded. */
export declare function nativeUnavailableReason(): string | null;
/** The binding, or throws an Error with code ERR_NATIVE_UNAVAILABLE and the reason. */
export declare function requireNative(): NativeBinding;
/** Path of the `.node` file that was loaded, or null. */
export declare function nativeBinaryPath(): string | null;
