//! The resource policies of the trail's key and buckets, as JSON documents: who may use the key,
//! write the logs and read them.

use serde_json::{Value, json};

use super::{
    access_log_bucket_name, athena, flow_logs_to_trail_bucket, iam, partition, regional, sorted, trail_arn,
    trail_bucket_name,
};
use crate::api::{DeletionPolicy, LoggingBaselineSpec};

/// The source ARN of log deliveries (flow logs to S3) of this account, from any region.
fn log_delivery_source(spec: &LoggingBaselineSpec) -> String {
    format!("arn:{}:logs:*:{}:*", partition(&spec.primary_region), spec.account_id)
}

/// The key policy: the account root (so IAM policies apply), the administrators, CloudTrail
/// (GenerateDataKey only for this trail's encryption context and source ARN), the log delivery
/// service when flow logs go to the trail bucket, and the operators (Decrypt of this account's
/// CloudTrail logs, and the audit queries' results through S3).
pub fn key_policy(spec: &LoggingBaselineSpec) -> Value {
    key_policy_for(spec, &trail_arn(spec))
}

/// `key_policy` for the trail `trail` (an Organization trail's ARN names the management account).
pub fn key_policy_for(spec: &LoggingBaselineSpec, trail: &str) -> Value {
    let account = &spec.account_id;
    let part = partition(&spec.primary_region);
    let owner = trail.split(':').nth(4).unwrap_or(account);
    let mut statements = key_policy_base(spec)["Statement"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    statements.extend(cloudtrail_key_statements(
        json!({"StringEquals": {"aws:SourceArn": trail}}),
        json!(trail),
    ));
    if flow_logs_to_trail_bucket(spec) {
        // SSE-KMS buckets: the delivery service encrypts with the bucket's key (VPC user guide,
        // "Amazon S3 bucket permissions for flow logs", SSE-KMS), for this account's deliveries only.
        statements.push(json!({
            "Sid": "LogDeliveryEncryptFlowLogs",
            "Effect": "Allow",
            "Principal": {"Service": "delivery.logs.amazonaws.com"},
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": log_delivery_source(spec)}
            }
        }));
    }
    if !spec.encryption.operators.is_empty() {
        // This account's trails, and the Organization trail it may have created for its
        // management account (whose ARN is the logs' encryption context).
        let own = format!("arn:{part}:cloudtrail:*:{account}:trail/*");
        let operators_trails = match owner == account {
            true => json!(own),
            false => json!(sorted(&[own, format!("arn:{part}:cloudtrail:*:{owner}:trail/*")])),
        };
        statements.push(json!({
            "Sid": "OperatorsDecryptLogs",
            "Effect": "Allow",
            "Principal": {"AWS": sorted(&spec.encryption.operators)},
            "Action": ["kms:Decrypt", "kms:ReEncryptFrom"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:CallerAccount": account},
                "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": operators_trails}
            }
        }));
        if spec.audit_queries.enabled {
            statements.push(audit_results_statement(
                "OperatorsUseAuditQueryResults",
                &spec.encryption.operators,
                spec,
            ));
        }
    }
    json!({"Version": "2012-10-17", "Id": "trailkeeper-cloudtrail-key", "Statement": statements})
}

/// CloudTrail's use of a trail key, for requests from the trails `source` names (a Condition:
/// `aws:SourceArn`, or `aws:SourceOrgID` with trail-name patterns): GenerateDataKey* for those
/// trails' encryption context (`context`: trail ARNs or patterns), DescribeKey, and Decrypt.
///
/// Decrypt: "If you are using an existing S3 bucket with an S3 Bucket Key, kms:Decrypt permissions
/// are required to create or update a trail with SSE-KMS encryption enabled", and the same page's
/// example grants it to the CloudTrail service principal. Whose Decrypt AWS checks is not said:
/// CloudTrail's is granted here, under the same source condition as GenerateDataKey, and the
/// caller's (trailkeeper's role, a member's role) by the key's other statements, so that the trail
/// is created whichever AWS checks.
/// https://docs.aws.amazon.com/awscloudtrail/latest/userguide/create-kms-key-policy-for-cloudtrail.html
pub(crate) fn cloudtrail_key_statements(source: Value, context: Value) -> [Value; 3] {
    let mut encrypt_condition = source.clone();
    if let Some(operators) = encrypt_condition.as_object_mut() {
        operators.insert(
            "StringLike".into(),
            json!({"kms:EncryptionContext:aws:cloudtrail:arn": context}),
        );
    }
    [
        json!({
            "Sid": "CloudTrailEncryptLogs",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:GenerateDataKey*",
            "Resource": "*",
            "Condition": encrypt_condition
        }),
        json!({
            "Sid": "CloudTrailDescribeKey",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:DescribeKey",
            "Resource": "*",
            "Condition": source.clone()
        }),
        json!({
            "Sid": "CloudTrailDecryptForBucketKey",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": source
        }),
    ]
}

/// Athena writes and reads query results through S3, encrypted with the key: `principals` of the
/// account may do so for the results bucket of `spec` only.
pub(crate) fn audit_results_statement(sid: &str, principals: &[String], spec: &LoggingBaselineSpec) -> Value {
    let results = format!(
        "arn:{}:s3:::{}",
        partition(&spec.primary_region),
        athena::results_bucket_name(spec)
    );
    json!({
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"AWS": sorted(principals)},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
        "Resource": "*",
        "Condition": {
            "StringEquals": {
                "kms:CallerAccount": spec.account_id,
                "kms:ViaService": format!("s3.{}.amazonaws.com", spec.primary_region)
            },
            "StringLike": {"kms:EncryptionContext:aws:s3:arn": [results.clone(), format!("{results}/*")]}
        }
    })
}

/// What every key trailkeeper creates admits: the account root (so IAM policies apply) and the
/// administrators.
pub fn key_policy_base(spec: &LoggingBaselineSpec) -> Value {
    let part = partition(&spec.primary_region);
    let mut statements = vec![json!({
        "Sid": "EnableIAMPolicies",
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:{part}:iam::{}:root", spec.account_id)},
        "Action": "kms:*",
        "Resource": "*"
    })];
    if !spec.encryption.administrators.is_empty() {
        statements.push(json!({
            "Sid": "KeyAdministrators",
            "Effect": "Allow",
            "Principal": {"AWS": sorted(&spec.encryption.administrators)},
            "Action": [
                "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
                "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
                "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"
            ],
            "Resource": "*"
        }));
    }
    if let Some(credentials) = &spec.credentials {
        // trailkeeper's own maintenance of the key, granted here rather than by an IAM policy on
        // every key (or on tagged keys, which anyone who may tag could claim).
        let delete = spec.deletion_policy == DeletionPolicy::Delete;
        statements.push(json!({
            "Sid": "TrailkeeperMaintainsKey",
            "Effect": "Allow",
            "Principal": {"AWS": credentials.assume_role_arn},
            "Action": iam::key_maintenance_actions(delete),
            "Resource": "*"
        }));
    }
    json!({"Version": "2012-10-17", "Id": "trailkeeper-cloudtrail-key", "Statement": statements})
}

pub(crate) fn deny_insecure_transport(bucket_arn: &str) -> Value {
    json!({
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, format!("{bucket_arn}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}
    })
}

/// The trail bucket's policy: CloudTrail may check the ACL and write under the prefix only on
/// behalf of this trail (confused-deputy guard), also under the Organization's path for an
/// Organization trail (`organization_id`); the log delivery service may write flow logs of this
/// account when they go to S3; nobody may use plain HTTP.
///
/// The flow-log statements are ours so that CreateFlowLogs, which attaches its own policy to a
/// bucket lacking them (VPC user guide, "Amazon S3 bucket permissions for flow logs"), never
/// replaces CloudTrail's.
pub fn trail_bucket_policy(spec: &LoggingBaselineSpec, organization_id: Option<&str>) -> Value {
    trail_bucket_policy_for(spec, &trail_arn(spec), organization_id)
}

/// `trail_bucket_policy` for the trail `trail`, which writes under its owner's path (an
/// Organization trail's owner is the management account).
pub fn trail_bucket_policy_for(spec: &LoggingBaselineSpec, trail: &str, organization_id: Option<&str>) -> Value {
    let part = partition(&spec.primary_region);
    let bucket_arn = format!("arn:{part}:s3:::{}", trail_bucket_name(spec));
    let owner = trail.split(':').nth(4).unwrap_or(&spec.account_id);
    let prefix = spec.storage.key_prefix.trim_end_matches('/');
    let mut statements = vec![
        json!({
            "Sid": "CloudTrailAclCheck",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:GetBucketAcl",
            "Resource": bucket_arn,
            "Condition": {"StringEquals": {"aws:SourceArn": trail}}
        }),
        json!({
            "Sid": "CloudTrailWrite",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": format!("{bucket_arn}/{prefix}/AWSLogs/{owner}/*"),
            "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail}}
        }),
    ];
    if let Some(organization) = organization_id {
        // An Organization trail writes every member's logs under AWSLogs/{o-id}/{account}/.
        statements.push(json!({
            "Sid": "CloudTrailWriteOrganization",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": format!("{bucket_arn}/{prefix}/AWSLogs/{organization}/*"),
            "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceArn": trail}}
        }));
    }
    if flow_logs_to_trail_bucket(spec) {
        let account = &spec.account_id;
        let source = log_delivery_source(spec);
        statements.push(json!({
            "Sid": "AWSLogDeliveryWrite",
            "Effect": "Allow",
            "Principal": {"Service": "delivery.logs.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": format!("{bucket_arn}/AWSLogs/{account}/*"),
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account, "s3:x-amz-acl": "bucket-owner-full-control"},
                "ArnLike": {"aws:SourceArn": source}
            }
        }));
        statements.push(json!({
            "Sid": "AWSLogDeliveryAclCheck",
            "Effect": "Allow",
            "Principal": {"Service": "delivery.logs.amazonaws.com"},
            "Action": "s3:GetBucketAcl",
            "Resource": bucket_arn,
            "Condition": {"StringEquals": {"aws:SourceAccount": account}, "ArnLike": {"aws:SourceArn": source}}
        }));
    }
    statements.push(deny_insecure_transport(&bucket_arn));
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The access-log bucket's policy: only the S3 logging service, for the trail bucket of this
/// account; nobody may use plain HTTP.
pub fn access_log_bucket_policy(spec: &LoggingBaselineSpec) -> Value {
    let part = partition(&spec.primary_region);
    let bucket_arn = format!("arn:{part}:s3:::{}", access_log_bucket_name(spec));
    let mut statements = vec![json!({
        "Sid": "S3ServerAccessLogs",
        "Effect": "Allow",
        "Principal": {"Service": "logging.s3.amazonaws.com"},
        "Action": "s3:PutObject",
        "Resource": format!("{bucket_arn}/*"),
        "Condition": {
            "ArnLike": {"aws:SourceArn": format!("arn:{part}:s3:::{}", trail_bucket_name(spec))},
            "StringEquals": {"aws:SourceAccount": spec.account_id}
        }
    })];
    if spec.config_rules.create_recorder {
        // The recorders trailkeeper creates deliver here, for this account only.
        let account = &spec.account_id;
        statements.push(json!({
            "Sid": "AWSConfigBucketCheck",
            "Effect": "Allow",
            "Principal": {"Service": "config.amazonaws.com"},
            "Action": ["s3:GetBucketAcl", "s3:ListBucket"],
            "Resource": bucket_arn,
            "Condition": {"StringEquals": {"aws:SourceAccount": account}}
        }));
        statements.push(json!({
            "Sid": "AWSConfigBucketDelivery",
            "Effect": "Allow",
            "Principal": {"Service": "config.amazonaws.com"},
            "Action": "s3:PutObject",
            "Resource": format!("{bucket_arn}/{}/AWSLogs/{account}/Config/*", regional::CONFIG_DELIVERY_PREFIX),
            "Condition": {"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control", "aws:SourceAccount": account}}
        }));
    }
    statements.push(deny_insecure_transport(&bucket_arn));
    json!({"Version": "2012-10-17", "Statement": statements})
}
