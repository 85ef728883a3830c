use super::*;
use crate::api::DeletionPolicy;
use crate::api::{LoggingBaselineSpec, RetentionPolicySpec, TrailPolicySpec};
use serde_json::json;

fn spec() -> LoggingBaselineSpec {
    serde_json::from_value(json!({
        "accountId": "111122223333",
        "primaryRegion": "eu-west-1",
        "encryption": {"administrators": ["arn:aws:iam::111122223333:role/admin"], "operators": []}
    }))
    .unwrap()
}

#[test]
fn names_follow_the_templates() {
    let s = spec();
    assert_eq!(trail_bucket_name(&s), "trailkeeper-111122223333-cloudtrail-eu-west-1");
    assert_eq!(
        access_log_bucket_name(&s),
        "trailkeeper-111122223333-cloudtrail-access-eu-west-1"
    );
    assert_eq!(
        trail_arn(&s),
        "arn:aws:cloudtrail:eu-west-1:111122223333:trail/trailkeeper"
    );
    assert_eq!(partition("cn-north-1"), "aws-cn");
    assert_eq!(partition("us-gov-west-1"), "aws-us-gov");
}

#[test]
fn the_key_policy_admits_root_administrators_and_cloudtrail_for_this_trail_only() {
    let policy = key_policy(&spec());
    let statements = policy["Statement"].as_array().unwrap();
    let sids: Vec<&str> = statements.iter().map(|s| s["Sid"].as_str().unwrap()).collect();
    // No operators: no decrypt statement.
    assert_eq!(
        sids,
        [
            "EnableIAMPolicies",
            "KeyAdministrators",
            "CloudTrailEncryptLogs",
            "CloudTrailDescribeKey",
            "CloudTrailDecryptForBucketKey"
        ]
    );
    // U1: CloudTrail's Decrypt (for the bucket's S3 Bucket Key) under the same source condition.
    assert_eq!(
        statements[4]["Condition"]["StringEquals"]["aws:SourceArn"],
        "arn:aws:cloudtrail:eu-west-1:111122223333:trail/trailkeeper"
    );
    assert_eq!(statements[4]["Action"], "kms:Decrypt");
    let encrypt = &statements[2];
    let trail = "arn:aws:cloudtrail:eu-west-1:111122223333:trail/trailkeeper";
    assert_eq!(encrypt["Condition"]["StringEquals"]["aws:SourceArn"], trail);
    assert_eq!(
        encrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:cloudtrail:arn"],
        trail
    );
    assert_eq!(statements[0]["Principal"]["AWS"], "arn:aws:iam::111122223333:root");
}

#[test]
fn the_trail_bucket_policy_guards_against_confused_deputies_and_plain_http() {
    let policy = trail_bucket_policy(&spec(), None);
    let statements = policy["Statement"].as_array().unwrap();
    for s in &statements[..2] {
        assert_eq!(s["Principal"]["Service"], "cloudtrail.amazonaws.com");
        assert_eq!(
            s["Condition"]["StringEquals"]["aws:SourceArn"],
            "arn:aws:cloudtrail:eu-west-1:111122223333:trail/trailkeeper"
        );
    }
    assert_eq!(
        statements[1]["Resource"],
        "arn:aws:s3:::trailkeeper-111122223333-cloudtrail-eu-west-1/AWS/CloudTrail/AWSLogs/111122223333/*"
    );
    assert_eq!(statements[2]["Effect"], "Deny");
    assert_eq!(statements[2]["Condition"]["Bool"]["aws:SecureTransport"], "false");
}

#[test]
fn the_access_log_bucket_admits_only_s3_logging_for_the_trail_bucket() {
    let policy = access_log_bucket_policy(&spec());
    let allow = &policy["Statement"][0];
    assert_eq!(allow["Principal"]["Service"], "logging.s3.amazonaws.com");
    assert_eq!(
        allow["Condition"]["ArnLike"]["aws:SourceArn"],
        "arn:aws:s3:::trailkeeper-111122223333-cloudtrail-eu-west-1"
    );
}

#[test]
fn the_default_retention_keeps_logs_forever_under_a_governance_lock() {
    let (s, t, r) = (spec(), TrailPolicySpec::default(), RetentionPolicySpec::default());
    let d = account(&AccountSpecs {
        baseline: &s,
        trail_policy: &t,
        retention: &r,
    });
    let storage = d.storage.unwrap();
    let trail_bucket = storage.trail_bucket;
    assert!(trail_bucket.object_lock);
    assert_eq!(
        trail_bucket.lock_retention,
        Some(LockRetention {
            mode: LockMode::Governance,
            days: 365
        })
    );
    assert_eq!(trail_bucket.lifecycle.expire_current_after_days, None);
    assert_eq!(trail_bucket.lifecycle.expire_noncurrent_after_days, None);
    assert_eq!(trail_bucket.encryption, BucketEncryption::KmsTrailKey);
    let access = storage.access_log_bucket;
    assert!(!access.object_lock);
    assert_eq!(access.encryption, BucketEncryption::S3Managed);
    assert!(matches!(d.key.source, KeySource::Create { .. }));
    let DesiredTrail::Managed(trail) = d.trail else {
        panic!("a managed trail")
    };
    assert!(trail.multi_region && trail.global_service_events && trail.log_file_validation && trail.logging);
}

#[test]
fn an_existing_trail_gets_no_storage_and_no_key() {
    let mut s = spec();
    s.trail.source = TrailSource::Existing;
    s.trail.existing_trail_arn = Some("arn:aws:cloudtrail:us-east-1:999988887777:trail/org".into());
    let (t, r) = (TrailPolicySpec::default(), RetentionPolicySpec::default());
    let d = account(&AccountSpecs {
        baseline: &s,
        trail_policy: &t,
        retention: &r,
    });
    assert!(d.storage.is_none());
    assert_eq!(d.key.source, KeySource::None);
    let DesiredTrail::Existing { arn, expected, manage } = d.trail else {
        panic!("an existing trail")
    };
    assert_eq!(arn, "arn:aws:cloudtrail:us-east-1:999988887777:trail/org");
    assert_eq!(expected.name, "org");
    assert!(expected.bucket.is_none() && manage.is_empty());
}

fn statement<'a>(policy: &'a Value, sid: &str) -> Option<&'a Value> {
    policy["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == sid)
}

#[test]
fn an_organization_trail_may_write_under_the_organization_path_for_this_trail_only() {
    let s = spec();
    assert!(statement(&trail_bucket_policy(&s, None), "CloudTrailWriteOrganization").is_none());
    let policy = trail_bucket_policy(&s, Some("o-abc123defg"));
    let write = statement(&policy, "CloudTrailWriteOrganization").unwrap();
    assert_eq!(
        write["Resource"],
        "arn:aws:s3:::trailkeeper-111122223333-cloudtrail-eu-west-1/AWS/CloudTrail/AWSLogs/o-abc123defg/*"
    );
    assert_eq!(write["Condition"]["StringEquals"]["aws:SourceArn"], trail_arn(&s));
    assert_eq!(
        write["Condition"]["StringEquals"]["s3:x-amz-acl"],
        "bucket-owner-full-control"
    );
}

#[test]
fn flow_logs_to_s3_own_the_log_delivery_statements_of_the_bucket_and_the_key() {
    let mut s = spec();
    assert!(statement(&trail_bucket_policy(&s, None), "AWSLogDeliveryWrite").is_none());
    assert!(statement(&key_policy(&s), "LogDeliveryEncryptFlowLogs").is_none());
    s.flow_logs.destination = FlowLogDestination::S3;
    let policy = trail_bucket_policy(&s, None);
    let write = statement(&policy, "AWSLogDeliveryWrite").unwrap();
    assert_eq!(write["Principal"]["Service"], "delivery.logs.amazonaws.com");
    assert_eq!(
        write["Resource"],
        "arn:aws:s3:::trailkeeper-111122223333-cloudtrail-eu-west-1/AWSLogs/111122223333/*"
    );
    assert_eq!(write["Condition"]["StringEquals"]["aws:SourceAccount"], "111122223333");
    assert_eq!(
        write["Condition"]["ArnLike"]["aws:SourceArn"],
        "arn:aws:logs:*:111122223333:*"
    );
    assert!(statement(&policy, "AWSLogDeliveryAclCheck").is_some());
    // CloudTrail's statements stay, and the deny comes last.
    assert!(statement(&policy, "CloudTrailWrite").is_some());
    assert_eq!(
        policy["Statement"].as_array().unwrap().last().unwrap()["Effect"],
        "Deny"
    );
    let key = key_policy(&s);
    let encrypt = statement(&key, "LogDeliveryEncryptFlowLogs").unwrap();
    assert_eq!(
        encrypt["Condition"]["StringEquals"]["aws:SourceAccount"],
        "111122223333"
    );
}

#[test]
fn operators_may_use_the_audit_query_results_through_s3_only() {
    let mut s = spec();
    s.encryption.operators = vec!["arn:aws:iam::111122223333:role/auditor".into()];
    let key = key_policy(&s);
    let results = statement(&key, "OperatorsUseAuditQueryResults").unwrap();
    assert_eq!(results["Principal"]["AWS"][0], "arn:aws:iam::111122223333:role/auditor");
    assert_eq!(
        results["Condition"]["StringEquals"]["kms:ViaService"],
        "s3.eu-west-1.amazonaws.com"
    );
    assert_eq!(
        results["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"][0],
        "arn:aws:s3:::trailkeeper-111122223333-athena-results-eu-west-1"
    );
    s.audit_queries.enabled = false;
    assert!(statement(&key_policy(&s), "OperatorsUseAuditQueryResults").is_none());
}

#[test]
fn the_account_role_maintains_the_key_through_its_policy_and_deletes_it_only_under_delete() {
    let mut s = spec();
    assert!(statement(&key_policy(&s), "TrailkeeperMaintainsKey").is_none());
    s.credentials = Some(crate::api::Credentials {
        assume_role_arn: "arn:aws:iam::111122223333:role/trailkeeper".into(),
        external_id: None,
    });
    let key = key_policy(&s);
    let maintains = statement(&key, "TrailkeeperMaintainsKey").unwrap();
    assert_eq!(
        maintains["Principal"]["AWS"],
        "arn:aws:iam::111122223333:role/trailkeeper"
    );
    let actions = maintains["Action"].to_string();
    assert!(actions.contains("kms:PutKeyPolicy") && actions.contains("kms:Decrypt"));
    assert!(!actions.contains("kms:ScheduleKeyDeletion"));
    s.deletion_policy = DeletionPolicy::Delete;
    let key = key_policy(&s);
    assert!(
        statement(&key, "TrailkeeperMaintainsKey").unwrap()["Action"]
            .to_string()
            .contains("kms:ScheduleKeyDeletion")
    );
}

/// S3: the trail key is CloudTrail's and its readers', never CloudWatch's, even when trailkeeper
/// keeps the monitoring topic (which has a key of its own: `monitoring::topic_key`).
#[test]
fn the_trail_key_admits_no_cloudwatch_when_the_monitoring_topic_is_kept() {
    let spec = spec();
    let policy = TrailPolicySpec {
        cloud_watch_logs: Some(crate::api::TrailCloudWatchLogs {
            log_group_arn: "arn:aws:logs:eu-west-1:111122223333:log-group:trail:*".into(),
            role_arn: "arn:aws:iam::111122223333:role/ct".into(),
        }),
        monitoring: Some(crate::api::MonitoringControls {
            topic_arn: None,
            subscriptions: vec![],
        }),
        ..Default::default()
    };
    let retention = RetentionPolicySpec::default();
    let desired = account(&AccountSpecs {
        baseline: &spec,
        trail_policy: &policy,
        retention: &retention,
    });
    assert!(
        !desired.key.policy.to_string().contains("cloudwatch.amazonaws.com"),
        "{}",
        desired.key.policy
    );
}
