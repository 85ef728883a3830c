//! Leader election on a Lease.

pub mod election;

pub use election::*;
