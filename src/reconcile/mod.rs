pub mod account;
pub mod diff;
