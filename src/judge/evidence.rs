//! What the CIS controls of section 3 are judged on (the evidence a reconcile read), and the
//! verdict of one control with its evidence. Plain data: `judge::compliance` and
//! `judge::account_controls` judge it.

pub use crate::api::{Control, ControlResult};
use crate::desired::{EventSelectors, TrailSettings};

/// What the controls are judged on, as read (or, for what this reconcile repaired, as written).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    pub trail: Option<TrailEvidence>,
    /// The trail bucket and where its access logs go (None: not logged; the bucket missing:
    /// `exists` false). Absent for a trail whose bucket is not trailkeeper's to read.
    pub trail_bucket: Option<BucketEvidence>,
    /// The account-wide reads of 3.3 (Config), 3.6 (KMS keys) and 3.7 (flow logs), in every region
    /// judged, whoever manages what they read. None: not read (the reconcile stopped before);
    /// Err: the account's regions could not be listed.
    pub regions: Option<Result<Vec<RegionEvidence>, String>>,
    /// The regions judged that `regions` does not cover: none (it covers them all: `report`, a
    /// baseline that keeps every region or lists complianceRegions it keeps), or those a
    /// reconcile does not read, judged by the controller's account-wide sweep.
    pub other_regions: OtherRegions,
    /// The metric filters of the trail's CloudWatch Logs group, the alarms of its region and the
    /// subscriptions of their topics (section 4). None: not read (the trail has no log group, or
    /// the reconcile stopped before); Err: a read failed.
    pub monitoring: Option<Result<MonitoringEvidence, String>>,
}

/// Where the verdicts of the regions a reconcile did not read come from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OtherRegions {
    /// `Evidence::regions` covers every region judged.
    #[default]
    None,
    /// Some regions were not read and no sweep has judged them yet: the controls cannot pass.
    NotSwept,
    /// As the last sweep judged them (the controller's, from status).
    Swept(crate::api::ComplianceSweep),
}

/// What section 4 is judged on, read in the region of the trail's log group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MonitoringEvidence {
    pub log_group: String,
    /// None: the log group does not exist.
    pub filters: Option<Vec<FilterEvidence>>,
    pub alarms: Vec<AlarmEvidence>,
    /// Topic ARN -> confirmed subscriptions (Err: ListSubscriptionsByTopic failed or the topic is
    /// not there), for the topics the alarms notify.
    pub topics: std::collections::BTreeMap<String, Result<usize, String>>,
    /// Topic ARN -> the key the topic is encrypted with, for the encrypted ones.
    pub topic_keys: std::collections::BTreeMap<String, TopicKeyEvidence>,
}

/// The key of an encrypted topic, with its policy: CloudWatch publishes to the topic only when
/// that policy lets it use the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicKeyEvidence {
    /// As the topic names it (KmsMasterKeyId: an ARN, a key id or an alias).
    pub key: String,
    /// The key's ARN (what a statement's Resource is matched against); the name as given when it
    /// could not be resolved.
    pub arn: String,
    /// The key's policy (GetKeyPolicy). Err: it could not be read (another account's key:
    /// GetKeyPolicy is not cross-account; the key is gone; the read was refused).
    pub policy: Result<serde_json::Value, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FilterEvidence {
    pub name: String,
    pub pattern: String,
    /// (namespace, metric name) of each transformation.
    pub metrics: Vec<(String, String)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlarmEvidence {
    pub name: String,
    pub arn: String,
    pub metric: (String, String),
    pub actions_enabled: bool,
    pub alarm_actions: Vec<String>,
}

/// One region's account-wide evidence; each read is Err with the error when it failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionEvidence {
    pub region: String,
    /// DescribeConfigurationRecorders joined with DescribeConfigurationRecorderStatus.
    pub recorders: Result<Vec<RecorderEvidence>, String>,
    /// Every VPC of the region with the traffic types of the flow logs on it.
    pub vpcs: Result<Vec<VpcEvidence>, String>,
    /// The customer-managed symmetric encryption keys that are enabled, with their rotation.
    pub keys: Result<Vec<KeyEvidence>, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecorderEvidence {
    pub name: String,
    /// recordingGroup.allSupported.
    pub all_supported: bool,
    /// recordingGroup.includeGlobalResourceTypes.
    pub include_global: bool,
    /// The recorder's status: recording, and lastStatus (Pending, Success, Failure).
    pub recording: bool,
    pub last_status: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VpcEvidence {
    pub id: String,
    /// ALL, ACCEPT or REJECT: one per flow log on the VPC, whoever created it.
    pub traffic_types: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyEvidence {
    pub arn: String,
    pub rotation: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketEvidence {
    pub name: String,
    pub exists: bool,
    pub access_logs_to: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrailEvidence {
    pub arn: String,
    pub multi_region: bool,
    pub logging: bool,
    pub log_file_validation: bool,
    pub kms_key: Option<String>,
    pub management_events_all: bool,
    pub s3_object_writes: bool,
    pub s3_object_reads: bool,
    /// False for another account's trail: its logging and selectors cannot be read from here.
    pub details_observable: bool,
    /// The CloudWatch Logs group the trail delivers to (CloudWatchLogsLogGroupArn).
    pub log_group_arn: Option<String>,
}

impl TrailEvidence {
    pub fn observed(t: &crate::aws::cloudtrail::ObservedTrail) -> Self {
        let (management, writes, reads) = selectors(&t.event_selectors);
        Self {
            arn: t.arn.clone(),
            multi_region: t.multi_region,
            logging: t.logging,
            log_file_validation: t.log_file_validation,
            kms_key: t.kms_key.clone(),
            management_events_all: management,
            s3_object_writes: writes,
            s3_object_reads: reads,
            details_observable: t.details_observable,
            log_group_arn: t.cloud_watch_logs.as_ref().map(|(group, _)| group.clone()),
        }
    }

    pub fn of(settings: &TrailSettings, arn: &str, logging: bool, kms_key: Option<String>) -> Self {
        let (management, writes, reads) = selectors(&settings.event_selectors);
        Self {
            arn: arn.to_string(),
            multi_region: settings.multi_region,
            logging,
            log_file_validation: settings.log_file_validation,
            kms_key,
            management_events_all: management,
            s3_object_writes: writes,
            s3_object_reads: reads,
            details_observable: true,
            log_group_arn: settings.cloud_watch_logs.as_ref().map(|(group, _)| group.clone()),
        }
    }
}

/// (management events read and write, S3 object-level writes, S3 object-level reads).
pub fn selectors(selectors: &EventSelectors) -> (bool, bool, bool) {
    let (mut management, mut writes, mut reads) = (false, false, false);
    match selectors {
        EventSelectors::Basic(basic) => {
            for s in basic {
                let (w, r) = match s.read_write_type.as_str() {
                    "All" => (true, true),
                    "WriteOnly" => (true, false),
                    "ReadOnly" => (false, true),
                    _ => (false, false),
                };
                management |= s.include_management_events && w && r;
                if s.data_resources.iter().any(|(kind, _)| kind == "AWS::S3::Object") {
                    writes |= w;
                    reads |= r;
                }
            }
        }
        EventSelectors::Advanced(advanced) => {
            for s in advanced {
                let field = |name: &str| s.field_selectors.iter().find(|f| f.field == name);
                let category = field("eventCategory").map(|f| f.equals.clone()).unwrap_or_default();
                let read_only = field("readOnly").map(|f| f.equals.clone()).unwrap_or_default();
                let (w, r) = match read_only.as_slice() {
                    [] => (true, true),
                    [v] if v == "true" => (false, true),
                    [v] if v == "false" => (true, false),
                    _ => (true, true),
                };
                if category.iter().any(|c| c == "Management") {
                    management |= w && r;
                }
                let s3 = field("resources.type").is_some_and(|f| f.equals.iter().any(|t| t == "AWS::S3::Object"));
                if category.iter().any(|c| c == "Data") && s3 {
                    writes |= w;
                    reads |= r;
                }
            }
        }
    }
    (management, writes, reads)
}

/// One control's verdict with the evidence that names what was judged.
pub(crate) fn control(id: &str, title: &str, result: ControlResult, evidence: String) -> Control {
    Control {
        id: id.into(),
        title: title.into(),
        result,
        evidence,
    }
}

/// Pass when `ok`, else Fail.
pub(crate) fn pass(ok: bool) -> ControlResult {
    if ok { ControlResult::Pass } else { ControlResult::Fail }
}
