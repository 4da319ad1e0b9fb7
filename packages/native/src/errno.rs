//! errno numbers to names and messages (Linux asm-generic numbering, shared by x86_64 and
//! aarch64). Unknown numbers become `E<number>`.

const TABLE: &[(i32, &str, &str)] = &[
    (1, "EPERM", "operation not permitted"),
    (2, "ENOENT", "no such file or directory"),
    (3, "ESRCH", "no such process"),
    (4, "EINTR", "interrupted system call"),
    (5, "EIO", "input/output error"),
    (6, "ENXIO", "no such device or address"),
    (7, "E2BIG", "argument list too long"),
    (8, "ENOEXEC", "exec format error"),
    (9, "EBADF", "bad file descriptor"),
    (10, "ECHILD", "no child processes"),
    (11, "EAGAIN", "resource temporarily unavailable"),
    (12, "ENOMEM", "cannot allocate memory"),
    (13, "EACCES", "permission denied"),
    (14, "EFAULT", "bad address"),
    (16, "EBUSY", "device or resource busy"),
    (17, "EEXIST", "file exists"),
    (19, "ENODEV", "no such device"),
    (20, "ENOTDIR", "not a directory"),
    (21, "EISDIR", "is a directory"),
    (22, "EINVAL", "invalid argument"),
    (23, "ENFILE", "too many open files in system"),
    (24, "EMFILE", "too many open files"),
    (25, "ENOTTY", "inappropriate ioctl for device"),
    (26, "ETXTBSY", "text file busy"),
    (27, "EFBIG", "file too large"),
    (28, "ENOSPC", "no space left on device"),
    (29, "ESPIPE", "illegal seek"),
    (30, "EROFS", "read-only file system"),
    (32, "EPIPE", "broken pipe"),
    (34, "ERANGE", "numerical result out of range"),
    (36, "ENAMETOOLONG", "file name too long"),
    (38, "ENOSYS", "function not implemented"),
    (40, "ELOOP", "too many levels of symbolic links"),
    (75, "EOVERFLOW", "value too large for defined data type"),
    (95, "EOPNOTSUPP", "operation not supported"),
    (106, "EISCONN", "transport endpoint is already connected"),
    (107, "ENOTCONN", "transport endpoint is not connected"),
    (110, "ETIMEDOUT", "connection timed out"),
];

/// `("ENOTTY", "inappropriate ioctl for device")`, or `("E<n>", "errno <n>")` when unknown.
pub fn describe(errno: i32) -> (String, String) {
    match TABLE.iter().find(|(n, _, _)| *n == errno) {
        Some((_, name, msg)) => ((*name).to_string(), (*msg).to_string()),
        None => (format!("E{errno}"), format!("errno {errno}")),
    }
}
