//! Safe helpers over the raw N-API declarations: argument conversion with validation, value
//! creation, typed errors, and the one trampoline through which every exported function runs
//! (it catches panics, so none crosses the FFI boundary).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::ffi::{c_char, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::Once;

use crate::errno;
use crate::napi_sys::*;

/// Every exported function takes at most this many arguments.
pub const MAX_ARGS: usize = 8;

/// An error on its way to becoming a thrown JS error.
#[derive(Debug)]
pub enum Error {
    /// A failed syscall: `code` is the errno name, `syscall` names the call (e.g. `ioctl(IOCTL_EVTCHN_NOTIFY)`).
    Os { errno: i32, syscall: Cow<'static, str>, path: Option<String> },
    /// A bad argument: `code` ERR_INVALID_ARG.
    InvalidArg(String),
    /// A JS exception is already pending (e.g. a getter threw); leave it alone.
    Pending,
    /// An N-API call failed unexpectedly.
    Napi { status: napi_status, call: &'static str },
    /// A caught Rust panic: `code` ERR_NATIVE_PANIC.
    Panic(String),
    /// Any other failure with its own stable code (e.g. ERR_PAM_UNAVAILABLE).
    Coded { code: &'static str, message: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn os(errno: i32, syscall: impl Into<Cow<'static, str>>) -> Self {
        Error::Os { errno, syscall: syscall.into(), path: None }
    }
    /// The current thread's errno, for a syscall that just failed.
    pub fn last_os(syscall: impl Into<Cow<'static, str>>) -> Self {
        Self::os(crate::libc_sys::errno(), syscall)
    }
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidArg(msg.into())
    }
}

/// The napi_env of the current call. Only valid on the JS thread that owns it.
#[derive(Clone, Copy)]
pub struct Env(pub napi_env);

impl Env {
    /// Maps a status to Ok or an error; a pending JS exception is passed through untouched.
    #[inline]
    pub fn check(self, status: napi_status, call: &'static str) -> Result<()> {
        if status == NAPI_OK {
            return Ok(());
        }
        if status == NAPI_PENDING_EXCEPTION {
            return Err(Error::Pending);
        }
        Err(Error::Napi { status, call })
    }

    // ---- value creation ----------------------------------------------------------------

    pub fn undefined(self) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        self.check(unsafe { napi_get_undefined(self.0, &mut v) }, "napi_get_undefined")?;
        Ok(v)
    }
    pub fn null(self) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        self.check(unsafe { napi_get_null(self.0, &mut v) }, "napi_get_null")?;
        Ok(v)
    }
    pub fn boolean(self, b: bool) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        self.check(unsafe { napi_get_boolean(self.0, b, &mut v) }, "napi_get_boolean")?;
        Ok(v)
    }
    #[inline]
    pub fn int32(self, n: i32) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        self.check(unsafe { napi_create_int32(self.0, n, &mut v) }, "napi_create_int32")?;
        Ok(v)
    }
    pub fn uint32(self, n: u32) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        self.check(unsafe { napi_create_uint32(self.0, n, &mut v) }, "napi_create_uint32")?;
        Ok(v)
    }
    pub fn double(self, n: f64) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        self.check(unsafe { napi_create_double(self.0, n, &mut v) }, "napi_create_double")?;
        Ok(v)
    }
    pub fn string(self, s: &str) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        let st = unsafe { napi_create_string_utf8(self.0, s.as_ptr().cast(), s.len(), &mut v) };
        self.check(st, "napi_create_string_utf8")?;
        Ok(v)
    }
    pub fn object(self) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        self.check(unsafe { napi_create_object(self.0, &mut v) }, "napi_create_object")?;
        Ok(v)
    }
    pub fn array(self, len: usize) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        let st = unsafe { napi_create_array_with_length(self.0, len, &mut v) };
        self.check(st, "napi_create_array_with_length")?;
        Ok(v)
    }
    pub fn set_element(self, array: napi_value, index: u32, value: napi_value) -> Result<()> {
        self.check(unsafe { napi_set_element(self.0, array, index, value) }, "napi_set_element")
    }
    pub fn set(self, object: napi_value, name: &CStr, value: napi_value) -> Result<()> {
        let st = unsafe { napi_set_named_property(self.0, object, name.as_ptr(), value) };
        self.check(st, "napi_set_named_property")
    }
    /// Sets a property whose name is only known at run time (e.g. a struct field name).
    pub fn set_dynamic(self, object: napi_value, name: &str, value: napi_value) -> Result<()> {
        let mut bytes = Vec::with_capacity(name.len() + 1);
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
        let cname = CStr::from_bytes_with_nul(&bytes)
            .map_err(|_| Error::invalid(format!("property name {name:?} contains NUL")))?;
        self.set(object, cname, value)
    }
    pub fn freeze(self, object: napi_value) -> Result<()> {
        self.check(unsafe { napi_object_freeze(self.0, object) }, "napi_object_freeze")
    }
    pub fn function(self, name: &CStr, cb: napi_callback, data: *mut c_void) -> Result<napi_value> {
        let mut v = ptr::null_mut();
        let bytes = name.to_bytes();
        let st =
            unsafe { napi_create_function(self.0, bytes.as_ptr().cast(), bytes.len(), cb, data, &mut v) };
        self.check(st, "napi_create_function")?;
        Ok(v)
    }
    pub fn type_of(self, v: napi_value) -> Result<napi_valuetype> {
        let mut t = 0;
        self.check(unsafe { napi_typeof(self.0, v, &mut t) }, "napi_typeof")?;
        Ok(t)
    }

    // ---- argument conversion (validating; errors are ERR_INVALID_ARG) -------------------

    /// A number that must be an integer in `0..=max` (max at most 2^53 - 1).
    #[inline(always)]
    pub fn uint_arg(self, v: napi_value, name: &str, max: u64) -> Result<u64> {
        let mut d = 0f64;
        if unsafe { napi_get_value_double(self.0, v, &mut d) } != NAPI_OK {
            return Err(not_a_number(name));
        }
        // Up to 2^53 a double is an integer exactly when it survives the round trip through i64:
        // NaN saturates to 0 (≠ NaN), fractions lose their part, negatives fail `n >= 0` (-0 is
        // 0), anything at or above 2^63 comes back as 2^63 and fails `<= max`. Signed, because
        // x86-64 converts i64 ⇄ f64 in one instruction each but u64 only with fix-ups, and
        // because `d.trunc()` is a libm call there.
        let n = d as i64;
        if n as f64 == d && n >= 0 && n as u64 <= max {
            Ok(n as u64)
        } else {
            Err(not_an_index(name, max, d))
        }
    }
    #[inline]
    pub fn u32_arg(self, v: napi_value, name: &str) -> Result<u32> {
        Ok(self.uint_arg(v, name, u32::MAX as u64)? as u32)
    }
    #[inline]
    pub fn usize_arg(self, v: napi_value, name: &str) -> Result<usize> {
        Ok(self.uint_arg(v, name, MAX_SAFE_INTEGER.min(isize::MAX as u64))? as usize)
    }
    pub fn fd_arg(self, v: napi_value) -> Result<i32> {
        Ok(self.uint_arg(v, "fd", i32::MAX as u64)? as i32)
    }
    pub fn bool_arg(self, v: napi_value, name: &str) -> Result<bool> {
        let mut b = false;
        if unsafe { napi_get_value_bool(self.0, v, &mut b) } != NAPI_OK {
            return Err(Error::invalid(format!("{name} must be a boolean")));
        }
        Ok(b)
    }
    pub fn string_arg(self, v: napi_value, name: &str) -> Result<String> {
        let mut len = 0usize;
        let st = unsafe { napi_get_value_string_utf8(self.0, v, ptr::null_mut(), 0, &mut len) };
        if st != NAPI_OK {
            return Err(Error::invalid(format!("{name} must be a string")));
        }
        let mut buf = vec![0u8; len + 1];
        let mut written = 0usize;
        let st = unsafe {
            napi_get_value_string_utf8(self.0, v, buf.as_mut_ptr() as *mut c_char, len + 1, &mut written)
        };
        self.check(st, "napi_get_value_string_utf8")?;
        buf.truncate(written);
        String::from_utf8(buf).map_err(|_| Error::invalid(format!("{name} is not valid UTF-8")))
    }
    /// True for `undefined` and `null` (optional arguments).
    pub fn is_nullish(self, v: napi_value) -> Result<bool> {
        let t = self.type_of(v)?;
        Ok(t == NAPI_UNDEFINED || t == NAPI_NULL)
    }
    /// A string for C: rejects NUL bytes.
    pub fn cstring_arg(self, v: napi_value, name: &str) -> Result<std::ffi::CString> {
        let s = self.string_arg(v, name)?;
        std::ffi::CString::new(s).map_err(|_| Error::invalid(format!("{name} must not contain NUL bytes")))
    }
    /// An array of at most `max_len` strings for C (no NUL bytes).
    pub fn cstring_list_arg(self, v: napi_value, name: &str, max_len: u32) -> Result<Vec<std::ffi::CString>> {
        let mut is_array = false;
        self.check(unsafe { napi_is_array(self.0, v, &mut is_array) }, "napi_is_array")?;
        if !is_array {
            return Err(Error::invalid(format!("{name} must be an array of strings")));
        }
        let mut len = 0u32;
        self.check(unsafe { napi_get_array_length(self.0, v, &mut len) }, "napi_get_array_length")?;
        if len > max_len {
            return Err(Error::invalid(format!("{name} must have at most {max_len} elements, got {len}")));
        }
        let mut out = Vec::with_capacity(len as usize);
        for i in 0..len {
            let mut e = ptr::null_mut();
            self.check(unsafe { napi_get_element(self.0, v, i, &mut e) }, "napi_get_element")?;
            out.push(self.cstring_arg(e, &format!("{name}[{i}]"))?);
        }
        Ok(out)
    }
    /// An array of strings, as JS values (for results).
    pub fn string_array(self, items: &[String]) -> Result<napi_value> {
        let array = self.array(items.len())?;
        for (i, s) in items.iter().enumerate() {
            self.set_element(array, i as u32, self.string(s)?)?;
        }
        Ok(array)
    }
    /// An array of numbers, as a JS value.
    pub fn uint_array(self, items: &[u32]) -> Result<napi_value> {
        let array = self.array(items.len())?;
        for (i, n) in items.iter().enumerate() {
            self.set_element(array, i as u32, self.uint32(*n)?)?;
        }
        Ok(array)
    }
    pub fn function_arg(self, v: napi_value, name: &str) -> Result<napi_value> {
        if self.type_of(v)? != NAPI_FUNCTION {
            return Err(Error::invalid(format!("{name} must be a function")));
        }
        Ok(v)
    }

    /// An ArrayBuffer (not a view): its data pointer and length. Detached: (null, 0).
    pub fn arraybuffer_arg(self, v: napi_value, name: &str) -> Result<(*mut u8, usize)> {
        let mut data = ptr::null_mut();
        let mut len = 0usize;
        if unsafe { napi_get_arraybuffer_info(self.0, v, &mut data, &mut len) } != NAPI_OK {
            return Err(Error::invalid(format!("{name} must be an ArrayBuffer")));
        }
        Ok((data as *mut u8, len))
    }

    /// Bytes of an ArrayBuffer, any TypedArray or a DataView (views over a SharedArrayBuffer
    /// included). A detached buffer has length 0. Tries the most common case first.
    #[inline]
    pub fn bytes_arg(self, v: napi_value, name: &str) -> Result<(*mut u8, usize)> {
        let mut data = ptr::null_mut();
        let mut len = 0usize;
        let mut ty = 0;
        let mut byte_offset = 0usize;
        let st = unsafe {
            napi_get_typedarray_info(
                self.0,
                v,
                &mut ty,
                &mut len,
                &mut data,
                ptr::null_mut(),
                &mut byte_offset,
            )
        };
        if st == NAPI_OK {
            return Ok((data as *mut u8, len * typed_array_element_size(ty)));
        }
        if unsafe { napi_get_arraybuffer_info(self.0, v, &mut data, &mut len) } == NAPI_OK {
            return Ok((data as *mut u8, len));
        }
        let st = unsafe {
            napi_get_dataview_info(self.0, v, &mut len, &mut data, ptr::null_mut(), &mut byte_offset)
        };
        if st == NAPI_OK {
            return Ok((data as *mut u8, len));
        }
        Err(Error::invalid(format!(
            "{name} must be an ArrayBuffer, a TypedArray or a DataView (wrap a SharedArrayBuffer in a Uint8Array)"
        )))
    }

    /// The bytes of a Uint8Array (or Buffer), or of an ArrayBuffer: data pointer and byte length.
    /// A detached buffer is (null, 0).
    ///
    /// Views are tried first: they are what the ring package passes (asking JS for `view.buffer`
    /// and `view.byteOffset` costs more than any query here). `napi_get_buffer_info` is the
    /// cheapest view query: it reports the byte length directly instead of walking the typed
    /// array kinds. Node accepts any ArrayBufferView there (a DataView or a Uint16Array gives
    /// its bytes), which is harmless: offsets and lengths are bytes and checked against it.
    #[inline(always)]
    pub fn byte_buffer_arg(self, v: napi_value, name: &str) -> Result<(*mut u8, usize)> {
        let mut data = ptr::null_mut();
        let mut len = 0usize;
        if unsafe { napi_get_buffer_info(self.0, v, &mut data, &mut len) } == NAPI_OK {
            return Ok((data as *mut u8, len));
        }
        if unsafe { napi_get_arraybuffer_info(self.0, v, &mut data, &mut len) } == NAPI_OK {
            return Ok((data as *mut u8, len));
        }
        Err(not_bytes(name))
    }

    /// Any typed array: its element type, data pointer and element count; None if `v` is not one.
    #[inline]
    fn typed_view(self, v: napi_value) -> Option<(i32, *mut std::ffi::c_void, usize)> {
        let mut data = ptr::null_mut();
        let mut len = 0usize;
        let mut ty = -1;
        let st = unsafe {
            napi_get_typedarray_info(
                self.0,
                v,
                &mut ty,
                &mut len,
                &mut data,
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        (st == NAPI_OK).then_some((ty, data, len))
    }

    /// A Uint8Array (or Buffer, or Uint8ClampedArray): data pointer and byte length.
    #[inline]
    pub fn u8_view_arg(self, v: napi_value, name: &str) -> Result<(*mut u8, usize)> {
        match self.typed_view(v) {
            Some((ty, data, len)) if ty == NAPI_UINT8_ARRAY || ty == NAPI_UINT8_CLAMPED_ARRAY => {
                Ok((data as *mut u8, len))
            }
            _ => Err(Error::invalid(format!("{name} must be a Uint8Array"))),
        }
    }

    /// A Uint32Array: data pointer and element count.
    pub fn u32_view_arg(self, v: napi_value, name: &str) -> Result<(*mut u32, usize)> {
        match self.typed_view(v) {
            Some((ty, data, len)) if ty == NAPI_UINT32_ARRAY => Ok((data as *mut u32, len)),
            _ => Err(Error::invalid(format!("{name} must be a Uint32Array"))),
        }
    }

    /// An array of integers, each in `0..=max`, with `1..=max_len` elements.
    pub fn uint_list_arg(self, v: napi_value, name: &str, max: u64, max_len: u32) -> Result<Vec<u64>> {
        self.uint_list_arg_from(v, name, max, 1, max_len)
    }

    /// An array of integers, each in `0..=max`, with `min_len..=max_len` elements.
    pub fn uint_list_arg_from(
        self,
        v: napi_value,
        name: &str,
        max: u64,
        min_len: u32,
        max_len: u32,
    ) -> Result<Vec<u64>> {
        let mut is_array = false;
        self.check(unsafe { napi_is_array(self.0, v, &mut is_array) }, "napi_is_array")?;
        if !is_array {
            return Err(Error::invalid(format!("{name} must be an array of numbers")));
        }
        let mut len = 0u32;
        self.check(unsafe { napi_get_array_length(self.0, v, &mut len) }, "napi_get_array_length")?;
        if len < min_len || len > max_len {
            return Err(Error::invalid(format!(
                "{name} must have {min_len}..={max_len} elements, got {len}"
            )));
        }
        let mut out = Vec::with_capacity(len as usize);
        for i in 0..len {
            let mut e = ptr::null_mut();
            self.check(unsafe { napi_get_element(self.0, v, i, &mut e) }, "napi_get_element")?;
            out.push(self.uint_arg(e, &format!("{name}[{i}]"), max)?);
        }
        Ok(out)
    }

    // ---- errors ---------------------------------------------------------------------------

    /// Throws `err` as a JS Error with `code`, optional `errno`/`syscall`/`path`, and the
    /// `Symbol.for('xencons.error')` brand. Never fails loudly: if building the error fails,
    /// whatever exception N-API left pending stands.
    pub fn throw(self, err: Error) {
        let _ = self.try_throw(err);
    }

    /// From a threadsafe-function callback: hands `err` to `process.on('uncaughtException')`.
    /// Node 20 swallows exceptions left pending by a tsfn callback (DEP0168) unless run with
    /// --force-node-api-uncaught-exceptions-policy, so they are raised as fatal exceptions here.
    pub fn throw_uncaught(self, err: Error) {
        self.throw(err);
        let mut exception = std::ptr::null_mut();
        unsafe {
            if napi_get_and_clear_last_exception(self.0, &mut exception) == NAPI_OK && !exception.is_null() {
                napi_fatal_exception(self.0, exception);
            }
        }
    }

    fn try_throw(self, err: Error) -> Result<()> {
        let mut pending = false;
        unsafe { napi_is_exception_pending(self.0, &mut pending) };
        if pending {
            return Ok(());
        }
        let (code, message, errno, syscall, path) = match err {
            Error::Pending => return Ok(()),
            Error::Os { errno, syscall, path } => {
                let (name, text) = errno::describe(errno);
                let message = match &path {
                    Some(p) => format!("{name}: {text}, {syscall} '{p}'"),
                    None => format!("{name}: {text}, {syscall}"),
                };
                (name, message, Some(errno), Some(syscall), path)
            }
            Error::InvalidArg(msg) => ("ERR_INVALID_ARG".to_string(), msg, None, None, None),
            Error::Napi { status, call } => (
                "ERR_NATIVE_NAPI".to_string(),
                format!("{call} failed with napi_status {status}"),
                None,
                None,
                None,
            ),
            Error::Coded { code, message } => (code.to_string(), message, None, None, None),
            Error::Panic(msg) => {
                ("ERR_NATIVE_PANIC".to_string(), format!("panic in native code: {msg}"), None, None, None)
            }
        };
        let code_v = self.string(&code)?;
        let msg_v = self.string(&message)?;
        let mut error = ptr::null_mut();
        self.check(unsafe { napi_create_error(self.0, code_v, msg_v, &mut error) }, "napi_create_error")?;
        if let Some(n) = errno {
            self.set(error, c"errno", self.int32(n)?)?;
        }
        if let Some(s) = syscall {
            self.set(error, c"syscall", self.string(&s)?)?;
        }
        if let Some(p) = path {
            self.set(error, c"path", self.string(&p)?)?;
        }
        self.brand(error)?;
        self.check(unsafe { napi_throw(self.0, error) }, "napi_throw")
    }

    /// Defines the non-enumerable `Symbol.for('xencons.error') = true`, like XenconsError does.
    fn brand(self, object: napi_value) -> Result<()> {
        let desc = b"xencons.error";
        let mut symbol = ptr::null_mut();
        let st = unsafe { node_api_symbol_for(self.0, desc.as_ptr().cast(), desc.len(), &mut symbol) };
        self.check(st, "node_api_symbol_for")?;
        let prop = napi_property_descriptor {
            utf8name: ptr::null(),
            name: symbol,
            method: None,
            getter: None,
            setter: None,
            value: self.boolean(true)?,
            attributes: NAPI_DEFAULT,
            data: ptr::null_mut(),
        };
        self.check(unsafe { napi_define_properties(self.0, object, 1, &prop) }, "napi_define_properties")
    }
}

pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

#[cold]
#[inline(never)]
fn not_a_number(name: &str) -> Error {
    Error::invalid(format!("{name} must be a number"))
}

#[cold]
#[inline(never)]
fn not_bytes(name: &str) -> Error {
    Error::invalid(format!("{name} must be a Uint8Array or an ArrayBuffer"))
}

#[cold]
#[inline(never)]
fn not_an_index(name: &str, max: u64, got: f64) -> Error {
    Error::invalid(format!("{name} must be an integer in 0..={max}, got {got}"))
}

pub(crate) fn typed_array_element_size(ty: napi_typedarray_type) -> usize {
    match ty {
        0..=2 => 1,
        3 | 4 => 2,
        5..=7 => 4,
        _ => 8,
    }
}

// ---- exported functions and panics ----------------------------------------------------------

/// The signature of an exported function of `N` arguments; those not passed are `undefined`,
/// those past `N` are ignored.
pub type HandlerN<const N: usize> = unsafe fn(Env, &[napi_value; N]) -> Result<napi_value>;
/// Most exported functions: up to `MAX_ARGS` arguments.
pub type Handler = HandlerN<MAX_ARGS>;

thread_local! {
    static CATCHING: Cell<u32> = const { Cell::new(0) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs (once per process) a panic hook that records the message and location for the JS
/// error instead of printing, while a panic is being caught on this thread. Panics elsewhere
/// (e.g. on the poll thread) are printed to stderr as usual.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if CATCHING.with(|c| c.get()) > 0 {
                let msg = payload_message(info.payload());
                let text = match info.location() {
                    Some(l) => format!("{msg} (at {}:{})", l.file(), l.line()),
                    None => msg,
                };
                LAST_PANIC.with(|p| *p.borrow_mut() = Some(text));
            } else {
                default(info);
            }
        }));
    });
}

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Runs `f`, turning a panic into `Error::Panic` (the panic stays on this side of the FFI).
pub fn guard<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    CATCHING.with(|c| c.set(c.get() + 1));
    let r = catch_unwind(AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(c.get() - 1));
    match r {
        Ok(r) => r,
        Err(payload) => {
            let msg = LAST_PANIC
                .with(|p| p.borrow_mut().take())
                .unwrap_or_else(|| payload_message(payload.as_ref()));
            Err(Error::Panic(msg))
        }
    }
}

/// The single C entry point of every exported function: the handler travels in `data`. `N` is
/// the handler's argument count, so hot functions with few arguments unpack no more than they use.
pub unsafe extern "C" fn trampoline<const N: usize>(env: napi_env, info: napi_callback_info) -> napi_value {
    let mut argc = N;
    let mut argv: [napi_value; N] = [ptr::null_mut(); N];
    let mut data: *mut c_void = ptr::null_mut();
    let st = napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), &mut data);
    let env = Env(env);
    if st != NAPI_OK || data.is_null() {
        env.throw(Error::Napi { status: st, call: "napi_get_cb_info" });
        return ptr::null_mut();
    }
    // SAFETY: `data` was set from a `HandlerN<N>` in `export()` and never changes.
    let handler = std::mem::transmute::<*mut c_void, HandlerN<N>>(data);
    match guard(|| handler(env, &argv)) {
        Ok(v) => v,
        Err(e) => {
            env.throw(e);
            ptr::null_mut()
        }
    }
}

/// Adds `name: function` to `exports`, dispatching to `handler` through the trampoline.
pub fn export<const N: usize>(
    env: Env,
    exports: napi_value,
    name: &CStr,
    handler: HandlerN<N>,
) -> Result<()> {
    let f = env.function(name, Some(trampoline::<N>), handler as *mut c_void)?;
    env.set(exports, name, f)
}
