//! The policy of the role trailkeeper assumes in a log-archive account (`iam-policy --document
//! archive`): the archive's key, its buckets (archive, access logs, replica, query results), the
//! replication roles S3 and S3 Batch Operations assume, the Batch Replication jobs, verification
//! reads and the audit queries. Nothing of the members'.

use super::*;
use crate::desired::archive::{BATCH_OPERATIONS_SERVICE, BATCH_REPLICATION_ROLE, REPLICATION_ROLE, S3_SERVICE};

pub fn archive_policy(s: &IamSettings) -> Value {
    let p = s.partition.as_str();
    let prefix = s.name_prefix.as_str();
    let database = s.audit_database.as_str();
    let role = format!("arn:{p}:iam::*:role/{REPLICATION_ROLE}");
    let batch_role = format!("arn:{p}:iam::*:role/{BATCH_REPLICATION_ROLE}");
    let archive_buckets = format!("arn:{p}:s3:::{prefix}-*-log-archive-*");
    let buckets = vec![
        archive_buckets.clone(),
        format!("arn:{p}:s3:::{prefix}-*-athena-results-*"),
    ];
    let mut bucket_actions = account_policy::BUCKET_ACTIONS.to_vec();
    // ListBucketVersions: whether the archive holds objects when the replication rule is put
    // (they need Batch Replication).
    bucket_actions.extend([
        "s3:GetReplicationConfiguration",
        "s3:ListBucketVersions",
        "s3:PutReplicationConfiguration",
    ]);
    let statements = vec![
        // S3 alone assumes the replication roles (their trust policies); trailkeeper never does.
        json!({
            "Sid": "NeverAssumeReplicationRoles",
            "Effect": "Deny",
            "Action": "sts:AssumeRole",
            "Resource": [role.clone(), batch_role.clone()]
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
        create_key_statement("CreateArchiveKeysWithoutResourceScope"),
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
        // Only S3 may assume the replication role (its trust policy names S3 and this bucket),
        // only S3 Batch Operations the Batch Replication role, and each is passed to its service
        // only: their inline policies grant nothing trailkeeper could use.
        statement(
            "ReplicationRoles",
            &[
                "iam:CreateRole",
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:PutRolePolicy",
                "iam:TagRole",
                "iam:UpdateAssumeRolePolicy",
            ],
            vec![role.clone(), batch_role.clone()],
        ),
        with_condition(
            statement("PassReplicationRoleToS3", &["iam:PassRole"], vec![role]),
            json!({"StringEquals": {"iam:PassedToService": S3_SERVICE}}),
        ),
        with_condition(
            statement("PassBatchReplicationRole", &["iam:PassRole"], vec![batch_role]),
            json!({"StringEquals": {"iam:PassedToService": BATCH_OPERATIONS_SERVICE}}),
        ),
        // S3 Batch Replication of what live replication did not replicate: CreateJob has no
        // resource to scope it by; DescribeJob reads the archive account's jobs.
        // https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html
        statement("CreateBatchReplicationJobs", &["s3:CreateJob"], any()),
        statement(
            "ObserveBatchReplicationJobs",
            &["s3:DescribeJob"],
            vec![format!("arn:{p}:s3:*:*:job/*")],
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
