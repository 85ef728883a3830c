//! The AWS account engine: observes an account, judges it, applies what differs, and reports.
//! The same engine runs in the controller and offline (`plan`, `apply`).

pub mod account;
pub mod archive;
pub mod audit_queries;
pub mod cis_evidence;
pub mod cleanup;
mod control_tower;
mod duplicate_trails;
pub mod findings;
pub mod fleet;
pub mod forwarding;
mod key;
mod monitoring;
pub mod regional;
pub mod report;
mod storage;
pub mod sweep;
mod trail;
pub mod verify;
pub mod writes;
