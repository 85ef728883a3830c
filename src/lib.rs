//! trailkeeper: keeps the audit logging of AWS accounts at a declared baseline.

pub mod allocator;
pub mod api;
pub mod aws;
pub mod cli;
pub mod desired;
pub mod events;
pub mod http;
pub mod leader;
pub mod manifests;
pub mod metrics;
pub mod operator;
pub mod reconcile;
pub mod telemetry;
pub mod verify;
