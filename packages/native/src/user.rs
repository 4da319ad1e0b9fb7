//! The passwd and group databases through libc (so NSS sources such as LDAP or systemd's
//! dynamic users count, unlike parsing /etc/passwd), and this process's supplementary groups.

use std::ffi::{c_char, c_int, c_uint, CStr, CString};
use std::ptr;

use crate::libc_sys as libc;
use crate::napi::{Error, Result};

pub struct Passwd {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub gecos: String,
    pub dir: String,
    pub shell: String,
}

/// The largest buffer a lookup may need before we give up (ERANGE past this is a broken NSS).
const MAX_BUFFER: usize = 1 << 20;

enum Key<'a> {
    Name(&'a CStr),
    Uid(u32),
}

fn lookup(key: Key) -> Result<Option<Passwd>> {
    let mut size = 1024usize;
    loop {
        let mut buf = vec![0 as c_char; size];
        // SAFETY: an all-zero passwd is valid (null pointers, zero ids); it is filled by the call.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = ptr::null_mut();
        // SAFETY: buf and pwd outlive the call; the result points into them.
        let rc = unsafe {
            match key {
                Key::Name(n) => libc::getpwnam_r(n.as_ptr(), &mut pwd, buf.as_mut_ptr(), size, &mut result),
                Key::Uid(u) => libc::getpwuid_r(u, &mut pwd, buf.as_mut_ptr(), size, &mut result),
            }
        };
        if rc == libc::ERANGE && size < MAX_BUFFER {
            size *= 4;
            continue;
        }
        if rc != 0 {
            let call = if matches!(key, Key::Name(_)) { "getpwnam_r" } else { "getpwuid_r" };
            return Err(Error::os(rc, call));
        }
        if result.is_null() {
            return Ok(None);
        }
        let text = |p: *mut c_char| {
            if p.is_null() {
                String::new()
            } else {
                // SAFETY: NUL-terminated strings inside buf.
                unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
            }
        };
        return Ok(Some(Passwd {
            name: text(pwd.pw_name),
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
            gecos: text(pwd.pw_gecos),
            dir: text(pwd.pw_dir),
            shell: text(pwd.pw_shell),
        }));
    }
}

pub fn getpwnam(name: &CStr) -> Result<Option<Passwd>> {
    lookup(Key::Name(name))
}

pub fn getpwuid(uid: u32) -> Result<Option<Passwd>> {
    lookup(Key::Uid(uid))
}

/// The groups `name` belongs to, `gid` first (what initgroups would set).
pub fn getgrouplist(name: &CString, gid: u32) -> Result<Vec<u32>> {
    let mut n: c_int = 64;
    loop {
        let mut groups = vec![0 as c_uint; n as usize];
        let mut count = n;
        // SAFETY: groups has room for `count` entries; the call updates `count`.
        let rc = unsafe { libc::getgrouplist(name.as_ptr(), gid, groups.as_mut_ptr(), &mut count) };
        if rc >= 0 {
            groups.truncate(count.max(0) as usize);
            return Ok(groups);
        }
        // -1: too small, `count` is the size needed (glibc); musl may not update it.
        if count <= n {
            count = n * 2;
        }
        if count > 65536 {
            return Err(Error::os(libc::ERANGE, "getgrouplist"));
        }
        n = count;
    }
}

/// Sets this process's supplementary groups (all threads; needs CAP_SETGID).
pub fn setgroups(list: &[u32]) -> Result<()> {
    // SAFETY: list.len() entries.
    if unsafe { libc::setgroups(list.len(), list.as_ptr()) } != 0 {
        return Err(Error::last_os("setgroups"));
    }
    Ok(())
}

/// This process's supplementary groups.
pub fn getgroups() -> Result<Vec<u32>> {
    // SAFETY: size 0 asks for the count; then a buffer of that size.
    unsafe {
        let n = libc::getgroups(0, ptr::null_mut());
        if n < 0 {
            return Err(Error::last_os("getgroups"));
        }
        let mut list = vec![0 as c_uint; n as usize];
        let got = libc::getgroups(n, list.as_mut_ptr());
        if got < 0 {
            return Err(Error::last_os("getgroups"));
        }
        list.truncate(got as usize);
        Ok(list)
    }
}
