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
pub mod operator;
pub mod progress;
pub mod runtime;

/// The emulator's IAM evaluator (scripts/emulator/iam_policy.py), for unit tests of the policies
/// the crate writes and judges; loaded once (clippy::duplicate_mod).
#[cfg(test)]
#[path = "../tests/common/policy_eval.rs"]
pub(crate) mod policy_eval;
