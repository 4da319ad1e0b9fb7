//! The functions exported to JS (see index.d.ts for the contract). Each validates its arguments
//! and delegates to map / ring / xen / poller; all run through `napi::trampoline`, which turns
//! errors and panics into thrown JS errors.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::ptr;

use crate::bound::{self, RING_DETACHED};
use crate::map;
use crate::napi::{export, Env, Error, Handler, HandlerN, Result, MAX_ARGS, MAX_SAFE_INTEGER};
use crate::napi_sys::{napi_create_buffer_copy, napi_value};
use crate::pam;
use crate::poller;
use crate::pty;
use crate::pump;
use crate::ring::{check_range, Ring};
use crate::user;
use crate::xen;

type Args = [napi_value; MAX_ARGS];

const DOMID_MAX: u64 = 0xFFFF;
/// Most pages one device call maps (a console needs 1).
const MAX_PAGES: u32 = 4096;

// ---- page mapping -------------------------------------------------------------------------------

unsafe fn map_file(env: Env, a: &Args) -> Result<napi_value> {
    let path = env.string_arg(a[0], "path")?;
    let offset = env.uint_arg(a[1], "offset", MAX_SAFE_INTEGER)?;
    let length = env.usize_arg(a[2], "length")?;
    let writable = env.bool_arg(a[3], "writable")?;
    map::check_map_args(offset, length)?;
    if path.contains('\0') {
        return Err(Error::invalid("path must not contain NUL bytes"));
    }
    let file = OpenOptions::new().read(true).write(writable).open(&path).map_err(|e| Error::Os {
        errno: e.raw_os_error().unwrap_or(5),
        syscall: "open".into(),
        path: Some(path.clone()),
    })?;
    let m = map::map_fd(file.as_raw_fd(), offset, length, writable, Some(&path))?;
    drop(file); // the mapping keeps its own reference to the file
    map::to_arraybuffer(env, m)
}

unsafe fn map_fd(env: Env, a: &Args) -> Result<napi_value> {
    let fd = env.fd_arg(a[0])?;
    let offset = env.uint_arg(a[1], "offset", MAX_SAFE_INTEGER)?;
    let length = env.usize_arg(a[2], "length")?;
    let writable = env.bool_arg(a[3], "writable")?;
    let m = map::map_fd(fd, offset, length, writable, None)?;
    map::to_arraybuffer(env, m)
}

unsafe fn unmap(env: Env, a: &Args) -> Result<napi_value> {
    let was = map::unmap(env, a[0])?;
    env.boolean(was)
}

unsafe fn is_mapped(env: Env, a: &Args) -> Result<napi_value> {
    let live = map::is_mapped(env, a[0])?;
    env.boolean(live)
}

unsafe fn mapping_count(env: Env, _a: &Args) -> Result<napi_value> {
    env.double(map::count() as f64)
}

unsafe fn page_size(env: Env, _a: &Args) -> Result<napi_value> {
    env.double(map::page_size() as f64)
}

// ---- rings --------------------------------------------------------------------------------------

#[inline]
unsafe fn ring_arg(env: Env, a: &Args) -> Result<Ring> {
    let (page, page_len) = env.bytes_arg(a[0], "page")?;
    let data = env.uint_arg(a[1], "dataOffset", MAX_SAFE_INTEGER)?;
    let size = env.uint_arg(a[2], "size", MAX_SAFE_INTEGER)?;
    let prod = env.uint_arg(a[3], "prodOffset", MAX_SAFE_INTEGER)?;
    let cons = env.uint_arg(a[4], "consOffset", MAX_SAFE_INTEGER)?;
    Ring::new(page, page_len, Some(data), size, prod, cons)
}

#[inline]
unsafe fn bytes_range(env: Env, a: &Args, name: &str) -> Result<(*mut u8, usize)> {
    let (buf, buf_len) = env.u8_view_arg(a[5], name)?;
    let offset =
        env.uint_arg(a[6], if name == "src" { "srcOffset" } else { "dstOffset" }, MAX_SAFE_INTEGER)?;
    let length = env.uint_arg(a[7], "length", MAX_SAFE_INTEGER)?;
    check_range(name, offset, length, buf_len)?;
    Ok((buf.wrapping_add(offset as usize), length as usize))
}

unsafe fn ring_produce(env: Env, a: &Args) -> Result<napi_value> {
    let ring = ring_arg(env, a)?;
    let (src, len) = bytes_range(env, a, "src")?;
    env.int32(ring.produce(src, len))
}

unsafe fn ring_consume(env: Env, a: &Args) -> Result<napi_value> {
    let ring = ring_arg(env, a)?;
    let (dst, len) = bytes_range(env, a, "dst")?;
    env.int32(ring.consume(dst, len))
}

unsafe fn ring_queued(env: Env, a: &Args) -> Result<napi_value> {
    let (page, page_len) = env.bytes_arg(a[0], "page")?;
    let size = env.uint_arg(a[1], "size", MAX_SAFE_INTEGER)?;
    let prod = env.uint_arg(a[2], "prodOffset", MAX_SAFE_INTEGER)?;
    let cons = env.uint_arg(a[3], "consOffset", MAX_SAFE_INTEGER)?;
    let ring = Ring::new(page, page_len, None, size, prod, cons)?;
    env.int32(ring.queued())
}

// ---- bound rings (the hot path: layout validated once, 4 arguments per call) ------------------

/// Arguments of the bound ring functions: handle, buffer, offset, length.
type Args4 = [napi_value; 4];

unsafe fn ring_bind(env: Env, a: &Args) -> Result<napi_value> {
    let data = env.uint_arg(a[1], "dataOffset", MAX_SAFE_INTEGER)?;
    let size = env.uint_arg(a[2], "size", MAX_SAFE_INTEGER)?;
    let prod = env.uint_arg(a[3], "prodOffset", MAX_SAFE_INTEGER)?;
    let cons = env.uint_arg(a[4], "consOffset", MAX_SAFE_INTEGER)?;
    bound::bind(env, a[0], data, size, prod, cons)
}

/// `buffer[offset..offset + length]` of an ArrayBuffer or Uint8Array, checked.
#[inline(always)]
unsafe fn span(env: Env, a: &Args4, name: &str, offset_name: &str) -> Result<(*mut u8, usize)> {
    let (buf, buf_len) = env.byte_buffer_arg(a[1], name)?;
    let offset = env.uint_arg(a[2], offset_name, MAX_SAFE_INTEGER)?;
    let length = env.uint_arg(a[3], "length", MAX_SAFE_INTEGER)?;
    check_range(name, offset, length, buf_len)?;
    Ok((buf.wrapping_add(offset as usize), length as usize))
}

unsafe fn ring_write(env: Env, a: &Args4) -> Result<napi_value> {
    let ring = bound::lookup(env, a[0])?;
    let (src, len) = span(env, a, "src", "srcOffset")?;
    // Nothing between the page check in lookup() and the copy can run JS (so nothing can
    // detach the page or the source in between).
    env.int32(match ring {
        Some(ring) => ring.produce(src, len),
        None => RING_DETACHED,
    })
}

unsafe fn ring_read(env: Env, a: &Args4) -> Result<napi_value> {
    let ring = bound::lookup(env, a[0])?;
    let (dst, len) = span(env, a, "dst", "dstOffset")?;
    env.int32(match ring {
        Some(ring) => ring.consume(dst, len),
        None => RING_DETACHED,
    })
}

unsafe fn ring_queued_bound(env: Env, a: &Args4) -> Result<napi_value> {
    env.int32(match bound::lookup(env, a[0])? {
        Some(ring) => ring.queued(),
        None => RING_DETACHED,
    })
}

// ---- /dev/xen/evtchn ----------------------------------------------------------------------------

unsafe fn evtchn_bind_interdomain(env: Env, a: &Args) -> Result<napi_value> {
    let fd = env.fd_arg(a[0])?;
    let dom = env.uint_arg(a[1], "remoteDomain", DOMID_MAX)? as u32;
    let port = env.u32_arg(a[2], "remotePort")?;
    env.uint32(xen::evtchn_bind_interdomain(fd, dom, port)?)
}

unsafe fn evtchn_bind_unbound_port(env: Env, a: &Args) -> Result<napi_value> {
    let fd = env.fd_arg(a[0])?;
    let dom = env.uint_arg(a[1], "remoteDomain", DOMID_MAX)? as u32;
    env.uint32(xen::evtchn_bind_unbound_port(fd, dom)?)
}

unsafe fn evtchn_bind_virq(env: Env, a: &Args) -> Result<napi_value> {
    let fd = env.fd_arg(a[0])?;
    let virq = env.u32_arg(a[1], "virq")?;
    env.uint32(xen::evtchn_bind_virq(fd, virq)?)
}

unsafe fn evtchn_unbind(env: Env, a: &Args) -> Result<napi_value> {
    let fd = env.fd_arg(a[0])?;
    let port = env.u32_arg(a[1], "port")?;
    xen::evtchn_unbind(fd, port)?;
    env.undefined()
}

unsafe fn evtchn_notify(env: Env, a: &Args) -> Result<napi_value> {
    let fd = env.fd_arg(a[0])?;
    let port = env.u32_arg(a[1], "port")?;
    xen::evtchn_notify(fd, port)?;
    env.undefined()
}

unsafe fn evtchn_reset(env: Env, a: &Args) -> Result<napi_value> {
    let fd = env.fd_arg(a[0])?;
    xen::evtchn_reset(fd)?;
    env.undefined()
}

unsafe fn evtchn_restrict_domid(env: Env, a: &Args) -> Result<napi_value> {
    let fd = env.fd_arg(a[0])?;
    let domid = env.uint_arg(a[1], "domid", DOMID_MAX)? as u16;
    xen::evtchn_restrict_domid(fd, domid)?;
    env.undefined()
}

unsafe fn evtchn_pending(env: Env, a: &Args) -> Result<napi_value> {
    let fd = env.fd_arg(a[0])?;
    let (out, len) = env.u32_view_arg(a[1], "out")?;
    env.double(xen::evtchn_pending(fd, out, len)? as f64)
}

unsafe fn evtchn_unmask(env: Env, a: &Args) -> Result<napi_value> {
    let fd = env.fd_arg(a[0])?;
    let port = env.u32_arg(a[1], "port")?;
    xen::evtchn_unmask(fd, port)?;
    env.undefined()
}

// ---- grants and foreign mappings ----------------------------------------------------------------

unsafe fn gntdev_map(env: Env, a: &Args) -> Result<napi_value> {
    let fd = env.fd_arg(a[0])?;
    let domid = env.uint_arg(a[1], "domid", DOMID_MAX)? as u32;
    let refs = env.uint_list_arg(a[2], "refs", u32::MAX as u64, MAX_PAGES)?;
    let writable = env.bool_arg(a[3], "writable")?;
    let m = xen::gntdev_map(fd, domid, &refs, writable)?;
    map::to_arraybuffer(env, m)
}

unsafe fn set_unmap_notify(env: Env, a: &Args) -> Result<napi_value> {
    let (data, len) = env.arraybuffer_arg(a[0], "buffer")?;
    let offset = env.uint_arg(a[1], "offset", MAX_SAFE_INTEGER)?;
    let action =
        env.uint_arg(a[2], "action", (xen::UNMAP_NOTIFY_CLEAR_BYTE | xen::UNMAP_NOTIFY_SEND_EVENT) as u64)?;
    let port = env.u32_arg(a[3], "port")?;
    let Some(dev) = map::device_of(data as usize, len) else {
        return Err(Error::invalid("buffer is not a live gntdev or gntalloc mapping"));
    };
    if offset >= dev.len as u64 {
        return Err(Error::invalid(format!("offset {offset} is outside the mapping ({} bytes)", dev.len)));
    }
    xen::set_unmap_notify(dev.fd, dev.gntalloc, dev.index + offset, action as u32, port)?;
    env.undefined()
}

unsafe fn gntalloc_share(env: Env, a: &Args) -> Result<napi_value> {
    let fd = env.fd_arg(a[0])?;
    let domid = env.uint_arg(a[1], "domid", DOMID_MAX)? as u16;
    let count = env.uint_arg(a[2], "count", MAX_PAGES as u64)? as u32;
    if count == 0 {
        return Err(Error::invalid("count must be at least 1"));
    }
    let writable = env.bool_arg(a[3], "writable")?;
    let (m, refs) = xen::gntalloc_share(fd, domid, count, writable)?;
    let buffer = map::to_arraybuffer(env, m)?;
    let result = env.object()?;
    env.set(result, c"buffer", buffer)?;
    let array = env.array(refs.len())?;
    for (i, r) in refs.iter().enumerate() {
        env.set_element(array, i as u32, env.uint32(*r)?)?;
    }
    env.set(result, c"refs", array)?;
    Ok(result)
}

unsafe fn privcmd_map_foreign(env: Env, a: &Args) -> Result<napi_value> {
    let fd = env.fd_arg(a[0])?;
    let domid = env.uint_arg(a[1], "domid", DOMID_MAX)? as u16;
    let gfns = env.uint_list_arg(a[2], "gfns", MAX_SAFE_INTEGER, MAX_PAGES)?;
    let writable = env.bool_arg(a[3], "writable")?;
    let m = xen::privcmd_map_foreign(fd, domid, &gfns, writable)?;
    map::to_arraybuffer(env, m)
}

// ---- poller -------------------------------------------------------------------------------------

/// The optional interest of `watchFd`/`rearmFd`: poll(2) bits, POLLIN and/or POLLOUT (default POLLIN).
unsafe fn interest_arg(env: Env, v: napi_value) -> Result<u32> {
    if env.is_nullish(v)? {
        return Ok(crate::libc_sys::POLLIN as u32);
    }
    let bits = env.u32_arg(v, "events")?;
    let allowed = (crate::libc_sys::POLLIN | crate::libc_sys::POLLOUT) as u32;
    if bits == 0 || bits & !allowed != 0 {
        return Err(Error::invalid(format!("events must be POLLIN, POLLOUT or both, not {bits}")));
    }
    Ok(bits)
}

unsafe fn watch_fd(env: Env, a: &Args) -> Result<napi_value> {
    let fd = env.fd_arg(a[0])?;
    let callback = env.function_arg(a[1], "callback")?;
    let events = interest_arg(env, a[2])?;
    env.uint32(poller::watch_fd(env, fd, callback, events)?)
}

unsafe fn rearm_fd(env: Env, a: &Args) -> Result<napi_value> {
    let id = env.u32_arg(a[0], "id")?;
    let events = interest_arg(env, a[1])?;
    poller::rearm_fd(env, id, events)?;
    env.undefined()
}

unsafe fn unwatch_fd(env: Env, a: &Args) -> Result<napi_value> {
    poller::unwatch_fd(env, env.u32_arg(a[0], "id")?)?;
    env.undefined()
}

unsafe fn ref_fd(env: Env, a: &Args) -> Result<napi_value> {
    poller::set_refed(env, env.u32_arg(a[0], "id")?, true)?;
    env.undefined()
}

unsafe fn unref_fd(env: Env, a: &Args) -> Result<napi_value> {
    poller::set_refed(env, env.u32_arg(a[0], "id")?, false)?;
    env.undefined()
}

// ---- pseudo-terminals and processes ------------------------------------------------------------

/// Window sizes are u16 in the kernel; 0 is allowed there but meaningless for a session.
unsafe fn size_args(env: Env, cols: napi_value, rows: napi_value) -> Result<(u16, u16)> {
    let c = env.uint_arg(cols, "cols", u16::MAX as u64)? as u16;
    let r = env.uint_arg(rows, "rows", u16::MAX as u64)? as u16;
    if c == 0 || r == 0 {
        return Err(Error::invalid("cols and rows must be at least 1"));
    }
    Ok((c, r))
}

unsafe fn pty_open(env: Env, a: &Args) -> Result<napi_value> {
    let (cols, rows) = size_args(env, a[0], a[1])?;
    let pair = pty::open_pty(cols, rows)?;
    let o = env.object()?;
    env.set(o, c"master", env.int32(pair.master)?)?;
    env.set(o, c"slave", env.int32(pair.slave)?)?;
    env.set(o, c"path", env.string(&pair.path)?)?;
    Ok(o)
}

unsafe fn pty_resize(env: Env, a: &Args) -> Result<napi_value> {
    let fd = env.fd_arg(a[0])?;
    let (cols, rows) = size_args(env, a[1], a[2])?;
    pty::set_size(fd, cols, rows)?;
    env.undefined()
}

unsafe fn pty_get_size(env: Env, a: &Args) -> Result<napi_value> {
    let (cols, rows) = pty::get_size(env.fd_arg(a[0])?)?;
    let o = env.object()?;
    env.set(o, c"cols", env.uint32(cols as u32)?)?;
    env.set(o, c"rows", env.uint32(rows as u32)?)?;
    Ok(o)
}

/// An optional id (uid, gid): null/undefined means "keep ours".
unsafe fn optional_id(env: Env, v: napi_value, name: &str) -> Result<Option<u32>> {
    if env.is_nullish(v)? {
        return Ok(None);
    }
    // 2^32 - 1 is (uid_t)-1, which setuid treats as "no change"; refuse it to avoid surprises.
    Ok(Some(env.uint_arg(v, name, u32::MAX as u64 - 1)? as u32))
}

/// A list of group ids; empty is valid (no supplementary groups).
unsafe fn id_list(env: Env, v: napi_value, name: &str) -> Result<Vec<u32>> {
    let list = env.uint_list_arg_from(v, name, u32::MAX as u64 - 1, 0, 65536)?;
    Ok(list.into_iter().map(|g| g as u32).collect())
}

unsafe fn pty_spawn(env: Env, a: &Args) -> Result<napi_value> {
    let slave = env.fd_arg(a[0])?;
    let file = env.cstring_arg(a[1], "file")?;
    if !file.as_bytes().starts_with(b"/") {
        return Err(Error::invalid("file must be an absolute path"));
    }
    let args = env.cstring_list_arg(a[2], "args", 4096)?;
    if args.is_empty() {
        return Err(Error::invalid("args must hold at least argv[0]"));
    }
    let env_list = env.cstring_list_arg(a[3], "env", 65536)?;
    let cwd = if env.is_nullish(a[4])? { None } else { Some(env.cstring_arg(a[4], "cwd")?) };
    let uid = optional_id(env, a[5], "uid")?;
    let gid = optional_id(env, a[6], "gid")?;
    let groups = if env.is_nullish(a[7])? { None } else { Some(id_list(env, a[7], "groups")?) };
    let spec = pty::SpawnSpec { file, args, env: env_list, cwd, slave, uid, gid, groups };
    let (pid, pidfd) = pty::spawn(&spec)?;
    let o = env.object()?;
    env.set(o, c"pid", env.int32(pid)?)?;
    env.set(o, c"pidfd", env.int32(pidfd)?)?;
    Ok(o)
}

unsafe fn child_reap(env: Env, a: &Args) -> Result<napi_value> {
    let pid = env.uint_arg(a[0], "pid", i32::MAX as u64)? as i32;
    if pid == 0 {
        return Err(Error::invalid("pid must be a process id, not 0"));
    }
    let block = if env.is_nullish(a[1])? { false } else { env.bool_arg(a[1], "block")? };
    match pty::reap(pid, block)? {
        None => env.null(),
        Some(exit) => {
            let o = env.object()?;
            env.set(
                o,
                c"exitCode",
                match exit.code {
                    Some(c) => env.int32(c)?,
                    None => env.null()?,
                },
            )?;
            env.set(
                o,
                c"signal",
                match exit.signal {
                    Some(s) => env.int32(s)?,
                    None => env.null()?,
                },
            )?;
            Ok(o)
        }
    }
}

unsafe fn tty_make_raw(env: Env, a: &Args) -> Result<napi_value> {
    let saved = pty::make_raw(env.fd_arg(a[0])?)?;
    let mut out = ptr::null_mut();
    let mut data: *mut std::ffi::c_void = ptr::null_mut();
    let st =
        napi_create_buffer_copy(env.0, saved.bytes.len(), saved.bytes.as_ptr().cast(), &mut data, &mut out);
    env.check(st, "napi_create_buffer_copy")?;
    Ok(out)
}

unsafe fn tty_restore(env: Env, a: &Args) -> Result<napi_value> {
    let fd = env.fd_arg(a[0])?;
    let (p, len) = env.byte_buffer_arg(a[1], "saved")?;
    if len != crate::libc_sys::TERMIOS_BYTES {
        return Err(Error::invalid("saved must be what ttyMakeRaw returned"));
    }
    let mut saved = crate::libc_sys::Termios { bytes: [0; crate::libc_sys::TERMIOS_BYTES] };
    ptr::copy_nonoverlapping(p, saved.bytes.as_mut_ptr(), len);
    pty::restore_tty(fd, &saved)?;
    env.undefined()
}

unsafe fn fd_set_blocking(env: Env, a: &Args) -> Result<napi_value> {
    pty::set_blocking(env.fd_arg(a[0])?, env.bool_arg(a[1], "blocking")?)?;
    env.undefined()
}

// ---- users and groups ---------------------------------------------------------------------------

unsafe fn passwd_value(env: Env, p: Option<user::Passwd>) -> Result<napi_value> {
    let Some(p) = p else { return env.null() };
    let o = env.object()?;
    env.set(o, c"name", env.string(&p.name)?)?;
    env.set(o, c"uid", env.uint32(p.uid)?)?;
    env.set(o, c"gid", env.uint32(p.gid)?)?;
    env.set(o, c"gecos", env.string(&p.gecos)?)?;
    env.set(o, c"dir", env.string(&p.dir)?)?;
    env.set(o, c"shell", env.string(&p.shell)?)?;
    Ok(o)
}

unsafe fn getpwnam(env: Env, a: &Args) -> Result<napi_value> {
    let name = env.cstring_arg(a[0], "name")?;
    passwd_value(env, user::getpwnam(&name)?)
}

unsafe fn getpwuid(env: Env, a: &Args) -> Result<napi_value> {
    let uid = env.u32_arg(a[0], "uid")?;
    passwd_value(env, user::getpwuid(uid)?)
}

unsafe fn getgrouplist(env: Env, a: &Args) -> Result<napi_value> {
    let name = env.cstring_arg(a[0], "name")?;
    let gid = env.u32_arg(a[1], "gid")?;
    env.uint_array(&user::getgrouplist(&name, gid)?)
}

unsafe fn setgroups(env: Env, a: &Args) -> Result<napi_value> {
    user::setgroups(&id_list(env, a[0], "groups")?)?;
    env.undefined()
}

unsafe fn getgroups(env: Env, _a: &Args) -> Result<napi_value> {
    env.uint_array(&user::getgroups()?)
}

// ---- PAM ------------------------------------------------------------------------------------------

unsafe fn pam_unavailable_reason(env: Env, _a: &Args) -> Result<napi_value> {
    match pam::unavailable_reason() {
        Some(why) => env.string(&why),
        None => env.null(),
    }
}

unsafe fn pam_id(env: Env, v: napi_value) -> Result<u32> {
    env.u32_arg(v, "handle")
}

unsafe fn pam_start(env: Env, a: &Args) -> Result<napi_value> {
    let service = env.cstring_arg(a[0], "service")?;
    let user = if env.is_nullish(a[1])? { None } else { Some(env.cstring_arg(a[1], "user")?) };
    let fd = env.fd_arg(a[2])?;
    env.uint32(pam::start(&service, user.as_deref(), fd)?)
}

unsafe fn pam_call(env: Env, a: &Args) -> Result<napi_value> {
    let id = pam_id(env, a[0])?;
    let op = env.string_arg(a[1], "op")?;
    let flags = env.uint_arg(a[2], "flags", 0xFFFF)? as i32;
    env.int32(pam::call(id, &op, flags)?)
}

unsafe fn pam_set_item(env: Env, a: &Args) -> Result<napi_value> {
    let id = pam_id(env, a[0])?;
    let item = env.uint_arg(a[1], "item", 64)? as i32;
    let value = env.cstring_arg(a[2], "value")?;
    env.int32(pam::set_item(id, item, &value)?)
}

unsafe fn pam_get_item(env: Env, a: &Args) -> Result<napi_value> {
    let id = pam_id(env, a[0])?;
    let item = env.uint_arg(a[1], "item", 64)? as i32;
    match pam::get_item(id, item)? {
        Some(s) => env.string(&s),
        None => env.null(),
    }
}

unsafe fn pam_getenvlist(env: Env, a: &Args) -> Result<napi_value> {
    env.string_array(&pam::getenvlist(pam_id(env, a[0])?)?)
}

unsafe fn pam_strerror(env: Env, a: &Args) -> Result<napi_value> {
    let id = pam_id(env, a[0])?;
    let status = env.uint_arg(a[1], "status", 255)? as i32;
    env.string(&pam::strerror(id, status)?)
}

unsafe fn pam_take_fail_delay(env: Env, a: &Args) -> Result<napi_value> {
    env.uint32(pam::take_fail_delay(pam_id(env, a[0])?)?)
}

unsafe fn pam_end(env: Env, a: &Args) -> Result<napi_value> {
    let id = pam_id(env, a[0])?;
    let status = env.uint_arg(a[1], "status", 255)? as i32;
    env.int32(pam::end(id, status)?)
}

unsafe fn test_panic(_env: Env, _a: &Args) -> Result<napi_value> {
    panic!("testPanic: a deliberate panic, caught before the FFI boundary");
}

// ---- ring pumps -----------------------------------------------------------------------------------

unsafe fn pump_start(env: Env, a: &Args) -> Result<napi_value> {
    let page = env.bytes_arg(a[0], "page")?;
    let layouts = env.uint_list_arg_from(a[1], "layouts", MAX_SAFE_INTEGER, 8, 8)?;
    let wake = env.uint_list_arg_from(a[2], "wake", u32::MAX as u64, 4, 4)?;
    let config = env.uint_list_arg_from(a[4], "config", MAX_SAFE_INTEGER, 3, 3)?;
    let callback = env.function_arg(a[5], "callback")?;
    let wake = match wake[0] {
        0 => pump::Wake::Linux {
            fd: i32::try_from(wake[1]).map_err(|_| Error::invalid("wake[1] must be an fd"))?,
            port: wake[2] as u32,
        },
        1 => pump::Wake::Sim {
            dir: env.string_arg(a[3], "dir")?,
            domid: wake[1] as u32,
            handle: wake[2] as u32,
            port: wake[3] as u32,
        },
        k => return Err(Error::invalid(format!("wake[0] must be 0 (linux) or 1 (sim), got {k}"))),
    };
    let rx = [layouts[0], layouts[1], layouts[2], layouts[3]];
    let tx = [layouts[4], layouts[5], layouts[6], layouts[7]];
    let config =
        pump::Config { rx_capacity: config[0] as usize, tx_capacity: config[1] as usize, spin_ns: config[2] };
    env.uint32(pump::start(env, page, rx, tx, wake, config, callback)?)
}

unsafe fn pump_read(env: Env, a: &Args) -> Result<napi_value> {
    let id = env.u32_arg(a[0], "id")?;
    let max = env.uint_arg(a[1], "max", 1 << 30)? as usize;
    pump::read(env, id, max)
}

unsafe fn pump_write(env: Env, a: &Args) -> Result<napi_value> {
    let id = env.u32_arg(a[0], "id")?;
    let (src, len) = env.byte_buffer_arg(a[1], "src")?;
    let offset = env.uint_arg(a[2], "srcOffset", MAX_SAFE_INTEGER)?;
    let length = env.uint_arg(a[3], "length", MAX_SAFE_INTEGER)?;
    check_range("src", offset, length, len)?;
    let n = pump::write(env, id, src.add(offset as usize), length as usize)?;
    env.double(n as f64) // -1: the tx ring is corrupt
}

unsafe fn pump_stop(env: Env, a: &Args) -> Result<napi_value> {
    pump::stop(env, env.u32_arg(a[0], "id")?)?;
    env.undefined()
}

unsafe fn pump_close(env: Env, a: &Args) -> Result<napi_value> {
    pump::close(env, env.u32_arg(a[0], "id")?)?;
    env.undefined()
}

unsafe fn pump_stats(env: Env, a: &Args) -> Result<napi_value> {
    let s = pump::stats(env, env.u32_arg(a[0], "id")?)?;
    let o = env.object()?;
    env.set(o, c"rxBuffered", env.double(s.rx_buffered as f64)?)?;
    env.set(o, c"txBuffered", env.double(s.tx_buffered as f64)?)?;
    env.set(o, c"bytesIn", env.double(s.bytes_in as f64)?)?;
    env.set(o, c"bytesOut", env.double(s.bytes_out as f64)?)?;
    env.set(o, c"notifies", env.double(s.notifies as f64)?)?;
    env.set(o, c"sleeps", env.double(s.sleeps as f64)?)?;
    env.set(o, c"signals", env.double(s.signals as f64)?)?;
    env.set(o, c"broken", env.uint32(s.broken)?)?;
    env.set(o, c"running", env.boolean(s.running)?)?;
    Ok(o)
}

// ---- registration -------------------------------------------------------------------------------

const FUNCTIONS: &[(&std::ffi::CStr, Handler)] = &[
    (c"mapFile", map_file),
    (c"mapFd", map_fd),
    (c"unmap", unmap),
    (c"isMapped", is_mapped),
    (c"mappingCount", mapping_count),
    (c"pageSize", page_size),
    (c"ringProduce", ring_produce),
    (c"ringConsume", ring_consume),
    (c"ringQueued", ring_queued),
    (c"ringBind", ring_bind),
    (c"evtchnBindInterdomain", evtchn_bind_interdomain),
    (c"evtchnBindUnboundPort", evtchn_bind_unbound_port),
    (c"evtchnBindVirq", evtchn_bind_virq),
    (c"evtchnUnbind", evtchn_unbind),
    (c"evtchnNotify", evtchn_notify),
    (c"evtchnReset", evtchn_reset),
    (c"evtchnRestrictDomid", evtchn_restrict_domid),
    (c"evtchnPending", evtchn_pending),
    (c"evtchnUnmask", evtchn_unmask),
    (c"gntdevMap", gntdev_map),
    (c"setUnmapNotify", set_unmap_notify),
    (c"gntallocShare", gntalloc_share),
    (c"privcmdMapForeign", privcmd_map_foreign),
    (c"watchFd", watch_fd),
    (c"rearmFd", rearm_fd),
    (c"unwatchFd", unwatch_fd),
    (c"refFd", ref_fd),
    (c"unrefFd", unref_fd),
    (c"ptyOpen", pty_open),
    (c"ptyResize", pty_resize),
    (c"ptyGetSize", pty_get_size),
    (c"ptySpawn", pty_spawn),
    (c"childReap", child_reap),
    (c"fdSetBlocking", fd_set_blocking),
    (c"ttyMakeRaw", tty_make_raw),
    (c"ttyRestore", tty_restore),
    (c"getpwnam", getpwnam),
    (c"getpwuid", getpwuid),
    (c"getgrouplist", getgrouplist),
    (c"setgroups", setgroups),
    (c"getgroups", getgroups),
    (c"pamUnavailableReason", pam_unavailable_reason),
    (c"pamStart", pam_start),
    (c"pamCall", pam_call),
    (c"pamSetItem", pam_set_item),
    (c"pamGetItem", pam_get_item),
    (c"pamGetenvlist", pam_getenvlist),
    (c"pamStrerror", pam_strerror),
    (c"pamTakeFailDelay", pam_take_fail_delay),
    (c"pamEnd", pam_end),
    (c"pumpStart", pump_start),
    (c"pumpRead", pump_read),
    (c"pumpWrite", pump_write),
    (c"pumpStop", pump_stop),
    (c"pumpClose", pump_close),
    (c"pumpStats", pump_stats),
    (c"testPanic", test_panic),
];

/// The hot bound-ring functions: they unpack only the 4 arguments they take.
const FUNCTIONS_4: &[(&std::ffi::CStr, HandlerN<4>)] =
    &[(c"ringWrite", ring_write), (c"ringRead", ring_read), (c"ringQueuedBound", ring_queued_bound)];

fn number_table(env: Env, entries: &[(&str, u32)]) -> Result<napi_value> {
    let o = env.object()?;
    for (name, value) in entries {
        env.set_dynamic(o, name, env.double(*value as f64)?)?;
    }
    env.freeze(o)?;
    Ok(o)
}

pub fn register(env: Env, exports: napi_value) -> Result<()> {
    for (name, handler) in FUNCTIONS {
        export(env, exports, name, *handler)?;
    }
    for (name, handler) in FUNCTIONS_4 {
        export(env, exports, name, *handler)?;
    }
    env.set(exports, c"version", env.string(env!("CARGO_PKG_VERSION"))?)?;
    env.set(exports, c"ioctls", number_table(env, xen::IOCTLS)?)?;
    env.set(exports, c"constants", number_table(env, xen::CONSTANTS)?)?;
    let layouts = env.object()?;
    for (name, fields) in xen::LAYOUTS {
        let o = env.object()?;
        for (field, value) in *fields {
            env.set_dynamic(o, field, env.double(*value as f64)?)?;
        }
        env.freeze(o)?;
        env.set_dynamic(layouts, name, o)?;
    }
    env.freeze(layouts)?;
    env.set(exports, c"layouts", layouts)?;
    Ok(())
}
