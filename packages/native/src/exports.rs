//! The functions exported to JS (see index.d.ts for the contract). Each validates its arguments
//! and delegates to map / ring / xen / poller; all run through `napi::trampoline`, which turns
//! errors and panics into thrown JS errors.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;

use crate::bound::{self, RING_DETACHED};
use crate::map;
use crate::napi::{export, Env, Error, Handler, HandlerN, Result, MAX_ARGS, MAX_SAFE_INTEGER};
use crate::napi_sys::napi_value;
use crate::poller;
use crate::ring::{check_range, Ring};
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

unsafe fn watch_fd(env: Env, a: &Args) -> Result<napi_value> {
    let fd = env.fd_arg(a[0])?;
    let callback = env.function_arg(a[1], "callback")?;
    env.uint32(poller::watch_fd(env, fd, callback)?)
}

unsafe fn rearm_fd(env: Env, a: &Args) -> Result<napi_value> {
    poller::rearm_fd(env, env.u32_arg(a[0], "id")?)?;
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

unsafe fn test_panic(_env: Env, _a: &Args) -> Result<napi_value> {
    panic!("testPanic: a deliberate panic, caught before the FFI boundary");
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
