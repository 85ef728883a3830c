//! The IAM documents trailkeeper needs, scoped to what it owns: the policy of the role it assumes
//! in each account, the policy of the operator's own identity (which only assumes that role), and
//! that role's trust policy. `trailkeeper iam-policy` prints them; `deploy/` holds the defaults.
//!
//! What scopes each write: the names trailkeeper generates (buckets `{prefix}-{account}-...`, the
//! trail, the flow-log role, `alias/trailkeeper/*`, `AmazonCloudWatch-trailkeeper-*` parameters,
//! the Athena workgroup and Glue database, the log groups of the baseline's files). KMS keys are
//! not scoped by tag: a tag anyone with TagResource can add would let trailkeeper take over a key.
//! Instead the key policy of each key trailkeeper creates admits the account role for exactly the
//! maintenance trailkeeper does (`key_maintenance_statement`), and the IAM policy grants nothing on
//! existing keys except those the user names. Where a user-named resource makes scoping
//! impossible (the CloudWatch Logs role of a TrailPolicy, Config rules whose ARNs carry a random
//! id, actions without resource-level permissions), the statement says so in its Sid.

use serde_json::{Value, json};

use super::KEY_ALIAS;
use super::events::{FORWARD_ROLE, FORWARD_RULE};
use super::regional::{AGENT_DOCUMENT, FLOW_LOG_GROUP, FLOW_LOG_ROLE, INSTALL_DOCUMENT, log_group_name};
use crate::api::InstanceLogsSpec;

/// The AWS managed policy that bounds the flow-log delivery role: writing to and reading
/// CloudWatch Logs, nothing else (no IAM, no deletion). Even a rewritten inline policy cannot
/// widen the role past it.
pub const FLOW_LOG_ROLE_BOUNDARY: &str = "policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs";

/// The boundary's ARN in a partition.
pub fn flow_log_role_boundary(partition: &str) -> String {
    format!("arn:{partition}:iam::aws:{FLOW_LOG_ROLE_BOUNDARY}")
}

/// What the documents are generated for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IamSettings {
    /// aws, aws-cn or aws-us-gov.
    pub partition: String,
    /// The role trailkeeper assumes in each account (`credentials.assumeRoleArn`'s name).
    pub account_role: String,
    /// `storage.namePrefix` of the baselines (bucket names).
    pub name_prefix: String,
    /// `trail.name` of the baselines (Managed trails).
    pub trail_names: Vec<String>,
    /// Buckets the baselines name themselves (`bucketName`, `accessLogBucketName`, `resultsBucketName`).
    pub buckets: Vec<String>,
    /// Keys the baselines name (`encryption.kmsKeyArn`): trailkeeper adds its statements to their policies.
    pub kms_keys: Vec<String>,
    /// Existing trails whose settings a TrailPolicy lets trailkeeper repair (`manageExisting`).
    pub existing_trails: Vec<String>,
    /// Extra log groups (instance log files besides the defaults).
    pub log_groups: Vec<String>,
    /// `auditQueries.database` and `auditQueries.workGroup`.
    pub audit_database: String,
    pub audit_work_group: String,
    /// The operator's own identity (IRSA / Pod Identity role), trusted by the account role.
    pub operator_role_arn: Option<String>,
    pub external_id: Option<String>,
    /// The operator's events queue (`--events-queue-url`'s last part) and central bus.
    pub events_queue_name: String,
    pub events_bus_name: String,
    /// Baselines without credentials (trailkeeper acts as its own identity, one account): their
    /// keys' policies name no trailkeeper role, so key maintenance must come from IAM, on every
    /// key of the account. Weaker; off by default.
    pub own_identity: bool,
}

impl Default for IamSettings {
    fn default() -> Self {
        Self {
            partition: "aws".into(),
            account_role: "trailkeeper".into(),
            name_prefix: "trailkeeper".into(),
            trail_names: vec!["trailkeeper".into()],
            buckets: Vec::new(),
            kms_keys: Vec::new(),
            existing_trails: Vec::new(),
            log_groups: Vec::new(),
            audit_database: "trailkeeper_audit".into(),
            audit_work_group: "trailkeeper-audit".into(),
            operator_role_arn: None,
            external_id: None,
            events_queue_name: "trailkeeper-events".into(),
            events_bus_name: super::events::DEFAULT_BUS.into(),
            own_identity: false,
        }
    }
}

/// What trailkeeper does to a key it created (or one the baseline names), granted by the key's
/// own policy to the account role: read it, restore it, keep its policy, rotation and tags, give
/// it its alias, and `kms:Decrypt`, which CloudTrail requires of whoever creates or updates a
/// trail whose bucket has an S3 Bucket Key. `ScheduleKeyDeletion` only for `deletionPolicy: Delete`.
pub fn key_maintenance_actions(delete: bool) -> Vec<&'static str> {
    let mut actions = vec![
        "kms:CancelKeyDeletion",
        "kms:CreateAlias",
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:EnableKey",
        "kms:EnableKeyRotation",
        "kms:GetKeyPolicy",
        "kms:GetKeyRotationStatus",
        "kms:ListResourceTags",
        "kms:PutKeyPolicy",
        "kms:TagResource",
    ];
    if delete {
        actions.push("kms:ScheduleKeyDeletion");
    }
    actions
}

fn statement(sid: &str, actions: &[&str], resources: Vec<String>) -> Value {
    let mut actions: Vec<&str> = actions.to_vec();
    actions.sort_unstable();
    actions.dedup();
    let resource = if resources.len() == 1 {
        json!(resources[0])
    } else {
        json!(resources)
    };
    json!({"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource})
}

fn with_condition(mut statement: Value, condition: Value) -> Value {
    statement["Condition"] = condition;
    statement
}

fn any() -> Vec<String> {
    vec!["*".to_string()]
}

/// The log groups trailkeeper keeps with the default files, plus `extra`.
fn log_groups(extra: &[String]) -> Vec<String> {
    let instance = InstanceLogsSpec::default();
    let mut groups: Vec<String> = std::iter::once(FLOW_LOG_GROUP.to_string())
        .chain(
            instance
                .linux_files
                .iter()
                .chain(&instance.windows_files)
                .map(|f| log_group_name(f)),
        )
        .chain(extra.iter().cloned())
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

/// The policy of the role trailkeeper assumes in each account.
pub fn account_policy(s: &IamSettings) -> Value {
    let p = &s.partition;
    let prefix = &s.name_prefix;
    let buckets: Vec<String> = [
        format!("arn:{p}:s3:::{prefix}-*-cloudtrail-*"),
        format!("arn:{p}:s3:::{prefix}-*-athena-results-*"),
    ]
    .into_iter()
    .collect();
    let trails: Vec<String> = s
        .trail_names
        .iter()
        .map(|t| format!("arn:{p}:cloudtrail:*:*:trail/{t}"))
        .collect();
    let bucket_actions = [
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
    let trail_writes = [
        "cloudtrail:AddTags",
        "cloudtrail:CreateTrail",
        "cloudtrail:PutEventSelectors",
        "cloudtrail:PutInsightSelectors",
        "cloudtrail:StartLogging",
        "cloudtrail:UpdateTrail",
    ];
    let flow_log_role = format!("arn:{p}:iam::*:role/{FLOW_LOG_ROLE}");
    let boundary = json!({"StringEquals": {"iam:PermissionsBoundary": flow_log_role_boundary(p)}});
    let groups: Vec<String> = log_groups(&s.log_groups)
        .iter()
        .map(|g| format!("arn:{p}:logs:*:*:log-group:{g}"))
        .collect();
    let config_role = format!("arn:{p}:iam::*:role/aws-service-role/config.amazonaws.com/AWSServiceRoleForConfig");
    let cloudtrail_role =
        format!("arn:{p}:iam::*:role/aws-service-role/cloudtrail.amazonaws.com/AWSServiceRoleForCloudTrail");
    let database = &s.audit_database;
    let events_role = format!("arn:{p}:iam::*:role/{FORWARD_ROLE}");
    let events_boundary = json!({"StringEquals": {"iam:PermissionsBoundary": super::events::forward_role_boundary(p)}});

    let mut statements = vec![
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
                "ec2:DescribeVpcs",
                "kms:DescribeKey",
                "kms:ListKeys",
                "logs:DescribeLogGroups",
                "organizations:DescribeOrganization",
                "organizations:ListAWSServiceAccessForOrganization",
                // LoggingBaselineSets' organization generator, through the management account's
                // (or a delegated administrator's) trailkeeper role.
                "organizations:ListAccountsForParent",
                "organizations:ListOrganizationalUnitsForParent",
                "organizations:ListRoots",
                "organizations:ListTagsForResource",
                "ssm:DescribeAssociation",
                "ssm:ListAssociations",
            ],
            any(),
        ),
        // CreateKey names no resource: a symmetric encryption key of KMS's own material, never
        // bypassing the lockout check (its policy must let the account role maintain it).
        with_condition(
            statement("CreateTrailKeyWithoutResourceScope", &["kms:CreateKey"], any()),
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
            "TrailKeyAliases",
            &["kms:CreateAlias"],
            vec![format!("arn:{p}:kms:*:*:{}", KEY_ALIAS.replace("/cloudtrail", "/*"))],
        ),
        statement("TrailBuckets", &bucket_actions, buckets.clone()),
        // verify and spec.verifyIntegrity read the digests and log files of the trail bucket.
        statement(
            "VerifyIntegrity",
            &["s3:GetObject"],
            vec![format!("arn:{p}:s3:::{prefix}-*-cloudtrail-*/*")],
        ),
        statement("Trails", &trail_writes, trails.clone()),
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
            boundary,
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
            statement("PassFlowLogDeliveryRole", &["iam:PassRole"], vec![flow_log_role]),
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
            groups,
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
            vec![config_role, cloudtrail_role],
        ),
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
            events_boundary,
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
            statement("PassTamperEventsRole", &["iam:PassRole"], vec![events_role]),
            json!({"StringEquals": {"iam:PassedToService": "events.amazonaws.com"}}),
        ),
        // deletionPolicy: Delete only. Never on a trail or bucket of another name.
        statement(
            "DeletionPolicyDelete",
            &["cloudtrail:DeleteTrail", "cloudtrail:StopLogging"],
            trails,
        ),
        statement(
            "DeletionPolicyDeleteBuckets",
            &["s3:DeleteBucket", "s3:ListBucketVersions"],
            buckets,
        ),
    ];
    if !s.buckets.is_empty() {
        let named: Vec<String> = s.buckets.iter().map(|b| format!("arn:{p}:s3:::{b}")).collect();
        statements.push(statement("UserNamedBuckets", &bucket_actions, named.clone()));
        // An Existing trail's bucket: verify reads its digests and log files.
        statements.push(statement(
            "VerifyUserNamedBuckets",
            &["s3:GetObject"],
            named.iter().map(|b| format!("{b}/*")).collect(),
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

/// The policy of the operator's own identity: it only assumes the account role, by its exact
/// name (never a role trailkeeper manages, such as the flow-log delivery role).
pub fn operator_policy(s: &IamSettings) -> Value {
    let p = &s.partition;
    let bus = &s.events_bus_name;
    json!({
        "Version": "2012-10-17",
        "Statement": [
            statement(
                "AssumeAccountRole",
                &["sts:AssumeRole"],
                vec![format!("arn:{p}:iam::*:role/{}", s.account_role)],
            ),
            // --events-queue-url: the queue the operator long-polls (yours; trailkeeper adds one
            // statement to its policy), the central bus and its rule into the queue.
            statement(
                "TamperEventsQueue",
                &[
                    "sqs:DeleteMessage",
                    "sqs:GetQueueAttributes",
                    "sqs:ReceiveMessage",
                    "sqs:SetQueueAttributes",
                ],
                vec![format!("arn:{p}:sqs:*:*:{}", s.events_queue_name)],
            ),
            statement(
                "TamperEventsCentralBus",
                &[
                    "events:CreateEventBus",
                    "events:DescribeEventBus",
                    "events:DescribeRule",
                    "events:ListTargetsByRule",
                    "events:PutRule",
                    "events:PutTargets",
                    "events:TagResource",
                ],
                vec![
                    format!("arn:{p}:events:*:*:event-bus/{bus}"),
                    format!("arn:{p}:events:*:*:rule/{bus}/{}", super::events::CENTRAL_RULE),
                ],
            ),
            // PutPermission authorizes on no resource: the bus is named in the request.
            statement(
                "TamperEventsCentralBusPolicyWithoutResourceScope",
                &["events:PutPermission"],
                vec!["*".to_string()],
            ),
        ]
    })
}

/// The account role's trust policy: the operator's identity only, with the external id when set.
pub fn trust_policy(s: &IamSettings) -> Value {
    let principal = s
        .operator_role_arn
        .clone()
        .unwrap_or_else(|| format!("arn:{}:iam::OPERATOR_ACCOUNT_ID:role/OPERATOR_ROLE", s.partition));
    let mut statement = json!({
        "Sid": "TrailkeeperOperator",
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": "sts:AssumeRole"
    });
    if let Some(id) = &s.external_id {
        statement["Condition"] = json!({"StringEquals": {"sts:ExternalId": id}});
    }
    json!({"Version": "2012-10-17", "Statement": [statement]})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actions_on(policy: &Value, resource_part: &str) -> Vec<String> {
        policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["Resource"].to_string().contains(resource_part))
            .flat_map(|s| {
                s["Action"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_string())
            })
            .collect()
    }

    #[test]
    fn the_operator_assumes_only_the_account_role_by_its_exact_name() {
        let policy = operator_policy(&IamSettings::default());
        assert_eq!(policy["Statement"][0]["Resource"], "arn:aws:iam::*:role/trailkeeper");
        let account = account_policy(&IamSettings::default());
        let denied = &account["Statement"][0];
        assert_eq!(
            (denied["Effect"].as_str(), denied["Action"].as_str()),
            (Some("Deny"), Some("sts:AssumeRole"))
        );
        assert_eq!(denied["Resource"][0], "arn:aws:iam::*:role/trailkeeper-vpc-flow-logs");
    }

    #[test]
    fn no_statement_lets_trailkeeper_assume_or_widen_a_role_it_manages() {
        let policy = account_policy(&IamSettings::default());
        for statement in policy["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["Effect"] == "Allow")
        {
            let actions = statement["Action"].to_string();
            if actions.contains("iam:PutRolePolicy") || actions.contains("iam:CreateRole") {
                let boundary = if statement["Resource"].to_string().contains(FORWARD_ROLE) {
                    "arn:aws:iam::aws:policy/AmazonEventBridgeFullAccess"
                } else {
                    "arn:aws:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
                };
                assert_eq!(
                    statement["Condition"]["StringEquals"]["iam:PermissionsBoundary"], boundary,
                    "{statement}"
                );
            }
            for forbidden in [
                "iam:AttachRolePolicy",
                "iam:DeleteRolePermissionsBoundary",
                "iam:CreatePolicyVersion",
            ] {
                assert!(!actions.contains(forbidden), "{forbidden} in {statement}");
            }
        }
    }

    #[test]
    fn keys_are_never_managed_through_tags_or_on_every_key() {
        let policy = account_policy(&IamSettings::default());
        for action in [
            "kms:PutKeyPolicy",
            "kms:ScheduleKeyDeletion",
            "kms:EnableKey",
            "kms:Decrypt",
        ] {
            assert!(
                !policy.to_string().contains(action),
                "{action} is granted by key policies only"
            );
        }
        let named = account_policy(&IamSettings {
            kms_keys: vec!["arn:aws:kms:eu-west-1:111122223333:key/abc".into()],
            ..Default::default()
        });
        assert!(actions_on(&named, "key/abc").contains(&"kms:PutKeyPolicy".to_string()));
    }

    #[test]
    fn deletion_and_policy_writes_name_trailkeepers_resources_only() {
        let policy = account_policy(&IamSettings::default());
        assert!(actions_on(&policy, "trail/trailkeeper").contains(&"cloudtrail:StopLogging".to_string()));
        assert!(actions_on(&policy, "s3:::trailkeeper-*-cloudtrail-*").contains(&"s3:DeleteBucket".to_string()));
        assert!(
            actions_on(&policy, "parameter/AmazonCloudWatch-trailkeeper-*").contains(&"ssm:PutParameter".to_string())
        );
        for statement in policy["Statement"].as_array().unwrap() {
            if statement["Resource"] == "*" {
                let actions = statement["Action"].to_string();
                for scoped in [
                    "Delete",
                    "StopLogging",
                    "PutBucketPolicy",
                    "PutKeyPolicy",
                    "PutParameter",
                ] {
                    assert!(!actions.contains(scoped), "{scoped} on every resource: {statement}");
                }
            }
        }
    }

    #[test]
    fn partitions_change_every_arn() {
        let policy = account_policy(&IamSettings {
            partition: "aws-cn".into(),
            ..Default::default()
        });
        let text = policy.to_string();
        assert!(!text.contains("arn:aws:"), "{text}");
        assert!(text.contains("arn:aws-cn:s3:::trailkeeper-*-cloudtrail-*"));
    }

    #[test]
    fn the_trust_policy_admits_the_operator_with_the_external_id() {
        let trust = trust_policy(&IamSettings {
            operator_role_arn: Some("arn:aws:iam::999988887777:role/trailkeeper-operator".into()),
            external_id: Some("tk-123".into()),
            ..Default::default()
        });
        assert_eq!(
            trust["Statement"][0]["Principal"]["AWS"],
            "arn:aws:iam::999988887777:role/trailkeeper-operator"
        );
        assert_eq!(
            trust["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"],
            "tk-123"
        );
    }
}
