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
