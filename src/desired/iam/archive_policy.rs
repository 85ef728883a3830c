//! The policy of the role trailkeeper assumes in a log-archive account (`iam-policy --document
//! archive`): the archive's key, its buckets (archive, access logs, replica, query results), the
//! replication role S3 assumes, verification reads and the audit queries. Nothing of the members'.

use super::*;
use crate::desired::archive::REPLICATION_ROLE;

pub fn archive_policy(s: &IamSettings) -> Value {
    let p = s.partition.as_str();
    let prefix = s.name_prefix.as_str();
    let database = s.audit_database.as_str();
    let role = format!("arn:{p}:iam::*:role/{REPLICATION_ROLE}");
    let archive_buckets = format!("arn:{p}:s3:::{prefix}-*-log-archive-*");
    let buckets = vec![
        archive_buckets.clone(),
        format!("arn:{p}:s3:::{prefix}-*-athena-results-*"),
    ];
    let mut bucket_actions = account_policy::BUCKET_ACTIONS.to_vec();
    bucket_actions.extend(["s3:GetReplicationConfiguration", "s3:PutReplicationConfiguration"]);
    let statements = vec![
        // S3 alone assumes the replication role (its trust policy); trailkeeper never does.
        json!({
            "Sid": "NeverAssumeReplicationRole",
            "Effect": "Deny",
            "Action": "sts:AssumeRole",
            "Resource": role
        }),
        statement(
            "ReadsWithoutResourceScope",
            &[
                "athena:BatchGetNamedQuery",
                "athena:ListNamedQueries",
                "cloudtrail:ListPublicKeys",
                "kms:DescribeKey",
                "kms:ListKeys",
                // A member's Organization trail is named by the management account.
                "organizations:DescribeOrganization",
            ],
            any(),
        ),
        with_condition(
            statement("CreateArchiveKeysWithoutResourceScope", &["kms:CreateKey"], any()),
            json!({
                "StringEquals": {
                    "kms:KeySpec": "SYMMETRIC_DEFAULT",
                    "kms:KeyUsage": "ENCRYPT_DECRYPT",
                    "kms:KeyOrigin": "AWS_KMS"
                },
                "Bool": {"kms:BypassPolicyLockoutSafetyCheck": "false"}
            }),
        ),
        statement(
            "ArchiveKeyAliases",
            &["kms:CreateAlias"],
            vec![format!("arn:{p}:kms:*:*:{}", KEY_ALIAS.replace("/cloudtrail", "/*"))],
        ),
        statement("ArchiveBuckets", &bucket_actions, buckets),
        // The delivery proof (HeadObject of the newest file for its replication status) and verify.
        statement(
            "ArchiveObjects",
            &["s3:GetObject"],
            vec![format!("{archive_buckets}/*")],
        ),
        // Only S3 may assume the role (its trust policy names S3 and this bucket), and it is
        // passed to S3 only: its inline policy grants nothing trailkeeper could use.
        statement(
            "ReplicationRole",
            &[
                "iam:CreateRole",
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:PutRolePolicy",
                "iam:TagRole",
                "iam:UpdateAssumeRolePolicy",
            ],
            vec![role.clone()],
        ),
        with_condition(
            statement("PassReplicationRoleToS3", &["iam:PassRole"], vec![role]),
            json!({"StringEquals": {"iam:PassedToService": "s3.amazonaws.com"}}),
        ),
        statement(
            "AuditQueriesCatalog",
            &[
                "glue:CreateDatabase",
                "glue:CreateTable",
                "glue:GetDatabase",
                "glue:GetTable",
                "glue:TagResource",
                "glue:UpdateTable",
            ],
            vec![
                format!("arn:{p}:glue:*:*:catalog"),
                format!("arn:{p}:glue:*:*:database/{database}"),
                format!("arn:{p}:glue:*:*:table/{database}/*"),
            ],
        ),
        statement(
            "AuditQueriesWorkGroup",
            &[
                "athena:CreateNamedQuery",
                "athena:CreateWorkGroup",
                "athena:DeleteNamedQuery",
                "athena:GetWorkGroup",
                "athena:TagResource",
                "athena:UpdateNamedQuery",
                "athena:UpdateWorkGroup",
            ],
            vec![format!("arn:{p}:athena:*:*:workgroup/{}", s.audit_work_group)],
        ),
    ];
    json!({"Version": "2012-10-17", "Statement": statements})
}
