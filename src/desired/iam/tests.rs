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
    assert!(actions_on(&policy, "parameter/AmazonCloudWatch-trailkeeper-*").contains(&"ssm:PutParameter".to_string()));
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

/// Security Hub: findings imported under each account's own custom integration only, read from
/// its hub, and marked RESOLVED (no other workflow status); nothing of it without a baseline that
/// exports findings.
#[test]
fn security_hub_grants_the_own_integration_and_resolving_only() {
    use crate::policy_eval::{decisions, request};
    let policy = account_policy(&IamSettings::default());
    let who = serde_json::json!({"AWS": "arn:aws:iam::111122223333:role/trailkeeper"});
    let own = "arn:aws:securityhub:eu-west-1:111122223333:product/111122223333/default";
    let partner = "arn:aws:securityhub:eu-west-1:222233334444:product/crowdstrike/crowdstrike-falcon";
    let hub = "arn:aws:securityhub:eu-west-1:111122223333:hub/default";
    let status = |s: &str| serde_json::json!({"securityhub:ASFFSyntaxPath/Workflow.Status": s});
    let found = decisions(
        &policy,
        &[
            request(
                who.clone(),
                "securityhub:BatchImportFindings",
                Some(own),
                serde_json::json!({}),
            ),
            request(
                who.clone(),
                "securityhub:BatchImportFindings",
                Some(partner),
                serde_json::json!({}),
            ),
            request(who.clone(), "securityhub:GetFindings", Some(hub), serde_json::json!({})),
            request(
                who.clone(),
                "securityhub:BatchUpdateFindings",
                Some(hub),
                status("RESOLVED"),
            ),
            request(
                who.clone(),
                "securityhub:BatchUpdateFindings",
                Some(hub),
                status("SUPPRESSED"),
            ),
            request(
                who.clone(),
                "securityhub:DisableSecurityHub",
                Some(hub),
                serde_json::json!({}),
            ),
        ],
    );
    assert_eq!(
        found,
        [
            "Allow",
            "ImplicitDeny",
            "Allow",
            "Allow",
            "ImplicitDeny",
            "ImplicitDeny"
        ]
    );
    let without = account_policy(&IamSettings {
        security_hub: false,
        ..Default::default()
    });
    assert!(!without.to_string().contains("securityhub:"), "{without}");
}
