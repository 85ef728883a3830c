//! trailkeeper: keeps the audit logging of AWS accounts at a declared baseline.

pub mod api;
pub mod aws;
pub mod cli;
pub mod controller;
pub mod desired;
pub mod drift_events;
pub mod engine;
pub mod fence;
pub mod judge;
pub mod manifests;
pub mod progress;
pub mod runtime;
