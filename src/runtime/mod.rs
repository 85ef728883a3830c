//! The ground the running process stands on: leader election, the HTTP endpoint, metrics,
//! telemetry, the allocator's settings and waiting on a watch's cache. It imports nothing above
//! `api` and `fence` (the process's wiring, `trailkeeper run`, is src/operator.rs, on top).

pub mod allocator;
pub mod cache;
pub mod http;
pub mod intern;
pub mod leader;
pub mod metrics;
pub mod telemetry;
