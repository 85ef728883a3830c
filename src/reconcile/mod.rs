pub mod diff;
pub mod account;
