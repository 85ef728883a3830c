//! The Kubernetes controllers: LoggingBaselines (`baselines`, with the account-wide `sweep`) and
//! LoggingBaselineSets (`sets`), and the status they write.

pub mod archives;
pub mod baselines;
pub mod context;
mod findings;
pub mod policies;
pub mod policy_status;
pub mod sets;
pub mod shard;
pub mod status;
pub mod sweep;
pub mod sweep_schedule;
pub mod writer;
