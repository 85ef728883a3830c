//! CloudTrail: the trail. Every write waits for the account's CloudTrail pacer (one mutating call
//! per second per account is CloudTrail's quota).

use std::collections::BTreeMap;

use aws_sdk_cloudtrail::types::{
    AdvancedEventSelector, AdvancedFieldSelector, DataResource, EventSelector, InsightSelector, InsightType,
    ReadWriteType, Tag,
};

use super::{AccountClients, AwsError, ErrorKind, check, optional};
use crate::desired::{AdvancedField, AdvancedSelector, BasicSelector, EventSelectors, TrailSettings};

/// A trail as CloudTrail reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedTrail {
    pub name: String,
    pub arn: String,
    pub bucket: Option<String>,
    pub key_prefix: Option<String>,
    pub kms_key: Option<String>,
    pub multi_region: bool,
    pub global_service_events: bool,
    pub log_file_validation: bool,
    pub organization: bool,
    pub cloud_watch_logs: Option<(String, String)>,
    pub logging: bool,
    pub event_selectors: EventSelectors,
    pub insight_selectors: Vec<String>,
    pub tags: BTreeMap<String, String>,
    /// False for another account's trail (an Organization trail seen from a member account): its
    /// settings and status (logging, deliveries) are readable, not its selectors or tags.
    pub details_observable: bool,
    /// What GetTrailStatus says of the trail's deliveries (None when not observable).
    pub delivery: Option<TrailDelivery>,
}

/// The deliveries of a trail, as GetTrailStatus reports them (times in seconds since the epoch).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrailDelivery {
    pub logging_started: Option<i64>,
    pub log_files: Option<i64>,
    pub log_files_error: Option<String>,
    /// The latest attempt to deliver log files, and the latest that succeeded
    /// (LatestDeliveryAttemptTime, LatestDeliveryAttemptSucceeded: strings such as
    /// `2016-01-28T23:02:24Z`, empty when not set), which order an error against deliveries.
    pub log_files_attempt: Option<i64>,
    pub log_files_attempt_succeeded: Option<i64>,
    pub digests: Option<i64>,
    pub digests_error: Option<String>,
    pub cloud_watch_logs: Option<i64>,
    pub cloud_watch_logs_error: Option<String>,
    pub notification_error: Option<String>,
}

/// Settings to change on an existing trail; `None` leaves a setting as it is.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TrailUpdate {
    pub bucket: Option<String>,
    pub key_prefix: Option<String>,
    pub kms_key: Option<String>,
    pub multi_region: Option<bool>,
    pub global_service_events: Option<bool>,
    pub log_file_validation: Option<bool>,
    pub organization: Option<bool>,
    pub cloud_watch_logs: Option<(String, String)>,
}

impl TrailUpdate {
    pub fn is_empty(&self) -> bool {
        self == &TrailUpdate::default()
    }
}

/// The trail named `name_or_arn` with its status, selectors and tags; `None` when it does not exist.
pub async fn observe_trail(clients: &AccountClients, name_or_arn: &str) -> Result<Option<ObservedTrail>, AwsError> {
    let resource = format!("trail {name_or_arn}");
    let r = resource.as_str();
    let ct = &clients.cloudtrail;
    let Some(out) = optional(
        ct.get_trail().name(name_or_arn).send().await,
        "CloudTrail",
        "GetTrail",
        r,
    )?
    else {
        return Ok(None);
    };
    let Some(trail) = out.trail() else { return Ok(None) };
    let arn = trail.trail_arn().unwrap_or(name_or_arn).to_string();
    let (status, selectors, insights, tags) = tokio::join!(
        Box::pin(ct.get_trail_status().name(&arn).send()),
        Box::pin(ct.get_event_selectors().trail_name(&arn).send()),
        Box::pin(ct.get_insight_selectors().trail_name(&arn).send()),
        Box::pin(ct.list_tags().resource_id_list(&arn).send()),
    );
    let status = check(status, "CloudTrail", "GetTrailStatus", r)?;
    let selectors = check(selectors, "CloudTrail", "GetEventSelectors", r)?;
    // A trail that never had insights answers InsightNotEnabledException: no insight selectors.
    let insights = optional(insights, "CloudTrail", "GetInsightSelectors", r)?;
    let tags = check(tags, "CloudTrail", "ListTags", r)?;

    let event_selectors = if selectors.advanced_event_selectors().is_empty() {
        let mut basic: Vec<BasicSelector> = selectors.event_selectors().iter().map(basic_selector).collect();
        basic.sort();
        EventSelectors::Basic(basic)
    } else {
        let mut advanced: Vec<AdvancedSelector> = selectors
            .advanced_event_selectors()
            .iter()
            .map(advanced_selector)
            .collect();
        advanced.sort();
        EventSelectors::Advanced(advanced)
    };
    let mut insight_selectors: Vec<String> = insights
        .map(|i| {
            i.insight_selectors()
                .iter()
                .filter_map(|s| s.insight_type())
                .map(|t| t.as_str().to_string())
                .collect()
        })
        .unwrap_or_default();
    insight_selectors.sort();
    Ok(Some(ObservedTrail {
        logging: status.is_logging() == Some(true),
        event_selectors,
        insight_selectors,
        tags: tags
            .resource_tag_list()
            .iter()
            .flat_map(|r| r.tags_list())
            .map(|t| (t.key().to_string(), t.value().unwrap_or_default().to_string()))
            .collect(),
        details_observable: true,
        delivery: Some(delivery_of(&status)),
        ..settings_of(trail, &arn)
    }))
}

/// A trail's settings as GetTrail or DescribeTrails report them; its status, selectors and tags
/// are read apart (empty here).
fn settings_of(trail: &aws_sdk_cloudtrail::types::Trail, arn: &str) -> ObservedTrail {
    ObservedTrail {
        name: trail.name().unwrap_or_default().to_string(),
        arn: arn.to_string(),
        bucket: trail.s3_bucket_name().map(str::to_string),
        key_prefix: trail.s3_key_prefix().map(str::to_string),
        kms_key: trail.kms_key_id().map(str::to_string),
        multi_region: trail.is_multi_region_trail() == Some(true),
        global_service_events: trail.include_global_service_events() == Some(true),
        log_file_validation: trail.log_file_validation_enabled() == Some(true),
        organization: trail.is_organization_trail() == Some(true),
        cloud_watch_logs: trail
            .cloud_watch_logs_log_group_arn()
            .zip(trail.cloud_watch_logs_role_arn())
            .map(|(g, r)| (g.to_string(), r.to_string())),
        logging: false,
        event_selectors: EventSelectors::Basic(Vec::new()),
        insight_selectors: Vec::new(),
        tags: BTreeMap::new(),
        details_observable: false,
        delivery: None,
    }
}

fn delivery_of(status: &aws_sdk_cloudtrail::operation::get_trail_status::GetTrailStatusOutput) -> TrailDelivery {
    let error = |e: Option<&str>| e.filter(|e| !e.is_empty()).map(str::to_string);
    let time = |t: Option<&aws_smithy_types::DateTime>| t.map(|t| t.secs());
    let text_time = |t: Option<&str>| {
        t.and_then(|t| aws_smithy_types::DateTime::from_str(t, aws_smithy_types::date_time::Format::DateTime).ok())
            .map(|t| t.secs())
    };
    TrailDelivery {
        logging_started: time(status.start_logging_time()),
        log_files: time(status.latest_delivery_time()),
        log_files_error: error(status.latest_delivery_error()),
        log_files_attempt: text_time(status.latest_delivery_attempt_time()),
        log_files_attempt_succeeded: text_time(status.latest_delivery_attempt_succeeded()),
        digests: time(status.latest_digest_delivery_time()),
        digests_error: error(status.latest_digest_delivery_error()),
        cloud_watch_logs: time(status.latest_cloud_watch_logs_delivery_time()),
        cloud_watch_logs_error: error(status.latest_cloud_watch_logs_delivery_error()),
        notification_error: error(status.latest_notification_error()),
    }
}

/// A multi-Region trail's status as one Region's CloudTrail gives it: GetTrailStatus "returns
/// trail status from a single Region. To return trail status from all Regions, you must call the
/// operation on each Region", naming the trail by its ARN there (a shadow trail:
/// https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_GetTrailStatus.html).
/// Whether it logs there and its deliveries from there; None when that Region does not know it.
pub async fn observe_status_in_region(
    clients: &AccountClients,
    arn: &str,
) -> Result<Option<(bool, TrailDelivery)>, AwsError> {
    let status = clients.cloudtrail.get_trail_status().name(arn).send().await;
    let resource = format!("trail {arn} in {}", clients.region);
    Ok(optional(status, "CloudTrail", "GetTrailStatus", &resource)?
        .map(|status| (status.is_logging() == Some(true), delivery_of(&status))))
}

/// Another account's trail as this account may see it: an Organization trail is listed to its
/// members by DescribeTrails (as a shadow trail), and its status answered to them by
/// GetTrailStatus on its full ARN ("If the trail is an organization trail and you are a member
/// account in the organization in AWS Organizations, you must provide the full ARN of that trail,
/// and not just the name": https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_GetTrailStatus.html),
/// while GetEventSelectors and ListTags answer TrailNotFound / CloudTrailARNInvalid there
/// (CloudTrail user guide, "Organization trails": member accounts can see the trail, not change
/// it). Its logging and deliveries are read; its selectors and tags are reported as not
/// observable, not as a failure. A trail whose status is refused too (TrailNotFound) has no
/// delivery read.
pub async fn observe_foreign_trail(clients: &AccountClients, arn: &str) -> Result<Option<ObservedTrail>, AwsError> {
    let sent = clients
        .cloudtrail
        .describe_trails()
        .trail_name_list(arn)
        .include_shadow_trails(true)
        .send()
        .await;
    let out = check(sent, "CloudTrail", "DescribeTrails", &format!("trail {arn}"))?;
    let Some(trail) = out.trail_list().iter().find(|t| t.trail_arn() == Some(arn)) else {
        return Ok(None);
    };
    let mut observed = settings_of(trail, arn);
    let status = clients.cloudtrail.get_trail_status().name(arn).send().await;
    if let Some(status) = optional(status, "CloudTrail", "GetTrailStatus", &format!("trail {arn}"))? {
        observed.logging = status.is_logging() == Some(true);
        observed.delivery = Some(delivery_of(&status));
    }
    Ok(Some(observed))
}

fn sorted(items: &[String]) -> Vec<String> {
    let mut items = items.to_vec();
    items.sort();
    items
}

fn basic_selector(s: &EventSelector) -> BasicSelector {
    let mut data_resources: Vec<(String, Vec<String>)> = s
        .data_resources()
        .iter()
        .map(|d| (d.r#type().unwrap_or_default().to_string(), sorted(d.values())))
        .collect();
    data_resources.sort();
    BasicSelector {
        read_write_type: s
            .read_write_type()
            .map(|t| t.as_str().to_string())
            .unwrap_or_else(|| "All".into()),
        include_management_events: s.include_management_events().unwrap_or(true),
        exclude_management_event_sources: sorted(s.exclude_management_event_sources()),
        data_resources,
    }
}

fn advanced_selector(s: &AdvancedEventSelector) -> AdvancedSelector {
    let mut fields: Vec<AdvancedField> = s
        .field_selectors()
        .iter()
        .map(|f| AdvancedField {
            field: f.field().to_string(),
            equals: sorted(f.equals()),
            starts_with: sorted(f.starts_with()),
            ends_with: sorted(f.ends_with()),
            not_equals: sorted(f.not_equals()),
            not_starts_with: sorted(f.not_starts_with()),
            not_ends_with: sorted(f.not_ends_with()),
        })
        .collect();
    fields.sort();
    AdvancedSelector {
        name: s.name().unwrap_or_default().to_string(),
        field_selectors: fields,
    }
}

fn tags_list(tags: &BTreeMap<String, String>) -> Result<Vec<Tag>, AwsError> {
    tags.iter()
        .map(|(k, v)| {
            Tag::builder().key(k).value(v).build().map_err(|e| AwsError {
                kind: ErrorKind::Invalid,
                action: "cloudtrail:AddTags".into(),
                resource: format!("tag {k}"),
                code: "InvalidTag".into(),
                message: e.to_string(),
            })
        })
        .collect()
}

/// Creates the trail with every setting; `kms_key` is the key ARN.
pub async fn create_trail(clients: &AccountClients, s: &TrailSettings, kms_key: &str) -> Result<String, AwsError> {
    clients.cloudtrail_writes.wait().await;
    let (group, role) = s.cloud_watch_logs.clone().unzip();
    let sent = clients
        .cloudtrail
        .create_trail()
        .name(&s.name)
        .set_s3_bucket_name(s.bucket.clone())
        .set_s3_key_prefix(s.key_prefix.clone())
        .kms_key_id(kms_key)
        .is_multi_region_trail(s.multi_region)
        .include_global_service_events(s.global_service_events)
        .enable_log_file_validation(s.log_file_validation)
        .is_organization_trail(s.organization)
        .set_cloud_watch_logs_log_group_arn(group)
        .set_cloud_watch_logs_role_arn(role)
        .set_tags_list(Some(tags_list(&s.tags)?))
        .send()
        .await;
    let out = check(sent, "CloudTrail", "CreateTrail", &format!("trail {}", s.name))?;
    Ok(out.trail_arn().unwrap_or(&s.arn).to_string())
}

pub async fn update_trail(clients: &AccountClients, arn: &str, u: &TrailUpdate) -> Result<(), AwsError> {
    clients.cloudtrail_writes.wait().await;
    let (group, role) = u.cloud_watch_logs.clone().unzip();
    let sent = clients
        .cloudtrail
        .update_trail()
        .name(arn)
        .set_s3_bucket_name(u.bucket.clone())
        .set_s3_key_prefix(u.key_prefix.clone())
        .set_kms_key_id(u.kms_key.clone())
        .set_is_multi_region_trail(u.multi_region)
        .set_include_global_service_events(u.global_service_events)
        .set_enable_log_file_validation(u.log_file_validation)
        .set_is_organization_trail(u.organization)
        .set_cloud_watch_logs_log_group_arn(group)
        .set_cloud_watch_logs_role_arn(role)
        .send()
        .await;
    check(sent, "CloudTrail", "UpdateTrail", &format!("trail {arn}")).map(|_| ())
}

pub async fn put_event_selectors(
    clients: &AccountClients,
    arn: &str,
    selectors: &EventSelectors,
) -> Result<(), AwsError> {
    clients.cloudtrail_writes.wait().await;
    let resource = format!("trail {arn}");
    let invalid = |e: aws_sdk_cloudtrail::error::BuildError| AwsError {
        kind: ErrorKind::Invalid,
        action: "cloudtrail:PutEventSelectors".into(),
        resource: resource.clone(),
        code: "InvalidEventSelectors".into(),
        message: e.to_string(),
    };
    let request = clients.cloudtrail.put_event_selectors().trail_name(arn);
    let request = match selectors {
        EventSelectors::Basic(basic) => {
            let selectors = basic
                .iter()
                .map(|s| {
                    EventSelector::builder()
                        .read_write_type(ReadWriteType::from(s.read_write_type.as_str()))
                        .include_management_events(s.include_management_events)
                        .set_exclude_management_event_sources(Some(s.exclude_management_event_sources.clone()))
                        .set_data_resources(Some(
                            s.data_resources
                                .iter()
                                .map(|(t, v)| DataResource::builder().r#type(t).set_values(Some(v.clone())).build())
                                .collect(),
                        ))
                        .build()
                })
                .collect();
            request.set_event_selectors(Some(selectors))
        }
        EventSelectors::Advanced(advanced) => {
            let selectors = advanced
                .iter()
                .map(|s| {
                    let fields = s
                        .field_selectors
                        .iter()
                        .map(|f| {
                            AdvancedFieldSelector::builder()
                                .field(&f.field)
                                .set_equals(non_empty(&f.equals))
                                .set_starts_with(non_empty(&f.starts_with))
                                .set_ends_with(non_empty(&f.ends_with))
                                .set_not_equals(non_empty(&f.not_equals))
                                .set_not_starts_with(non_empty(&f.not_starts_with))
                                .set_not_ends_with(non_empty(&f.not_ends_with))
                                .build()
                                .map_err(invalid)
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    AdvancedEventSelector::builder()
                        .name(&s.name)
                        .set_field_selectors(Some(fields))
                        .build()
                        .map_err(invalid)
                })
                .collect::<Result<Vec<_>, _>>()?;
            request.set_advanced_event_selectors(Some(selectors))
        }
    };
    check(request.send().await, "CloudTrail", "PutEventSelectors", &resource).map(|_| ())
}

fn non_empty(values: &[String]) -> Option<Vec<String>> {
    (!values.is_empty()).then(|| values.to_vec())
}

pub async fn put_insight_selectors(clients: &AccountClients, arn: &str, insights: &[String]) -> Result<(), AwsError> {
    clients.cloudtrail_writes.wait().await;
    let selectors = insights
        .iter()
        .map(|i| {
            InsightSelector::builder()
                .insight_type(InsightType::from(i.as_str()))
                .build()
        })
        .collect();
    let sent = clients
        .cloudtrail
        .put_insight_selectors()
        .trail_name(arn)
        .set_insight_selectors(Some(selectors))
        .send()
        .await;
    check(sent, "CloudTrail", "PutInsightSelectors", &format!("trail {arn}")).map(|_| ())
}

pub async fn add_tags(clients: &AccountClients, arn: &str, tags: &BTreeMap<String, String>) -> Result<(), AwsError> {
    clients.cloudtrail_writes.wait().await;
    let sent = clients
        .cloudtrail
        .add_tags()
        .resource_id(arn)
        .set_tags_list(Some(tags_list(tags)?))
        .send()
        .await;
    check(sent, "CloudTrail", "AddTags", &format!("trail {arn}")).map(|_| ())
}

pub async fn start_logging(clients: &AccountClients, arn: &str) -> Result<(), AwsError> {
    clients.cloudtrail_writes.wait().await;
    let sent = clients.cloudtrail.start_logging().name(arn).send().await;
    check(sent, "CloudTrail", "StartLogging", &format!("trail {arn}")).map(|_| ())
}

pub async fn stop_logging(clients: &AccountClients, arn: &str) -> Result<(), AwsError> {
    clients.cloudtrail_writes.wait().await;
    let sent = clients.cloudtrail.stop_logging().name(arn).send().await;
    check(sent, "CloudTrail", "StopLogging", &format!("trail {arn}")).map(|_| ())
}

pub async fn delete_trail(clients: &AccountClients, arn: &str) -> Result<(), AwsError> {
    clients.cloudtrail_writes.wait().await;
    let sent = clients.cloudtrail.delete_trail().name(arn).send().await;
    check(sent, "CloudTrail", "DeleteTrail", &format!("trail {arn}")).map(|_| ())
}

/// CloudTrail's public keys valid between `start` and `end` (seconds): fingerprint -> DER
/// (PKCS#1 RSAPublicKey), the keys that sign digest files.
pub async fn list_public_keys(
    clients: &AccountClients,
    start: i64,
    end: i64,
) -> Result<BTreeMap<String, Vec<u8>>, AwsError> {
    let mut keys = BTreeMap::new();
    let mut token = None;
    loop {
        let sent = clients
            .cloudtrail
            .list_public_keys()
            .start_time(aws_smithy_types::DateTime::from_secs(start))
            .end_time(aws_smithy_types::DateTime::from_secs(end))
            .set_next_token(token.take())
            .send()
            .await;
        let page = check(sent, "CloudTrail", "ListPublicKeys", "CloudTrail's public keys")?;
        for key in page.public_key_list() {
            if let (Some(fingerprint), Some(value)) = (key.fingerprint(), key.value()) {
                keys.insert(fingerprint.to_string(), value.as_ref().to_vec());
            }
        }
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => return Ok(keys),
        }
    }
}

/// The trails that apply in the clients' Region: those whose home it is and every multi-Region
/// or Organization trail (DescribeTrails with shadow trails), as (ARN, home Region).
pub async fn trails_in_region(clients: &AccountClients) -> Result<Vec<(String, String)>, AwsError> {
    let sent = clients
        .cloudtrail
        .describe_trails()
        .include_shadow_trails(true)
        .send()
        .await;
    let out = check(
        sent,
        "CloudTrail",
        "DescribeTrails",
        &format!("the trails of {}", clients.region),
    )?;
    Ok(out
        .trail_list()
        .iter()
        .filter_map(|t| {
            Some((
                t.trail_arn()?.to_string(),
                t.home_region().unwrap_or_default().to_string(),
            ))
        })
        .collect())
}

/// The trails that apply in the clients' Region (as `trails_in_region`), with the settings
/// DescribeTrails gives: name, bucket, multi-Region, Organization (status, selectors and tags are
/// not read).
pub async fn describe_trails_in_region(clients: &AccountClients) -> Result<Vec<ObservedTrail>, AwsError> {
    let sent = clients
        .cloudtrail
        .describe_trails()
        .include_shadow_trails(true)
        .send()
        .await;
    let out = check(
        sent,
        "CloudTrail",
        "DescribeTrails",
        &format!("the trails of {}", clients.region),
    )?;
    Ok(out
        .trail_list()
        .iter()
        .filter_map(|t| Some(settings_of(t, t.trail_arn()?)))
        .collect())
}
