//! trailkeeper: keeps the audit logging of AWS accounts at a declared baseline.

pub mod api;
pub mod aws;
pub mod desired;
pub mod metrics;
pub mod reconcile;
pub mod manifests;
pub mod cli;
pub mod telemetry;
