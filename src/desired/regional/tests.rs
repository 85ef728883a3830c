use super::*;
use crate::api::{
    DEFAULT_LINUX_FILES, DEFAULT_WINDOWS_FILES, LoggingBaselineSpec, RetentionPolicySpec, TrailPolicySpec,
};

fn with<T>(f: impl FnOnce(&AccountSpecs) -> T) -> T {
    let spec: LoggingBaselineSpec =
        serde_json::from_value(json!({"accountId": "111122223333", "primaryRegion": "us-east-1"})).unwrap();
    let (t, r) = (TrailPolicySpec::default(), RetentionPolicySpec::default());
    f(&AccountSpecs {
        baseline: &spec,
        trail_policy: &t,
        retention: &r,
    })
}

fn collect_list(config: &Value) -> Vec<Value> {
    config["logs"]["logs_collected"]["files"]["collect_list"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn the_flow_log_role_is_trusted_only_by_this_accounts_flow_logs_and_lists_groups_on_star() {
    let (trust, policy) = with(|s| (flow_log_role_trust(s), flow_log_role_policy(s)));
    let condition = &trust["Statement"][0]["Condition"];
    assert_eq!(condition["StringEquals"]["aws:SourceAccount"], "111122223333");
    assert_eq!(
        condition["ArnLike"]["aws:SourceArn"],
        "arn:aws:ec2:*:111122223333:vpc-flow-log/*"
    );
    let statements = policy["Statement"].as_array().unwrap();
    let describe = statements
        .iter()
        .find(|s| s["Action"] == "logs:DescribeLogGroups")
        .expect("DescribeLogGroups has a statement of its own");
    assert_eq!(describe["Resource"], "*");
    let write = statements.iter().find(|s| s["Action"].is_array()).unwrap();
    assert_eq!(
        write["Resource"],
        "arn:aws:logs:*:111122223333:log-group:/trailkeeper/vpc-flow-logs:*"
    );
    assert!(
        !write["Action"]
            .as_array()
            .unwrap()
            .contains(&json!("logs:DescribeLogGroups"))
    );
}

#[test]
fn the_linux_agent_config_ships_each_reference_file_to_its_own_group_with_a_stream_per_instance() {
    let configs = with(agent_configs);
    let linux: Value = serde_json::from_str(&configs[0].value).unwrap();
    let list = collect_list(&linux);
    assert_eq!(list.len(), DEFAULT_LINUX_FILES.len());
    for (entry, file) in list.iter().zip(DEFAULT_LINUX_FILES) {
        assert_eq!(entry["file_path"], file);
        assert_eq!(
            entry["log_group_name"], file,
            "a Linux path is a valid group name as it is"
        );
        assert_eq!(entry["log_stream_name"], "{instance_id}");
    }
    assert_eq!(configs[0].parameter, AGENT_PARAMETER_LINUX);
}

#[test]
fn the_windows_agent_config_ships_each_reference_file_under_a_valid_group_name() {
    let configs = with(agent_configs);
    let windows: Value = serde_json::from_str(&configs[1].value).unwrap();
    let list = collect_list(&windows);
    let groups: Vec<&str> = list.iter().map(|e| e["log_group_name"].as_str().unwrap()).collect();
    assert_eq!(
        groups,
        [
            "C/ProgramData/Amazon/SSM/Logs/amazon-ssm-agent.log",
            "C/ProgramData/Amazon/SSM/Logs/amazon-cloudwatch-agent.log",
            "C/ProgramData/Amazon/SSM/Logs/errors.log",
            "C/cfn/log/cfn-init.log",
        ]
    );
    for (entry, file) in list.iter().zip(DEFAULT_WINDOWS_FILES) {
        assert_eq!(entry["file_path"], file);
        assert_eq!(entry["log_stream_name"], "{instance_id}");
    }
}

#[test]
fn log_groups_exist_for_flow_logs_and_every_instance_log_file_kept_forever_by_default() {
    let groups = with(log_groups);
    assert_eq!(
        groups.len(),
        1 + DEFAULT_LINUX_FILES.len() + DEFAULT_WINDOWS_FILES.len()
    );
    assert!(groups.iter().all(|g| g.retention_days.is_none()));
    assert!(groups.iter().any(|g| g.name == FLOW_LOG_GROUP));
}

#[test]
fn the_flow_log_format_lists_the_v2_to_v5_fields() {
    let flow = with(flow_logs).unwrap();
    assert!(flow.format().starts_with("${version} ${account-id} ${interface-id}"));
    assert!(flow.format().ends_with("${flow-direction} ${traffic-path}"));
    assert_eq!(flow.traffic_type, "ALL");
    assert_eq!(flow.max_aggregation_interval, 600);
}

const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

#[test]
fn the_lock_and_rotation_rules_judge_only_the_trail_bucket_and_the_trail_key() {
    let rules = with(|s| config_rules(s, Some(KEY)));
    let scope_of = |source: &str| rules.iter().find(|r| r.source == source).and_then(|r| r.scope.clone());
    assert_eq!(
        scope_of("S3_BUCKET_DEFAULT_LOCK_ENABLED"),
        Some(RuleScope {
            resource_type: "AWS::S3::Bucket".into(),
            resource_id: "trailkeeper-111122223333-cloudtrail-us-east-1".into()
        })
    );
    assert_eq!(
        scope_of("CMK_BACKING_KEY_ROTATION_ENABLED"),
        Some(RuleScope {
            resource_type: "AWS::KMS::Key".into(),
            resource_id: "1234abcd-12ab-34cd-56ef-1234567890ab".into()
        })
    );
    assert_eq!(
        scope_of("CLOUD_TRAIL_ENABLED"),
        None,
        "account-wide rules stay unscoped"
    );
    // Before the key exists, no rule that would judge every key of the account.
    let without_key = with(|s| config_rules(s, None));
    assert!(
        without_key
            .iter()
            .all(|r| r.source != "CMK_BACKING_KEY_ROTATION_ENABLED")
    );
}

#[test]
fn the_config_rules_cover_trail_bucket_key_and_flow_logs() {
    let rules = with(|s| config_rules(s, Some(KEY)));
    let sources: Vec<&str> = rules.iter().map(|r| r.source.as_str()).collect();
    for s in [
        "MULTI_REGION_CLOUD_TRAIL_ENABLED",
        "S3_BUCKET_DEFAULT_LOCK_ENABLED",
        "CMK_BACKING_KEY_ROTATION_ENABLED",
        "VPC_FLOW_LOGS_ENABLED",
    ] {
        assert!(sources.contains(&s), "{s}");
    }
    assert!(rules.iter().all(|r| r.name.starts_with(CONFIG_RULE_PREFIX)));
}

/// N2: the log groups' key admits CloudWatch Logs of the group's region, under the China
/// partition's domain in aws-cn (`logs.cn-north-1.amazonaws.com.cn`), with the groups' aws-cn ARNs.
#[test]
fn the_log_key_names_cloudwatch_logs_of_the_region_in_its_partition() {
    let key = with(|s| log_group_key(s, "cn-north-1", &log_groups(s))).expect("a key");
    let statement = key.policy["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == "CloudWatchLogsEncryptTrailkeeperGroups")
        .unwrap()
        .clone();
    assert_eq!(statement["Principal"]["Service"], "logs.cn-north-1.amazonaws.com.cn");
    let groups = statement["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"].to_string();
    assert!(
        groups.contains("arn:aws-cn:logs:cn-north-1:111122223333:log-group:"),
        "{groups}"
    );
    assert_eq!(logs_principal("eu-west-1"), "logs.eu-west-1.amazonaws.com");
    assert_eq!(logs_principal("us-gov-west-1"), "logs.us-gov-west-1.amazonaws.com");
}
