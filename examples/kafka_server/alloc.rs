//! The server's global allocator: the system allocator, except that a single allocation of
//! 1 GiB or more is an anonymous `MAP_NORESERVE` mapping.
//!
//! Why: the protocol decoder sizes a vector from the element count a request declares
//! before it reads the elements. A 20-byte frame can declare two billion elements; with the
//! system allocator that request fails and the process aborts, which would let one bad
//! client stop the server. A `MAP_NORESERVE` mapping only reserves address space: the
//! decoder fails at the end of the frame, having touched a few pages, and the mapping is
//! returned. Legitimate allocations are far below the threshold (frames are capped by
//! `--max-frame-bytes`). Under `vm.overcommit_memory = 2` the kernel refuses such mappings
//! too, and this protection does not apply.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};

/// Allocations of at least this many bytes are mapped, not taken from the heap.
const HUGE: usize = 1 << 30;
const PAGE: usize = 4096;

/// See the module documentation.
pub struct SparseHuge;

fn mapped(layout: Layout) -> bool {
    layout.size() >= HUGE && layout.align() <= PAGE
}

// SAFETY: every method upholds `GlobalAlloc`'s contract: huge blocks come from `mmap` (page
// aligned, at least `size` bytes, zero-filled) and go back to `munmap` with the same size;
// all other blocks are the system allocator's.
unsafe impl GlobalAlloc for SparseHuge {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !mapped(layout) {
            // SAFETY: forwarded unchanged.
            return unsafe { System.alloc(layout) };
        }
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                layout.size(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            std::ptr::null_mut()
        } else {
            p.cast()
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if mapped(layout) {
            // SAFETY: anonymous mappings are zero-filled; writing zeros would touch every page.
            unsafe { self.alloc(layout) }
        } else {
            // SAFETY: forwarded unchanged.
            unsafe { System.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if mapped(layout) {
            // SAFETY: `ptr` came from `alloc` above with this same layout.
            unsafe { libc::munmap(ptr.cast(), layout.size()) };
        } else {
            // SAFETY: forwarded unchanged.
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` forms a valid layout with this alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !mapped(layout) && !mapped(new_layout) {
            // SAFETY: forwarded unchanged.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: allocate, copy the common prefix, free: the contract of `realloc`.
        unsafe {
            let new = self.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}
