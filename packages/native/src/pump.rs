//! The console ring pump: a native thread per console that moves bytes between the shared page's
//! two rings and two large process-side buffers, and hands JS whole batches.
//!
//! - rx: the ring we consume (guest output on a backend) → `rxq` (a byte queue JS reads with
//!   `pumpRead`). tx: `txq` (JS fills it with `pumpWrite`) → the ring we produce.
//! - Every pass that moved bytes notifies the peer once, natively: on Linux the evtchn ioctl on
//!   our own `/dev/xen/evtchn` fd, on the simulated host exactly what `SimEventHandle.notify`
//!   does (the remote pending bit, then one byte into the doorbell FIFO of the handle the remote
//!   port is attached to).
//! - A pass that moved nothing spins (re-reading the indices) for up to `spin_ns`, then sleeps
//!   in poll(2) on the event channel's own wake-up (the evtchn fd, or the handle's doorbell FIFO)
//!   and on a control eventfd JS writes when it frees room in `rxq` or queues bytes in `txq`
//!   (only while the pump is asleep). Before sleeping it takes what is pending (and unmasks the
//!   port on Linux), re-checks everything, and only then blocks: no wake-up is lost, and an idle
//!   console costs nothing.
//! - Backpressure: a full `rxq` stops consumption (the ring fills and the peer waits); a full
//!   ring stops `txq` (and `pumpWrite` accepts fewer bytes). Nothing is dropped.
//! - JS hears of new bytes (`EV_READABLE`) once per arming: `pumpRead` arms when it finds `rxq`
//!   empty. During a stream the pump signals when `rxq` holds a batch (`RX_BATCH`) or when the
//!   ring has gone quiet, so JS sees large batches but a keystroke is not held back. Room in
//!   `txq` (`EV_WRITABLE`) is signalled once it drains to half, after `pumpWrite` armed it.
//! - Impossible indices stop the pump before it touches anything (`EV_BROKEN_RX`/`_TX`).
//! - The page must be a mapping made by this addon: it is pinned (`map::pin_containing`) so an
//!   unmap from JS cannot pull it from under the thread; the memory goes when the pump stops.

use std::collections::BTreeMap;
use std::ffi::{c_void, CString};
use std::ptr;
use std::sync::atomic::{fence, AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::libc_sys as libc;
use crate::map;
use crate::napi::{guard, Env, Error, Result};
use crate::napi_sys::*;
use crate::ring::{Ring, RING_CORRUPT};
use crate::xen;

pub const EV_READABLE: u32 = 1;
pub const EV_WRITABLE: u32 = 2;
pub const EV_BROKEN_RX: u32 = 4;
pub const EV_BROKEN_TX: u32 = 8;

/// `rxq` signals JS at once when it holds at least this much (otherwise when the ring goes quiet).
const RX_BATCH: usize = 32 * 1024;
const THREAD_STACK: usize = 128 * 1024;

// ---- a single-producer single-consumer byte queue -------------------------------------------

struct ByteQueue {
    buf: *mut u8,
    cap: usize,
    /// Consumer position (bytes ever taken).
    head: AtomicU64,
    /// Producer position (bytes ever put).
    tail: AtomicU64,
}

impl ByteQueue {
    /// Anonymous memory of its own: pages become resident only once bytes pass through them
    /// (a heap allocation would be zeroed, and resident, at once: 500 idle consoles add up).
    fn new(cap: usize) -> Result<ByteQueue> {
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                cap,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Error::last_os("mmap"));
        }
        Ok(ByteQueue { buf: p as *mut u8, cap, head: AtomicU64::new(0), tail: AtomicU64::new(0) })
    }

    fn len(&self) -> usize {
        let tail = self.tail.load(Ordering::Acquire);
        let head = self.head.load(Ordering::Acquire);
        (tail - head) as usize
    }

    fn free(&self) -> usize {
        self.cap - self.len()
    }

    /// Producer: the first contiguous free region.
    fn free_region(&self) -> (*mut u8, usize) {
        let tail = self.tail.load(Ordering::Relaxed);
        let head = self.head.load(Ordering::Acquire);
        let free = self.cap - (tail - head) as usize;
        let at = (tail % self.cap as u64) as usize;
        (unsafe { self.buf.add(at) }, free.min(self.cap - at))
    }

    fn commit_put(&self, n: usize) {
        self.tail.fetch_add(n as u64, Ordering::Release);
    }

    /// Consumer: the first contiguous queued region.
    fn data_region(&self) -> (*mut u8, usize) {
        let head = self.head.load(Ordering::Relaxed);
        let tail = self.tail.load(Ordering::Acquire);
        let queued = (tail - head) as usize;
        let at = (head % self.cap as u64) as usize;
        (unsafe { self.buf.add(at) }, queued.min(self.cap - at))
    }

    fn commit_take(&self, n: usize) {
        self.head.fetch_add(n as u64, Ordering::Release);
    }

    /// Gives the pages back to the kernel (they read as zeros and cost nothing until written
    /// again). Only the producer may call it, and only while the queue is empty: the consumer
    /// then touches nothing.
    fn release_pages(&self) {
        unsafe { libc::madvise(self.buf as *mut c_void, self.cap, libc::MADV_DONTNEED) };
    }

    /// Producer: copies as much of `src` as fits.
    unsafe fn put(&self, src: *const u8, len: usize) -> usize {
        let mut done = 0;
        while done < len {
            let (p, room) = self.free_region();
            let n = room.min(len - done);
            if n == 0 {
                break;
            }
            ptr::copy_nonoverlapping(src.add(done), p, n);
            self.commit_put(n);
            done += n;
        }
        done
    }

    /// Consumer: copies up to `len` queued bytes into `dst`.
    unsafe fn take(&self, dst: *mut u8, len: usize) -> usize {
        let mut done = 0;
        while done < len {
            let (p, queued) = self.data_region();
            let n = queued.min(len - done);
            if n == 0 {
                break;
            }
            ptr::copy_nonoverlapping(p, dst.add(done), n);
            self.commit_take(n);
            done += n;
        }
        done
    }
}

impl Drop for ByteQueue {
    fn drop(&mut self) {
        unsafe { libc::munmap(self.buf as *mut c_void, self.cap) };
    }
}

// ---- the event channel, as the pump thread sees it ------------------------------------------

const EVENT_FILE_SIZE: usize = 36864;
const MAX_PORTS: u32 = 4096;
const PENDING_WORD: usize = 512 / 4;
const ROUTE_WORD: usize = 1024 / 4;
const ATTACH_WORD: usize = ROUTE_WORD + MAX_PORTS as usize;
/// A bit per port, set while a native waiter of that port is awake (see `SimChannel::awake`).
const POLLING_WORD: usize = ATTACH_WORD + MAX_PORTS as usize;
const DEAD_WORD: usize = 3;

/// A domain's event file of the simulated host, mapped by this thread.
struct EventFileMap {
    words: *const AtomicI32,
}

impl EventFileMap {
    fn open(path: &str) -> Option<EventFileMap> {
        let file = std::fs::OpenOptions::new().read(true).write(true).open(path).ok()?;
        use std::os::fd::AsRawFd;
        let addr = map::mmap_shared(file.as_raw_fd(), 0, EVENT_FILE_SIZE, true).ok()?;
        Some(EventFileMap { words: addr as *const AtomicI32 })
    }
    fn word(&self, index: usize) -> &AtomicI32 {
        // SAFETY: every index used is below EVENT_FILE_SIZE / 4.
        unsafe { &*self.words.add(index) }
    }
    fn dead(&self) -> bool {
        self.word(DEAD_WORD).load(Ordering::SeqCst) != 0
    }
}

// SAFETY: a private mapping of shared memory, accessed only through atomics.
unsafe impl Send for EventFileMap {}

impl Drop for EventFileMap {
    fn drop(&mut self) {
        unsafe { libc::munmap(self.words as *mut c_void, EVENT_FILE_SIZE) };
    }
}

struct SimChannel {
    dir: String,
    domid: u32,
    handle: u32,
    port: u32,
    own: EventFileMap,
    /// Our handle's doorbell FIFO, opened read-write and non-blocking.
    bell: i32,
    remote: Option<(u32, EventFileMap)>,
    /// Doorbells of other handles we rang, by handle id (write-only, non-blocking).
    bells: BTreeMap<u32, i32>,
}

impl SimChannel {
    fn notify(&mut self) {
        let route = self.own.word(ROUTE_WORD + self.port as usize).load(Ordering::SeqCst) as u32;
        if route == 0 {
            return;
        }
        let rdomid = (route >> 16).wrapping_sub(1);
        let rport = route & 0xffff;
        if rport >= MAX_PORTS {
            return;
        }
        let file = if rdomid == self.domid {
            &self.own
        } else {
            let stale = match &self.remote {
                Some((d, f)) => *d != rdomid || f.dead(),
                None => true,
            };
            if stale {
                self.remote = None;
                let path = format!("{}/evtchn/d{}.events", self.dir, rdomid);
                match EventFileMap::open(&path) {
                    Some(f) if !f.dead() => self.remote = Some((rdomid, f)),
                    _ => return,
                }
            }
            &self.remote.as_ref().expect("set above").1
        };
        let bit = 1 << (rport & 31);
        file.word(PENDING_WORD + (rport >> 5) as usize).fetch_or(bit, Ordering::SeqCst);
        // Awake: it looks at the ring again before it sleeps, so the doorbell would be wasted.
        if file.word(POLLING_WORD + (rport >> 5) as usize).load(Ordering::SeqCst) & bit != 0 {
            return;
        }
        let handle = file.word(ATTACH_WORD + rport as usize).load(Ordering::SeqCst) as u32;
        if handle == 0 || handle == self.handle {
            return;
        }
        self.ring(handle);
    }

    /// Says whether this waiter is awake: notifiers skip the doorbell while it is. Cleared
    /// before the last look at the ring and the sleep, so no notification goes unrung.
    fn awake(&self, awake: bool) {
        let word = self.own.word(POLLING_WORD + (self.port >> 5) as usize);
        let bit = 1 << (self.port & 31);
        if awake {
            word.fetch_or(bit, Ordering::SeqCst);
        } else {
            word.fetch_and(!bit, Ordering::SeqCst);
        }
    }

    fn ring(&mut self, handle: u32) {
        let fd = match self.bells.get(&handle) {
            Some(&fd) => fd,
            None => {
                let Ok(path) = CString::new(format!("{}/evtchn/h{}.fifo", self.dir, handle)) else { return };
                let fd = unsafe { libc::open(path.as_ptr(), O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC) };
                if fd < 0 {
                    return; // gone, or nobody reads it yet: the pending bit carries the event
                }
                self.bells.insert(handle, fd);
                fd
            }
        };
        let one = 1u8;
        if unsafe { libc::write(fd, &one as *const u8 as *const c_void, 1) } < 0 {
            let e = libc::errno();
            if e != libc::EAGAIN && e != libc::EINTR {
                unsafe { libc::close(fd) };
                self.bells.remove(&handle);
            }
        }
    }

    /// Takes what woke us: the doorbell bytes and our pending bit.
    fn take_pending(&self) {
        let mut drain = [0u8; 4096];
        loop {
            let n = unsafe { libc::read(self.bell, drain.as_mut_ptr() as *mut c_void, drain.len()) };
            if n < drain.len() as isize {
                break;
            }
        }
        self.own
            .word(PENDING_WORD + (self.port >> 5) as usize)
            .fetch_and(!(1 << (self.port & 31)), Ordering::SeqCst);
    }
}

impl Drop for SimChannel {
    fn drop(&mut self) {
        unsafe { libc::close(self.bell) };
        for fd in self.bells.values() {
            unsafe { libc::close(*fd) };
        }
    }
}

const O_WRONLY: i32 = 1;

enum Channel {
    /// A dup of our own `/dev/xen/evtchn` fd (the port is bound through it).
    Linux {
        fd: i32,
        port: u32,
    },
    Sim(SimChannel),
}

impl Channel {
    fn fd(&self) -> i32 {
        match self {
            Channel::Linux { fd, .. } => *fd,
            Channel::Sim(s) => s.bell,
        }
    }

    fn notify(&mut self) {
        match self {
            // A failure (the port went away) is the owner's business: it is tearing down.
            Channel::Linux { fd, port } => drop(xen::evtchn_notify(*fd, *port)),
            Channel::Sim(s) => s.notify(),
        }
    }

    /// Awake or about to sleep (the simulated host's doorbell skip; Linux has its masking).
    fn awake(&self, awake: bool) {
        if let Channel::Sim(s) = self {
            s.awake(awake);
        }
    }

    /// Before sleeping: takes every delivery and re-enables ours (Linux masks a delivered port).
    fn take_pending(&mut self) {
        match self {
            Channel::Linux { fd, port } => {
                let mut ports = [0u32; 64];
                loop {
                    match xen::evtchn_pending(*fd, ports.as_mut_ptr(), ports.len()) {
                        Ok(n) => {
                            if ports[..n].contains(port) {
                                let _ = xen::evtchn_unmask(*fd, *port);
                            }
                            if n < ports.len() {
                                break;
                            }
                        }
                        Err(_) => {
                            // EFBIG (the fd's queue overflowed): reset it and unmask ours.
                            let _ = xen::evtchn_reset(*fd);
                            let _ = xen::evtchn_unmask(*fd, *port);
                            break;
                        }
                    }
                }
            }
            Channel::Sim(s) => s.take_pending(),
        }
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        if let Channel::Linux { fd, .. } = self {
            unsafe { libc::close(*fd) };
        }
    }
}

// ---- state shared by the pump thread and JS --------------------------------------------------

struct Inner {
    rx: Ring,
    tx: Ring,
    /// Notifying goes through here, from the pump or from a direct write on the JS thread.
    chan: Mutex<Channel>,
    rxq: ByteQueue,
    txq: ByteQueue,
    spin_ns: u64,
    stop: AtomicBool,
    /// Set by the pump just before it blocks; JS writes `ctl` only then.
    sleeping: AtomicBool,
    /// Set with `sleeping` when the pump blocks with `rxq` full: only then does a read wake it.
    rx_blocked: AtomicBool,
    rx_armed: AtomicBool,
    tx_armed: AtomicBool,
    broken: AtomicU32,
    ctl: i32,
    tsfn: usize,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    notifies: AtomicU64,
    sleeps: AtomicU64,
    signals: AtomicU64,
}

// SAFETY: the raw pointers are into a pinned mapping and into the queues' own buffers; the
// queues are single-producer single-consumer with atomic positions.
unsafe impl Send for Inner {}
unsafe impl Sync for Inner {}

impl Inner {
    fn channel(&self) -> MutexGuard<'_, Channel> {
        self.chan.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn signal(&self, events: u32) {
        self.signals.fetch_add(1, Ordering::Relaxed);
        unsafe {
            napi_call_threadsafe_function(
                self.tsfn as napi_threadsafe_function,
                events as usize as *mut c_void,
                NAPI_TSFN_NONBLOCKING,
            )
        };
    }

    /// Wakes the pump if it is asleep (JS side, after it changed `rxq` or `txq`).
    fn kick(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            let one = 1u64;
            unsafe { libc::write(self.ctl, &one as *const u64 as *const c_void, 8) };
        }
    }

    /// Whether a pass would move something (or the pump must act: stop, a corrupt ring).
    fn has_work(&self) -> bool {
        if self.stop.load(Ordering::Acquire) {
            return true;
        }
        if self.rxq.free() > 0 && self.rx.queued() != 0 {
            return true;
        }
        if self.txq.len() > 0 {
            let q = self.tx.queued();
            if q < 0 || (q as u32) < self.tx.size() {
                return true;
            }
        }
        false
    }

    /// One pass: ring → rxq, txq → ring. Returns (moved in, moved out), or the broken event.
    fn pass(&self) -> std::result::Result<(usize, usize), u32> {
        let mut moved_in = 0;
        loop {
            let (p, room) = self.rxq.free_region();
            if room == 0 {
                break;
            }
            let n = unsafe { self.rx.consume(p, room) };
            if n == RING_CORRUPT {
                return Err(EV_BROKEN_RX);
            }
            if n <= 0 {
                break;
            }
            self.rxq.commit_put(n as usize);
            moved_in += n as usize;
            if (n as usize) < room {
                break;
            }
        }
        let mut moved_out = 0;
        loop {
            let (p, queued) = self.txq.data_region();
            if queued == 0 {
                break;
            }
            let n = unsafe { self.tx.produce(p, queued) };
            if n == RING_CORRUPT {
                return Err(EV_BROKEN_TX);
            }
            if n <= 0 {
                break;
            }
            self.txq.commit_take(n as usize);
            moved_out += n as usize;
            if (n as usize) < queued {
                break;
            }
        }
        Ok((moved_in, moved_out))
    }
}

/// How long received bytes may wait for JS while the peer streams (it fills half the ring or
/// more per pass): JS then hears of them once per `RX_BATCH` or after this, not once per ring.
const HOLD_NS: u128 = 1_000_000;
/// Spin budgets below this are not worth a spin.
const MIN_SPIN_NS: u64 = 1_000;
/// With spinning switched off by failures, one sleep in this many spins again to probe.
const PROBE_EVERY: u32 = 32;
/// A console quiet this long (ms) after bytes came in gives its receive buffer's pages back, so a
/// daemon's idle consoles do not each keep what their last burst touched.
const RELEASE_AFTER_MS: i32 = 1000;

fn run(inner: &Inner) {
    let wake_fd = inner.channel().fd();
    let mut pfds = [
        libc::pollfd { fd: wake_fd, events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: inner.ctl, events: libc::POLLIN, revents: 0 },
    ];
    // Bytes in rxq that JS has not been told about yet, held since when.
    let mut held: Option<Instant> = None;
    // Whether the peer is streaming (its last burst filled half our ring or more).
    let mut streaming = false;
    // The adaptive spin budget: doubled when a spin found work, halved when it expired (on a
    // machine whose cores are all busy, spinning only keeps the peer from running), probed again
    // now and then once it reached 0.
    let mut budget = inner.spin_ns;
    let mut sleeps_without_spin = 0u32;
    let half_ring = (inner.rx.size() / 2) as usize;
    // rxq pages touched since they were last given back.
    let mut rx_dirty = false;
    inner.channel().awake(true);
    loop {
        if inner.stop.load(Ordering::Acquire) {
            inner.channel().awake(false);
            return;
        }
        // The peer may have written before we started: the first pass looks at once.
        let (moved_in, moved_out) = match inner.pass() {
            Ok(m) => m,
            Err(event) => {
                inner.broken.store(event, Ordering::SeqCst);
                inner.signal(event);
                inner.channel().awake(false);
                return;
            }
        };
        if moved_in + moved_out > 0 {
            inner.channel().notify();
            inner.notifies.fetch_add(1, Ordering::Relaxed);
            inner.bytes_in.fetch_add(moved_in as u64, Ordering::Relaxed);
            inner.bytes_out.fetch_add(moved_out as u64, Ordering::Relaxed);
        }
        if moved_in > 0 {
            rx_dirty = true;
            streaming = moved_in >= half_ring;
            if held.is_none() {
                held = Some(Instant::now());
            }
        }
        if let Some(since) = held {
            let quiet = moved_in == 0;
            let due = inner.rxq.len() >= RX_BATCH
                || inner.rxq.free() == 0
                || (quiet && (!streaming || since.elapsed().as_nanos() >= HOLD_NS));
            if due {
                held = None;
                if inner.rx_armed.swap(false, Ordering::SeqCst) {
                    inner.signal(EV_READABLE);
                }
            }
        }
        if moved_out > 0
            && inner.txq.len() <= inner.txq.cap / 2
            && inner.tx_armed.swap(false, Ordering::SeqCst)
        {
            inner.signal(EV_WRITABLE);
        }
        if moved_in + moved_out > 0 {
            continue;
        }
        // Nothing moved. Spin only while waiting on the peer can pay off: room for its bytes,
        // or bytes of ours for it to take.
        let waiting_on_peer = inner.rxq.free() > 0 || inner.txq.len() > 0;
        if budget >= MIN_SPIN_NS && waiting_on_peer {
            let start = Instant::now();
            let mut work = false;
            let mut i = 0u32;
            loop {
                if inner.has_work() {
                    work = true;
                    break;
                }
                i += 1;
                if i % 16 == 0 {
                    let spent = start.elapsed().as_nanos() as u64;
                    if spent >= budget {
                        break;
                    }
                    // Past the first 2 µs, let a peer that shares this core run.
                    if spent > 2_000 {
                        unsafe { libc::sched_yield() };
                    }
                } else {
                    std::hint::spin_loop();
                }
            }
            if work {
                budget = (budget * 2).min(inner.spin_ns);
                continue;
            }
            budget /= 2;
        } else if inner.spin_ns > 0 && waiting_on_peer {
            sleeps_without_spin += 1;
            if sleeps_without_spin >= PROBE_EVERY {
                sleeps_without_spin = 0;
                budget = (inner.spin_ns / 4).max(MIN_SPIN_NS);
            }
        }
        inner.rx_blocked.store(inner.rxq.free() == 0, Ordering::SeqCst);
        inner.sleeping.store(true, Ordering::SeqCst);
        {
            let mut chan = inner.channel();
            chan.awake(false);
            fence(Ordering::SeqCst);
            chan.take_pending();
        }
        if inner.has_work() {
            inner.sleeping.store(false, Ordering::SeqCst);
            inner.rx_blocked.store(false, Ordering::SeqCst);
            inner.channel().awake(true);
            continue;
        }
        inner.sleeps.fetch_add(1, Ordering::Relaxed);
        pfds[0].revents = 0;
        pfds[1].revents = 0;
        // Held bytes bound the sleep (JS hears of them within HOLD_NS); touched buffer pages
        // bound it once more (they are given back after a quiet second); otherwise no timeout.
        let release = held.is_none() && rx_dirty;
        let timeout = if held.is_some() {
            1
        } else if release {
            RELEASE_AFTER_MS
        } else {
            -1
        };
        let r = unsafe { libc::poll(pfds.as_mut_ptr(), 2, timeout) };
        if r == 0 && release {
            // A reader that paused keeps its bytes (and pages): try again after the next burst.
            if inner.rxq.len() == 0 {
                inner.rxq.release_pages();
            }
            rx_dirty = false;
        }
        inner.channel().awake(true);
        inner.sleeping.store(false, Ordering::SeqCst);
        inner.rx_blocked.store(false, Ordering::SeqCst);
        if r == 0 {
            streaming = false; // the peer paused: what we hold goes to JS on the next pass
        } else if r < 0 && libc::errno() != libc::EINTR {
            // The fds are ours and valid; an unexpected failure must not become a busy loop.
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        if pfds[1].revents != 0 {
            let mut counter = 0u64;
            unsafe { libc::read(inner.ctl, &mut counter as *mut u64 as *mut c_void, 8) };
        }
    }
}

// ---- the registry of pumps (JS side) ---------------------------------------------------------

struct Entry {
    env: usize,
    inner: Arc<Inner>,
    /// None once halted (thread joined, page unpinned, tsfn released).
    thread: Option<JoinHandle<()>>,
    pin: u64,
}

struct Pumps {
    next_id: u32,
    entries: BTreeMap<u32, Entry>,
}

static PUMPS: Mutex<Pumps> = Mutex::new(Pumps { next_id: 1, entries: BTreeMap::new() });

fn pumps() -> MutexGuard<'static, Pumps> {
    PUMPS.lock().unwrap_or_else(|e| e.into_inner())
}

fn inner_of(env: Env, id: u32) -> Result<Arc<Inner>> {
    let p = pumps();
    match p.entries.get(&id) {
        Some(e) if e.env == env.0 as usize => Ok(e.inner.clone()),
        _ => Err(Error::invalid(format!("no ring pump with id {id} in this environment"))),
    }
}

/// Where the pump waits and how it notifies.
pub enum Wake {
    Linux { fd: i32, port: u32 },
    Sim { dir: String, domid: u32, handle: u32, port: u32 },
}

pub struct Config {
    pub rx_capacity: usize,
    pub tx_capacity: usize,
    pub spin_ns: u64,
}

unsafe extern "C" fn call_js(env: napi_env, js_cb: napi_value, _context: *mut c_void, data: *mut c_void) {
    if env.is_null() || js_cb.is_null() {
        return;
    }
    let env = Env(env);
    let r = guard(|| {
        let recv = env.undefined()?;
        let arg = env.uint32(data as usize as u32)?;
        let mut result = ptr::null_mut();
        env.check(napi_call_function(env.0, recv, js_cb, 1, &arg, &mut result), "napi_call_function")?;
        Ok(())
    });
    if let Err(e) = r {
        env.throw_uncaught(e);
    }
}

/// Env teardown with the pump still registered: stop it before node tears its tsfn down.
unsafe extern "C" fn env_cleanup(arg: *mut c_void) {
    let id = arg as usize as u32;
    let _ = guard(|| {
        if let Some(mut e) = pumps().entries.remove(&id) {
            halt(&mut e, NAPI_TSFN_ABORT);
            libc::close(e.inner.ctl);
        }
        Ok(())
    });
}

/// Stops the thread, unpins the page and releases the tsfn (idempotent).
fn halt(e: &mut Entry, mode: napi_threadsafe_function_release_mode) -> bool {
    let Some(t) = e.thread.take() else { return false };
    e.inner.stop.store(true, Ordering::SeqCst);
    let one = 1u64;
    unsafe { libc::write(e.inner.ctl, &one as *const u64 as *const c_void, 8) };
    let _ = t.join();
    map::unpin(e.pin);
    unsafe { napi_release_threadsafe_function(e.inner.tsfn as napi_threadsafe_function, mode) };
    true
}

fn ring_in(page: *mut u8, page_len: usize, l: [u64; 4]) -> Result<Ring> {
    Ring::new(page, page_len, Some(l[0]), l[1], l[2], l[3])
}

fn open_channel(wake: Wake) -> Result<Channel> {
    match wake {
        Wake::Linux { fd, port } => {
            let dup = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
            if dup < 0 {
                return Err(Error::last_os("fcntl(F_DUPFD_CLOEXEC)"));
            }
            Ok(Channel::Linux { fd: dup, port })
        }
        Wake::Sim { dir, domid, handle, port } => {
            if port == 0 || port >= MAX_PORTS {
                return Err(Error::invalid(format!("port {port} is not a simulated event channel port")));
            }
            let own_path = format!("{dir}/evtchn/d{domid}.events");
            let own = EventFileMap::open(&own_path)
                .ok_or_else(|| Error::invalid(format!("cannot map the event file {own_path}")))?;
            let bell_path = CString::new(format!("{dir}/evtchn/h{handle}.fifo"))
                .map_err(|_| Error::invalid("dir must not contain NUL bytes"))?;
            let bell =
                unsafe { libc::open(bell_path.as_ptr(), libc::O_RDWR | libc::O_NONBLOCK | libc::O_CLOEXEC) };
            if bell < 0 {
                return Err(Error::last_os("open(doorbell)"));
            }
            Ok(Channel::Sim(SimChannel {
                dir,
                domid,
                handle,
                port,
                own,
                bell,
                remote: None,
                bells: BTreeMap::new(),
            }))
        }
    }
}

/// Starts a pump over `page` (a view into a native mapping) and returns its id.
pub fn start(
    env: Env,
    page: (*mut u8, usize),
    rx_layout: [u64; 4],
    tx_layout: [u64; 4],
    wake: Wake,
    config: Config,
    callback: napi_value,
) -> Result<u32> {
    let (addr, len) = page;
    if addr.is_null() || len == 0 {
        return Err(Error::invalid("page is detached or empty"));
    }
    for (name, cap) in [("rxCapacity", config.rx_capacity), ("txCapacity", config.tx_capacity)] {
        if !cap.is_power_of_two() || !(4096..=1 << 26).contains(&cap) {
            return Err(Error::invalid(format!("{name} must be a power of two in 4096..=2^26, got {cap}")));
        }
    }
    let rx = ring_in(addr, len, rx_layout)?;
    let tx = ring_in(addr, len, tx_layout)?;
    let chan = open_channel(wake)?;
    let Some(pin) = map::pin_containing(addr as usize, len) else {
        return Err(Error::invalid(
            "page must lie in a mapping made by this addon (mapFile, gntdevMap, ...)",
        ));
    };
    let ctl = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if ctl < 0 {
        let e = Error::last_os("eventfd");
        map::unpin(pin);
        return Err(e);
    }
    let fail = |e: Error| {
        unsafe { libc::close(ctl) };
        map::unpin(pin);
        e
    };
    let rxq = ByteQueue::new(config.rx_capacity).map_err(fail)?;
    let txq = ByteQueue::new(config.tx_capacity).map_err(fail)?;
    let name = env.string("xencons ring pump").map_err(fail)?;
    let mut tsfn = ptr::null_mut();
    let st = unsafe {
        napi_create_threadsafe_function(
            env.0,
            callback,
            ptr::null_mut(),
            name,
            0,
            1,
            ptr::null_mut(),
            None,
            ptr::null_mut(),
            Some(call_js),
            &mut tsfn,
        )
    };
    env.check(st, "napi_create_threadsafe_function").map_err(fail)?;
    let inner = Arc::new(Inner {
        rx,
        tx,
        chan: Mutex::new(chan),
        rxq,
        txq,
        spin_ns: config.spin_ns,
        stop: AtomicBool::new(false),
        sleeping: AtomicBool::new(false),
        rx_blocked: AtomicBool::new(false),
        rx_armed: AtomicBool::new(true),
        tx_armed: AtomicBool::new(false),
        broken: AtomicU32::new(0),
        ctl,
        tsfn: tsfn as usize,
        bytes_in: AtomicU64::new(0),
        bytes_out: AtomicU64::new(0),
        notifies: AtomicU64::new(0),
        sleeps: AtomicU64::new(0),
        signals: AtomicU64::new(0),
    });
    let id = {
        let mut p = pumps();
        let mut id = p.next_id;
        while id == 0 || p.entries.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        p.next_id = id.wrapping_add(1);
        id
    };
    let thread_inner = inner.clone();
    let spawned = std::thread::Builder::new()
        .name("xencons-pump".into())
        .stack_size(THREAD_STACK)
        .spawn(move || run(&thread_inner));
    let thread = match spawned {
        Ok(t) => t,
        Err(e) => {
            unsafe { napi_release_threadsafe_function(tsfn, NAPI_TSFN_ABORT) };
            return Err(fail(Error::os(e.raw_os_error().unwrap_or(libc::EAGAIN), "pthread_create")));
        }
    };
    pumps().entries.insert(id, Entry { env: env.0 as usize, inner, thread: Some(thread), pin });
    // Registered after the tsfn, so it runs before node's own tsfn cleanup (hooks run in reverse).
    unsafe { napi_add_env_cleanup_hook(env.0, Some(env_cleanup), id as usize as *mut c_void) };
    Ok(id)
}

/// Stops the pump: joins its thread and lets go of the page. Bytes left in `rxq` can still be
/// taken with `read` until `close`. Unknown ids are ignored.
pub fn stop(env: Env, id: u32) -> Result<()> {
    // The join happens outside the registry lock; the entry is put back afterwards.
    let entry = {
        let mut p = pumps();
        match p.entries.get(&id) {
            Some(e) if e.env == env.0 as usize && e.thread.is_some() => p.entries.remove(&id),
            _ => None,
        }
    };
    if let Some(mut e) = entry {
        if halt(&mut e, NAPI_TSFN_RELEASE) {
            unsafe { napi_remove_env_cleanup_hook(env.0, Some(env_cleanup), id as usize as *mut c_void) };
        }
        pumps().entries.insert(id, e);
    }
    Ok(())
}

/// Stops the pump if it runs and forgets it (its buffers go). Unknown ids are ignored.
pub fn close(env: Env, id: u32) -> Result<()> {
    stop(env, id)?;
    let entry = {
        let mut p = pumps();
        match p.entries.get(&id) {
            Some(e) if e.env == env.0 as usize => p.entries.remove(&id),
            _ => None,
        }
    };
    if let Some(e) = entry {
        unsafe { libc::close(e.inner.ctl) };
    }
    Ok(())
}

/// Takes up to `max` bytes from `rxq` into a new Buffer; null when empty (which arms
/// `EV_READABLE`). Wakes the pump if it sleeps and there is room again.
pub fn read(env: Env, id: u32, max: usize) -> Result<napi_value> {
    let inner = inner_of(env, id)?;
    let mut n = inner.rxq.len().min(max);
    if n == 0 {
        inner.rx_armed.store(true, Ordering::SeqCst);
        if inner.rxq.len() == 0 || !inner.rx_armed.swap(false, Ordering::SeqCst) {
            return env.null();
        }
        n = inner.rxq.len().min(max);
    }
    let mut data = ptr::null_mut();
    let mut result = ptr::null_mut();
    env.check(unsafe { napi_create_buffer(env.0, n, &mut data, &mut result) }, "napi_create_buffer")?;
    let got = unsafe { inner.rxq.take(data as *mut u8, n) };
    debug_assert_eq!(got, n);
    // A pump asleep because rxq was full waits for this room.
    fence(Ordering::SeqCst);
    if inner.rx_blocked.load(Ordering::SeqCst) {
        inner.kick();
    }
    Ok(result)
}

/// Returned by `write` when the tx ring's indices are impossible.
pub const WRITE_CORRUPT: i64 = -1;

/// Takes as much of `src` as it can; returns the bytes taken, or `WRITE_CORRUPT`. While `txq`
/// is empty the bytes go straight into the ring from this (the JS) thread and the peer is
/// notified at once: a keystroke costs no hop through the pump. The pump only produces from a
/// non-empty `txq`, which only this thread fills, so the ring never has two producers at once.
/// What does not fit goes to `txq`; when not all of it fits, `EV_WRITABLE` is armed.
pub fn write(env: Env, id: u32, src: *const u8, len: usize) -> Result<i64> {
    let inner = inner_of(env, id)?;
    if inner.broken.load(Ordering::Relaxed) != 0 || inner.stop.load(Ordering::Relaxed) {
        return Ok(0);
    }
    let mut n = 0usize;
    if inner.txq.len() == 0 && len > 0 {
        // The pump's last produce (it emptied txq) happened before: see its index.
        fence(Ordering::Acquire);
        let direct = unsafe { inner.tx.produce(src, len) };
        if direct == RING_CORRUPT {
            inner.broken.store(EV_BROKEN_TX, Ordering::SeqCst);
            inner.stop.store(true, Ordering::SeqCst);
            inner.kick();
            return Ok(WRITE_CORRUPT);
        }
        if direct > 0 {
            n = direct as usize;
            inner.channel().notify();
            inner.notifies.fetch_add(1, Ordering::Relaxed);
            inner.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
    if n < len {
        n += unsafe { inner.txq.put(src.add(n), len - n) };
        if n < len {
            inner.tx_armed.store(true, Ordering::SeqCst);
            n += unsafe { inner.txq.put(src.add(n), len - n) };
            if n == len {
                inner.tx_armed.store(false, Ordering::SeqCst);
            }
        }
        inner.kick();
    }
    Ok(n as i64)
}

pub struct Stats {
    pub rx_buffered: usize,
    pub tx_buffered: usize,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub notifies: u64,
    pub sleeps: u64,
    pub signals: u64,
    pub broken: u32,
    pub running: bool,
}

pub fn stats(env: Env, id: u32) -> Result<Stats> {
    let (i, running) = {
        let p = pumps();
        match p.entries.get(&id) {
            Some(e) if e.env == env.0 as usize => (e.inner.clone(), e.thread.is_some()),
            _ => return Err(Error::invalid(format!("no ring pump with id {id} in this environment"))),
        }
    };
    Ok(Stats {
        rx_buffered: i.rxq.len(),
        tx_buffered: i.txq.len(),
        bytes_in: i.bytes_in.load(Ordering::Relaxed),
        bytes_out: i.bytes_out.load(Ordering::Relaxed),
        notifies: i.notifies.load(Ordering::Relaxed),
        sleeps: i.sleeps.load(Ordering::Relaxed),
        signals: i.signals.load(Ordering::Relaxed),
        broken: i.broken.load(Ordering::Relaxed),
        running,
    })
}
