//! The running process: operator wiring, leader election, the HTTP endpoint, metrics, telemetry
//! and the allocator's settings.

pub mod allocator;
pub mod http;
pub mod intern;
pub mod leader;
pub mod metrics;
pub mod operator;
pub mod telemetry;
