//! Pure judgements: what differs between desired and observed, compliance, delivery health, and
//! whether a retention change may be made.

pub mod account_controls;
pub mod archive_delivery;
pub mod compliance;
pub mod control_tower;
pub mod coverage;
pub mod delivery;
pub mod diff;
pub mod duplicate_trails;
pub mod evidence;
pub mod findings;
pub mod key_policy;
pub mod lock_in_place;
pub mod monitoring_controls;
pub mod remedies;
pub mod retention_review;
