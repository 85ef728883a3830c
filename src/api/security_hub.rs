//! AWS Security Hub findings of an account's verdicts: where security teams look.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::patterns;

/// Import this account's verdicts into AWS Security Hub as findings (AWS Security Finding Format,
/// the account's own custom integration): one finding per CIS control, the trail's delivery, the
/// logs' integrity (with verifyIntegrity) and duplicate trails, each with a stable Id, updated
/// when its verdict changes, resolved when it passes, archived when the baseline goes.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityHubSpec {
    /// Off by default. Security Hub must be enabled in the account and Region (it refuses findings
    /// otherwise); each finding ingested is billed by Security Hub.
    #[serde(default)]
    pub enabled: bool,
    /// The Region whose Security Hub receives the findings: the aggregation Region, where a
    /// delegated administrator sees every member's findings. Absent: primaryRegion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(patterns::REGION), length(max = 32))]
    pub region: Option<String>,
}

/// What the last reconcile did with the account's findings in Security Hub.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecurityHubStatus {
    /// The Region of the Security Hub that holds the findings.
    pub region: String,
    /// The custom integration's product ARN the findings are imported under.
    pub product_arn: String,
    /// trailkeeper's active findings in Security Hub for this account.
    pub findings: u32,
    /// Of those, the ones that fail (Compliance.Status FAILED).
    pub failed: u32,
    /// Findings imported by the last reconcile (created, changed, or refreshed before Security Hub
    /// would expire them 90 days after their last update); 0 when nothing changed.
    pub imported: u32,
    /// Findings archived by the last reconcile (no longer judged).
    pub archived: u32,
    /// Findings the last reconcile marked RESOLVED (they pass).
    pub resolved: u32,
}
