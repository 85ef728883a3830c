//! Network activity events: the AWS API calls made through the account's VPC endpoints, as
//! CloudTrail records them with advanced event selectors of `eventCategory = NetworkActivity`.
//! The selectors are checked here as CloudTrail checks them (CEL rules, evaluated at admission
//! and by `trailkeeper validate`), so a selector CloudTrail would refuse never reaches it.
//!
//! What CloudTrail accepts ("Logging network activity events", CloudTrail user guide, and
//! `AdvancedFieldSelector` in the API reference):
//! - `eventCategory` Equals `NetworkActivity`, with the Equals operator only;
//! - `eventSource` required, Equals only, one event source per selector ("If you want to log
//!   network activity events for multiple event sources, you must create a separate field selector
//!   for each event source"), among the services that record them;
//! - the other fields a network activity selector may use are `eventName`, `errorCode` and
//!   `vpcEndpointId`; "The only valid value for errorCode is VpceAccessDenied".
//!
//! https://docs.aws.amazon.com/awscloudtrail/latest/userguide/logging-network-events-with-cloudtrail.html
//! https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_AdvancedFieldSelector.html

use kube::KubeSchema;
use kube::core::{Message, Rule};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The event category of network activity events.
pub const NETWORK_ACTIVITY: &str = "NetworkActivity";

/// The one `errorCode` value CloudTrail accepts: a call a VPC endpoint policy denied.
pub const VPCE_ACCESS_DENIED: &str = "VpceAccessDenied";

/// The event sources CloudTrail records network activity events for, as its user guide lists them
/// (CloudTrail, EC2, KMS, Secrets Manager) and AWS's announcement adds (S3). AWS adds services
/// over time: a source it accepts and this list lacks is refused here until it is added.
/// https://docs.aws.amazon.com/awscloudtrail/latest/userguide/logging-network-events-with-cloudtrail.html
/// https://aws.amazon.com/blogs/mt/announcing-aws-cloudtrail-network-activity-events-for-vpc-endpoints/
pub const NETWORK_ACTIVITY_EVENT_SOURCES: [&str; 5] = [
    "cloudtrail.amazonaws.com",
    "ec2.amazonaws.com",
    "kms.amazonaws.com",
    "s3.amazonaws.com",
    "secretsmanager.amazonaws.com",
];

/// The fields a network activity selector may filter on.
pub const NETWORK_ACTIVITY_FIELDS: [&str; 5] = [
    "eventCategory",
    "eventSource",
    "eventName",
    "errorCode",
    "vpcEndpointId",
];

/// Network activity events of the trail: one advanced event selector per event source, added to
/// the trail's other selectors (the trail's management and data events are then written as
/// advanced selectors too: CloudTrail takes one kind of selector per trail). Charged like data
/// events, on every trail that records them (AWS CloudTrail pricing).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetworkActivityEvents {
    /// The services whose calls through the account's VPC endpoints are recorded.
    #[schemars(length(min = 1, max = 5))]
    #[x_kube(validation = Rule::new("self.all(s, self.exists_one(t, t == s))").message("eventSources lists each service once"))]
    pub event_sources: Vec<NetworkActivitySource>,
    /// Only the calls a VPC endpoint policy denied (errorCode VpceAccessDenied): far fewer events,
    /// the ones a data perimeter is watched for.
    #[serde(default)]
    pub only_access_denied: bool,
}

/// A service that records network activity events (its CloudTrail event source).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
pub enum NetworkActivitySource {
    #[serde(rename = "cloudtrail.amazonaws.com")]
    CloudTrail,
    #[serde(rename = "ec2.amazonaws.com")]
    Ec2,
    #[serde(rename = "kms.amazonaws.com")]
    Kms,
    #[serde(rename = "s3.amazonaws.com")]
    S3,
    #[serde(rename = "secretsmanager.amazonaws.com")]
    SecretsManager,
}

impl NetworkActivitySource {
    /// The event source, e.g. `kms.amazonaws.com`.
    pub fn event_source(self) -> &'static str {
        let i = match self {
            NetworkActivitySource::CloudTrail => 0,
            NetworkActivitySource::Ec2 => 1,
            NetworkActivitySource::Kms => 2,
            NetworkActivitySource::S3 => 3,
            NetworkActivitySource::SecretsManager => 4,
        };
        NETWORK_ACTIVITY_EVENT_SOURCES[i]
    }
}

/// `a, b, c` of CEL string literals: `'a', 'b', 'c'`.
fn cel_list(items: &[&str]) -> String {
    items.iter().map(|i| format!("'{i}'")).collect::<Vec<_>>().join(", ")
}

/// Operators besides Equals on a field selector, in CEL.
const OTHER_OPERATORS: &str = "size(self.notEquals) + size(self.startsWith) + size(self.notStartsWith) + size(self.endsWith) + size(self.notEndsWith)";

/// On a field selector: `eventCategory` NetworkActivity is written with Equals and that one value.
pub fn network_category_is_equals_only() -> Rule {
    Rule::new(format!(
        "self.field != 'eventCategory' || !('{NETWORK_ACTIVITY}' in self.equals) || (size(self.equals) == 1 && {OTHER_OPERATORS} == 0)"
    ))
    .message(Message::Message(format!(
        "eventCategory {NETWORK_ACTIVITY} takes the Equals operator with that one value: CloudTrail refuses other operators, and each event category needs a selector of its own"
    )))
}

/// On a field selector: `errorCode` is Equals `VpceAccessDenied`, the one value CloudTrail accepts.
pub fn error_code_is_vpce_access_denied() -> Rule {
    Rule::new(format!(
        "self.field != 'errorCode' || (self.equals == ['{VPCE_ACCESS_DENIED}'] && {OTHER_OPERATORS} == 0)"
    ))
    .message(Message::Message(format!(
        "errorCode takes Equals {VPCE_ACCESS_DENIED}: the only value CloudTrail accepts (calls a VPC endpoint policy denied)"
    )))
}

/// `self` (an advanced event selector) selects network activity events.
fn is_network_activity() -> String {
    format!("self.fieldSelectors.exists(f, f.field == 'eventCategory' && '{NETWORK_ACTIVITY}' in f.equals)")
}

/// On an advanced event selector: a network activity selector filters on the fields CloudTrail
/// supports for them only.
pub fn network_fields_supported() -> Rule {
    Rule::new(format!(
        "!({}) || self.fieldSelectors.all(f, f.field in [{}])",
        is_network_activity(),
        cel_list(&NETWORK_ACTIVITY_FIELDS)
    ))
    .message(Message::Message(format!(
        "a {NETWORK_ACTIVITY} selector filters on {} only: CloudTrail refuses other fields for network activity events",
        NETWORK_ACTIVITY_FIELDS.join(", ")
    )))
}

/// On an advanced event selector: a network activity selector names exactly one event source
/// (Equals, one value) among the services that record them.
pub fn network_event_source_named() -> Rule {
    Rule::new(format!(
        "!({}) || (self.fieldSelectors.exists_one(f, f.field == 'eventSource') && self.fieldSelectors.all(f, f.field != 'eventSource' || (size(f.equals) == 1 && f.equals[0] in [{}] && size(f.notEquals) + size(f.startsWith) + size(f.notStartsWith) + size(f.endsWith) + size(f.notEndsWith) == 0)))",
        is_network_activity(),
        cel_list(&NETWORK_ACTIVITY_EVENT_SOURCES)
    ))
    .message(Message::Message(format!(
        "a {NETWORK_ACTIVITY} selector needs one eventSource field with Equals and one value, among {} (one selector per event source)",
        NETWORK_ACTIVITY_EVENT_SOURCES.join(", ")
    )))
}
