//! Linux Xen device uapi: ioctl argument structs (mirroring linux-libc-dev's <xen/*.h> and
//! libxen-dev's <xen/sys/*.h>), ioctl numbers computed from their sizes like `_IOC()` does,
//! and the device operations for /dev/xen/{evtchn,gntdev,gntalloc,privcmd}.
//!
//! Numbers and layouts are exported to JS (`ioctls`, `layouts`) and compared by a test with a C
//! program compiled against the system headers, so they cannot drift.

use std::ffi::c_void;
use std::mem::{offset_of, size_of};
use std::ptr;
use std::time::Duration;

use crate::libc_sys as libc;
use crate::map::{self, Mapping, Teardown};
use crate::napi::{Error, Result};

// ---- structs (field names as in C) ------------------------------------------------------------

#[repr(C)]
pub struct IoctlEvtchnBindVirq {
    pub virq: u32,
}
#[repr(C)]
pub struct IoctlEvtchnBindInterdomain {
    pub remote_domain: u32,
    pub remote_port: u32,
}
#[repr(C)]
pub struct IoctlEvtchnBindUnboundPort {
    pub remote_domain: u32,
}
#[repr(C)]
pub struct IoctlEvtchnUnbind {
    pub port: u32,
}
#[repr(C)]
pub struct IoctlEvtchnNotify {
    pub port: u32,
}
#[repr(C)]
pub struct IoctlEvtchnRestrictDomid {
    pub domid: u16,
}

#[repr(C)]
pub struct IoctlGntdevGrantRef {
    pub domid: u32,
    pub ref_: u32,
}
/// Variable length: the kernel reads `count` entries of `refs` (the C header declares `refs[1]`,
/// which is what the ioctl number encodes).
#[repr(C)]
pub struct IoctlGntdevMapGrantRef {
    pub count: u32,
    pub pad: u32,
    pub index: u64,
    pub refs: [IoctlGntdevGrantRef; 1],
}
#[repr(C)]
pub struct IoctlGntdevUnmapGrantRef {
    pub index: u64,
    pub count: u32,
    pub pad: u32,
}
/// Same layout (and ioctl number) as `ioctl_gntalloc_unmap_notify`.
#[repr(C)]
pub struct IoctlGntdevUnmapNotify {
    pub index: u64,
    pub action: u32,
    pub event_channel_port: u32,
}

/// Variable length: the kernel writes `count` entries of `gref_ids`.
#[repr(C)]
pub struct IoctlGntallocAllocGref {
    pub domid: u16,
    pub flags: u16,
    pub count: u32,
    pub index: u64,
    pub gref_ids: [u32; 1],
}
#[repr(C)]
pub struct IoctlGntallocDeallocGref {
    pub index: u64,
    pub count: u32,
}

/// `xen_pfn_t` is 64-bit on both x86_64 (unsigned long) and arm64 (uint64_t).
#[repr(C)]
pub struct PrivcmdMmapbatchV2 {
    pub num: u32,
    pub dom: u16,
    pub addr: u64,
    pub arr: *const u64,
    pub err: *mut i32,
}

// ---- ioctl numbers ----------------------------------------------------------------------------

/// `_IOC(dir, type, nr, size)` for x86 and arm (dir in bits 30-31, size in 16-29).
const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    assert!(size < (1 << 14));
    (dir << 30) | ((size as u32) << 16) | ((ty as u32) << 8) | nr as u32
}
const IOC_NONE: u32 = 0;

pub const IOCTL_EVTCHN_BIND_VIRQ: u32 = ioc(IOC_NONE, b'E', 0, size_of::<IoctlEvtchnBindVirq>());
pub const IOCTL_EVTCHN_BIND_INTERDOMAIN: u32 =
    ioc(IOC_NONE, b'E', 1, size_of::<IoctlEvtchnBindInterdomain>());
pub const IOCTL_EVTCHN_BIND_UNBOUND_PORT: u32 =
    ioc(IOC_NONE, b'E', 2, size_of::<IoctlEvtchnBindUnboundPort>());
pub const IOCTL_EVTCHN_UNBIND: u32 = ioc(IOC_NONE, b'E', 3, size_of::<IoctlEvtchnUnbind>());
pub const IOCTL_EVTCHN_NOTIFY: u32 = ioc(IOC_NONE, b'E', 4, size_of::<IoctlEvtchnNotify>());
pub const IOCTL_EVTCHN_RESET: u32 = ioc(IOC_NONE, b'E', 5, 0);
pub const IOCTL_EVTCHN_RESTRICT_DOMID: u32 = ioc(IOC_NONE, b'E', 6, size_of::<IoctlEvtchnRestrictDomid>());

pub const IOCTL_GNTDEV_MAP_GRANT_REF: u32 = ioc(IOC_NONE, b'G', 0, size_of::<IoctlGntdevMapGrantRef>());
pub const IOCTL_GNTDEV_UNMAP_GRANT_REF: u32 = ioc(IOC_NONE, b'G', 1, size_of::<IoctlGntdevUnmapGrantRef>());
pub const IOCTL_GNTDEV_SET_UNMAP_NOTIFY: u32 = ioc(IOC_NONE, b'G', 7, size_of::<IoctlGntdevUnmapNotify>());

pub const IOCTL_GNTALLOC_ALLOC_GREF: u32 = ioc(IOC_NONE, b'G', 5, size_of::<IoctlGntallocAllocGref>());
pub const IOCTL_GNTALLOC_DEALLOC_GREF: u32 = ioc(IOC_NONE, b'G', 6, size_of::<IoctlGntallocDeallocGref>());
pub const IOCTL_GNTALLOC_SET_UNMAP_NOTIFY: u32 = ioc(IOC_NONE, b'G', 7, size_of::<IoctlGntdevUnmapNotify>());

pub const IOCTL_PRIVCMD_MMAPBATCH_V2: u32 = ioc(IOC_NONE, b'P', 4, size_of::<PrivcmdMmapbatchV2>());

pub const UNMAP_NOTIFY_CLEAR_BYTE: u32 = 0x1;
pub const UNMAP_NOTIFY_SEND_EVENT: u32 = 0x2;
pub const GNTALLOC_FLAG_WRITABLE: u16 = 1;

/// Every ioctl we issue, by its C macro name.
pub const IOCTLS: &[(&str, u32)] = &[
    ("IOCTL_EVTCHN_BIND_VIRQ", IOCTL_EVTCHN_BIND_VIRQ),
    ("IOCTL_EVTCHN_BIND_INTERDOMAIN", IOCTL_EVTCHN_BIND_INTERDOMAIN),
    ("IOCTL_EVTCHN_BIND_UNBOUND_PORT", IOCTL_EVTCHN_BIND_UNBOUND_PORT),
    ("IOCTL_EVTCHN_UNBIND", IOCTL_EVTCHN_UNBIND),
    ("IOCTL_EVTCHN_NOTIFY", IOCTL_EVTCHN_NOTIFY),
    ("IOCTL_EVTCHN_RESET", IOCTL_EVTCHN_RESET),
    ("IOCTL_EVTCHN_RESTRICT_DOMID", IOCTL_EVTCHN_RESTRICT_DOMID),
    ("IOCTL_GNTDEV_MAP_GRANT_REF", IOCTL_GNTDEV_MAP_GRANT_REF),
    ("IOCTL_GNTDEV_UNMAP_GRANT_REF", IOCTL_GNTDEV_UNMAP_GRANT_REF),
    ("IOCTL_GNTDEV_SET_UNMAP_NOTIFY", IOCTL_GNTDEV_SET_UNMAP_NOTIFY),
    ("IOCTL_GNTALLOC_ALLOC_GREF", IOCTL_GNTALLOC_ALLOC_GREF),
    ("IOCTL_GNTALLOC_DEALLOC_GREF", IOCTL_GNTALLOC_DEALLOC_GREF),
    ("IOCTL_GNTALLOC_SET_UNMAP_NOTIFY", IOCTL_GNTALLOC_SET_UNMAP_NOTIFY),
    ("IOCTL_PRIVCMD_MMAPBATCH_V2", IOCTL_PRIVCMD_MMAPBATCH_V2),
];

/// Flag and action values from the same headers (compared by the layout test too), plus the
/// poll(2) bits delivered to `watchFd` callbacks.
pub const CONSTANTS: &[(&str, u32)] = &[
    ("UNMAP_NOTIFY_CLEAR_BYTE", UNMAP_NOTIFY_CLEAR_BYTE),
    ("UNMAP_NOTIFY_SEND_EVENT", UNMAP_NOTIFY_SEND_EVENT),
    ("GNTALLOC_FLAG_WRITABLE", GNTALLOC_FLAG_WRITABLE as u32),
    ("POLLIN", libc::POLLIN as u32),
    ("POLLPRI", libc::POLLPRI as u32),
    ("POLLOUT", libc::POLLOUT as u32),
    ("POLLERR", libc::POLLERR as u32),
    ("POLLHUP", libc::POLLHUP as u32),
];

macro_rules! layout {
    ($name:literal, $ty:ty { $($field:ident $(as $cname:literal)?),* }) => {
        ($name, &[
            ("size", size_of::<$ty>()),
            $((layout!(@name $field $($cname)?), offset_of!($ty, $field)),)*
        ])
    };
    (@name $field:ident $cname:literal) => { $cname };
    (@name $field:ident) => { stringify!($field) };
}

/// Struct sizes and field offsets, by C struct name and C field name.
pub const LAYOUTS: &[(&str, &[(&str, usize)])] = &[
    layout!("ioctl_evtchn_bind_virq", IoctlEvtchnBindVirq { virq }),
    layout!("ioctl_evtchn_bind_interdomain", IoctlEvtchnBindInterdomain { remote_domain, remote_port }),
    layout!("ioctl_evtchn_bind_unbound_port", IoctlEvtchnBindUnboundPort { remote_domain }),
    layout!("ioctl_evtchn_unbind", IoctlEvtchnUnbind { port }),
    layout!("ioctl_evtchn_notify", IoctlEvtchnNotify { port }),
    layout!("ioctl_evtchn_restrict_domid", IoctlEvtchnRestrictDomid { domid }),
    layout!("ioctl_gntdev_grant_ref", IoctlGntdevGrantRef { domid, ref_ as "ref" }),
    layout!("ioctl_gntdev_map_grant_ref", IoctlGntdevMapGrantRef { count, pad, index, refs }),
    layout!("ioctl_gntdev_unmap_grant_ref", IoctlGntdevUnmapGrantRef { index, count, pad }),
    layout!("ioctl_gntdev_unmap_notify", IoctlGntdevUnmapNotify { index, action, event_channel_port }),
    layout!("ioctl_gntalloc_alloc_gref", IoctlGntallocAllocGref { domid, flags, count, index, gref_ids }),
    layout!("ioctl_gntalloc_dealloc_gref", IoctlGntallocDeallocGref { index, count }),
    layout!("ioctl_gntalloc_unmap_notify", IoctlGntdevUnmapNotify { index, action, event_channel_port }),
    layout!("privcmd_mmapbatch_v2", PrivcmdMmapbatchV2 { num, dom, addr, arr, err }),
];

// ---- syscall helpers --------------------------------------------------------------------------

fn do_ioctl(fd: i32, request: u32, syscall: &'static str, arg: *mut c_void) -> Result<i32> {
    let r = unsafe { libc::ioctl(fd, request as libc::IoctlRequest, arg) };
    if r < 0 {
        Err(Error::last_os(syscall))
    } else {
        Ok(r)
    }
}

/// `xioctl!(fd, IOCTL_X, ptr)`: the error's `syscall` is `ioctl(IOCTL_X)`.
macro_rules! xioctl {
    ($fd:expr, $req:ident, $arg:expr) => {
        do_ioctl($fd, $req, concat!("ioctl(", stringify!($req), ")"), $arg as *mut _ as *mut c_void)
    };
}

fn dup_cloexec(fd: i32) -> Result<i32> {
    let r = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if r < 0 {
        Err(Error::last_os("fcntl(F_DUPFD_CLOEXEC)"))
    } else {
        Ok(r)
    }
}

/// mmap of a grant device, retrying EAGAIN (a page may be paged out) a bounded number of times.
fn mmap_device(fd: i32, index: u64, len: usize, writable: bool) -> Result<usize> {
    let mut attempt = 0;
    loop {
        match map::mmap_shared(fd, index, len, writable) {
            Err(Error::Os { errno: libc::EAGAIN, .. }) if attempt < 10 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            r => return r,
        }
    }
}

// ---- /dev/xen/evtchn --------------------------------------------------------------------------

pub fn evtchn_bind_virq(fd: i32, virq: u32) -> Result<u32> {
    let mut a = IoctlEvtchnBindVirq { virq };
    Ok(xioctl!(fd, IOCTL_EVTCHN_BIND_VIRQ, &mut a)? as u32)
}
pub fn evtchn_bind_interdomain(fd: i32, remote_domain: u32, remote_port: u32) -> Result<u32> {
    let mut a = IoctlEvtchnBindInterdomain { remote_domain, remote_port };
    Ok(xioctl!(fd, IOCTL_EVTCHN_BIND_INTERDOMAIN, &mut a)? as u32)
}
pub fn evtchn_bind_unbound_port(fd: i32, remote_domain: u32) -> Result<u32> {
    let mut a = IoctlEvtchnBindUnboundPort { remote_domain };
    Ok(xioctl!(fd, IOCTL_EVTCHN_BIND_UNBOUND_PORT, &mut a)? as u32)
}
pub fn evtchn_unbind(fd: i32, port: u32) -> Result<()> {
    let mut a = IoctlEvtchnUnbind { port };
    xioctl!(fd, IOCTL_EVTCHN_UNBIND, &mut a).map(drop)
}
pub fn evtchn_notify(fd: i32, port: u32) -> Result<()> {
    let mut a = IoctlEvtchnNotify { port };
    xioctl!(fd, IOCTL_EVTCHN_NOTIFY, &mut a).map(drop)
}
pub fn evtchn_reset(fd: i32) -> Result<()> {
    xioctl!(fd, IOCTL_EVTCHN_RESET, ptr::null_mut::<c_void>()).map(drop)
}
pub fn evtchn_restrict_domid(fd: i32, domid: u16) -> Result<()> {
    let mut a = IoctlEvtchnRestrictDomid { domid };
    xioctl!(fd, IOCTL_EVTCHN_RESTRICT_DOMID, &mut a).map(drop)
}

/// Reads pending ports without blocking, though the fd itself may be blocking (JS opens it
/// with fs.openSync): poll(fd, POLLIN, 0) first, read only if readable. The evtchn driver
/// answers a read immediately when poll said readable, provided nobody else reads the same fd
/// in between (one reader per fd). EAGAIN (an O_NONBLOCK fd) counts as "none".
pub fn evtchn_pending(fd: i32, out: *mut u32, out_len: usize) -> Result<usize> {
    if out_len == 0 {
        return Ok(0);
    }
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    loop {
        let r = unsafe { libc::poll(&mut pfd, 1, 0) };
        if r < 0 {
            if libc::errno() == libc::EINTR {
                continue;
            }
            return Err(Error::last_os("poll"));
        }
        if r == 0 {
            return Ok(0);
        }
        break;
    }
    if pfd.revents & libc::POLLNVAL != 0 {
        return Err(Error::os(libc::EBADF, "poll"));
    }
    // POLLERR (ring overflow) falls through: the read reports EFBIG.
    loop {
        let n = unsafe { libc::read(fd, out as *mut c_void, out_len * 4) };
        if n >= 0 {
            return Ok(n as usize / 4);
        }
        match libc::errno() {
            libc::EINTR => continue,
            libc::EAGAIN => return Ok(0),
            e => return Err(Error::os(e, "read")),
        }
    }
}

/// Re-enables delivery of `port`: one 4-byte native-endian write, as libxenevtchn does.
pub fn evtchn_unmask(fd: i32, port: u32) -> Result<()> {
    let bytes = port.to_ne_bytes();
    loop {
        let n = unsafe { libc::write(fd, bytes.as_ptr() as *const c_void, 4) };
        if n >= 0 {
            return Ok(());
        }
        if libc::errno() != libc::EINTR {
            return Err(Error::last_os("write"));
        }
    }
}

// ---- /dev/xen/gntdev --------------------------------------------------------------------------

/// MAP_GRANT_REF, then mmap at the returned index. The mapping keeps a dup of `fd` for teardown.
pub fn gntdev_map(fd: i32, domid: u32, refs: &[u64], writable: bool) -> Result<Mapping> {
    let count = refs.len();
    let len = count * map::page_size();
    // 8-byte aligned buffer for the 16-byte header and `count` 8-byte refs.
    let mut buf = vec![0u64; 2 + count];
    let arg = buf.as_mut_ptr() as *mut IoctlGntdevMapGrantRef;
    unsafe {
        (*arg).count = count as u32;
        let refs_ptr =
            (arg as *mut u8).add(offset_of!(IoctlGntdevMapGrantRef, refs)) as *mut IoctlGntdevGrantRef;
        for (i, r) in refs.iter().enumerate() {
            refs_ptr.add(i).write(IoctlGntdevGrantRef { domid, ref_: *r as u32 });
        }
    }
    xioctl!(fd, IOCTL_GNTDEV_MAP_GRANT_REF, arg)?;
    let index = unsafe { (*arg).index };
    let count = count as u32;
    let dup = match dup_cloexec(fd) {
        Ok(d) => d,
        Err(e) => {
            let _ = gntdev_unmap_grant_ref(fd, index, count);
            return Err(e);
        }
    };
    match mmap_device(dup, index, len, writable) {
        Ok(addr) => Ok(Mapping { addr, len, teardown: Teardown::Gntdev { fd: dup, index, count } }),
        Err(e) => {
            let _ = gntdev_unmap_grant_ref(dup, index, count);
            unsafe { libc::close(dup) };
            Err(e)
        }
    }
}

pub fn gntdev_unmap_grant_ref(fd: i32, index: u64, count: u32) -> Result<()> {
    let mut a = IoctlGntdevUnmapGrantRef { index, count, pad: 0 };
    xioctl!(fd, IOCTL_GNTDEV_UNMAP_GRANT_REF, &mut a).map(drop)
}

/// SET_UNMAP_NOTIFY for the byte at `index` (mapping index + offset) of a gntdev or gntalloc fd.
pub fn set_unmap_notify(fd: i32, gntalloc: bool, index: u64, action: u32, port: u32) -> Result<()> {
    let mut a = IoctlGntdevUnmapNotify { index, action, event_channel_port: port };
    if gntalloc {
        xioctl!(fd, IOCTL_GNTALLOC_SET_UNMAP_NOTIFY, &mut a).map(drop)
    } else {
        xioctl!(fd, IOCTL_GNTDEV_SET_UNMAP_NOTIFY, &mut a).map(drop)
    }
}

// ---- /dev/xen/gntalloc ------------------------------------------------------------------------

/// ALLOC_GREF (grant flag WRITABLE when `writable`), then mmap read-write: we own these pages
/// and fill them; `writable` only decides whether the peer may write. Returns the grant refs.
pub fn gntalloc_share(fd: i32, domid: u16, count: u32, writable: bool) -> Result<(Mapping, Vec<u32>)> {
    let len = count as usize * map::page_size();
    let bytes = offset_of!(IoctlGntallocAllocGref, gref_ids) + 4 * count as usize;
    let mut buf = vec![0u64; bytes.div_ceil(8)];
    let arg = buf.as_mut_ptr() as *mut IoctlGntallocAllocGref;
    unsafe {
        (*arg).domid = domid;
        (*arg).flags = if writable { GNTALLOC_FLAG_WRITABLE } else { 0 };
        (*arg).count = count;
    }
    xioctl!(fd, IOCTL_GNTALLOC_ALLOC_GREF, arg)?;
    let index = unsafe { (*arg).index };
    let refs: Vec<u32> = unsafe {
        let ids = (arg as *const u8).add(offset_of!(IoctlGntallocAllocGref, gref_ids)) as *const u32;
        (0..count as usize).map(|i| ids.add(i).read()).collect()
    };
    let dup = match dup_cloexec(fd) {
        Ok(d) => d,
        Err(e) => {
            let _ = gntalloc_dealloc_gref(fd, index, count);
            return Err(e);
        }
    };
    match mmap_device(dup, index, len, true) {
        Ok(addr) => Ok((Mapping { addr, len, teardown: Teardown::Gntalloc { fd: dup, index, count } }, refs)),
        Err(e) => {
            let _ = gntalloc_dealloc_gref(dup, index, count);
            unsafe { libc::close(dup) };
            Err(e)
        }
    }
}

pub fn gntalloc_dealloc_gref(fd: i32, index: u64, count: u32) -> Result<()> {
    let mut a = IoctlGntallocDeallocGref { index, count };
    xioctl!(fd, IOCTL_GNTALLOC_DEALLOC_GREF, &mut a).map(drop)
}

// ---- /dev/xen/privcmd -------------------------------------------------------------------------

const PRIVCMD_ENOENT_RETRIES: u32 = 10;

/// As libxenforeignmemory: mmap the privcmd fd at offset 0 to reserve the range, then
/// MMAPBATCH_V2. Pages reported -ENOENT (paged out) are retried one by one a bounded number of
/// times; any other per-page error fails the whole mapping. Teardown is a plain munmap.
pub fn privcmd_map_foreign(fd: i32, domid: u16, gfns: &[u64], writable: bool) -> Result<Mapping> {
    const SYSCALL: &str = "ioctl(IOCTL_PRIVCMD_MMAPBATCH_V2)";
    let n = gfns.len();
    let page = map::page_size();
    let len = n * page;
    let addr = map::mmap_shared(fd, 0, len, writable)?;
    let fail = |e: Error| {
        unsafe { libc::munmap(addr as *mut c_void, len) };
        Err(e)
    };
    let mut err = vec![0i32; n];
    let mut batch = PrivcmdMmapbatchV2 {
        num: n as u32,
        dom: domid,
        addr: addr as u64,
        arr: gfns.as_ptr(),
        err: err.as_mut_ptr(),
    };
    if let Err(e) = xioctl!(fd, IOCTL_PRIVCMD_MMAPBATCH_V2, &mut batch) {
        if !matches!(e, Error::Os { errno: libc::ENOENT, .. }) {
            return fail(e);
        }
        let mut attempt = 0;
        while err.contains(&-libc::ENOENT) {
            if attempt == PRIVCMD_ENOENT_RETRIES {
                return fail(Error::os(libc::ENOENT, SYSCALL));
            }
            attempt += 1;
            std::thread::sleep(Duration::from_millis(1));
            for i in 0..n {
                if err[i] != -libc::ENOENT {
                    continue;
                }
                let mut one = PrivcmdMmapbatchV2 {
                    num: 1,
                    dom: domid,
                    addr: (addr + i * page) as u64,
                    arr: &gfns[i],
                    err: &mut err[i],
                };
                match xioctl!(fd, IOCTL_PRIVCMD_MMAPBATCH_V2, &mut one) {
                    Ok(_) | Err(Error::Os { errno: libc::ENOENT, .. }) => {}
                    Err(Error::Os { errno, .. }) if err[i] == 0 => err[i] = -errno,
                    Err(_) => {}
                }
            }
        }
    }
    if let Some(&e) = err.iter().find(|&&e| e != 0) {
        return fail(Error::os(-e, SYSCALL));
    }
    Ok(Mapping { addr, len, teardown: Teardown::None })
}
