//! Settings of glibc's allocator for a long-running controller.
//!
//! With its defaults, glibc gives each thread that allocates an arena of its own (up to 8 per
//! core) and raises the size above which it maps large blocks separately each time one is freed
//! (up to 32 MiB), so the buffers of many concurrent reconciles stay in the heap, spread over
//! arenas, after they are freed. Measured with the controller benchmark at N = 300 (release):
//! RSS after the restart pass 76 MiB with the defaults, 68 MiB with these settings
//! (docs/performance.md). A setting given in the environment (`MALLOC_ARENA_MAX`, ...) wins.

/// Applies the settings; call before the runtime starts its threads.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (env, param, value) in [
        ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, 2),
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 64 * 1024),
        ("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, 128 * 1024),
    ] {
        if std::env::var_os(env).is_none() {
            // SAFETY: mallopt only changes the allocator's parameters; it is called from main
            // before any other thread exists.
            unsafe {
                libc::mallopt(param, value);
            }
        }
    }
}

/// How often the pages the allocator holds free are given back to the kernel.
pub const RETURN_FREE_PAGES_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Gives the whole free pages of every arena back to the kernel (`malloc_trim(0)`), on a timer,
/// for as long as the controller runs.
///
/// Why: the trim threshold above only returns memory at the top of a heap. The buffers a burst of
/// reconciles freed (SDK clients, responses) sit between live allocations, so after the restart
/// pass they stayed resident until reused. `malloc_trim` also releases free pages in the middle of
/// a heap (glibc 2.8 and later, `madvise(MADV_DONTNEED)`); it walks the free lists only, a few
/// milliseconds at 1,000 baselines (docs/performance.md, "Memory").
pub async fn return_free_pages_periodically() {
    let mut every = tokio::time::interval(RETURN_FREE_PAGES_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        return_free_pages();
    }
}

/// One `malloc_trim(0)` (nothing where the allocator is not glibc's).
pub fn return_free_pages() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the kernel; it takes the arenas' locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What the allocator holds: allocated to the program, and free inside its arenas.
pub struct HeapUsage {
    pub allocated: u64,
    pub free: u64,
}

/// The heap's figures from glibc (`mallinfo2`, glibc 2.33 and later); None elsewhere. It takes the
/// arenas' locks and walks their free lists: for a scrape, not a hot path.
pub fn heap_usage() -> Option<HeapUsage> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        let info = unsafe { libc::mallinfo2() };
        Some(HeapUsage {
            allocated: (info.uordblks + info.hblkhd) as u64,
            free: info.fordblks as u64,
        })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}
