//! Pseudo-terminals and the processes that run on them.
//!
//! - `open_pty`: a master/slave pair (`posix_openpt`, `grantpt`, `unlockpt`, `ptsname_r`), both
//!   ends close-on-exec and not our controlling terminal, with an initial window size.
//! - `spawn`: fork + exec of a program that becomes a session leader with the slave as its
//!   controlling terminal and stdio, optionally with other credentials (groups, gid, uid) and a
//!   working directory. The child runs only async-signal-safe calls between fork and exec (the
//!   parent is a multi-threaded node process): every string and array it needs is built before
//!   the fork. A failure in the child is reported through a close-on-exec pipe (stage, errno),
//!   so `spawn` either returns a running program or throws what failed, like libuv's spawn.
//! - `reap`: waitpid for one child, blocking or not. `pidfd_open` gives JS an fd that becomes
//!   readable when the child exits (watch it with the poller), so nothing polls.
//!
//! Why not `posix_spawn`: it cannot change credentials or acquire a controlling terminal.

use std::ffi::{c_char, c_int, c_long, c_uint, CStr, CString};
use std::ptr;

use crate::libc_sys as libc;
use crate::napi::{Error, Result};

extern "C" {
    fn __errno_location() -> *mut c_int;
}

pub struct PtyPair {
    pub master: i32,
    pub slave: i32,
    pub path: String,
}

/// Opens a pty pair sized `cols` x `rows`.
pub fn open_pty(cols: u16, rows: u16) -> Result<PtyPair> {
    // SAFETY: plain libc calls on fds we own; `buf` outlives ptsname_r and open.
    unsafe {
        let master = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if master < 0 {
            return Err(Error::last_os("posix_openpt"));
        }
        let fail = |e: Error| {
            libc::close(master);
            Err(e)
        };
        if libc::grantpt(master) != 0 {
            return fail(Error::last_os("grantpt"));
        }
        if libc::unlockpt(master) != 0 {
            return fail(Error::last_os("unlockpt"));
        }
        let mut buf = [0 as c_char; 128];
        let rc = libc::ptsname_r(master, buf.as_mut_ptr(), buf.len());
        if rc != 0 {
            return fail(Error::os(rc, "ptsname_r"));
        }
        let path = CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned();
        let slave = libc::open(buf.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        if slave < 0 {
            let e = Error::Os { errno: libc::errno(), syscall: "open".into(), path: Some(path) };
            return fail(e);
        }
        if let Err(e) = set_size(master, cols, rows) {
            libc::close(slave);
            return fail(e);
        }
        Ok(PtyPair { master, slave, path })
    }
}

/// TIOCSWINSZ on either end (the kernel sends SIGWINCH to the foreground process group).
pub fn set_size(fd: i32, cols: u16, rows: u16) -> Result<()> {
    let ws = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads one winsize.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws as *const libc::winsize) } != 0 {
        return Err(Error::last_os("ioctl(TIOCSWINSZ)"));
    }
    Ok(())
}

/// TIOCGWINSZ: (cols, rows).
pub fn get_size(fd: i32) -> Result<(u16, u16)> {
    let mut ws = libc::winsize::default();
    // SAFETY: TIOCGWINSZ writes one winsize.
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws as *mut libc::winsize) } != 0 {
        return Err(Error::last_os("ioctl(TIOCGWINSZ)"));
    }
    Ok((ws.ws_col, ws.ws_row))
}

/// Puts a tty in raw mode (cfmakeraw: no echo, no line editing, no signals, 8-bit); returns the
/// previous settings for `restore_tty`.
pub fn make_raw(fd: i32) -> Result<libc::Termios> {
    let mut saved = libc::Termios { bytes: [0; libc::TERMIOS_BYTES] };
    // SAFETY: the buffer is larger than any libc's struct termios on the supported targets.
    unsafe {
        if libc::tcgetattr(fd, &mut saved) != 0 {
            return Err(Error::last_os("tcgetattr"));
        }
        let mut raw = saved;
        libc::cfmakeraw(&mut raw);
        if libc::tcsetattr(fd, libc::TCSANOW, &raw) != 0 {
            return Err(Error::last_os("tcsetattr"));
        }
    }
    Ok(saved)
}

/// Restores settings saved by `make_raw`.
pub fn restore_tty(fd: i32, saved: &libc::Termios) -> Result<()> {
    // SAFETY: `saved` came from tcgetattr.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, saved) } != 0 {
        return Err(Error::last_os("tcsetattr"));
    }
    Ok(())
}

/// Sets or clears O_NONBLOCK.
pub fn set_blocking(fd: i32, blocking: bool) -> Result<()> {
    // SAFETY: fcntl on an fd number; a bad fd fails with EBADF.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return Err(Error::last_os("fcntl(F_GETFL)"));
        }
        let want = if blocking { flags & !libc::O_NONBLOCK } else { flags | libc::O_NONBLOCK };
        if want != flags && libc::fcntl(fd, libc::F_SETFL, want) < 0 {
            return Err(Error::last_os("fcntl(F_SETFL)"));
        }
    }
    Ok(())
}

/// What to run and how. Strings are already checked for NUL bytes.
pub struct SpawnSpec {
    pub file: CString,
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    pub cwd: Option<CString>,
    /// The pty slave (any tty): the child's stdio and controlling terminal.
    pub slave: i32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `Some` sets the supplementary groups (needs CAP_SETGID); `None` inherits ours.
    pub groups: Option<Vec<u32>>,
}

/// Names of the child's steps, indexed by the stage number it reports.
const STAGES: [&str; 9] = [
    "fcntl(F_DUPFD_CLOEXEC)",
    "sigprocmask",
    "setsid",
    "ioctl(TIOCSCTTY)",
    "dup2",
    "setgroups",
    "setgid",
    "setuid",
    "execve",
];

/// Forks and execs `spec`; returns (pid, pidfd). pidfd is -1 when the kernel has no
/// `pidfd_open` (before Linux 5.3) or a sandbox forbids it.
pub fn spawn(spec: &SpawnSpec) -> Result<(i32, i32)> {
    let mut argv: Vec<*const c_char> = spec.args.iter().map(|a| a.as_ptr()).collect();
    argv.push(ptr::null());
    let mut envp: Vec<*const c_char> = spec.env.iter().map(|e| e.as_ptr()).collect();
    envp.push(ptr::null());
    let groups: (*const c_uint, usize) = match &spec.groups {
        Some(g) => (g.as_ptr(), g.len()),
        None => (ptr::null(), usize::MAX),
    };
    let child = Child {
        file: spec.file.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: spec.cwd.as_ref().map_or(ptr::null(), |c| c.as_ptr()),
        slave: spec.slave,
        uid: spec.uid,
        gid: spec.gid,
        groups,
    };
    let mut pipe = [-1 as c_int; 2];
    // SAFETY: everything the child touches lives in `spec`, `argv` and `envp`, which outlive the
    // fork in the parent and are copied with the address space into the child.
    unsafe {
        if libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(Error::last_os("pipe2"));
        }
        let pid = libc::fork();
        if pid < 0 {
            let e = Error::last_os("fork");
            libc::close(pipe[0]);
            libc::close(pipe[1]);
            return Err(e);
        }
        if pid == 0 {
            child.run(pipe[1]);
        }
        libc::close(pipe[1]);
        let mut report = [0u8; 8];
        let got = read_full(pipe[0], &mut report);
        libc::close(pipe[0]);
        if got == report.len() {
            let stage = u32::from_ne_bytes([report[0], report[1], report[2], report[3]]) as usize;
            let errno = i32::from_ne_bytes([report[4], report[5], report[6], report[7]]);
            let mut status = 0;
            while libc::waitpid(pid, &mut status, 0) < 0 && libc::errno() == libc::EINTR {}
            let syscall = STAGES.get(stage).copied().unwrap_or("spawn");
            let path = (stage == STAGES.len() - 1).then(|| spec.file.to_string_lossy().into_owned());
            return Err(Error::Os { errno, syscall: syscall.into(), path });
        }
        // The child is not reaped before we waitpid, so the pid cannot be reused meanwhile.
        // pidfd_open makes its fd close-on-exec itself.
        let pidfd = libc::syscall(libc::SYS_PIDFD_OPEN, pid as c_long, 0 as c_long);
        Ok((pid, if pidfd < 0 { -1 } else { pidfd as i32 }))
    }
}

/// Reads until `buf` is full or EOF; returns the byte count (EINTR retried, other errors end it).
unsafe fn read_full(fd: i32, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        let n = libc::read(fd, buf.as_mut_ptr().add(got).cast(), buf.len() - got);
        if n > 0 {
            got += n as usize;
        } else if n < 0 && libc::errno() == libc::EINTR {
            continue;
        } else {
            break;
        }
    }
    got
}

/// Raw pointers for the child: nothing here allocates or can panic.
struct Child {
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    cwd: *const c_char,
    slave: i32,
    uid: Option<u32>,
    gid: Option<u32>,
    groups: (*const c_uint, usize),
}

impl Child {
    /// The child side of `spawn`: async-signal-safe calls only, then exec or `_exit(127)`.
    unsafe fn run(&self, report: i32) -> ! {
        // Both fds move above stdio first: a node started with a closed stdio fd can hand us
        // 0..=2 for either, and dup2(fd, fd) would keep close-on-exec set.
        let report = libc::fcntl(report, libc::F_DUPFD_CLOEXEC, 10);
        if report < 0 {
            libc::_exit(127);
        }
        let fail = |stage: u32| -> ! {
            let errno = *__errno_location();
            let mut msg = [0u8; 8];
            let s = stage.to_ne_bytes();
            let e = errno.to_ne_bytes();
            let mut i = 0;
            while i < 4 {
                msg[i] = s[i];
                msg[4 + i] = e[i];
                i += 1;
            }
            libc::write(report, msg.as_ptr().cast(), msg.len());
            libc::_exit(127)
        };
        let slave = libc::fcntl(self.slave, libc::F_DUPFD_CLOEXEC, 10);
        if slave < 0 {
            fail(0);
        }
        // node ignores SIGPIPE and blocks signals on some threads; an exec keeps both.
        let empty = libc::SigSet { bits: [0; 16] };
        if libc::sigprocmask(libc::SIG_SETMASK, &empty, ptr::null_mut()) != 0 {
            fail(1);
        }
        let mut sig = 1;
        while sig < libc::NSIG {
            if sig != 9 && sig != 19 {
                libc::signal(sig, libc::SIG_DFL);
            }
            sig += 1;
        }
        if libc::setsid() < 0 {
            fail(2);
        }
        if libc::ioctl(slave, libc::TIOCSCTTY, 0 as c_int) != 0 {
            fail(3);
        }
        let mut fd = 0;
        while fd < 3 {
            if libc::dup2(slave, fd) < 0 {
                fail(4);
            }
            fd += 1;
        }
        libc::close(slave);
        if self.groups.1 != usize::MAX && libc::setgroups(self.groups.1, self.groups.0) != 0 {
            fail(5);
        }
        if let Some(gid) = self.gid {
            if libc::setgid(gid) != 0 {
                fail(6);
            }
        }
        if let Some(uid) = self.uid {
            if libc::setuid(uid) != 0 {
                fail(7);
            }
        }
        // Like login(1): a home directory we cannot enter means starting in /.
        if !self.cwd.is_null() && libc::chdir(self.cwd) != 0 {
            libc::chdir(c"/".as_ptr());
        }
        // Nothing else of node's may leak into the program: mark every fd above stdio
        // close-on-exec (close_range since Linux 5.11, else one fcntl per fd).
        if libc::syscall(libc::SYS_CLOSE_RANGE, 3 as c_uint, c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC) != 0 {
            let mut fd = 3;
            while fd < 4096 {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                fd += 1;
            }
        }
        libc::execve(self.file, self.argv, self.envp);
        fail(8)
    }
}

/// How a child ended.
pub struct Exit {
    /// Exit status when it exited, else None.
    pub code: Option<i32>,
    /// Signal number when a signal killed it, else None.
    pub signal: Option<i32>,
}

/// waitpid for `pid`: None while it runs (non-blocking), its exit once it ended.
pub fn reap(pid: i32, block: bool) -> Result<Option<Exit>> {
    let mut status: c_int = 0;
    loop {
        // SAFETY: waitpid writes one int.
        let r = unsafe { libc::waitpid(pid, &mut status, if block { 0 } else { libc::WNOHANG }) };
        if r == 0 {
            return Ok(None);
        }
        if r < 0 {
            if libc::errno() == libc::EINTR {
                continue;
            }
            return Err(Error::last_os("waitpid"));
        }
        break;
    }
    let sig = status & 0x7f;
    if sig == 0 {
        Ok(Some(Exit { code: Some((status >> 8) & 0xff), signal: None }))
    } else {
        Ok(Some(Exit { code: None, signal: Some(sig) }))
    }
}
