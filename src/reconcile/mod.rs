pub mod account;
pub mod athena;
pub mod cleanup;
pub mod controller;
pub mod diff;
pub mod regional;
pub mod retention;
pub mod status;
