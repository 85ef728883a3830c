//! The AWS account engine: observes an account, judges it, applies what differs, and reports.
//! The same engine runs in the controller and offline (`plan`, `apply`).

pub mod account;
pub mod audit_queries;
pub mod cleanup;
pub mod forwarding;
pub mod regional;
pub mod report;
pub mod verify;
pub mod writes;
