use std::collections::BTreeMap;

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::patterns;

/// How the account's CloudTrail trail is configured. The defaults are the baseline: multi-region,
/// global service events, log file validation, all management events.
// Several printer columns share `type_ = ...`, which clippy mistakes for a repeated attribute.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "trailkeeper.io",
    version = "v1alpha1",
    kind = "TrailPolicy",
    namespaced,
    shortname = "tp",
    category = "trailkeeper",
    cel,
    status = "super::PolicyStatus",
    printcolumn(name = "MultiRegion", type_ = "boolean", json_path = ".spec.multiRegion"),
    printcolumn(name = "Organization", type_ = "boolean", json_path = ".spec.organizationTrail"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Baselines", type_ = "integer", json_path = ".status.baselines"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[x_kube(validation = kube::core::Rule::new("size(self.advancedEventSelectors) == 0 || size(self.dataEvents) == 0").message("use either dataEvents or advancedEventSelectors, not both: CloudTrail accepts one kind of selector per trail"))]
#[x_kube(validation = kube::core::Rule::new("!has(self.monitoring) || has(self.cloudWatchLogs)").message("monitoring needs cloudWatchLogs: the metric filters read the trail's CloudWatch Logs group"))]
#[serde(rename_all = "camelCase")]
pub struct TrailPolicySpec {
    /// Log the events of every region in one trail.
    #[serde(default = "yes")]
    pub multi_region: bool,
    /// Log the events of global services (IAM, STS, CloudFront).
    #[serde(default = "yes")]
    pub include_global_service_events: bool,
    /// Deliver signed digest files, so that log files can be proven intact.
    #[serde(default = "yes")]
    pub log_file_validation: bool,
    /// Which management (control plane) events the trail logs.
    #[serde(default)]
    pub management_events: ManagementEvents,
    /// Basic data event selectors (S3 objects, Lambda invocations, ...).
    #[serde(default)]
    pub data_events: Vec<DataEventSelector>,
    /// Advanced event selectors; when set they replace managementEvents and dataEvents.
    #[serde(default)]
    #[schemars(length(max = 100))]
    pub advanced_event_selectors: Vec<AdvancedEventSelector>,
    /// Network activity events: the AWS API calls made through the account's VPC endpoints (all
    /// of them, or only those a VPC endpoint policy denied), recorded besides the other events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_activity_events: Option<super::NetworkActivityEvents>,
    /// CloudTrail Insights: unusual API call rates or error rates.
    #[serde(default)]
    pub insight_selectors: Vec<InsightType>,
    /// Deliver the trail's events to a CloudWatch Logs group as well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_watch_logs: Option<TrailCloudWatchLogs>,
    /// Alarms on what the trail records: the monitoring controls of the CIS AWS Foundations
    /// Benchmark v3.0.0 (section 4; Security Hub CloudWatch.1-14), one metric filter on the
    /// trail's CloudWatch Logs group and one alarm each, into an SNS topic. Needs cloudWatchLogs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<MonitoringControls>,
    /// Log the events of every account of the Organization (the trail must be in the management account or a delegated administrator).
    #[serde(default)]
    pub organization_trail: bool,
    /// For a baseline whose trail is `Existing`: the settings trailkeeper may change on that trail.
    /// Empty (the default): the trail is verified and reported, never changed.
    #[serde(default)]
    pub manage_existing: Vec<ExistingTrailSetting>,
    /// Minutes without a delivery (log files, CloudWatch Logs; digests get an hour more) after which the trail's delivery is not healthy (condition DeliveryHealthy).
    #[serde(default = "default_delivery_alarm")]
    #[schemars(range(min = 5, max = 10080))]
    pub delivery_alarm_after_minutes: i32,
    /// Tags put on the trail (besides trailkeeper's own). AWS allows 50 tags a resource.
    #[serde(default)]
    #[schemars(extend("maxProperties" = 40, "additionalProperties" = {"type": "string", "maxLength": 256, "pattern": super::patterns::TAG_VALUE}))]
    #[x_kube(validation = super::rules::tag_keys_aws_accepts())]
    pub tags: BTreeMap<String, String>,
}

impl Default for TrailPolicySpec {
    fn default() -> Self {
        Self {
            multi_region: true,
            include_global_service_events: true,
            log_file_validation: true,
            management_events: ManagementEvents::default(),
            data_events: Vec::new(),
            advanced_event_selectors: Vec::new(),
            network_activity_events: None,
            insight_selectors: Vec::new(),
            cloud_watch_logs: None,
            monitoring: None,
            organization_trail: false,
            manage_existing: Vec::new(),
            delivery_alarm_after_minutes: default_delivery_alarm(),
            tags: BTreeMap::new(),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_delivery_alarm() -> i32 {
    60
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManagementEvents {
    /// Whether management events are logged.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// All, ReadOnly or WriteOnly management events.
    #[serde(default)]
    pub read_write_type: ReadWriteType,
    /// Event sources excluded from management events, e.g. kms.amazonaws.com.
    #[serde(default)]
    #[schemars(inner(pattern(r"^(kms|rdsdata)\.amazonaws\.com$")))]
    pub exclude_event_sources: Vec<String>,
}

impl Default for ManagementEvents {
    fn default() -> Self {
        Self {
            enabled: true,
            read_write_type: ReadWriteType::default(),
            exclude_event_sources: Vec::new(),
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ReadWriteType {
    #[default]
    All,
    ReadOnly,
    WriteOnly,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DataEventSelector {
    /// A CloudTrail data resource type, e.g. AWS::S3::Object or AWS::Lambda::Function.
    #[schemars(pattern(r"^AWS::[A-Za-z0-9]+::[A-Za-z0-9]+$"))]
    #[serde(rename = "type")]
    pub resource_type: String,
    /// ARNs or ARN prefixes.
    #[schemars(length(min = 1, max = 250))]
    pub values: Vec<String>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = super::network_activity::network_fields_supported(),
    validation = super::network_activity::network_event_source_named()
)]
pub struct AdvancedEventSelector {
    /// A name for the selector.
    #[schemars(length(min = 1, max = 1000))]
    pub name: String,
    /// Conditions on event fields; an event is logged when it matches all of them.
    #[schemars(length(min = 1, max = 20))]
    pub field_selectors: Vec<AdvancedFieldSelector>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(
    validation = kube::core::Rule::new("size(self.equals) + size(self.notEquals) + size(self.startsWith) + size(self.notStartsWith) + size(self.endsWith) + size(self.notEndsWith) > 0").message("a field selector needs at least one operator"),
    validation = super::network_activity::network_category_is_equals_only(),
    validation = super::network_activity::error_code_is_vpce_access_denied()
)]
pub struct AdvancedFieldSelector {
    /// The event field, e.g. eventCategory, resources.type, eventName, readOnly.
    #[schemars(pattern(r"^[A-Za-z.]{1,1000}$"))]
    pub field: String,
    /// Values the field must equal (one of).
    #[serde(default)]
    #[schemars(length(max = 500), inner(length(min = 1, max = 2048)))]
    pub equals: Vec<String>,
    /// Values the field must not equal.
    #[serde(default)]
    #[schemars(length(max = 500), inner(length(min = 1, max = 2048)))]
    pub not_equals: Vec<String>,
    /// Prefixes the field must start with (one of).
    #[serde(default)]
    #[schemars(length(max = 500), inner(length(min = 1, max = 2048)))]
    pub starts_with: Vec<String>,
    /// Prefixes the field must not start with.
    #[serde(default)]
    #[schemars(length(max = 500), inner(length(min = 1, max = 2048)))]
    pub not_starts_with: Vec<String>,
    /// Suffixes the field must end with (one of).
    #[serde(default)]
    #[schemars(length(max = 500), inner(length(min = 1, max = 2048)))]
    pub ends_with: Vec<String>,
    /// Suffixes the field must not end with.
    #[serde(default)]
    #[schemars(length(max = 500), inner(length(min = 1, max = 2048)))]
    pub not_ends_with: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum InsightType {
    ApiCallRateInsight,
    ApiErrorRateInsight,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TrailCloudWatchLogs {
    /// The log group, as `arn:aws:logs:REGION:ACCOUNT:log-group:NAME:*`.
    #[schemars(pattern(r"^arn:aws[a-z-]*:logs:[a-z0-9-]+:[0-9]{12}:log-group:[A-Za-z0-9_/.#-]+:\*$"))]
    pub log_group_arn: String,
    /// The role CloudTrail assumes to write to that log group (trailkeeper passes it: iam:PassRole).
    #[schemars(pattern(patterns::IAM_ROLE_ARN))]
    pub role_arn: String,
}

/// Where the monitoring controls' alarms notify.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = kube::core::Rule::new("!has(self.topicArn) || size(self.subscriptions) == 0").message("subscriptions are for the topic trailkeeper keeps: a topic named by topicArn keeps its own"))]
#[serde(rename_all = "camelCase")]
pub struct MonitoringControls {
    /// An SNS topic of yours, in the log group's region, for the alarms (its key must let CloudWatch
    /// publish). Absent: trailkeeper keeps the topic `trailkeeper-monitoring` there, encrypted with
    /// the account's monitoring key of that region (alias/trailkeeper/monitoring).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(patterns::SNS_TOPIC_ARN))]
    pub topic_arn: Option<String>,
    /// Subscriptions of trailkeeper's topic (added when missing; others are left alone). The CIS
    /// audit asks for at least one confirmed subscription.
    #[serde(default)]
    #[schemars(length(max = 20))]
    pub subscriptions: Vec<TopicSubscription>,
}

#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
pub struct TopicSubscription {
    /// How SNS delivers: email, https, sqs or lambda.
    pub protocol: SubscriptionProtocol,
    /// The address: an email address, an https URL, or an SQS queue or Lambda function ARN.
    #[schemars(length(min = 1, max = 2048))]
    pub endpoint: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionProtocol {
    Email,
    Https,
    Sqs,
    Lambda,
}

impl SubscriptionProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionProtocol::Email => "email",
            SubscriptionProtocol::Https => "https",
            SubscriptionProtocol::Sqs => "sqs",
            SubscriptionProtocol::Lambda => "lambda",
        }
    }
}

/// A setting of an existing trail that trailkeeper may change.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ExistingTrailSetting {
    /// Start logging when it is stopped.
    Logging,
    LogFileValidation,
    MultiRegion,
    GlobalServiceEvents,
    EventSelectors,
}
