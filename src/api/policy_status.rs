//! What trailkeeper reports of a TrailPolicy or RetentionPolicy.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Condition;

/// That trailkeeper has read this generation of the policy, whether baselines can use it (Ready;
/// Stalled when a person must fix it), and how many use it.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready (the policy passes the CRD's rules; baselines apply it), and Stalled while it does not.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The LoggingBaselines of the namespace that use this policy (by reference, or as `default`);
    /// absent from a sharded operator (each shard sees only its own baselines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baselines: Option<i32>,
}
