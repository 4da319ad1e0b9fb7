//! Bound rings: a ring layout validated once against its page and handed to JS as an opaque
//! handle, so the hot calls (`ringWrite`, `ringRead`) take 4 arguments instead of 8 and skip the
//! layout checks.
//!
//! Safety rests on three things:
//! - The handle is an External whose value is a key into this thread's table, never a pointer:
//!   a forged or foreign External finds no entry (or, at worst, another ring bound here) and is
//!   refused with ERR_INVALID_ARG. An entry also records its env, so one env never uses a
//!   reference made by another on the same thread.
//! - The entry holds a strong reference to the buffer behind the page, so the memory cannot be
//!   collected while the handle lives. Deleting it is the External's finalizer's job.
//! - An ArrayBuffer can still be detached (`unmap()` of a native mapping, a transfer) or shrunk
//!   (a resizable buffer) after binding. Every operation therefore re-reads the buffer's data
//!   pointer and length through the reference and moves nothing, returning RING_DETACHED, unless
//!   they still cover what was validated. No JS runs between that check and the copy. A
//!   SharedArrayBuffer can be neither detached nor shrunk, so for it the reference is enough.

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr;

use crate::napi::{guard, typed_array_element_size, Env, Error, Result};
use crate::napi_sys::*;
use crate::ring::Ring;

/// Returned by the bound operations when the page's buffer was detached or shrunk since binding.
pub const RING_DETACHED: i32 = -2;

/// Table index bits of a handle key; the bits above hold the entry's generation.
const INDEX_BITS: u32 = 20;
const INDEX_MASK: usize = (1 << INDEX_BITS) - 1;
/// Most rings bound at once on one thread.
const MAX_BOUND: usize = 1 << INDEX_BITS;

/// How an operation re-checks the page's memory.
#[derive(Clone, Copy)]
enum Backing {
    /// The page lies in an ArrayBuffer: it is usable while the buffer's data pointer is still
    /// `base` and its length still covers `extent` (the end of the page in the buffer).
    ArrayBuffer { base: *mut u8, extent: usize },
    /// The page lies in a SharedArrayBuffer, which cannot be detached or shrunk.
    Shared,
}

#[derive(Clone, Copy)]
struct Bound {
    /// The handle's value: table index and generation.
    key: usize,
    env: napi_env,
    /// Strong reference to the ArrayBuffer (or, for a SharedArrayBuffer, the view) behind the page.
    page: napi_ref,
    backing: Backing,
    ring: Ring,
}

struct Table {
    slots: Vec<Option<Bound>>,
    free: Vec<usize>,
    generation: usize,
}

impl Table {
    #[inline]
    fn get(&self, key: usize) -> Option<&Bound> {
        match self.slots.get(key & INDEX_MASK) {
            Some(Some(b)) if b.key == key => Some(b),
            _ => None,
        }
    }

    /// Reserves a slot; returns the key the entry must be stored under.
    fn reserve(&mut self) -> Result<usize> {
        let index = match self.free.pop() {
            Some(i) => i,
            None if self.slots.len() < MAX_BOUND => {
                self.slots.push(None);
                self.slots.len() - 1
            }
            None => return Err(Error::invalid(format!("more than {MAX_BOUND} rings bound on this thread"))),
        };
        // Generation 0 never occurs, so no key is 0..MAX_BOUND (a small integer smuggled in
        // through some other addon's External).
        self.generation = (self.generation % (usize::MAX >> INDEX_BITS)) + 1;
        Ok(self.generation << INDEX_BITS | index)
    }

    fn take(&mut self, key: usize) -> Option<Bound> {
        let index = key & INDEX_MASK;
        let slot = self.slots.get_mut(index)?;
        if slot.is_some_and(|b| b.key == key) {
            self.free.push(index);
            slot.take()
        } else {
            None
        }
    }

    /// Returns a reserved slot that was not filled.
    fn release(&mut self, key: usize) {
        let index = key & INDEX_MASK;
        if matches!(self.slots.get(index), Some(None)) {
            self.free.push(index);
        }
    }
}

thread_local! {
    static TABLE: RefCell<Table> =
        const { RefCell::new(Table { slots: Vec::new(), free: Vec::new(), generation: 0 }) };
}

/// Where a page's bytes are, and what to reference and re-check to keep using them.
struct Page {
    /// The value the handle keeps alive.
    keep: napi_value,
    start: *mut u8,
    len: usize,
    backing: Backing,
}

/// Resolves `page` (an ArrayBuffer, a TypedArray or a DataView, over an ArrayBuffer or a
/// SharedArrayBuffer) to its bytes and its backing buffer.
fn page_of(env: Env, v: napi_value) -> Result<Page> {
    let mut data: *mut c_void = ptr::null_mut();
    let mut len = 0usize;
    if unsafe { napi_get_arraybuffer_info(env.0, v, &mut data, &mut len) } == NAPI_OK {
        let start = data as *mut u8;
        return Ok(Page { keep: v, start, len, backing: Backing::ArrayBuffer { base: start, extent: len } });
    }
    let mut buffer = ptr::null_mut();
    let mut byte_offset = 0usize;
    let mut ty = 0;
    let mut count = 0usize;
    let view_len = if unsafe {
        napi_get_typedarray_info(env.0, v, &mut ty, &mut count, &mut data, &mut buffer, &mut byte_offset)
    } == NAPI_OK
    {
        count * typed_array_element_size(ty)
    } else if unsafe { napi_get_dataview_info(env.0, v, &mut len, &mut data, &mut buffer, &mut byte_offset) }
        == NAPI_OK
    {
        len
    } else {
        return Err(Error::invalid(
            "page must be an ArrayBuffer, a TypedArray or a DataView (wrap a SharedArrayBuffer in a Uint8Array)",
        ));
    };
    let start = data as *mut u8;
    let mut base: *mut c_void = ptr::null_mut();
    let mut buffer_len = 0usize;
    if unsafe { napi_get_arraybuffer_info(env.0, buffer, &mut base, &mut buffer_len) } == NAPI_OK {
        let extent = byte_offset.checked_add(view_len).filter(|&e| e <= buffer_len);
        return match extent {
            Some(extent) if view_len == 0 || start == (base as *mut u8).wrapping_add(byte_offset) => {
                Ok(Page {
                    keep: buffer,
                    start,
                    len: view_len,
                    backing: Backing::ArrayBuffer { base: base as *mut u8, extent },
                })
            }
            _ => Err(Error::invalid("page view does not lie inside its ArrayBuffer")),
        };
    }
    // A view's buffer that is not an ArrayBuffer is a SharedArrayBuffer (the only other kind).
    // Keep the view: it keeps the SharedArrayBuffer, whose memory never moves or shrinks.
    Ok(Page { keep: v, start, len: view_len, backing: Backing::Shared })
}

unsafe extern "C" fn finalize(env: napi_env, data: *mut c_void, _hint: *mut c_void) {
    let _ = guard(|| {
        // try_with: during thread exit the table may already be gone (and the env with it).
        let taken = TABLE.try_with(|t| t.borrow_mut().take(data as usize)).ok().flatten();
        if let Some(b) = taken {
            if b.env == env {
                napi_delete_reference(env, b.page);
            }
        }
        Ok(())
    });
}

/// Validates the ring inside `page` once and returns its handle (an External).
pub fn bind(
    env: Env,
    page: napi_value,
    data_offset: u64,
    size: u64,
    prod_offset: u64,
    cons_offset: u64,
) -> Result<napi_value> {
    let p = page_of(env, page)?;
    let ring = Ring::new(p.start, p.len, Some(data_offset), size, prod_offset, cons_offset)?;
    let key = TABLE.with(|t| t.borrow_mut().reserve())?;
    let made = (|| {
        let mut page_ref = ptr::null_mut();
        env.check(
            unsafe { napi_create_reference(env.0, p.keep, 1, &mut page_ref) },
            "napi_create_reference",
        )?;
        let mut handle = ptr::null_mut();
        let st = unsafe {
            napi_create_external(env.0, key as *mut c_void, Some(finalize), ptr::null_mut(), &mut handle)
        };
        if let Err(e) = env.check(st, "napi_create_external") {
            unsafe { napi_delete_reference(env.0, page_ref) };
            return Err(e);
        }
        Ok((page_ref, handle))
    })();
    TABLE.with(|t| {
        let mut t = t.borrow_mut();
        match made {
            Ok((page_ref, handle)) => {
                t.slots[key & INDEX_MASK] =
                    Some(Bound { key, env: env.0, page: page_ref, backing: p.backing, ring });
                Ok(handle)
            }
            Err(e) => {
                t.release(key);
                Err(e)
            }
        }
    })
}

/// The ring behind `handle`, or None when its page was detached or shrunk since binding (the
/// caller returns RING_DETACHED). ERR_INVALID_ARG if `handle` is not a live handle of this env.
#[inline(always)]
pub fn lookup(env: Env, handle: napi_value) -> Result<Option<Ring>> {
    let mut data: *mut c_void = ptr::null_mut();
    if unsafe { napi_get_value_external(env.0, handle, &mut data) } != NAPI_OK {
        return Err(not_a_handle());
    }
    // The page check runs inside the borrow, so only the ring (4 words) is copied out. It makes
    // N-API calls that run no JS and no finalizer, so the table cannot be re-entered.
    let found = TABLE.with(|t| {
        let t = t.borrow();
        let b = t.get(data as usize).filter(|b| b.env == env.0)?;
        Some(page_live(env, b).then_some(b.ring))
    });
    found.ok_or_else(not_a_handle)
}

/// True while the page's memory is still what was validated at bind time.
#[inline(always)]
fn page_live(env: Env, b: &Bound) -> bool {
    match b.backing {
        Backing::Shared => true,
        Backing::ArrayBuffer { base, extent } => {
            let mut buffer = ptr::null_mut();
            let mut data: *mut c_void = ptr::null_mut();
            let mut len = 0usize;
            let read = unsafe {
                napi_get_reference_value(env.0, b.page, &mut buffer) == NAPI_OK
                    && napi_get_arraybuffer_info(env.0, buffer, &mut data, &mut len) == NAPI_OK
            };
            read && data as *mut u8 == base && len >= extent
        }
    }
}

#[cold]
#[inline(never)]
fn not_a_handle() -> Error {
    Error::invalid("handle must be a ring handle returned by ringBind() in this thread")
}
