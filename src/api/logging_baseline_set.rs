use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, patterns};

/// One LoggingBaseline per selected account, stamped from a template (as Argo CD's ApplicationSet
/// stamps Applications): the accounts of a list, or of AWS Organizations.
// Several printer columns share `type_ = ...`, which clippy mistakes for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "trailkeeper.io",
    version = "v1alpha1",
    kind = "LoggingBaselineSet",
    namespaced,
    shortname = "lbs",
    category = "trailkeeper",
    status = "LoggingBaselineSetStatus",
    cel,
    printcolumn(name = "Selected", type_ = "integer", json_path = ".status.selected"),
    printcolumn(name = "Baselines", type_ = "integer", json_path = ".status.baselines"),
    printcolumn(name = "ReadyBaselines", type_ = "integer", json_path = ".status.ready"),
    printcolumn(name = "Conflicts", type_ = "integer", json_path = ".status.conflictCount"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct LoggingBaselineSetSpec {
    /// The LoggingBaseline of each account. In its strings, `{{accountId}}`, `{{accountName}}`
    /// and `{{tag:KEY}}` (the account's tag KEY) are replaced by the account's; `accountId` is
    /// set to the account's when the template leaves it out.
    pub template: BaselineTemplate,
    /// Which accounts get a baseline.
    pub generator: Generator,
}

/// The baselines' labels and annotations, and their spec.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BaselineTemplate {
    /// Labels of every baseline (besides `trailkeeper.io/set` and `trailkeeper.io/account-id`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 40))]
    pub labels: BTreeMap<String, String>,
    /// Annotations of every baseline.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 40))]
    pub annotations: BTreeMap<String, String>,
    /// A LoggingBaseline spec, placeholders allowed in its strings (validated per account, once
    /// rendered, by the same schema and rules as a LoggingBaseline).
    #[schemars(schema_with = "super::preserve_unknown_object")]
    pub spec: serde_json::Value,
}

/// Exactly one of `accounts` and `organization`.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = kube::core::Rule::new("has(self.accounts) != has(self.organization)").message("set exactly one generator: accounts or organization"))]
pub struct Generator {
    /// An explicit list of accounts (expanded offline by `validate` and `plan`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 5000))]
    pub accounts: Option<Vec<ListedAccount>>,
    /// The accounts of AWS Organizations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organization: Option<OrganizationGenerator>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListedAccount {
    /// The account id.
    #[schemars(pattern(patterns::ACCOUNT_ID), length(max = 12))]
    pub id: String,
    /// Its name (`{{accountName}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 128))]
    pub name: Option<String>,
    /// Its tags (`{{tag:KEY}}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 50))]
    pub tags: BTreeMap<String, String>,
}

/// The ACTIVE accounts of an Organization, read with the operator's identity in the management
/// account or a delegated administrator (through `roleArn`), filtered.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationGenerator {
    /// The role to read Organizations through (in the management account or a delegated
    /// administrator); without it, the operator's own identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(patterns::IAM_ROLE_ARN))]
    pub role_arn: Option<String>,
    /// Accounts in these organizational units (or their children); none: every account.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 100))]
    pub organizational_units: Vec<UnitSelector>,
    /// Only accounts with all these tags (key: value).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 20))]
    pub account_tags: BTreeMap<String, String>,
    /// Never these accounts (the management account, a sandbox...).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(pattern(patterns::ACCOUNT_ID)), length(max = 1000))]
    pub exclude: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnitSelector {
    /// The organizational unit (ou-...) or root (r-...) id.
    #[schemars(pattern(r"^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$"), length(max = 68))]
    pub id: String,
    /// Its child units' accounts too, at any depth.
    #[serde(default = "yes")]
    pub include_children: bool,
}

fn yes() -> bool {
    true
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LoggingBaselineSetStatus {
    /// Accounts the generator selects.
    #[serde(default)]
    pub selected: i32,
    /// Baselines of this set that exist.
    #[serde(default)]
    pub baselines: i32,
    /// Of those, Ready.
    #[serde(default)]
    pub ready: i32,
    /// Baselines created by the last reconcile.
    #[serde(default)]
    pub created: i32,
    /// Baselines whose spec the last reconcile changed.
    #[serde(default)]
    pub updated: i32,
    /// Baselines deleted by the last reconcile (their accounts left the selection).
    #[serde(default)]
    pub deleted: i32,
    /// Selected accounts left alone: a baseline not of this set keeps them, or their rendered
    /// spec is invalid.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<SetConflict>,
    /// How many selected accounts are left alone (the length of `conflicts`).
    #[serde(default)]
    pub conflict_count: i32,
    /// When AWS Organizations was last read (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_organizations_read: Option<String>,
    /// Ready: True when every selected account has its baseline of this set; False with the reason
    /// (Conflict, InvalidSpec, or the error reading the Organization).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The generation of the set the status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SetConflict {
    /// The account.
    pub account_id: String,
    /// The baseline in the way, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    /// Why the account has no baseline of this set.
    pub reason: String,
}
