//! Leader election on a Lease (`election`), and a term of leadership that owns its work (`term`).

pub mod election;
pub mod term;

pub use election::*;
pub use term::{StopSignal, TermBounds, TermEnd, serve};
