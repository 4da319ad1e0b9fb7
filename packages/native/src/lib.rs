//! @xencons/native: the Rust N-API core of xencons.
//!
//! - `napi_sys`: hand-declared N-API C functions (no dependencies; node provides the symbols).
//! - `libc_sys`: hand-declared libc functions and Linux constants.
//! - `napi`: safe helpers (argument validation, typed errors, the panic-catching trampoline).
//! - `exports`: the functions exported to JS.
//! - `map`, `ring`, `xen`, `poller`: page mappings, fenced ring copies, /dev/xen devices, and the
//!   epoll thread.
//! - `bound`: ring handles (a layout validated once, its page re-checked cheaply on each call).
//! - `pty`, `user`, `pam`: pseudo-terminals and sessions (fork/exec as another user with a
//!   controlling tty, waitpid), the passwd/group databases, PAM loaded at run time.

mod bound;
mod errno;
mod exports;
mod libc_sys;
mod map;
mod napi;
mod napi_sys;
mod pam;
mod poller;
mod pty;
mod pump;
mod ring;
mod user;
mod xen;

use napi::{guard, Env};
use napi_sys::{napi_env, napi_value};

/// Module entry point, called by node once per environment (main thread and each worker).
///
/// # Safety
/// Called by node with a valid env and exports object.
#[no_mangle]
pub unsafe extern "C" fn napi_register_module_v1(env: napi_env, exports: napi_value) -> napi_value {
    napi::install_panic_hook();
    let env = Env(env);
    match guard(|| exports::register(env, exports)) {
        Ok(()) => exports,
        Err(e) => {
            env.throw(e);
            std::ptr::null_mut()
        }
    }
}

/// The Node-API version this addon is written against (9: `node_api_symbol_for`).
#[no_mangle]
pub extern "C" fn node_api_module_get_api_version_v1() -> i32 {
    9
}
