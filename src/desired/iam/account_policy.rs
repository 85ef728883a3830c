//! The policy of the role trailkeeper assumes in each account, statement group by statement group.

use super::*;

/// The policy of the role trailkeeper assumes in each account.
pub fn account_policy(s: &IamSettings) -> Value {
    let scope = AccountScope::new(s);
    let p = scope.p;
    let mut statements = reads_and_denials(&scope);
    statements.extend(trail_storage_and_regional(&scope));
    if !s.own_storage {
        // Every baseline delivers into a LogArchive: no trail bucket here to verify.
        statements.retain(|st| st["Sid"] != "VerifyIntegrity");
    }
    statements.extend(config_queries_and_organization(s, &scope));
    statements.extend(drift_events_and_deletion(&scope));
    statements.extend(monitoring_controls(&scope));
    if s.security_hub {
        statements.extend(security_hub_findings(&scope));
    }
    if !s.buckets.is_empty() {
        let named: Vec<String> = s.buckets.iter().map(|b| format!("arn:{p}:s3:::{b}")).collect();
        statements.push(statement("UserNamedBuckets", &BUCKET_ACTIONS, named.clone()));
        // An Existing trail's bucket: verify reads its digests and log files.
        statements.push(statement(
            "VerifyUserNamedBuckets",
            &["s3:GetObject"],
            named.iter().map(|b| format!("{b}/*")).collect(),
        ));
    }
    if !s.archive_keys.is_empty() {
        // The LogArchives' keys, another account's: their key policies admit this role for
        // Decrypt (MembersCreateTrailsWithBucketKey), and so must this policy.
        statements.push(statement(
            "ArchiveKeysForTrails",
            &["kms:Decrypt"],
            s.archive_keys.clone(),
        ));
    }
    if !s.kms_keys.is_empty() {
        // A key the baseline names: its owner's policy must admit the account (root statement);
        // trailkeeper then adds its own statements to it.
        statements.push(statement(
            "UserNamedKeys",
            &key_maintenance_actions(false),
            s.kms_keys.clone(),
        ));
    }
    if s.own_identity {
        statements.push(statement(
            "OwnIdentityKeyMaintenanceOnEveryKey",
            &key_maintenance_actions(true),
            vec![format!("arn:{p}:kms:*:*:key/*")],
        ));
    }
    if !s.existing_trails.is_empty() {
        statements.push(statement(
            "ManagedExistingTrails",
            &[
                "cloudtrail:PutEventSelectors",
                "cloudtrail:StartLogging",
                "cloudtrail:UpdateTrail",
            ],
            s.existing_trails.clone(),
        ));
    }
    json!({"Version": "2012-10-17", "Statement": statements})
}

/// The managed roles never assumed, and the reads that need no resource scope.
fn reads_and_denials(scope: &AccountScope) -> Vec<Value> {
    let AccountScope {
        p,
        flow_log_role,
        events_role,
        ..
    } = scope;
    vec![
        // The roles trailkeeper manages are never assumed by it, even if their trust policy were
        // rewritten to name it (in one account, a trust policy alone would let it in).
        json!({
            "Sid": "NeverAssumeManagedRoles",
            "Effect": "Deny",
            "Action": "sts:AssumeRole",
            "Resource": [flow_log_role.clone(), events_role.clone(), format!("arn:{p}:iam::*:role/aws-service-role/*")]
        }),
        // Reads that list, or that verify resources trailkeeper does not own (an Existing trail is
        // anyone's): no write among them.
        statement(
            "ReadsWithoutResourceScope",
            &[
                "athena:BatchGetNamedQuery",
                "athena:ListNamedQueries",
                // CIS section 4 judges the alarms and filters of whatever trail log group there is.
                "cloudwatch:DescribeAlarms",
                "cloudtrail:DescribeTrails",
                "cloudtrail:GetEventSelectors",
                "cloudtrail:GetInsightSelectors",
                "cloudtrail:GetTrail",
                "cloudtrail:GetTrailStatus",
                "cloudtrail:ListPublicKeys",
                "cloudtrail:ListTags",
                "config:DescribeComplianceByConfigRule",
                "config:DescribeConfigRules",
                "config:DescribeConfigurationRecorderStatus",
                "config:DescribeConfigurationRecorders",
                "ec2:DescribeFlowLogs",
                // The regions CIS 3.3, 3.6 and 3.7 judge when spec.complianceRegions is empty.
                "ec2:DescribeRegions",
                "ec2:DescribeVpcs",
                "kms:DescribeKey",
                "kms:ListKeys",
                "logs:DescribeLogGroups",
                "logs:DescribeMetricFilters",
                "organizations:DescribeOrganization",
                "organizations:ListAWSServiceAccessForOrganization",
                // LoggingBaselineSets' organization generator, through the management account's
                // (or a delegated administrator's) trailkeeper role.
                "organizations:ListAccountsForParent",
                "organizations:ListOrganizationalUnitsForParent",
                "organizations:ListRoots",
                "organizations:ListTagsForResource",
                "sns:GetTopicAttributes",
                "sns:ListSubscriptionsByTopic",
                "ssm:DescribeAssociation",
                "ssm:ListAssociations",
            ],
            any(),
        ),
        // CIS 3.6 judges the rotation of every customer key of the account, not only trailkeeper's
        // (whose key policies grant it their own maintenance).
        statement(
            "KeyRotationEvidence",
            &["kms:GetKeyRotationStatus"],
            vec![format!("arn:{p}:kms:*:*:key/*")],
        ),
        // CIS section 4 judges whether the alarms can publish: the policy of the key of each topic
        // they notify, whoever keeps it (KMS still asks the key's own policy to admit the account).
        statement(
            "MonitoringTopicKeyEvidence",
            &["kms:GetKeyPolicy"],
            vec![format!("arn:{p}:kms:*:*:key/*")],
        ),
    ]
}

/// The key, the buckets, the trail, and the regional parts (log groups, flow logs, instance
/// logs).
fn trail_storage_and_regional(scope: &AccountScope) -> Vec<Value> {
    let AccountScope {
        p,
        prefix,
        buckets,
        trails,
        flow_log_role,
        boundary,
        groups,
        ..
    } = scope;
    vec![
        create_key_statement("CreateTrailKeyWithoutResourceScope"),
        statement(
            "TrailKeyAliases",
            &["kms:CreateAlias"],
            vec![format!("arn:{p}:kms:*:*:{}", KEY_ALIAS.replace("/cloudtrail", "/*"))],
        ),
        statement("TrailBuckets", &BUCKET_ACTIONS, buckets.clone()),
        // verify and spec.verifyIntegrity read the digests and log files of the trail bucket (a
        // LogArchive's members: the archive account's role reads them).
        statement(
            "VerifyIntegrity",
            &["s3:GetObject"],
            vec![format!("arn:{p}:s3:::{prefix}-*-cloudtrail-*/*")],
        ),
        statement("Trails", &TRAIL_WRITES, trails.clone()),
        // The role is the user's (TrailPolicy.cloudWatchLogs.roleArn): any role, to CloudTrail only.
        with_condition(
            statement(
                "PassUserNamedTrailLogsRoleToCloudTrail",
                &["iam:PassRole"],
                vec![format!("arn:{p}:iam::*:role/*")],
            ),
            json!({"StringEquals": {"iam:PassedToService": "cloudtrail.amazonaws.com"}}),
        ),
        // CreateFlowLogs authorizes on the VPC and the new flow log (no name to scope by).
        statement("FlowLogsWithoutResourceScope", &["ec2:CreateFlowLogs"], any()),
        with_condition(
            statement(
                "FlowLogTags",
                &["ec2:CreateTags"],
                vec![format!("arn:{p}:ec2:*:*:vpc-flow-log/*")],
            ),
            json!({"StringEquals": {"ec2:CreateAction": "CreateFlowLogs"}}),
        ),
        // flowLogs.replaceNonCompliant: someone else's flow log, replaced by a compliant one.
        statement(
            "ReplaceNonCompliantFlowLogs",
            &["ec2:DeleteFlowLogs"],
            vec![format!("arn:{p}:ec2:*:*:vpc-flow-log/*")],
        ),
        // The delivery role can never be more than its boundary (CloudWatch Logs writes), whatever
        // its inline policy says: trailkeeper may create and repair it only with that boundary.
        with_condition(
            statement(
                "FlowLogDeliveryRoleBounded",
                &["iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy"],
                vec![flow_log_role.clone()],
            ),
            boundary.clone(),
        ),
        statement(
            "FlowLogDeliveryRole",
            &[
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:TagRole",
                "iam:UpdateAssumeRolePolicy",
            ],
            vec![flow_log_role.clone()],
        ),
        with_condition(
            statement(
                "PassFlowLogDeliveryRole",
                &["iam:PassRole"],
                vec![flow_log_role.clone()],
            ),
            json!({"StringEquals": {"iam:PassedToService": "vpc-flow-logs.amazonaws.com"}}),
        ),
        statement(
            "LogGroups",
            &[
                "logs:AssociateKmsKey",
                "logs:CreateLogGroup",
                "logs:DeleteRetentionPolicy",
                "logs:PutRetentionPolicy",
                "logs:TagResource",
            ],
            groups.clone(),
        ),
        statement(
            "AgentParameters",
            &["ssm:AddTagsToResource", "ssm:GetParameter", "ssm:PutParameter"],
            vec![format!("arn:{p}:ssm:*:*:parameter/AmazonCloudWatch-trailkeeper-*")],
        ),
        statement(
            "AgentAssociations",
            &["ssm:CreateAssociation", "ssm:UpdateAssociation"],
            vec![
                format!("arn:{p}:ssm:*:*:document/{AGENT_DOCUMENT}"),
                format!("arn:{p}:ssm:*:*:document/{INSTALL_DOCUMENT}"),
                format!("arn:{p}:ssm:*:*:association/*"),
                format!("arn:{p}:ec2:*:*:instance/*"),
            ],
        ),
    ]
}

/// Config rules, the audit queries and an Organization trail's prerequisites.
fn config_queries_and_organization(s: &IamSettings, scope: &AccountScope) -> Vec<Value> {
    let AccountScope {
        p,
        config_role,
        cloudtrail_role,
        database,
        ..
    } = scope;
    vec![
        // Config rule ARNs carry a random id, and recorders and channels have no resource-level
        // permissions.
        statement(
            "ConfigWithoutResourceScope",
            &[
                "config:PutConfigRule",
                "config:PutConfigurationRecorder",
                "config:PutDeliveryChannel",
                "config:StartConfigurationRecorder",
            ],
            any(),
        ),
        with_condition(
            statement(
                "ConfigRecorderRole",
                &["iam:CreateServiceLinkedRole"],
                vec![config_role.clone()],
            ),
            json!({"StringEquals": {"iam:AWSServiceName": "config.amazonaws.com"}}),
        ),
        with_condition(
            statement("PassConfigRecorderRole", &["iam:PassRole"], vec![config_role.clone()]),
            json!({"StringEquals": {"iam:PassedToService": "config.amazonaws.com"}}),
        ),
        statement(
            "AuditQueriesCatalog",
            &[
                "glue:CreateDatabase",
                "glue:CreateTable",
                "glue:DeleteDatabase",
                "glue:DeleteTable",
                "glue:GetDatabase",
                "glue:GetTable",
                "glue:GetTables",
                "glue:TagResource",
                "glue:UpdateTable",
            ],
            vec![
                format!("arn:{p}:glue:*:*:catalog"),
                format!("arn:{p}:glue:*:*:database/{database}"),
                format!("arn:{p}:glue:*:*:table/{database}/*"),
                // DeleteDatabase authorizes on the database's functions too.
                format!("arn:{p}:glue:*:*:userDefinedFunction/{database}/*"),
            ],
        ),
        statement(
            "AuditQueriesWorkGroup",
            &[
                "athena:CreateNamedQuery",
                "athena:CreateWorkGroup",
                "athena:DeleteNamedQuery",
                "athena:DeleteWorkGroup",
                "athena:GetWorkGroup",
                "athena:TagResource",
                "athena:UpdateNamedQuery",
                "athena:UpdateWorkGroup",
            ],
            vec![format!("arn:{p}:athena:*:*:workgroup/{}", s.audit_work_group)],
        ),
        // Organization trails: EnableAWSServiceAccess has no resource-level permissions.
        statement(
            "OrganizationTrailTrustedAccessWithoutResourceScope",
            &["organizations:EnableAWSServiceAccess"],
            any(),
        ),
        with_condition(
            statement(
                "OrganizationTrailServiceRole",
                &["iam:CreateServiceLinkedRole"],
                vec![cloudtrail_role.clone()],
            ),
            json!({"StringEquals": {"iam:AWSServiceName": "cloudtrail.amazonaws.com"}}),
        ),
        statement(
            "ServiceLinkedRoles",
            &["iam:GetRole"],
            vec![config_role.clone(), cloudtrail_role.clone()],
        ),
    ]
}

/// The forwarding of tampering events, and what deletionPolicy Delete removes.
fn drift_events_and_deletion(scope: &AccountScope) -> Vec<Value> {
    let AccountScope {
        p,
        buckets,
        trails,
        events_role,
        events_boundary,
        ..
    } = scope;
    vec![
        // Event-driven drift detection: the forwarding rule of each region, and the role
        // EventBridge forwards as (bounded by AmazonEventBridgeFullAccess: EventBridge only).
        statement(
            "TamperEventsForwardingRule",
            &[
                "events:DeleteRule",
                "events:DescribeRule",
                "events:ListTargetsByRule",
                "events:PutRule",
                "events:PutTargets",
                "events:RemoveTargets",
                "events:TagResource",
            ],
            vec![format!("arn:{p}:events:*:*:rule/{FORWARD_RULE}")],
        ),
        with_condition(
            statement(
                "TamperEventsRoleBounded",
                &["iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:PutRolePolicy"],
                vec![events_role.clone()],
            ),
            events_boundary.clone(),
        ),
        statement(
            "TamperEventsRole",
            &[
                "iam:DeleteRole",
                "iam:DeleteRolePolicy",
                "iam:GetRole",
                "iam:GetRolePolicy",
                "iam:TagRole",
                "iam:UpdateAssumeRolePolicy",
            ],
            vec![events_role.clone()],
        ),
        with_condition(
            statement("PassTamperEventsRole", &["iam:PassRole"], vec![events_role.clone()]),
            json!({"StringEquals": {"iam:PassedToService": "events.amazonaws.com"}}),
        ),
        // deletionPolicy: Delete only. Never on a trail or bucket of another name.
        statement(
            "DeletionPolicyDelete",
            &["cloudtrail:DeleteTrail", "cloudtrail:StopLogging"],
            trails.clone(),
        ),
        statement(
            "DeletionPolicyDeleteBuckets",
            &["s3:DeleteBucket", "s3:ListBucketVersions"],
            buckets.clone(),
        ),
    ]
}

/// What the S3 account role may do to the baseline's buckets (its own and those a user names).
pub(super) const BUCKET_ACTIONS: [&str; 21] = [
    "s3:CreateBucket",
    // verify reads each bucket through its own region's clients (GetBucketLocation first).
    "s3:GetBucketLocation",
    "s3:GetBucketLogging",
    "s3:GetBucketObjectLockConfiguration",
    "s3:GetBucketOwnershipControls",
    "s3:GetBucketPolicy",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketTagging",
    "s3:GetBucketVersioning",
    "s3:GetEncryptionConfiguration",
    "s3:GetLifecycleConfiguration",
    "s3:ListBucket",
    "s3:PutBucketLogging",
    "s3:PutBucketObjectLockConfiguration",
    "s3:PutBucketOwnershipControls",
    "s3:PutBucketPolicy",
    "s3:PutBucketPublicAccessBlock",
    "s3:PutBucketTagging",
    "s3:PutBucketVersioning",
    "s3:PutEncryptionConfiguration",
    "s3:PutLifecycleConfiguration",
];

const TRAIL_WRITES: [&str; 6] = [
    "cloudtrail:AddTags",
    "cloudtrail:CreateTrail",
    "cloudtrail:PutEventSelectors",
    "cloudtrail:PutInsightSelectors",
    "cloudtrail:StartLogging",
    "cloudtrail:UpdateTrail",
];

/// The monitoring controls: filters on the trails' log groups (the user names them), the alarms
/// and the topic by trailkeeper's names only.
fn monitoring_controls(scope: &AccountScope) -> Vec<Value> {
    let AccountScope {
        p, monitored_groups, ..
    } = scope;
    vec![
        statement(
            "MonitoringMetricFilters",
            &["logs:PutMetricFilter"],
            monitored_groups.clone(),
        ),
        statement(
            "MonitoringAlarms",
            &["cloudwatch:PutMetricAlarm", "cloudwatch:TagResource"],
            vec![format!(
                "arn:{p}:cloudwatch:*:*:alarm:{}*",
                crate::desired::monitoring::NAME_PREFIX
            )],
        ),
        statement(
            "MonitoringTopic",
            &[
                "sns:CreateTopic",
                "sns:SetTopicAttributes",
                "sns:Subscribe",
                "sns:TagResource",
            ],
            vec![format!("arn:{p}:sns:*:*:{}", crate::desired::monitoring::TOPIC_NAME)],
        ),
    ]
}

/// The ARNs and conditions the statements of the account policy are scoped to.
/// spec.securityHub: findings imported under the account's own custom integration (its product
/// ARN `product/{account}/default`), read back from its hub, and marked RESOLVED when they pass:
/// BatchUpdateFindings may set the workflow status to RESOLVED only (condition key
/// `securityhub:ASFFSyntaxPath/Workflow.Status`, Security Hub user guide, "Configuring access to
/// BatchUpdateFindings").
/// https://docs.aws.amazon.com/securityhub/latest/userguide/finding-update-batchupdatefindings.html
fn security_hub_findings(scope: &AccountScope) -> Vec<Value> {
    let p = scope.p;
    vec![
        statement(
            "SecurityHubFindingsOfTheAccountsOwnIntegration",
            &["securityhub:BatchImportFindings"],
            vec![format!("arn:{p}:securityhub:*:*:product/*/default")],
        ),
        statement(
            "SecurityHubFindingsRead",
            &["securityhub:GetFindings"],
            vec![format!("arn:{p}:securityhub:*:*:hub/default")],
        ),
        with_condition(
            statement(
                "SecurityHubFindingsResolved",
                &["securityhub:BatchUpdateFindings"],
                vec![format!("arn:{p}:securityhub:*:*:hub/default")],
            ),
            json!({"StringEquals": {"securityhub:ASFFSyntaxPath/Workflow.Status": "RESOLVED"}}),
        ),
    ]
}

struct AccountScope<'a> {
    p: &'a str,
    prefix: &'a str,
    buckets: Vec<String>,
    trails: Vec<String>,
    flow_log_role: String,
    boundary: Value,
    groups: Vec<String>,
    monitored_groups: Vec<String>,
    config_role: String,
    cloudtrail_role: String,
    database: &'a str,
    events_role: String,
    events_boundary: Value,
}

impl<'a> AccountScope<'a> {
    fn new(s: &'a IamSettings) -> Self {
        let p = s.partition.as_str();
        let prefix = s.name_prefix.as_str();
        AccountScope {
            p,
            prefix,
            buckets: if s.own_storage {
                vec![
                    format!("arn:{p}:s3:::{prefix}-*-cloudtrail-*"),
                    format!("arn:{p}:s3:::{prefix}-*-athena-results-*"),
                ]
            } else {
                vec![format!("arn:{p}:s3:::{prefix}-*-athena-results-*")]
            },
            trails: s
                .trail_names
                .iter()
                .map(|t| format!("arn:{p}:cloudtrail:*:*:trail/{t}"))
                .collect(),
            flow_log_role: format!("arn:{p}:iam::*:role/{FLOW_LOG_ROLE}"),
            boundary: json!({"StringEquals": {"iam:PermissionsBoundary": flow_log_role_boundary(p)}}),
            groups: log_groups(&s.log_groups)
                .iter()
                .map(|g| format!("arn:{p}:logs:*:*:log-group:{g}"))
                .collect(),
            monitored_groups: s
                .monitored_log_groups
                .iter()
                .map(|g| format!("arn:{p}:logs:*:*:log-group:{g}"))
                .collect(),
            config_role: format!("arn:{p}:iam::*:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig"),
            cloudtrail_role: format!(
                "arn:{p}:iam::*:role/aws-service-role/cloudtrail.amazonaws.com/AWSServiceRoleForCloudTrail"
            ),
            database: s.audit_database.as_str(),
            events_role: format!("arn:{p}:iam::*:role/{FORWARD_ROLE}"),
            events_boundary: json!({"StringEquals": {"iam:PermissionsBoundary": crate::desired::events::forward_role_boundary(p)}}),
        }
    }
}
