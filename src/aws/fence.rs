//! The AWS write fence: a mutating call goes out only while this replica leads, checked on every
//! attempt just before it is transmitted.
//!
//! The SDK's orchestrator runs `read_before_execution` once per operation, before credentials are
//! resolved and before its retry loop; `read_before_transmit` runs for each attempt after the
//! request is signed (its credentials resolved) and just before the HTTP client sends it. Checked
//! there, a retry after the deadline, and an attempt whose credentials took past it, are refused
//! (the operation fails with `NOT_LEADING`); nothing depends on which timer fires first after a
//! freeze. What remains between the check and the bytes on the wire is the HTTP client's own
//! work (a connection from the pool, bounded by the connect timeout), well inside the margin
//! between the renew deadline and the lease duration.

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use super::calls::{iam_action, is_read};
use crate::fence::WriteGate;

/// The message of a mutating call refused because this replica no longer leads.
pub const NOT_LEADING: &str = "refused: this replica no longer holds the leader lease";

/// The interceptor every AWS client of the controller carries.
#[derive(Clone, Debug)]
pub struct WriteFence {
    gate: WriteGate,
}

impl WriteFence {
    pub fn new(gate: WriteGate) -> Self {
        Self { gate }
    }
}

impl Intercept for WriteFence {
    fn name(&self) -> &'static str {
        "trailkeeper-write-fence"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(metadata) = cfg.load::<Metadata>() else {
            // An operation without a name cannot be told to be a read: refused when shut.
            return if self.gate.is_open() {
                Ok(())
            } else {
                Err(NOT_LEADING.into())
            };
        };
        if is_read(metadata.name()) || self.gate.is_open() {
            return Ok(());
        }
        Err(format!("{} {NOT_LEADING}", iam_action(metadata.service(), metadata.name())).into())
    }
}
