//! PAM (Linux-PAM) through `libpam.so.0`, loaded at run time with dlopen.
//!
//! Run time rather than `-lpam` at link time: the addon is shared by every xencons package, and
//! a hard dependency would make the whole core unloadable where libpam is absent (musl
//! containers) and would need libpam0g-dev to build. Only the runtime library is needed, and
//! only by the functions here; they throw ERR_PAM_UNAVAILABLE when it cannot be loaded.
//!
//! The conversation is synchronous over one fd (a socket or pipe to the process that talks to
//! the user), because PAM calls it from inside `pam_authenticate` and friends. Frames are
//! `kind (1 byte) | length (u32 big-endian) | payload`:
//! - to the peer: `P` prompt without echo, `p` prompt with echo, `E` error message, `I` info;
//! - from the peer, after each prompt: `A` + the answer bytes, or `C` to cancel.
//!
//! Answers are copied into malloc'd strings that PAM frees; our copies are zeroed before they
//! are dropped. These calls block the calling thread for as long as the user takes, so they
//! are meant for a helper process that does nothing else (login-shell's PAM helper), which is
//! also where PAM's per-process side effects (loginuid, limits, keyrings, logind) belong.
//!
//! A fail-delay callback (`PAM_FAIL_DELAY`) is installed: PAM does not sleep after a failure,
//! it records the requested delay, which `fail_delay()` hands to the caller to apply.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use crate::libc_sys as libc;
use crate::napi::{Error, Result};

pub const PAM_SUCCESS: c_int = 0;
const PAM_BUF_ERR: c_int = 5;
const PAM_CONV_ERR: c_int = 19;

const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;
const PAM_RADIO_TYPE: c_int = 5;

const PAM_FAIL_DELAY: c_int = 10;
/// String items that may be set and read: SERVICE, USER, TTY, RHOST, RUSER, USER_PROMPT, XDISPLAY.
const STRING_ITEMS: [c_int; 7] = [1, 2, 3, 4, 8, 9, 11];

/// Largest answer accepted from the peer (Linux-PAM's PAM_MAX_RESP_SIZE is 512).
const MAX_ANSWER: usize = 4096;
/// Most messages in one conversation call (Linux-PAM's PAM_MAX_NUM_MSG is 32).
const MAX_MESSAGES: c_int = 32;

#[repr(C)]
struct PamMessage {
    style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn =
    unsafe extern "C" fn(c_int, *mut *const PamMessage, *mut *mut PamResponse, *mut c_void) -> c_int;
type DelayFn = unsafe extern "C" fn(c_int, c_uint, *mut c_void);

#[repr(C)]
struct PamConv {
    conv: Option<ConvFn>,
    appdata: *mut c_void,
}

type Pamh = *mut c_void;

type StartFn = unsafe extern "C" fn(*const c_char, *const c_char, *const PamConv, *mut Pamh) -> c_int;
type OpFn = unsafe extern "C" fn(Pamh, c_int) -> c_int;
type SetItemFn = unsafe extern "C" fn(Pamh, c_int, *const c_void) -> c_int;
type GetItemFn = unsafe extern "C" fn(Pamh, c_int, *mut *const c_void) -> c_int;
type GetenvlistFn = unsafe extern "C" fn(Pamh) -> *mut *mut c_char;
type StrerrorFn = unsafe extern "C" fn(Pamh, c_int) -> *const c_char;

struct Lib {
    start: StartFn,
    end: OpFn,
    authenticate: OpFn,
    acct_mgmt: OpFn,
    chauthtok: OpFn,
    setcred: OpFn,
    open_session: OpFn,
    close_session: OpFn,
    set_item: SetItemFn,
    get_item: GetItemFn,
    getenvlist: GetenvlistFn,
    strerror: StrerrorFn,
}

static LIB: OnceLock<std::result::Result<Lib, String>> = OnceLock::new();

fn load() -> std::result::Result<Lib, String> {
    // SAFETY: dlopen/dlsym with NUL-terminated names; each symbol is cast to its C signature
    // from <security/pam_appl.h>.
    unsafe {
        let handle = libc::dlopen(c"libpam.so.0".as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL);
        if handle.is_null() {
            let e = libc::dlerror();
            let why = if e.is_null() { "unknown error".into() } else { CStr::from_ptr(e).to_string_lossy() };
            return Err(format!("cannot load libpam.so.0 ({why}); install libpam0g"));
        }
        macro_rules! sym {
            ($name:literal, $ty:ty) => {{
                let p = libc::dlsym(handle, $name.as_ptr());
                if p.is_null() {
                    return Err(format!("libpam.so.0 has no {}", $name.to_string_lossy()));
                }
                std::mem::transmute::<*mut c_void, $ty>(p)
            }};
        }
        Ok(Lib {
            start: sym!(c"pam_start", StartFn),
            end: sym!(c"pam_end", OpFn),
            authenticate: sym!(c"pam_authenticate", OpFn),
            acct_mgmt: sym!(c"pam_acct_mgmt", OpFn),
            chauthtok: sym!(c"pam_chauthtok", OpFn),
            setcred: sym!(c"pam_setcred", OpFn),
            open_session: sym!(c"pam_open_session", OpFn),
            close_session: sym!(c"pam_close_session", OpFn),
            set_item: sym!(c"pam_set_item", SetItemFn),
            get_item: sym!(c"pam_get_item", GetItemFn),
            getenvlist: sym!(c"pam_getenvlist", GetenvlistFn),
            strerror: sym!(c"pam_strerror", StrerrorFn),
        })
    }
}

fn lib() -> Result<&'static Lib> {
    match LIB.get_or_init(load) {
        Ok(lib) => Ok(lib),
        Err(why) => Err(Error::Coded { code: "ERR_PAM_UNAVAILABLE", message: why.clone() }),
    }
}

/// Why PAM cannot be used here, or None.
pub fn unavailable_reason() -> Option<String> {
    LIB.get_or_init(load).as_ref().err().cloned()
}

/// What the conversation function needs; it lives in a Box as long as the PAM handle.
struct ConvState {
    fd: i32,
    /// Microseconds PAM asked to wait after the last failure (set by the fail-delay callback).
    delay_us: AtomicU32,
}

struct Handle {
    pamh: Pamh,
    // Both are pointed to by PAM; they must not move or be freed before pam_end.
    _conv: Box<PamConv>,
    state: Box<ConvState>,
}

thread_local! {
    static HANDLES: RefCell<(u32, BTreeMap<u32, Handle>)> = const { RefCell::new((1, BTreeMap::new())) };
}

fn with_handle<T>(id: u32, f: impl FnOnce(&Handle) -> Result<T>) -> Result<T> {
    HANDLES.with(|h| {
        let h = h.borrow();
        match h.1.get(&id) {
            Some(handle) => f(handle),
            None => Err(Error::invalid(format!("{id} is not a live PAM handle of this thread"))),
        }
    })
}

/// pam_start with our conversation on `fd`; returns a handle id.
pub fn start(service: &CStr, user: Option<&CStr>, fd: i32) -> Result<u32> {
    let lib = lib()?;
    let state = Box::new(ConvState { fd, delay_us: AtomicU32::new(0) });
    let conv =
        Box::new(PamConv { conv: Some(converse), appdata: &*state as *const ConvState as *mut c_void });
    let mut pamh: Pamh = ptr::null_mut();
    // SAFETY: the strings and `conv` outlive the call; `conv` and `state` outlive the handle.
    let rc =
        unsafe { (lib.start)(service.as_ptr(), user.map_or(ptr::null(), |u| u.as_ptr()), &*conv, &mut pamh) };
    if rc != PAM_SUCCESS || pamh.is_null() {
        let message = format!("pam_start failed with PAM status {rc}");
        if !pamh.is_null() {
            // SAFETY: a handle pam_start returned.
            unsafe { (lib.end)(pamh, rc) };
        }
        return Err(Error::Coded { code: "ERR_PAM_START", message });
    }
    // SAFETY: PAM_FAIL_DELAY takes a function pointer of this signature.
    unsafe { (lib.set_item)(pamh, PAM_FAIL_DELAY, fail_delay as DelayFn as *const c_void) };
    Ok(HANDLES.with(|h| {
        let mut h = h.borrow_mut();
        let id = h.0;
        h.0 = h.0.wrapping_add(1).max(1);
        h.1.insert(id, Handle { pamh, _conv: conv, state });
        id
    }))
}

/// The PAM operations that take (handle, flags) and return a status.
pub fn call(id: u32, op: &str, flags: i32) -> Result<i32> {
    let lib = lib()?;
    let f = match op {
        "authenticate" => lib.authenticate,
        "acct_mgmt" => lib.acct_mgmt,
        "chauthtok" => lib.chauthtok,
        "setcred" => lib.setcred,
        "open_session" => lib.open_session,
        "close_session" => lib.close_session,
        _ => return Err(Error::invalid(format!("unknown PAM operation {op:?}"))),
    };
    // The call may converse, which never touches HANDLES, so holding the borrow is fine.
    // SAFETY: a live handle.
    with_handle(id, |h| Ok(unsafe { f(h.pamh, flags) }))
}

fn check_string_item(item: i32) -> Result<()> {
    if STRING_ITEMS.contains(&item) {
        Ok(())
    } else {
        Err(Error::invalid(format!("PAM item {item} is not a string item")))
    }
}

pub fn set_item(id: u32, item: i32, value: &CStr) -> Result<i32> {
    check_string_item(item)?;
    let lib = lib()?;
    // SAFETY: PAM copies string items.
    with_handle(id, |h| Ok(unsafe { (lib.set_item)(h.pamh, item, value.as_ptr().cast()) }))
}

pub fn get_item(id: u32, item: i32) -> Result<Option<String>> {
    check_string_item(item)?;
    let lib = lib()?;
    with_handle(id, |h| {
        let mut p: *const c_void = ptr::null();
        // SAFETY: string items are NUL-terminated strings owned by PAM.
        let rc = unsafe { (lib.get_item)(h.pamh, item, &mut p) };
        if rc != PAM_SUCCESS || p.is_null() {
            return Ok(None);
        }
        Ok(Some(unsafe { CStr::from_ptr(p.cast()) }.to_string_lossy().into_owned()))
    })
}

pub fn getenvlist(id: u32) -> Result<Vec<String>> {
    let lib = lib()?;
    with_handle(id, |h| {
        let mut out = Vec::new();
        // SAFETY: a NULL-terminated array of malloc'd strings that the caller frees.
        unsafe {
            let list = (lib.getenvlist)(h.pamh);
            if list.is_null() {
                return Ok(out);
            }
            let mut i = 0;
            loop {
                let e = *list.add(i);
                if e.is_null() {
                    break;
                }
                out.push(CStr::from_ptr(e).to_string_lossy().into_owned());
                libc::free(e.cast());
                i += 1;
            }
            libc::free(list.cast());
        }
        Ok(out)
    })
}

pub fn strerror(id: u32, status: i32) -> Result<String> {
    let lib = lib()?;
    with_handle(id, |h| {
        // SAFETY: a static string or NULL.
        let p = unsafe { (lib.strerror)(h.pamh, status) };
        Ok(if p.is_null() {
            format!("PAM status {status}")
        } else {
            unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
        })
    })
}

/// The delay (µs) PAM requested after the last failure, then reset to 0.
pub fn take_fail_delay(id: u32) -> Result<u32> {
    with_handle(id, |h| Ok(h.state.delay_us.swap(0, Ordering::Relaxed)))
}

/// pam_end; the id is dead afterwards.
pub fn end(id: u32, status: i32) -> Result<i32> {
    let lib = lib()?;
    let handle = HANDLES.with(|h| h.borrow_mut().1.remove(&id));
    let Some(handle) = handle else {
        return Err(Error::invalid(format!("{id} is not a live PAM handle of this thread")));
    };
    // SAFETY: the handle is live; conv and state are dropped after pam_end returns.
    let rc = unsafe { (lib.end)(handle.pamh, status) };
    drop(handle);
    Ok(rc)
}

// ---- the conversation ---------------------------------------------------------------------------

unsafe extern "C" fn fail_delay(_retval: c_int, usec: c_uint, appdata: *mut c_void) {
    if !appdata.is_null() {
        (*(appdata as *const ConvState)).delay_us.store(usec, Ordering::Relaxed);
    }
}

unsafe extern "C" fn converse(
    n: c_int,
    msgs: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    // No panic may unwind into libpam.
    catch_unwind(AssertUnwindSafe(|| converse_inner(n, msgs, resp, appdata))).unwrap_or(PAM_CONV_ERR)
}

unsafe fn converse_inner(
    n: c_int,
    msgs: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    if n <= 0 || n > MAX_MESSAGES || msgs.is_null() || resp.is_null() || appdata.is_null() {
        return PAM_CONV_ERR;
    }
    let state = &*(appdata as *const ConvState);
    let size = std::mem::size_of::<PamResponse>() * n as usize;
    let replies = libc::malloc(size) as *mut PamResponse;
    if replies.is_null() {
        return PAM_BUF_ERR;
    }
    ptr::write_bytes(replies.cast::<u8>(), 0, size);
    for i in 0..n as usize {
        // Linux-PAM passes an array of pointers to messages.
        let m = *msgs.add(i);
        if m.is_null() {
            free_replies(replies, n as usize);
            return PAM_CONV_ERR;
        }
        let text: &[u8] = if (*m).msg.is_null() { b"" } else { CStr::from_ptr((*m).msg).to_bytes() };
        let ok = match (*m).style {
            PAM_PROMPT_ECHO_OFF | PAM_PROMPT_ECHO_ON | PAM_RADIO_TYPE => {
                let kind = if (*m).style == PAM_PROMPT_ECHO_OFF { b'P' } else { b'p' };
                match ask(state.fd, kind, text) {
                    Some(answer) => {
                        (*replies.add(i)).resp = answer;
                        true
                    }
                    None => false,
                }
            }
            PAM_ERROR_MSG => write_frame(state.fd, b'E', text),
            PAM_TEXT_INFO => write_frame(state.fd, b'I', text),
            _ => false, // binary prompts: nothing to show a person
        };
        if !ok {
            free_replies(replies, n as usize);
            return PAM_CONV_ERR;
        }
    }
    *resp = replies;
    PAM_SUCCESS
}

/// Sends a prompt and returns the answer as a malloc'd C string, or None (cancel, EOF, error).
unsafe fn ask(fd: i32, kind: u8, text: &[u8]) -> Option<*mut c_char> {
    if !write_frame(fd, kind, text) {
        return None;
    }
    let mut header = [0u8; 5];
    if !read_exact(fd, &mut header) || header[0] != b'A' {
        return None;
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > MAX_ANSWER {
        return None;
    }
    let mut answer = vec![0u8; len];
    let got = read_exact(fd, &mut answer);
    let c = if got && !answer.contains(&0) { libc::malloc(len + 1) as *mut u8 } else { ptr::null_mut() };
    if !c.is_null() {
        ptr::copy_nonoverlapping(answer.as_ptr(), c, len);
        *c.add(len) = 0;
    }
    zero(answer.as_mut_ptr(), answer.len());
    if c.is_null() {
        None
    } else {
        Some(c.cast())
    }
}

unsafe fn free_replies(replies: *mut PamResponse, n: usize) {
    for i in 0..n {
        let r = (*replies.add(i)).resp;
        if !r.is_null() {
            zero(r.cast(), CStr::from_ptr(r).to_bytes().len());
            libc::free(r.cast());
        }
    }
    libc::free(replies.cast());
}

/// Overwrites `len` bytes in a way the compiler may not remove.
unsafe fn zero(p: *mut u8, len: usize) {
    for i in 0..len {
        ptr::write_volatile(p.add(i), 0);
    }
    std::sync::atomic::compiler_fence(Ordering::SeqCst);
}

fn write_frame(fd: i32, kind: u8, payload: &[u8]) -> bool {
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(kind);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    write_all(fd, &frame)
}

/// Blocking write of everything (EINTR retried; EAGAIN on a non-blocking fd waits in poll).
fn write_all(fd: i32, mut buf: &[u8]) -> bool {
    while !buf.is_empty() {
        // SAFETY: buf is valid for buf.len() bytes.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n > 0 {
            buf = &buf[n as usize..];
        } else if n < 0 && !wait_ready(fd, libc::POLLOUT) {
            return false;
        }
    }
    true
}

/// Blocking read of exactly `buf.len()` bytes; false on EOF or error.
fn read_exact(fd: i32, buf: &mut [u8]) -> bool {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: the rest of buf is writable.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().add(got).cast(), buf.len() - got) };
        if n > 0 {
            got += n as usize;
        } else if n == 0 || !wait_ready(fd, libc::POLLIN) {
            return false;
        }
    }
    true
}

/// After a failed read/write: true to retry (EINTR, or EAGAIN and the fd became ready).
fn wait_ready(fd: i32, events: i16) -> bool {
    match libc::errno() {
        libc::EINTR => true,
        libc::EAGAIN => {
            let mut p = libc::pollfd { fd, events, revents: 0 };
            // SAFETY: one pollfd.
            let r = unsafe { libc::poll(&mut p, 1, -1) };
            r >= 0 || libc::errno() == libc::EINTR
        }
        _ => false,
    }
}
