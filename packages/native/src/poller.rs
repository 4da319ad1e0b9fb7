//! fd readiness on one native thread (epoll), delivered to JS through a thread-safe function.
//!
//! - One poll thread per process, started by the first `watchFd` and stopped when the last JS
//!   environment (main thread or worker) that used it is torn down. It owns an epoll fd and an
//!   eventfd used only to wake it for shutdown.
//! - Each watch is registered EPOLLONESHOT plus its interest (EPOLLIN by default, EPOLLOUT on
//!   request) with its id as epoll data: after one event the
//!   kernel disarms it until `rearmFd(id)`, so a slow consumer never sees a storm.
//! - Each environment has one tsfn; its call_js looks the callback up by watch id (callbacks are
//!   napi references). The tsfn is ref'ed while the env has a ref'ed watch, unref'ed otherwise,
//!   so an idle process can exit.
//! - Teardown (napi env cleanup hook): unregister the env's watches, delete the references,
//!   release the tsfn (abort), and stop + join the thread if no env uses it any more.
//!
//! Locking: one mutex over all shared state. The poll thread holds it while it queues a call
//! (non-blocking), so a watch removed under the lock is never signalled afterwards; JS-thread
//! code never holds it while calling into JS or into tsfn ref/unref/release.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::libc_sys as libc;
use crate::napi::{guard, Env, Error, Result};
use crate::napi_sys::*;

const _: () = assert!(std::mem::size_of::<usize>() == 8, "the poller packs (id, events) into a pointer");

/// epoll data of the wake-up eventfd; watch ids start at 1.
const WAKE_TOKEN: u64 = 0;
const MAX_EVENTS: usize = 128;

struct Watch {
    fd: i32,
    env: usize,
}

struct Callback {
    reference: usize, // napi_ref, only used on its env's JS thread
    refed: bool,
}

struct EnvPoller {
    tsfn: usize, // napi_threadsafe_function; 0 once finalized
    generation: u64,
    callbacks: BTreeMap<u32, Callback>,
    refed: usize,
    tsfn_refed: bool,
}

struct PollThread {
    epfd: i32,
    evfd: i32,
    stop: Arc<AtomicBool>,
    handle: JoinHandle<()>,
}

struct Shared {
    thread: Option<PollThread>,
    next_id: u32,
    next_generation: u64,
    watches: BTreeMap<u32, Watch>,
    envs: BTreeMap<usize, EnvPoller>,
}

static SHARED: Mutex<Shared> = Mutex::new(Shared {
    thread: None,
    next_id: 1,
    next_generation: 1,
    watches: BTreeMap::new(),
    envs: BTreeMap::new(),
});

fn shared() -> MutexGuard<'static, Shared> {
    SHARED.lock().unwrap_or_else(|e| e.into_inner())
}

fn epoll_ctl(epfd: i32, op: i32, fd: i32, events: u32, data: u64, syscall: &'static str) -> Result<()> {
    let mut ev = libc::epoll_event { events, data };
    if unsafe { libc::epoll_ctl(epfd, op, fd, &mut ev) } != 0 {
        return Err(Error::last_os(syscall));
    }
    Ok(())
}

// ---- the poll thread ----------------------------------------------------------------------------

fn start_thread(s: &mut Shared) -> Result<i32> {
    if let Some(t) = &s.thread {
        return Ok(t.epfd);
    }
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if epfd < 0 {
        return Err(Error::last_os("epoll_create1"));
    }
    let evfd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
    if evfd < 0 {
        let e = Error::last_os("eventfd");
        unsafe { libc::close(epfd) };
        return Err(e);
    }
    let close_both = || unsafe {
        libc::close(epfd);
        libc::close(evfd);
    };
    if let Err(e) =
        epoll_ctl(epfd, libc::EPOLL_CTL_ADD, evfd, libc::EPOLLIN, WAKE_TOKEN, "epoll_ctl(EPOLL_CTL_ADD)")
    {
        close_both();
        return Err(e);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let thread_stop = stop.clone();
    let spawned = std::thread::Builder::new()
        .name("xencons-poll".into())
        .spawn(move || poll_loop(epfd, evfd, &thread_stop));
    match spawned {
        Ok(handle) => {
            s.thread = Some(PollThread { epfd, evfd, stop, handle });
            Ok(epfd)
        }
        Err(e) => {
            close_both();
            Err(Error::os(e.raw_os_error().unwrap_or(libc::EAGAIN), "pthread_create"))
        }
    }
}

fn poll_loop(epfd: i32, evfd: i32, stop: &AtomicBool) {
    let mut events = [libc::epoll_event { events: 0, data: 0 }; MAX_EVENTS];
    while !stop.load(Ordering::Acquire) {
        let n = unsafe { libc::epoll_wait(epfd, events.as_mut_ptr(), MAX_EVENTS as i32, -1) };
        if n < 0 {
            if libc::errno() == libc::EINTR {
                continue;
            }
            return; // EBADF/EINVAL: nothing sensible left to do
        }
        let s = shared();
        for ev in &events[..n as usize] {
            let (data, bits) = (ev.data, ev.events);
            if data == WAKE_TOKEN {
                let mut counter = 0u64;
                unsafe { libc::read(evfd, &mut counter as *mut u64 as *mut c_void, 8) };
                continue;
            }
            let id = data as u32;
            let Some(watch) = s.watches.get(&id) else { continue };
            let Some(envp) = s.envs.get(&watch.env) else { continue };
            if envp.tsfn != 0 {
                let packed = ((id as u64) << 32 | bits as u64) as usize as *mut c_void;
                // Non-blocking on an unbounded queue: only fails while the tsfn is closing.
                unsafe {
                    napi_call_threadsafe_function(
                        envp.tsfn as napi_threadsafe_function,
                        packed,
                        NAPI_TSFN_NONBLOCKING,
                    )
                };
            }
        }
    }
}

fn stop_thread(t: PollThread) {
    t.stop.store(true, Ordering::Release);
    let one = 1u64;
    unsafe { libc::write(t.evfd, &one as *const u64 as *const c_void, 8) };
    let _ = t.handle.join();
    unsafe {
        libc::close(t.epfd);
        libc::close(t.evfd);
    }
}

// ---- JS thread side -----------------------------------------------------------------------------

/// Runs on the env's JS thread for each readiness event queued by the poll thread.
unsafe extern "C" fn call_js(env: napi_env, _js_cb: napi_value, _context: *mut c_void, data: *mut c_void) {
    if env.is_null() {
        return; // the tsfn is being torn down
    }
    let env = Env(env);
    let r = guard(|| {
        let packed = data as usize as u64;
        let (id, bits) = ((packed >> 32) as u32, packed as u32);
        let reference = {
            let s = shared();
            s.envs.get(&(env.0 as usize)).and_then(|e| e.callbacks.get(&id)).map(|c| c.reference)
        };
        let Some(reference) = reference else { return Ok(()) }; // unwatched meanwhile
        let mut f = ptr::null_mut();
        env.check(
            napi_get_reference_value(env.0, reference as napi_ref, &mut f),
            "napi_get_reference_value",
        )?;
        let recv = env.undefined()?;
        let arg = env.uint32(bits)?;
        let mut result = ptr::null_mut();
        env.check(napi_call_function(env.0, recv, f, 1, &arg, &mut result), "napi_call_function")?;
        Ok(())
    });
    if let Err(e) = r {
        env.throw_uncaught(e);
    }
}

unsafe extern "C" fn tsfn_finalize(_env: napi_env, data: *mut c_void, _hint: *mut c_void) {
    let generation = data as usize as u64;
    let _ = guard(|| {
        let mut s = shared();
        for e in s.envs.values_mut() {
            if e.generation == generation {
                e.tsfn = 0;
            }
        }
        Ok(())
    });
}

unsafe extern "C" fn env_cleanup(arg: *mut c_void) {
    let env = Env(arg as napi_env);
    let _ = guard(|| {
        let (poller, thread) = {
            let mut s = shared();
            let Some(poller) = s.envs.remove(&(arg as usize)) else { return Ok(()) };
            let epfd = s.thread.as_ref().map(|t| t.epfd);
            for id in poller.callbacks.keys() {
                if let (Some(w), Some(epfd)) = (s.watches.remove(id), epfd) {
                    let _ = epoll_ctl(epfd, libc::EPOLL_CTL_DEL, w.fd, 0, 0, "epoll_ctl(EPOLL_CTL_DEL)");
                }
            }
            let thread = if s.envs.is_empty() { s.thread.take() } else { None };
            (poller, thread)
        };
        for cb in poller.callbacks.values() {
            napi_delete_reference(env.0, cb.reference as napi_ref);
        }
        if poller.tsfn != 0 {
            napi_release_threadsafe_function(poller.tsfn as napi_threadsafe_function, NAPI_TSFN_ABORT);
        }
        if let Some(t) = thread {
            stop_thread(t);
        }
        Ok(())
    });
}

/// Creates this env's tsfn and cleanup hook if it has none yet.
fn ensure_env(env: Env) -> Result<()> {
    let key = env.0 as usize;
    let generation = {
        let mut s = shared();
        if s.envs.contains_key(&key) {
            return Ok(());
        }
        let g = s.next_generation;
        s.next_generation += 1;
        g
    };
    let name = env.string("xencons-native poller")?;
    let mut tsfn = ptr::null_mut();
    let st = unsafe {
        napi_create_threadsafe_function(
            env.0,
            ptr::null_mut(),
            ptr::null_mut(),
            name,
            0,
            1,
            generation as usize as *mut c_void,
            Some(tsfn_finalize),
            ptr::null_mut(),
            Some(call_js),
            &mut tsfn,
        )
    };
    env.check(st, "napi_create_threadsafe_function")?;
    // Registered after the tsfn, so it runs before node's own tsfn cleanup (hooks run in reverse).
    let st = unsafe { napi_add_env_cleanup_hook(env.0, Some(env_cleanup), env.0 as *mut c_void) };
    if let Err(e) = env.check(st, "napi_add_env_cleanup_hook") {
        unsafe { napi_release_threadsafe_function(tsfn, NAPI_TSFN_ABORT) };
        return Err(e);
    }
    // A new tsfn keeps the loop alive; it stays ref'ed only while a ref'ed watch exists.
    let mut s = shared();
    s.envs.insert(
        key,
        EnvPoller { tsfn: tsfn as usize, generation, callbacks: BTreeMap::new(), refed: 0, tsfn_refed: true },
    );
    Ok(())
}

enum TsfnChange {
    None,
    Ref(usize),
    Unref(usize),
}

/// Recomputes whether the env's tsfn should hold the loop open.
fn tsfn_change(p: &mut EnvPoller) -> TsfnChange {
    let want = p.refed > 0;
    if want == p.tsfn_refed || p.tsfn == 0 {
        return TsfnChange::None;
    }
    p.tsfn_refed = want;
    if want {
        TsfnChange::Ref(p.tsfn)
    } else {
        TsfnChange::Unref(p.tsfn)
    }
}

fn apply(env: Env, change: TsfnChange) -> Result<()> {
    match change {
        TsfnChange::None => Ok(()),
        TsfnChange::Ref(t) => env.check(
            unsafe { napi_ref_threadsafe_function(env.0, t as napi_threadsafe_function) },
            "napi_ref_threadsafe_function",
        ),
        TsfnChange::Unref(t) => env.check(
            unsafe { napi_unref_threadsafe_function(env.0, t as napi_threadsafe_function) },
            "napi_unref_threadsafe_function",
        ),
    }
}

/// `events`: the poll(2) interest, POLLIN and/or POLLOUT (the epoll bits have the same values).
pub fn watch_fd(env: Env, fd: i32, callback: napi_value, events: u32) -> Result<u32> {
    ensure_env(env)?;
    let mut reference = ptr::null_mut();
    env.check(unsafe { napi_create_reference(env.0, callback, 1, &mut reference) }, "napi_create_reference")?;
    let key = env.0 as usize;
    let added = (|| {
        let mut s = shared();
        let epfd = start_thread(&mut s)?;
        let mut id = s.next_id;
        while id == 0 || s.watches.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        s.next_id = id.wrapping_add(1);
        // Insert before arming, under the lock: an immediate event must find its watch.
        s.watches.insert(id, Watch { fd, env: key });
        let flags = events | libc::EPOLLONESHOT;
        if let Err(e) = epoll_ctl(epfd, libc::EPOLL_CTL_ADD, fd, flags, id as u64, "epoll_ctl(EPOLL_CTL_ADD)")
        {
            s.watches.remove(&id);
            return Err(e);
        }
        let p = s.envs.get_mut(&key).ok_or_else(|| Error::invalid("environment is shutting down"))?;
        p.callbacks.insert(id, Callback { reference: reference as usize, refed: true });
        p.refed += 1;
        Ok((id, tsfn_change(p)))
    })();
    match added {
        Ok((id, change)) => {
            apply(env, change)?;
            Ok(id)
        }
        Err(e) => {
            unsafe { napi_delete_reference(env.0, reference) };
            Err(e)
        }
    }
}

fn unknown(id: u32) -> Error {
    Error::invalid(format!("no active watch with id {id} in this environment"))
}

/// Arms the watch again with `events` (POLLIN and/or POLLOUT); also changes the interest of an
/// armed watch.
pub fn rearm_fd(env: Env, id: u32, events: u32) -> Result<()> {
    let s = shared();
    let Some(w) = s.watches.get(&id).filter(|w| w.env == env.0 as usize) else { return Err(unknown(id)) };
    let Some(t) = &s.thread else { return Err(unknown(id)) };
    let flags = events | libc::EPOLLONESHOT;
    epoll_ctl(t.epfd, libc::EPOLL_CTL_MOD, w.fd, flags, id as u64, "epoll_ctl(EPOLL_CTL_MOD)")
}

/// Stops watching; unknown ids are ignored (idempotent).
pub fn unwatch_fd(env: Env, id: u32) -> Result<()> {
    let key = env.0 as usize;
    let (callback, change) = {
        let mut s = shared();
        if !matches!(s.watches.get(&id), Some(w) if w.env == key) {
            return Ok(());
        }
        let w = s.watches.remove(&id).expect("checked above");
        if let Some(t) = &s.thread {
            // Fails with EBADF/ENOENT if the fd was closed first; the watch is gone either way.
            let _ = epoll_ctl(t.epfd, libc::EPOLL_CTL_DEL, w.fd, 0, 0, "epoll_ctl(EPOLL_CTL_DEL)");
        }
        let Some(p) = s.envs.get_mut(&key) else { return Ok(()) };
        let Some(cb) = p.callbacks.remove(&id) else { return Ok(()) };
        if cb.refed {
            p.refed -= 1;
        }
        (cb, tsfn_change(p))
    };
    unsafe { napi_delete_reference(env.0, callback.reference as napi_ref) };
    apply(env, change)
}

pub fn set_refed(env: Env, id: u32, refed: bool) -> Result<()> {
    let change = {
        let mut s = shared();
        let p = s.envs.get_mut(&(env.0 as usize)).ok_or_else(|| unknown(id))?;
        let cb = p.callbacks.get_mut(&id).ok_or_else(|| unknown(id))?;
        if cb.refed == refed {
            return Ok(());
        }
        cb.refed = refed;
        if refed {
            p.refed += 1;
        } else {
            p.refed -= 1;
        }
        tsfn_change(p)
    };
    apply(env, change)
}
