//! Prefetch hints: start loading a cache line without waiting for it. No effect on results.

/// Starts loading the cache line holding `x` (a hint: no effect on results).
#[inline(always)]
pub(crate) fn prefetch<T>(x: Option<&T>) {
    if let Some(x) = x {
        prefetch_address((x as *const T).cast::<u8>());
    }
}

/// Starts loading the cache line holding `address` (a hint: no effect on results).
#[inline(always)]
pub(crate) fn prefetch_address(address: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch has no architectural effect and never faults, whatever the
    // address (callers pass addresses inside live objects anyway). SSE is part of the
    // x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(address.cast::<i8>())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}
