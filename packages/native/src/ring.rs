//! Fenced copies in and out of a Xen-style byte ring (io/console.h, io/xs_wire.h).
//!
//! Free-running u32 indices masked by a power-of-two size. The side that moves data loads the
//! other side's index once with acquire order, copies, then publishes its own index with
//! release order; its own index is read with a plain (relaxed) load because only it writes it.
//! `prod - cons` (mod 2^32) above `size` means the page is corrupt: nothing is read, written or
//! published and RING_CORRUPT is returned.

use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::napi::{Error, Result};

pub const RING_CORRUPT: i32 = -1;

/// Largest ring accepted: return values must fit an i32.
const MAX_RING_SIZE: u64 = 1 << 30;

/// A validated ring inside a page: every pointer derived from it stays inside the page.
#[derive(Clone, Copy)]
pub struct Ring {
    data: *mut u8,
    mask: u32,
    prod: *const AtomicU32,
    cons: *const AtomicU32,
}

impl Ring {
    /// Checks that the data area and both index fields lie inside `page[..page_len]`, that the
    /// indices are 4-byte aligned in memory and do not overlap the data or each other, and that
    /// `size` is a power of two.
    #[inline]
    /// `data_offset` None (for `ringQueued`) checks only the indices; `data` is then unusable.
    pub fn new(
        page: *mut u8,
        page_len: usize,
        data_offset: Option<u64>,
        size: u64,
        prod_offset: u64,
        cons_offset: u64,
    ) -> Result<Ring> {
        let len = page_len as u64;
        if size == 0 || size > MAX_RING_SIZE || !size.is_power_of_two() {
            return Err(Error::invalid(format!("ring size must be a power of two in 1..=2^30, got {size}")));
        }
        // Without a data area (ringQueued) an empty range never overlaps the indices.
        let (data_offset, data_size) = match data_offset {
            Some(d) => (d, size),
            None => (0, 0),
        };
        if data_offset + data_size > len {
            return Err(Error::invalid(format!(
                "ring data {data_offset}..{} lies outside the page (byteLength {len})",
                data_offset + data_size
            )));
        }
        for (name, off) in [("prodOffset", prod_offset), ("consOffset", cons_offset)] {
            if off + 4 > len {
                return Err(Error::invalid(format!(
                    "{name} {off} + 4 lies outside the page (byteLength {len})"
                )));
            }
            if (page as usize).wrapping_add(off as usize) % 4 != 0 {
                return Err(Error::invalid(format!("{name} {off} is not 4-byte aligned in memory")));
            }
            if off < data_offset + data_size && data_offset < off + 4 {
                return Err(Error::invalid(format!("{name} {off} overlaps the ring data")));
            }
        }
        if prod_offset.abs_diff(cons_offset) < 4 {
            return Err(Error::invalid("prodOffset and consOffset overlap"));
        }
        // SAFETY: every offset was just checked against the page length.
        unsafe {
            Ok(Ring {
                data: page.add(data_offset as usize),
                mask: (size - 1) as u32,
                prod: page.add(prod_offset as usize) as *const AtomicU32,
                cons: page.add(cons_offset as usize) as *const AtomicU32,
            })
        }
    }

    #[inline]
    pub fn size(&self) -> u32 {
        self.mask + 1
    }

    /// Copies up to `src_len` bytes from `src` into free space; returns bytes moved or RING_CORRUPT.
    ///
    /// # Safety
    /// `src` must be valid for `src_len` reads (it may alias the page: copies are memmove).
    #[inline]
    pub unsafe fn produce(&self, src: *const u8, src_len: usize) -> i32 {
        let cons = (*self.cons).load(Ordering::Acquire);
        let prod = (*self.prod).load(Ordering::Relaxed);
        let queued = prod.wrapping_sub(cons);
        if queued > self.size() {
            return RING_CORRUPT;
        }
        let n = (self.size() - queued).min(src_len.min(u32::MAX as usize) as u32);
        if n == 0 {
            return 0;
        }
        let start = prod & self.mask;
        let first = n.min(self.size() - start);
        ptr::copy(src, self.data.add(start as usize), first as usize);
        if first < n {
            ptr::copy(src.add(first as usize), self.data, (n - first) as usize);
        }
        (*self.prod).store(prod.wrapping_add(n), Ordering::Release);
        n as i32
    }

    /// Copies up to `dst_len` queued bytes into `dst`; returns bytes moved or RING_CORRUPT.
    ///
    /// # Safety
    /// `dst` must be valid for `dst_len` writes (it may alias the page: copies are memmove).
    #[inline]
    pub unsafe fn consume(&self, dst: *mut u8, dst_len: usize) -> i32 {
        let prod = (*self.prod).load(Ordering::Acquire);
        let cons = (*self.cons).load(Ordering::Relaxed);
        let queued = prod.wrapping_sub(cons);
        if queued > self.size() {
            return RING_CORRUPT;
        }
        let n = queued.min(dst_len.min(u32::MAX as usize) as u32);
        if n == 0 {
            return 0;
        }
        let start = cons & self.mask;
        let first = n.min(self.size() - start);
        ptr::copy(self.data.add(start as usize), dst, first as usize);
        if first < n {
            ptr::copy(self.data, dst.add(first as usize), (n - first) as usize);
        }
        (*self.cons).store(cons.wrapping_add(n), Ordering::Release);
        n as i32
    }

    /// `prod - cons` with both loaded with acquire order, or RING_CORRUPT.
    #[inline]
    pub fn queued(&self) -> i32 {
        // SAFETY: both pointers were validated in `new`.
        let (prod, cons) =
            unsafe { ((*self.prod).load(Ordering::Acquire), (*self.cons).load(Ordering::Acquire)) };
        let queued = prod.wrapping_sub(cons);
        if queued > self.size() {
            RING_CORRUPT
        } else {
            queued as i32
        }
    }
}

/// Checks `[offset, offset + length)` against a buffer of `buf_len` bytes.
#[inline]
pub fn check_range(name: &str, offset: u64, length: u64, buf_len: usize) -> Result<()> {
    if offset + length > buf_len as u64 {
        return Err(Error::invalid(format!(
            "{name} range {offset}..{} exceeds its byteLength {buf_len}",
            offset + length
        )));
    }
    Ok(())
}
