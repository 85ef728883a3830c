//! Leader election on a Lease (`election`), a term of leadership that owns its work (`term`), and
//! the fleet's shards shared by several replicas, a Lease each (`shards`).

pub mod election;
pub mod shards;
pub mod term;

pub use election::*;
pub use term::{StopSignal, TermBounds, TermEnd, serve};
