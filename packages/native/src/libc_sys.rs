//! Hand-declared libc functions and Linux constants (x86_64 and aarch64; glibc and musl).
//!
//! Only what std does not already offer: mmap, ioctl, poll, epoll, eventfd, statx, fcntl; for
//! pseudo-terminals and sessions: posix_openpt and friends, fork/exec, credentials, waitpid,
//! the passwd database, dlopen (libpam is loaded at run time, see pam.rs).
//! Constant values are the asm-generic ones shared by both architectures.

#![allow(non_camel_case_types, dead_code)]

use std::ffi::{c_char, c_int, c_long, c_uint, c_ulong, c_void};

/// The ioctl request type: `unsigned long` in glibc, `int` in musl.
#[cfg(not(target_env = "musl"))]
pub type IoctlRequest = c_ulong;
#[cfg(target_env = "musl")]
pub type IoctlRequest = c_int;

#[repr(C)]
pub struct pollfd {
    pub fd: c_int,
    pub events: i16,
    pub revents: i16,
}

/// `struct epoll_event` is packed on x86_64 only (12 bytes); 16 bytes elsewhere.
#[cfg_attr(target_arch = "x86_64", repr(C, packed))]
#[cfg_attr(not(target_arch = "x86_64"), repr(C))]
#[derive(Clone, Copy)]
pub struct epoll_event {
    pub events: u32,
    pub data: u64,
}

/// `struct statx` (arch-independent, 256 bytes). Only type and size are read.
#[repr(C)]
pub struct statx_buf {
    pub stx_mask: u32,
    pub stx_blksize: u32,
    pub stx_attributes: u64,
    pub stx_nlink: u32,
    pub stx_uid: u32,
    pub stx_gid: u32,
    pub stx_mode: u16,
    pub spare0: u16,
    pub stx_ino: u64,
    pub stx_size: u64,
    pub rest: [u64; 26],
}

/// `sigset_t` as glibc and musl define it: 1024 bits (only the first 64 are used by Linux).
#[repr(C)]
pub struct SigSet {
    pub bits: [u64; 16],
}

/// `struct passwd` (glibc and musl, 64-bit).
#[repr(C)]
pub struct passwd {
    pub pw_name: *mut c_char,
    pub pw_passwd: *mut c_char,
    pub pw_uid: c_uint,
    pub pw_gid: c_uint,
    pub pw_gecos: *mut c_char,
    pub pw_dir: *mut c_char,
    pub pw_shell: *mut c_char,
}

/// `struct termios` kept opaque: 60 bytes in glibc and musl on x86_64 and aarch64, rounded up.
#[repr(C, align(4))]
#[derive(Clone, Copy)]
pub struct Termios {
    pub bytes: [u8; TERMIOS_BYTES],
}
pub const TERMIOS_BYTES: usize = 64;
pub const TCSANOW: c_int = 0;

/// `struct winsize` for TIOCGWINSZ / TIOCSWINSZ.
#[repr(C)]
#[derive(Default)]
pub struct winsize {
    pub ws_row: u16,
    pub ws_col: u16,
    pub ws_xpixel: u16,
    pub ws_ypixel: u16,
}

extern "C" {
    pub fn mmap(
        addr: *mut c_void,
        len: usize,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        offset: i64,
    ) -> *mut c_void;
    pub fn munmap(addr: *mut c_void, len: usize) -> c_int;
    pub fn madvise(addr: *mut c_void, len: usize, advice: c_int) -> c_int;
    pub fn ioctl(fd: c_int, request: IoctlRequest, ...) -> c_int;
    pub fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    pub fn close(fd: c_int) -> c_int;
    pub fn read(fd: c_int, buf: *mut c_void, count: usize) -> isize;
    pub fn write(fd: c_int, buf: *const c_void, count: usize) -> isize;
    pub fn poll(fds: *mut pollfd, nfds: c_ulong, timeout: c_int) -> c_int;
    pub fn sysconf(name: c_int) -> c_long;
    pub fn sched_yield() -> c_int;
    pub fn epoll_create1(flags: c_int) -> c_int;
    pub fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, event: *mut epoll_event) -> c_int;
    pub fn epoll_wait(epfd: c_int, events: *mut epoll_event, maxevents: c_int, timeout: c_int) -> c_int;
    pub fn eventfd(initval: c_uint, flags: c_int) -> c_int;
    // ---- pseudo-terminals, processes, credentials ----
    pub fn posix_openpt(flags: c_int) -> c_int;
    pub fn grantpt(fd: c_int) -> c_int;
    pub fn unlockpt(fd: c_int) -> c_int;
    pub fn ptsname_r(fd: c_int, buf: *mut c_char, buflen: usize) -> c_int;
    pub fn open(path: *const c_char, flags: c_int, ...) -> c_int;
    pub fn pipe2(fds: *mut c_int, flags: c_int) -> c_int;
    pub fn fork() -> c_int;
    pub fn setsid() -> c_int;
    pub fn dup2(old: c_int, new: c_int) -> c_int;
    pub fn execve(path: *const c_char, argv: *const *const c_char, envp: *const *const c_char) -> c_int;
    pub fn _exit(status: c_int) -> !;
    pub fn chdir(path: *const c_char) -> c_int;
    pub fn setuid(uid: c_uint) -> c_int;
    pub fn setgid(gid: c_uint) -> c_int;
    pub fn setgroups(size: usize, list: *const c_uint) -> c_int;
    pub fn getgroups(size: c_int, list: *mut c_uint) -> c_int;
    pub fn getgrouplist(
        user: *const c_char,
        group: c_uint,
        groups: *mut c_uint,
        ngroups: *mut c_int,
    ) -> c_int;
    pub fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    pub fn signal(sig: c_int, handler: usize) -> usize;
    pub fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
    pub fn syscall(number: c_long, ...) -> c_long;
    pub fn getpwnam_r(
        name: *const c_char,
        pwd: *mut passwd,
        buf: *mut c_char,
        buflen: usize,
        result: *mut *mut passwd,
    ) -> c_int;
    pub fn getpwuid_r(
        uid: c_uint,
        pwd: *mut passwd,
        buf: *mut c_char,
        buflen: usize,
        result: *mut *mut passwd,
    ) -> c_int;
    pub fn tcgetattr(fd: c_int, termios: *mut Termios) -> c_int;
    pub fn tcsetattr(fd: c_int, action: c_int, termios: *const Termios) -> c_int;
    pub fn cfmakeraw(termios: *mut Termios);
    pub fn malloc(size: usize) -> *mut c_void;
    pub fn free(ptr: *mut c_void);
    pub fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
    pub fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    pub fn dlerror() -> *mut c_char;

    pub fn statx(
        dirfd: c_int,
        pathname: *const c_char,
        flags: c_int,
        mask: c_uint,
        statxbuf: *mut statx_buf,
    ) -> c_int;
}

pub const PROT_READ: c_int = 1;
pub const PROT_WRITE: c_int = 2;
pub const MAP_SHARED: c_int = 1;
pub const MAP_PRIVATE: c_int = 2;
pub const MAP_ANONYMOUS: c_int = 0x20;
pub const MADV_DONTNEED: c_int = 4;
pub const MAP_FAILED: *mut c_void = !0usize as *mut c_void;

pub const F_DUPFD_CLOEXEC: c_int = 1030;

pub const POLLIN: i16 = 0x001;
pub const POLLPRI: i16 = 0x002;
pub const POLLOUT: i16 = 0x004;
pub const POLLERR: i16 = 0x008;
pub const POLLHUP: i16 = 0x010;
pub const POLLNVAL: i16 = 0x020;

pub const EPOLL_CLOEXEC: c_int = 0o2000000;
pub const EPOLL_CTL_ADD: c_int = 1;
pub const EPOLL_CTL_DEL: c_int = 2;
pub const EPOLL_CTL_MOD: c_int = 3;
pub const EPOLLIN: u32 = 0x001;
pub const EPOLLONESHOT: u32 = 1 << 30;

pub const EFD_CLOEXEC: c_int = 0o2000000;
pub const EFD_NONBLOCK: c_int = 0o4000;

pub const AT_EMPTY_PATH: c_int = 0x1000;
pub const STATX_TYPE: c_uint = 0x1;
pub const STATX_SIZE: c_uint = 0x200;
pub const S_IFMT: u16 = 0o170000;
pub const S_IFREG: u16 = 0o100000;

pub const SC_PAGESIZE: c_int = 30;

pub const O_RDWR: c_int = 2;
pub const O_NOCTTY: c_int = 0o400;
pub const O_NONBLOCK: c_int = 0o4000;
pub const O_CLOEXEC: c_int = 0o2000000;
pub const F_SETFD: c_int = 2;
pub const F_GETFL: c_int = 3;
pub const F_SETFL: c_int = 4;
pub const FD_CLOEXEC: c_int = 1;

pub const TIOCGWINSZ: IoctlRequest = 0x5413;
pub const TIOCSWINSZ: IoctlRequest = 0x5414;
pub const TIOCSCTTY: IoctlRequest = 0x540E;

pub const WNOHANG: c_int = 1;
pub const SIG_DFL: usize = 0;
pub const SIG_SETMASK: c_int = 2;
/// Highest signal number + 1 on Linux.
pub const NSIG: c_int = 65;

/// The same number on x86_64 and aarch64 (syscalls added after 5.0 share one table).
pub const SYS_PIDFD_OPEN: c_long = 434;
pub const SYS_CLOSE_RANGE: c_long = 436;
pub const CLOSE_RANGE_CLOEXEC: c_uint = 1 << 2;

pub const RTLD_NOW: c_int = 2;
pub const RTLD_GLOBAL: c_int = 0x100;

pub const ENOENT: i32 = 2;
pub const EINTR: i32 = 4;
pub const EBADF: i32 = 9;
pub const EAGAIN: i32 = 11;
pub const ECHILD: i32 = 10;
pub const ERANGE: i32 = 34;
pub const ENOSYS: i32 = 38;

/// errno of the last failed libc call on this thread.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}
