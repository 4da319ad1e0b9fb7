//! Shared mappings handed to JS as external ArrayBuffers, and their registry.
//!
//! Every live mapping has a unique id (the finalize hint of its ArrayBuffer) and is found by
//! address for `unmap(buffer)`. Explicit unmap detaches the buffer, munmaps once and runs the
//! device teardown; the GC finalizer does the same only if that id is still live, so an address
//! reused by a later mapping is never unmapped twice.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::ptr;
use std::sync::Mutex;

use crate::libc_sys as libc;
use crate::napi::{guard, Env, Error, Result};
use crate::napi_sys::*;
use crate::xen;

/// What must happen after munmap. Device variants own a dup of the device fd, made at map time,
/// so a fd number closed or reused by JS never receives the teardown ioctl.
#[derive(Debug)]
pub enum Teardown {
    None,
    Gntdev { fd: i32, index: u64, count: u32 },
    Gntalloc { fd: i32, index: u64, count: u32 },
}

#[derive(Debug)]
pub struct Mapping {
    pub addr: usize,
    pub len: usize,
    pub teardown: Teardown,
}

struct Registry {
    next_id: u64,
    by_id: BTreeMap<u64, Mapping>,
    by_addr: BTreeMap<usize, u64>,
    /// Mappings a native thread (a ring pump) still uses, with how many pins each has. An unmap
    /// or a GC finalize of a pinned mapping detaches the buffer at once but leaves the memory
    /// mapped (in `doomed`) until the last pin goes, so that thread never touches unmapped memory.
    pins: BTreeMap<u64, u32>,
    doomed: BTreeMap<u64, Mapping>,
}

static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    next_id: 1,
    by_id: BTreeMap::new(),
    by_addr: BTreeMap::new(),
    pins: BTreeMap::new(),
    doomed: BTreeMap::new(),
});

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    // A panic while holding the lock leaves the maps consistent (single inserts/removes).
    REGISTRY.lock().unwrap_or_else(|e| e.into_inner())
}

fn register(m: Mapping) -> u64 {
    let mut r = registry();
    let id = r.next_id;
    r.next_id += 1;
    r.by_addr.insert(m.addr, id);
    r.by_id.insert(id, m);
    id
}

/// Removes a live mapping from the registry. Returns it for release, or None when it is
/// unknown or pinned (then it is parked in `doomed` and released by the last `unpin`).
fn take_by_id(id: u64) -> Option<Mapping> {
    let mut r = registry();
    let m = r.by_id.remove(&id)?;
    r.by_addr.remove(&m.addr);
    if r.pins.contains_key(&id) {
        r.doomed.insert(id, m);
        return None;
    }
    Some(m)
}

/// Pins the live mapping that contains `[addr, addr + len)`; returns its id, or None when no
/// native mapping holds that range (memory the addon did not map).
pub fn pin_containing(addr: usize, len: usize) -> Option<u64> {
    let mut r = registry();
    let (&start, &id) = r.by_addr.range(..=addr).next_back()?;
    let m = r.by_id.get(&id)?;
    if addr.checked_add(len)? > start + m.len {
        return None;
    }
    *r.pins.entry(id).or_insert(0) += 1;
    Some(id)
}

/// Drops one pin; releases the mapping if it was unmapped meanwhile and this was the last pin.
pub fn unpin(id: u64) {
    let doomed = {
        let mut r = registry();
        let Some(count) = r.pins.get_mut(&id) else { return };
        *count -= 1;
        if *count > 0 {
            return;
        }
        r.pins.remove(&id);
        r.doomed.remove(&id)
    };
    if let Some(m) = doomed {
        let _ = release(m);
    }
}

/// The id of the live mapping at exactly `addr` with length `len`.
fn find(addr: usize, len: usize) -> Option<u64> {
    let r = registry();
    let id = *r.by_addr.get(&addr)?;
    (r.by_id.get(&id)?.len == len).then_some(id)
}

/// The device behind a gntdev or gntalloc mapping, for SET_UNMAP_NOTIFY.
pub struct Device {
    /// Our dup of the device fd.
    pub fd: i32,
    /// The mapping's offset in the device's file space (from MAP_GRANT_REF / ALLOC_GREF).
    pub index: u64,
    pub len: usize,
    pub gntalloc: bool,
}

/// The device of the live mapping at exactly `addr` with length `len`.
pub fn device_of(addr: usize, len: usize) -> Option<Device> {
    let r = registry();
    let id = *r.by_addr.get(&addr)?;
    let m = r.by_id.get(&id)?;
    if m.len != len {
        return None;
    }
    match m.teardown {
        Teardown::Gntdev { fd, index, .. } => Some(Device { fd, index, len, gntalloc: false }),
        Teardown::Gntalloc { fd, index, .. } => Some(Device { fd, index, len, gntalloc: true }),
        Teardown::None => None,
    }
}

pub fn count() -> usize {
    registry().by_id.len()
}

/// munmap, then the device teardown, then close the dup'd fd. Every step runs; the first
/// failure is returned.
pub fn release(m: Mapping) -> Result<()> {
    let mut first: Option<Error> = None;
    if unsafe { libc::munmap(m.addr as *mut c_void, m.len) } != 0 {
        first.get_or_insert(Error::last_os("munmap"));
    }
    let dev = match m.teardown {
        Teardown::None => None,
        Teardown::Gntdev { fd, index, count } => Some((fd, xen::gntdev_unmap_grant_ref(fd, index, count))),
        Teardown::Gntalloc { fd, index, count } => Some((fd, xen::gntalloc_dealloc_gref(fd, index, count))),
    };
    if let Some((fd, r)) = dev {
        if let Err(e) = r {
            first.get_or_insert(e);
        }
        unsafe { libc::close(fd) };
    }
    match first {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

unsafe extern "C" fn finalize(_env: napi_env, _data: *mut c_void, hint: *mut c_void) {
    let _ = guard(|| {
        if let Some(m) = take_by_id(hint as usize as u64) {
            // Nobody to report to: the buffer is gone.
            let _ = release(m);
        }
        Ok(())
    });
}

/// Registers the mapping and wraps it in an external ArrayBuffer. On failure the mapping is
/// released (munmap + teardown) before the error is returned.
pub fn to_arraybuffer(env: Env, m: Mapping) -> Result<napi_value> {
    let (addr, len) = (m.addr, m.len);
    let id = register(m);
    let mut result = ptr::null_mut();
    let st = unsafe {
        napi_create_external_arraybuffer(
            env.0,
            addr as *mut c_void,
            len,
            Some(finalize),
            id as usize as *mut c_void,
            &mut result,
        )
    };
    if let Err(e) = env.check(st, "napi_create_external_arraybuffer") {
        if let Some(m) = take_by_id(id) {
            let _ = release(m);
        }
        return Err(e);
    }
    Ok(result)
}

/// Detaches and releases `buffer` if it is a live mapping. Returns whether it was.
pub fn unmap(env: Env, buffer: napi_value) -> Result<bool> {
    let (data, len) = env.arraybuffer_arg(buffer, "buffer")?;
    if data.is_null() || len == 0 {
        return Ok(false); // detached (already unmapped) or not ours
    }
    let Some(id) = find(data as usize, len) else { return Ok(false) };
    // Detach first: if that failed, munmap would leave live views over unmapped memory.
    env.check(unsafe { napi_detach_arraybuffer(env.0, buffer) }, "napi_detach_arraybuffer")?;
    match take_by_id(id) {
        Some(m) => release(m).map(|()| true),
        // Pinned by a pump: released when the pump lets go of it.
        None => Ok(true),
    }
}

pub fn is_mapped(env: Env, buffer: napi_value) -> Result<bool> {
    let (data, len) = env.arraybuffer_arg(buffer, "buffer")?;
    Ok(!data.is_null() && len != 0 && find(data as usize, len).is_some())
}

pub fn page_size() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static CACHED: AtomicUsize = AtomicUsize::new(0);
    let v = CACHED.load(Ordering::Relaxed);
    if v != 0 {
        return v;
    }
    let n = unsafe { libc::sysconf(libc::SC_PAGESIZE) };
    let n = if n > 0 { n as usize } else { 4096 };
    CACHED.store(n, Ordering::Relaxed);
    n
}

/// Offset page-aligned, length non-zero, no overflow.
pub fn check_map_args(offset: u64, len: usize) -> Result<()> {
    let page = page_size();
    if offset % page as u64 != 0 {
        return Err(Error::invalid(format!("offset {offset} is not a multiple of the page size {page}")));
    }
    if len == 0 {
        return Err(Error::invalid("length must be greater than 0"));
    }
    if offset > i64::MAX as u64 - len as u64 {
        return Err(Error::invalid("offset + length overflows"));
    }
    Ok(())
}

/// mmap `len` bytes of `fd` from `offset`, MAP_SHARED. For regular files the range must lie
/// within the file: touching a page past EOF would raise SIGBUS and kill the process.
pub fn map_fd(fd: i32, offset: u64, len: usize, writable: bool, path: Option<&str>) -> Result<Mapping> {
    check_map_args(offset, len)?;
    if let Some(size) = regular_file_size(fd) {
        if offset + len as u64 > size {
            return Err(Error::invalid(format!(
                "range {offset}..{} is past the end of the file ({size} bytes); touching it would raise SIGBUS",
                offset + len as u64
            )));
        }
    }
    let addr = mmap_shared(fd, offset, len, writable).map_err(|e| with_path(e, path))?;
    Ok(Mapping { addr, len, teardown: Teardown::None })
}

/// `mmap(NULL, len, prot, MAP_SHARED, fd, offset)`.
pub fn mmap_shared(fd: i32, offset: u64, len: usize, writable: bool) -> Result<usize> {
    let prot = if writable { libc::PROT_READ | libc::PROT_WRITE } else { libc::PROT_READ };
    let p = unsafe { libc::mmap(ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, offset as i64) };
    if p == libc::MAP_FAILED {
        return Err(Error::last_os("mmap"));
    }
    Ok(p as usize)
}

fn with_path(e: Error, path: Option<&str>) -> Error {
    match (e, path) {
        (Error::Os { errno, syscall, .. }, Some(p)) => {
            Error::Os { errno, syscall, path: Some(p.to_string()) }
        }
        (e, _) => e,
    }
}

/// Size of `fd` if it is a regular file (memfd and tmpfs files included), else None.
fn regular_file_size(fd: i32) -> Option<u64> {
    let mut st = std::mem::MaybeUninit::<libc::statx_buf>::zeroed();
    let r = unsafe {
        libc::statx(
            fd,
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_TYPE | libc::STATX_SIZE,
            st.as_mut_ptr(),
        )
    };
    if r != 0 {
        return None; // EBADF surfaces from mmap with a better syscall name
    }
    let st = unsafe { st.assume_init() };
    (st.stx_mode & libc::S_IFMT == libc::S_IFREG).then_some(st.stx_size)
}
