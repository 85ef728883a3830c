//! Faults the emulator cannot produce: AccessDenied names the IAM action (aws-smithy-mocks),
//! throttling is retried with backoff by the product's own configuration and each account has
//! retries of its own (a scripted HTTP client), and a failing account writes nothing after it.

mod common;

use aws_smithy_mocks::{Rule, mock};
use trailkeeper::aws::{AccountClients, CallRecorder, ErrorKind, MAX_ATTEMPTS, cloudtrail, s3};
use trailkeeper::desired::AccountSpecs;
use trailkeeper::engine::account::{Component, ComponentState, ReconcileOptions, RunMode, reconcile_account};

use common::error;

fn clients(rules: &[&Rule], calls: &CallRecorder) -> AccountClients {
    common::mocked_clients(rules, calls)
}

#[tokio::test]
async fn access_denied_names_the_iam_action_and_what_to_grant() {
    let denied = mock!(aws_sdk_s3::Client::put_bucket_encryption).then_error(|| {
        aws_sdk_s3::operation::put_bucket_encryption::PutBucketEncryptionError::generic(error(
            "AccessDenied",
            "Access Denied",
        ))
    });
    let calls = CallRecorder::new();
    let c = clients(&[&denied], &calls);
    let err = s3::put_encryption(&c, "logs-bucket", Some("arn:aws:kms:us-east-1:111122223333:key/k"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::AccessDenied);
    assert_eq!(err.action, "s3:PutEncryptionConfiguration");
    let text = err.to_string();
    assert!(
        text.starts_with(
            "s3:PutEncryptionConfiguration denied on bucket logs-bucket: grant s3:PutEncryptionConfiguration"
        ),
        "{text}"
    );
    // AccessDenied is not retried: asking again cannot help.
    assert_eq!(denied.num_calls(), 1);
    assert_eq!(
        calls.snapshot().by_action.get("s3:PutEncryptionConfiguration"),
        Some(&(1, 1))
    );
}

/// AWS for the throttling tests, behind the product's own configuration
/// (`trailkeeper::aws::base_config_loader`: its retries, backoff and timeouts): STS AssumeRole
/// gives each role credentials whose key id names the role's account, and CloudTrail answers
/// ThrottlingException to every attempt of the accounts in `always_throttled` and to the first
/// attempt of the others. It counts the CloudTrail attempts per key id.
#[derive(Clone, Debug, Default)]
struct ThrottlingAws {
    always_throttled: Vec<String>,
    attempts: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
}

impl ThrottlingAws {
    fn attempts_of(&self, account: &str) -> usize {
        self.attempts
            .lock()
            .unwrap()
            .get(&key_id_of(account))
            .copied()
            .unwrap_or(0)
    }
}

fn key_id_of(account: &str) -> String {
    format!("AKID{account}")
}

impl aws_smithy_runtime_api::client::http::HttpConnector for ThrottlingAws {
    fn call(
        &self,
        request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
        use aws_smithy_types::body::SdkBody;
        let body = String::from_utf8_lossy(request.body().bytes().unwrap_or_default()).to_string();
        let response = |status: u16, body: String| {
            let mut response = HttpResponse::new(status.try_into().unwrap(), SdkBody::from(body));
            response
                .headers_mut()
                .insert("content-type", "application/x-amz-json-1.1");
            response
        };
        let answer = if body.contains("Action=AssumeRole") {
            // RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2F...: the account is the 12 digits.
            let account: String = body
                .split("RoleArn=")
                .nth(1)
                .and_then(|arn| arn.split("%3A").nth(4))
                .unwrap_or_default()
                .to_string();
            let mut ok = response(
                200,
                format!(
                    "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult><Credentials>\
                 <AccessKeyId>{}</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken>\
                 <Expiration>2099-01-01T00:00:00Z</Expiration></Credentials><AssumedRoleUser>\
                 <Arn>arn:aws:sts::{account}:assumed-role/trailkeeper/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId>\
                 </AssumedRoleUser></AssumeRoleResult></AssumeRoleResponse>",
                    key_id_of(&account)
                ),
            );
            ok.headers_mut().insert("content-type", "text/xml");
            ok
        } else {
            let authorization = request.headers().get("authorization").unwrap_or_default();
            let key_id = authorization
                .split("Credential=")
                .nth(1)
                .and_then(|c| c.split('/').next())
                .unwrap_or_default()
                .to_string();
            let attempt = {
                let mut attempts = self.attempts.lock().unwrap();
                let n = attempts.entry(key_id.clone()).or_default();
                *n += 1;
                *n
            };
            let throttled = attempt == 1 || self.always_throttled.iter().any(|a| key_id_of(a) == key_id);
            match throttled {
                true => response(
                    400,
                    r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into(),
                ),
                false => response(200, "{}".into()),
            }
        };
        aws_smithy_runtime_api::client::http::HttpConnectorFuture::ready(Ok(answer))
    }
}

/// An HTTP client whose every connection is `connector` (a fake AWS).
fn http_client_of(
    connector: impl aws_smithy_runtime_api::client::http::HttpConnector + Clone + 'static,
) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_runtime_api::client::http::http_client_fn(move |_, _| {
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(connector.clone())
    })
}

/// The product's configuration (its retries, timeouts) with `aws` as its HTTP client.
async fn product_config(
    aws: impl aws_smithy_runtime_api::client::http::HttpConnector + Clone + 'static,
) -> aws_types::SdkConfig {
    trailkeeper::aws::base_config_loader()
        .http_client(http_client_of(aws))
        .endpoint_url("http://127.0.0.1:1")
        .region(aws_types::region::Region::new(common::REGION))
        .credentials_provider(aws_credential_types::Credentials::new("a", "b", None, None, "test"))
        .load()
        .await
}

/// The clients of `account` on `aws` as the controller builds them (the account's role assumed,
/// its own retry budget).
async fn product_clients(aws: &ThrottlingAws, account: &str, calls: &CallRecorder) -> AccountClients {
    let base = product_config(aws.clone()).await;
    let role = trailkeeper::api::Credentials {
        assume_role_arn: format!("arn:aws:iam::{account}:role/trailkeeper"),
        external_id: None,
    };
    AccountClients::new(&base, common::REGION, Some(&role), calls.clone())
}

fn trail_of(account: &str) -> String {
    format!("arn:aws:cloudtrail:us-east-1:{account}:trail/t")
}

// Paused time: the SDK sleeps its backoff on tokio's clock, which then advances at once.
#[tokio::test(start_paused = true)]
async fn throttling_is_retried_with_backoff_until_it_succeeds() {
    let aws = ThrottlingAws::default();
    let calls = CallRecorder::new();
    let account = "210000000001";
    let c = product_clients(&aws, account, &calls).await;
    let started = tokio::time::Instant::now();
    cloudtrail::start_logging(&c, &trail_of(account)).await.unwrap();
    assert_eq!(aws.attempts_of(account), 2, "one throttled attempt, then success");
    assert!(
        started.elapsed() > std::time::Duration::ZERO,
        "the retry waited a backoff"
    );
    assert_eq!(calls.snapshot().writes, 1, "one operation, whatever its attempts");
}

#[tokio::test(start_paused = true)]
async fn throttling_that_persists_gives_a_throttled_error_after_the_attempts() {
    let account = "210000000002";
    let aws = ThrottlingAws {
        always_throttled: vec![account.into()],
        ..Default::default()
    };
    let c = product_clients(&aws, account, &CallRecorder::new()).await;
    let err = cloudtrail::start_logging(&c, &trail_of(account)).await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Throttled);
    assert_eq!(err.reason(), "Throttled");
    assert_eq!(aws.attempts_of(account), MAX_ATTEMPTS as usize);
    assert!(
        err.to_string().contains("throttled after retries with backoff"),
        "{err}"
    );
}

/// The SDK's retry token bucket (500 tokens, 5 a throttled retry) is shared by every client of a
/// retry partition: trailkeeper partitions it per account, so an account throttled until its
/// bucket is empty (it then fails at its first attempt) leaves another account its retries.
#[tokio::test(start_paused = true)]
async fn an_account_that_spent_its_retries_leaves_the_other_accounts_theirs() {
    let (noisy, quiet) = ("210000000003", "210000000004");
    let aws = ThrottlingAws {
        always_throttled: vec![noisy.into()],
        ..Default::default()
    };
    let noisy_clients = product_clients(&aws, noisy, &CallRecorder::new()).await;
    let mut spent = false;
    for _ in 0..200 {
        let before = aws.attempts_of(noisy);
        assert!(
            cloudtrail::start_logging(&noisy_clients, &trail_of(noisy))
                .await
                .is_err()
        );
        if aws.attempts_of(noisy) - before == 1 {
            spent = true;
            break;
        }
    }
    assert!(spent, "the noisy account never ran out of retries");
    let quiet_clients = product_clients(&aws, quiet, &CallRecorder::new()).await;
    cloudtrail::start_logging(&quiet_clients, &trail_of(quiet))
        .await
        .unwrap();
    assert_eq!(
        aws.attempts_of(quiet),
        2,
        "the quiet account still retries its throttled attempt"
    );
}

#[tokio::test]
async fn a_key_that_cannot_be_read_fails_its_component_and_nothing_is_written() {
    let account = "111122223333";
    let identity = mock!(aws_sdk_sts::Client::get_caller_identity).then_output(move || {
        aws_sdk_sts::operation::get_caller_identity::GetCallerIdentityOutput::builder()
            .account(account)
            .arn(format!("arn:aws:sts::{account}:assumed-role/trailkeeper/s"))
            .build()
    });
    let key_denied = mock!(aws_sdk_kms::Client::describe_key).then_error(|| {
        aws_sdk_kms::operation::describe_key::DescribeKeyError::generic(error(
            "AccessDeniedException",
            "not authorized",
        ))
    });
    let no_bucket = mock!(aws_sdk_s3::Client::head_bucket)
        .then_error(|| aws_sdk_s3::operation::head_bucket::HeadBucketError::generic(error("NotFound", "")));
    let no_trail = mock!(aws_sdk_cloudtrail::Client::get_trail).then_error(|| {
        aws_sdk_cloudtrail::operation::get_trail::GetTrailError::generic(error("TrailNotFoundException", ""))
    });
    // The account-wide reads of CIS 3.3, 3.6 and 3.7, denied too: their evidence says so.
    let recorders_denied = mock!(aws_sdk_config::Client::describe_configuration_recorders).then_error(|| {
        aws_sdk_config::operation::describe_configuration_recorders::DescribeConfigurationRecordersError::generic(
            error("AccessDeniedException", "not authorized"),
        )
    });
    let vpcs_denied = mock!(aws_sdk_ec2::Client::describe_vpcs).then_error(|| {
        aws_sdk_ec2::operation::describe_vpcs::DescribeVpcsError::generic(error("UnauthorizedOperation", "no"))
    });
    let flow_logs_denied = mock!(aws_sdk_ec2::Client::describe_flow_logs).then_error(|| {
        aws_sdk_ec2::operation::describe_flow_logs::DescribeFlowLogsError::generic(error("UnauthorizedOperation", "no"))
    });
    let keys_denied = mock!(aws_sdk_kms::Client::list_keys).then_error(|| {
        aws_sdk_kms::operation::list_keys::ListKeysError::generic(error("AccessDeniedException", "not authorized"))
    });
    // The trails that apply in the region (duplicate trails): none.
    let no_trails = mock!(aws_sdk_cloudtrail::Client::describe_trails)
        .then_output(|| aws_sdk_cloudtrail::operation::describe_trails::DescribeTrailsOutput::builder().build());
    let calls = CallRecorder::new();
    let c = clients(
        &[
            &identity,
            &no_trails,
            &key_denied,
            &no_bucket,
            &no_trail,
            &recorders_denied,
            &vpcs_denied,
            &flow_logs_denied,
            &keys_denied,
        ],
        &calls,
    );
    let mut spec = common::spec(account);
    spec.credentials = None;
    // This test is about the primary-region resources.
    spec.flow_logs.enabled = false;
    let (trail_policy, retention) = common::default_policies();
    let specs = AccountSpecs {
        baseline: &spec,
        trail_policy: &trail_policy,
        retention: &retention,
    };
    let report = reconcile_account(c, &specs, ReconcileOptions::new(RunMode::Apply)).await;

    let Some(ComponentState::Failed(e)) = report.components.get(&Component::Key) else {
        panic!("the key component should have failed: {:?}", report.components)
    };
    assert_eq!(e.kind, ErrorKind::AccessDenied);
    assert_eq!(e.action, "kms:DescribeKey");
    assert_eq!(
        report.components.get(&Component::Storage),
        Some(&ComponentState::Waiting(Component::Key))
    );
    assert_eq!(
        report.components.get(&Component::Trail),
        Some(&ComponentState::Waiting(Component::Key))
    );
    assert!(report.failed());
    assert_eq!(report.calls.writes, 0, "{:?}", report.calls.by_action);
    let controls = trailkeeper::judge::compliance::evaluate(&report.evidence);
    for (id, action) in [
        ("3.3", "config:DescribeConfigurationRecorders"),
        ("3.6", "kms:ListKeys"),
        ("3.7", "ec2:Describe"),
    ] {
        let control = controls.iter().find(|c| c.id == id).unwrap();
        assert_eq!(control.result, trailkeeper::api::ControlResult::Fail, "{id}");
        assert!(
            control.evidence.contains(&format!("{}: not read", common::REGION)) && control.evidence.contains(action),
            "{id}: {}",
            control.evidence
        );
    }
}

fn instance_logs_only(account: &str) -> trailkeeper::api::LoggingBaselineSpec {
    let mut spec = common::spec(account);
    spec.flow_logs.enabled = false;
    spec.instance_logs.enabled = true;
    // These tests are about the agents' associations; the groups' key has tests of its own.
    spec.encryption.log_groups = false;
    spec
}

/// The instance log groups as DescribeLogGroups returns them when they already exist.
fn existing_log_groups(spec: &trailkeeper::api::LoggingBaselineSpec) -> Rule {
    let groups: Vec<String> = spec
        .instance_logs
        .linux_files
        .iter()
        .chain(&spec.instance_logs.windows_files)
        .map(|f| trailkeeper::desired::regional::log_group_name(f))
        .collect();
    mock!(aws_sdk_cloudwatchlogs::Client::describe_log_groups).then_output(move || {
        aws_sdk_cloudwatchlogs::operation::describe_log_groups::DescribeLogGroupsOutput::builder()
            .set_log_groups(Some(
                groups
                    .iter()
                    .map(|g| {
                        aws_sdk_cloudwatchlogs::types::LogGroup::builder()
                            .log_group_name(g)
                            .build()
                    })
                    .collect(),
            ))
            .build()
    })
}

async fn reconcile_region(
    clients: &AccountClients,
    spec: &trailkeeper::api::LoggingBaselineSpec,
) -> trailkeeper::engine::regional::RegionOutcome {
    let (trail_policy, retention) = common::default_policies();
    let specs = AccountSpecs {
        baseline: spec,
        trail_policy: &trail_policy,
        retention: &retention,
    };
    // As after the key step of a converged account: the trail key exists.
    let key = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    trailkeeper::engine::regional::reconcile_region(clients, &specs, Some(key), true, false).await
}

fn state_of(outcome: &trailkeeper::engine::regional::RegionOutcome, c: Component) -> &ComponentState {
    &outcome
        .parts
        .iter()
        .find(|(component, _, _)| *component == c)
        .unwrap()
        .1
}

#[tokio::test]
async fn the_agent_configurations_are_stored_and_associated_with_the_targeted_instances() {
    use aws_sdk_ssm::operation::{create_association, get_parameter, list_associations, put_parameter};
    let spec = instance_logs_only("111122223333");
    let groups = existing_log_groups(&spec);
    let no_parameter = mock!(aws_sdk_ssm::Client::get_parameter)
        .then_error(|| get_parameter::GetParameterError::generic(error("ParameterNotFound", "")));
    let put = mock!(aws_sdk_ssm::Client::put_parameter)
        .then_output(|| put_parameter::PutParameterOutput::builder().version(1).build());
    let no_association = mock!(aws_sdk_ssm::Client::list_associations)
        .then_output(|| list_associations::ListAssociationsOutput::builder().build());
    let create = mock!(aws_sdk_ssm::Client::create_association)
        .match_requests(|r| {
            r.name() == Some("AmazonCloudWatch-ManageAgent")
                && r.targets()
                    .iter()
                    .any(|t| t.key() == Some("tag:trailkeeper.io/managed"))
                && r.parameters()
                    .and_then(|p| p.get("optionalConfigurationLocation"))
                    .is_some()
        })
        .then_output(|| create_association::CreateAssociationOutput::builder().build());
    // The configure document needs an installed agent: AWS-ConfigureAWSPackage installs it, on the
    // same instances.
    let install = mock!(aws_sdk_ssm::Client::create_association)
        .match_requests(|r| {
            let parameter = |k: &str| r.parameters().and_then(|p| p.get(k)).and_then(|v| v.first()).cloned();
            r.name() == Some("AWS-ConfigureAWSPackage")
                && parameter("action").as_deref() == Some("Install")
                && parameter("name").as_deref() == Some("AmazonCloudWatchAgent")
                && r.targets()
                    .iter()
                    .any(|t| t.key() == Some("tag:trailkeeper.io/managed"))
        })
        .then_output(|| create_association::CreateAssociationOutput::builder().build());
    let calls = CallRecorder::new();
    let clients = common::mocked_clients(
        &[&groups, &no_parameter, &put, &no_association, &install, &create],
        &calls,
    );
    let outcome = reconcile_region(&clients, &spec).await;
    assert_eq!(state_of(&outcome, Component::InstanceLogs), &ComponentState::Repaired);
    assert_eq!(put.num_calls(), 2, "one configuration per platform");
    assert_eq!(install.num_calls(), 2, "one install association per platform");
    assert_eq!(create.num_calls(), 2, "one configure association per platform");
    let applied: Vec<&String> = outcome.applied.iter().map(|c| &c.action).collect();
    let first_install = applied.iter().position(|a| a.contains("AWS-ConfigureAWSPackage"));
    let first_configure = applied.iter().position(|a| a.contains("AmazonCloudWatch-ManageAgent"));
    assert!(
        first_install < first_configure,
        "installed before configured: {applied:?}"
    );
}

#[tokio::test]
async fn an_association_that_cannot_be_created_fails_instance_logs_with_the_action_named() {
    use aws_sdk_ssm::operation::{create_association, get_parameter, list_associations};
    let spec = instance_logs_only("111122223333");
    let groups = existing_log_groups(&spec);
    let configs = trailkeeper::desired::regional::agent_configs(&AccountSpecs {
        baseline: &spec,
        trail_policy: &Default::default(),
        retention: &Default::default(),
    });
    let value = configs[0].value.clone();
    let parameter = mock!(aws_sdk_ssm::Client::get_parameter).then_output(move || {
        get_parameter::GetParameterOutput::builder()
            .parameter(aws_sdk_ssm::types::Parameter::builder().value(&value).build())
            .build()
    });
    let no_association = mock!(aws_sdk_ssm::Client::list_associations)
        .then_output(|| list_associations::ListAssociationsOutput::builder().build());
    let denied = mock!(aws_sdk_ssm::Client::create_association).then_error(|| {
        create_association::CreateAssociationError::generic(error("AccessDeniedException", "not authorized"))
    });
    let calls = CallRecorder::new();
    let clients = common::mocked_clients(&[&groups, &parameter, &no_association, &denied], &calls);
    let outcome = reconcile_region(&clients, &spec).await;
    let ComponentState::Failed(e) = state_of(&outcome, Component::InstanceLogs) else {
        panic!("{:?}", outcome.parts)
    };
    assert_eq!(e.kind, ErrorKind::AccessDenied);
    assert!(e.to_string().starts_with("ssm:CreateAssociation denied"), "{e}");
}

#[tokio::test]
async fn config_rule_compliance_is_reported_and_its_failure_does_not_fail_the_rules() {
    use aws_sdk_config::operation::{
        describe_compliance_by_config_rule as compliance, describe_config_rules, describe_configuration_recorders,
        put_config_rule,
    };
    let mut spec = common::spec("111122223333");
    spec.flow_logs.enabled = false;
    spec.config_rules.enabled = true;
    let recorder = mock!(aws_sdk_config::Client::describe_configuration_recorders).then_output(|| {
        describe_configuration_recorders::DescribeConfigurationRecordersOutput::builder()
            .configuration_recorders(
                aws_sdk_config::types::ConfigurationRecorder::builder()
                    .name("default")
                    .build(),
            )
            .build()
    });
    let no_rules = mock!(aws_sdk_config::Client::describe_config_rules)
        .then_output(|| describe_config_rules::DescribeConfigRulesOutput::builder().build());
    let put = mock!(aws_sdk_config::Client::put_config_rule)
        .then_output(|| put_config_rule::PutConfigRuleOutput::builder().build());
    let non_compliant = mock!(aws_sdk_config::Client::describe_compliance_by_config_rule).then_output(|| {
        compliance::DescribeComplianceByConfigRuleOutput::builder()
            .compliance_by_config_rules(
                aws_sdk_config::types::ComplianceByConfigRule::builder()
                    .config_rule_name("trailkeeper-vpc-flow-logs-enabled")
                    .compliance(
                        aws_sdk_config::types::Compliance::builder()
                            .compliance_type(aws_sdk_config::types::ComplianceType::NonCompliant)
                            .build(),
                    )
                    .build(),
            )
            .build()
    });
    let recording = mock!(aws_sdk_config::Client::describe_configuration_recorder_status).then_output(|| {
        aws_sdk_config::operation::describe_configuration_recorder_status::DescribeConfigurationRecorderStatusOutput::builder()
            .configuration_recorders_status(
                aws_sdk_config::types::ConfigurationRecorderStatus::builder()
                    .name("default")
                    .recording(true)
                    .build(),
            )
            .build()
    });
    let calls = CallRecorder::new();
    let clients = common::mocked_clients(&[&recorder, &no_rules, &put, &non_compliant, &recording], &calls);
    let outcome = reconcile_region(&clients, &spec).await;
    assert_eq!(state_of(&outcome, Component::ConfigRules), &ComponentState::Repaired);
    assert_eq!(put.num_calls(), 9);
    let detail = &outcome.parts.iter().find(|p| p.0 == Component::ConfigRules).unwrap().2;
    assert!(
        detail.contains("non-compliant: trailkeeper-vpc-flow-logs-enabled"),
        "{detail}"
    );

    let denied = mock!(aws_sdk_config::Client::describe_compliance_by_config_rule)
        .then_error(|| compliance::DescribeComplianceByConfigRuleError::generic(error("AccessDeniedException", "no")));
    let clients = common::mocked_clients(&[&recorder, &no_rules, &put, &denied, &recording], &calls);
    let outcome = reconcile_region(&clients, &spec).await;
    assert_eq!(state_of(&outcome, Component::ConfigRules), &ComponentState::Repaired);
    let detail = &outcome.parts.iter().find(|p| p.0 == Component::ConfigRules).unwrap().2;
    assert!(
        detail.contains("compliance unavailable: config:DescribeComplianceByConfigRule denied"),
        "{detail}"
    );
}

#[tokio::test]
async fn an_association_applying_another_configuration_is_updated() {
    use aws_sdk_ssm::operation::{describe_association, get_parameter, list_associations, update_association};
    let mut spec = instance_logs_only("111122223333");
    spec.instance_logs.windows_files.clear();
    let groups = existing_log_groups(&spec);
    let value = trailkeeper::desired::regional::agent_configs(&AccountSpecs {
        baseline: &spec,
        trail_policy: &Default::default(),
        retention: &Default::default(),
    })[0]
        .value
        .clone();
    let parameter = mock!(aws_sdk_ssm::Client::get_parameter).then_output(move || {
        get_parameter::GetParameterOutput::builder()
            .parameter(aws_sdk_ssm::types::Parameter::builder().value(&value).build())
            .build()
    });
    let listed = mock!(aws_sdk_ssm::Client::list_associations).then_output(|| {
        list_associations::ListAssociationsOutput::builder()
            .associations(
                aws_sdk_ssm::types::Association::builder()
                    .association_name("trailkeeper-cloudwatch-agent-install-linux")
                    .association_id("assoc-0")
                    .build(),
            )
            .associations(
                aws_sdk_ssm::types::Association::builder()
                    .association_name("trailkeeper-cloudwatch-agent-linux")
                    .association_id("assoc-1")
                    .build(),
            )
            .build()
    });
    let install_described = mock!(aws_sdk_ssm::Client::describe_association)
        .match_requests(|r| r.association_id() == Some("assoc-0"))
        .then_output(|| {
            describe_association::DescribeAssociationOutput::builder()
                .association_description(
                    aws_sdk_ssm::types::AssociationDescription::builder()
                        .name("AWS-ConfigureAWSPackage")
                        .parameters("action", vec!["Install".to_string()])
                        .parameters("name", vec!["AmazonCloudWatchAgent".to_string()])
                        // Two instances could not install the agent: their logs never ship.
                        .overview(
                            aws_sdk_ssm::types::AssociationOverview::builder()
                                .status("Failed")
                                .association_status_aggregated_count("Success", 3)
                                .association_status_aggregated_count("Failed", 2)
                                .build(),
                        )
                        .build(),
                )
                .build()
        });
    let described = mock!(aws_sdk_ssm::Client::describe_association)
        .match_requests(|r| r.association_id() == Some("assoc-1"))
        .then_output(|| {
            describe_association::DescribeAssociationOutput::builder()
                .association_description(
                    aws_sdk_ssm::types::AssociationDescription::builder()
                        .name("AmazonCloudWatch-ManageAgent")
                        .parameters("action", vec!["configure".to_string()])
                        .parameters("mode", vec!["ec2".to_string()])
                        .parameters("optionalConfigurationSource", vec!["ssm".to_string()])
                        .parameters(
                            "optionalConfigurationLocation",
                            vec!["someone-elses-config".to_string()],
                        )
                        .parameters("optionalRestart", vec!["yes".to_string()])
                        .build(),
                )
                .build()
        });
    let update = mock!(aws_sdk_ssm::Client::update_association)
        .match_requests(|r| r.association_id() == Some("assoc-1"))
        .then_output(|| update_association::UpdateAssociationOutput::builder().build());
    let calls = CallRecorder::new();
    let clients = common::mocked_clients(
        &[&groups, &parameter, &listed, &install_described, &described, &update],
        &calls,
    );
    let outcome = reconcile_region(&clients, &spec).await;
    assert_eq!(state_of(&outcome, Component::InstanceLogs), &ComponentState::Repaired);
    assert_eq!(update.num_calls(), 1);
    let failing = trailkeeper::judge::delivery::first_problem(&outcome.delivery).expect("instance logs failing");
    assert_eq!(
        failing.problem.as_deref(),
        Some("instance-logs/us-east-1: trailkeeper-cloudwatch-agent-install-linux: 2 of 5 instances failed")
    );
    assert!(
        outcome
            .drift
            .iter()
            .any(|d| d.field == "configuration" && d.actual == "someone-elses-config")
    );
}

#[tokio::test]
async fn a_workgroup_athena_reports_not_found_is_absent_and_a_denied_read_names_the_athena_action() {
    use aws_sdk_athena::operation::get_work_group::GetWorkGroupError;
    use trailkeeper::aws::athena;
    let missing = mock!(aws_sdk_athena::Client::get_work_group)
        .match_requests(|r| r.work_group() == Some("gone"))
        .then_error(|| GetWorkGroupError::generic(error("InvalidRequestException", "WorkGroup gone is not found.")));
    let denied = mock!(aws_sdk_athena::Client::get_work_group)
        .match_requests(|r| r.work_group() == Some("locked"))
        .then_error(|| GetWorkGroupError::generic(error("AccessDeniedException", "not authorized")));
    let calls = CallRecorder::new();
    let c = clients(&[&missing, &denied], &calls);
    assert_eq!(athena::observe_work_group(&c, "gone").await, Ok(None));
    let err = athena::observe_work_group(&c, "locked").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::AccessDenied);
    assert!(
        err.to_string()
            .starts_with("athena:GetWorkGroup denied on Athena workgroup locked: grant athena:GetWorkGroup"),
        "{err}"
    );
}

#[tokio::test]
async fn an_account_outside_any_organization_has_no_organization_id() {
    use aws_sdk_organizations::operation::describe_organization::DescribeOrganizationError;
    let not_in_use = mock!(aws_sdk_organizations::Client::describe_organization).then_error(|| {
        DescribeOrganizationError::generic(error(
            "AWSOrganizationsNotInUseException",
            "Your account is not a member of an organization.",
        ))
    });
    let calls = CallRecorder::new();
    let c = clients(&[&not_in_use], &calls);
    assert_eq!(trailkeeper::aws::organizations::organization_id(&c).await, Ok(None));
}

#[tokio::test]
async fn creating_a_workgroup_an_interrupted_reconcile_already_created_succeeds() {
    use aws_sdk_athena::operation::create_work_group::CreateWorkGroupError;
    let exists = mock!(aws_sdk_athena::Client::create_work_group)
        .then_error(|| CreateWorkGroupError::generic(error("InvalidRequestException", "WorkGroup is already created")));
    let calls = CallRecorder::new();
    let c = clients(&[&exists], &calls);
    let spec: trailkeeper::api::LoggingBaselineSpec =
        serde_json::from_value(serde_json::json!({"accountId": "111122223333", "primaryRegion": "us-east-1"})).unwrap();
    let wg = trailkeeper::desired::athena::work_group(&spec, Some("arn:aws:kms:us-east-1:111122223333:key/k"));
    trailkeeper::aws::athena::create_work_group(&c, &wg).await.unwrap();
    assert_eq!(exists.num_calls(), 1);
}

#[tokio::test]
async fn a_named_query_athena_does_not_return_fails_the_read_to_be_retried_not_recreated() {
    use aws_sdk_athena::operation::batch_get_named_query::BatchGetNamedQueryOutput;
    use aws_sdk_athena::operation::list_named_queries::ListNamedQueriesOutput;
    use aws_sdk_athena::types::UnprocessedNamedQueryId;
    let listed = mock!(aws_sdk_athena::Client::list_named_queries)
        .then_output(|| ListNamedQueriesOutput::builder().named_query_ids("q-1").build());
    let unprocessed = mock!(aws_sdk_athena::Client::batch_get_named_query).then_output(|| {
        BatchGetNamedQueryOutput::builder()
            .unprocessed_named_query_ids(
                UnprocessedNamedQueryId::builder()
                    .named_query_id("q-1")
                    .error_code("INTERNAL_ERROR")
                    .error_message("try again")
                    .build(),
            )
            .build()
    });
    let calls = CallRecorder::new();
    let c = clients(&[&listed, &unprocessed], &calls);
    let err = trailkeeper::aws::athena::list_named_queries(&c, "wg")
        .await
        .unwrap_err();
    // Not an empty list: that would make the engine create the query a second time.
    assert_eq!(err.kind, ErrorKind::Transient);
    assert_eq!(err.resource, "Athena named query q-1");
    assert_eq!(calls.snapshot().writes, 0, "BatchGet is a read");
}

/// CloudTrail checks the bucket policy when a trail is created or updated; a policy broken behind
/// trailkeeper's back cannot be fixed by retrying: one call, no retries, a reason a person acts on.
#[tokio::test]
async fn an_insufficient_bucket_policy_is_a_precondition_not_retried() {
    let refused = mock!(aws_sdk_cloudtrail::Client::update_trail).then_error(|| {
        aws_sdk_cloudtrail::operation::update_trail::UpdateTrailError::generic(error(
            "InsufficientS3BucketPolicyException",
            "Incorrect S3 bucket policy is detected for bucket: b",
        ))
    });
    let calls = CallRecorder::new();
    let c = clients(&[&refused], &calls);
    let update = cloudtrail::TrailUpdate {
        bucket: Some("b".into()),
        ..Default::default()
    };
    let err = cloudtrail::update_trail(&c, "arn:aws:cloudtrail:us-east-1:111122223333:trail/t", &update)
        .await
        .unwrap_err();
    assert_eq!(err.kind, ErrorKind::Precondition);
    assert_eq!(err.reason(), "PreconditionFailed");
    assert_eq!(refused.num_calls(), 1, "not retried");
    let text = err.to_string();
    assert!(
        text.contains("cloudtrail:UpdateTrail")
            && text.contains("InsufficientS3BucketPolicyException")
            && text.contains("next resync"),
        "{text}"
    );
}

/// An endpoint that takes every request and never answers (a hung AWS endpoint); it notes when
/// each attempt arrived, on tokio's clock.
#[derive(Clone, Debug, Default)]
struct StalledAws {
    attempts: std::sync::Arc<std::sync::Mutex<Vec<tokio::time::Instant>>>,
}

impl aws_smithy_runtime_api::client::http::HttpConnector for StalledAws {
    fn call(
        &self,
        _request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        self.attempts.lock().unwrap().push(tokio::time::Instant::now());
        aws_smithy_runtime_api::client::http::HttpConnectorFuture::new(std::future::pending())
    }
}

/// The README's timeouts, seen on a call to a hung endpoint through the product's configuration:
/// each attempt is cut off at 20 s and retried, and the call as a whole fails at 60 s (tokio's
/// clock, paused: the SDK's timers run on it).
#[tokio::test(start_paused = true)]
async fn a_call_to_a_hung_endpoint_is_cut_off_at_20_s_an_attempt_and_60_s_in_all() {
    let aws = StalledAws::default();
    let base = product_config(aws.clone()).await;
    let c = AccountClients::new(&base, common::REGION, None, CallRecorder::new());
    let started = tokio::time::Instant::now();
    let call = c.cloudtrail.describe_trails().send();
    let result = tokio::time::timeout(trailkeeper::aws::OPERATION_TIMEOUT * 2, call)
        .await
        .expect("the call has a timeout of its own");
    let failed_after = started.elapsed();
    assert!(result.is_err(), "a hung endpoint answered: {result:?}");
    assert_eq!(
        failed_after,
        trailkeeper::aws::OPERATION_TIMEOUT,
        "the call fails at its operation timeout"
    );
    let attempts = aws.attempts.lock().unwrap().clone();
    assert!(
        attempts.len() >= 2,
        "the attempt cut off at 20 s is retried: {attempts:?}"
    );
    for pair in attempts.windows(2) {
        let gap = pair[1] - pair[0];
        // An attempt's 20 s, then the retry's backoff (at most 20 s in the SDK's standard mode).
        assert!(
            gap >= trailkeeper::aws::ATTEMPT_TIMEOUT && gap < trailkeeper::aws::ATTEMPT_TIMEOUT * 2,
            "attempts {gap:?} apart"
        );
    }
}

/// The log groups' key whose policy this reconcile rewrites (`policy` as read), and CloudWatch
/// Logs refusing AssociateKmsKey: the refusal KMS's lazy policy change explains.
fn log_key_rules(policy: &'static str) -> Vec<Rule> {
    use aws_sdk_kms::types::{KeyManagerType, KeyMetadata, KeyState};
    let key = "arn:aws:kms:us-east-1:111122223333:key/log-key";
    vec![
        mock!(aws_sdk_kms::Client::describe_key).then_output(move || {
            aws_sdk_kms::operation::describe_key::DescribeKeyOutput::builder()
                .key_metadata(
                    KeyMetadata::builder()
                        .key_id("log-key")
                        .arn(key)
                        .key_state(KeyState::Enabled)
                        .key_manager(KeyManagerType::Customer)
                        .build()
                        .unwrap(),
                )
                .build()
        }),
        mock!(aws_sdk_kms::Client::get_key_policy).then_output(move || {
            aws_sdk_kms::operation::get_key_policy::GetKeyPolicyOutput::builder()
                .policy(policy)
                .build()
        }),
        mock!(aws_sdk_kms::Client::get_key_rotation_status).then_output(|| {
            aws_sdk_kms::operation::get_key_rotation_status::GetKeyRotationStatusOutput::builder()
                .key_rotation_enabled(true)
                .build()
        }),
        mock!(aws_sdk_kms::Client::list_resource_tags).then_output(|| {
            let tags = [("trailkeeper.io/managed-by", "trailkeeper")]
                .map(|(k, v)| aws_sdk_kms::types::Tag::builder().tag_key(k).tag_value(v).build().unwrap());
            aws_sdk_kms::operation::list_resource_tags::ListResourceTagsOutput::builder()
                .set_tags(Some(tags.to_vec()))
                .build()
        }),
        mock!(aws_sdk_kms::Client::put_key_policy)
            .then_output(|| aws_sdk_kms::operation::put_key_policy::PutKeyPolicyOutput::builder().build()),
        mock!(aws_sdk_cloudwatchlogs::Client::describe_log_groups).then_output(|| {
            aws_sdk_cloudwatchlogs::operation::describe_log_groups::DescribeLogGroupsOutput::builder()
                .log_groups(
                    aws_sdk_cloudwatchlogs::types::LogGroup::builder()
                        .log_group_name("/trailkeeper/vpc-flow-logs")
                        .build(),
                )
                .build()
        }),
        mock!(aws_sdk_cloudwatchlogs::Client::associate_kms_key).then_error(|| {
            aws_sdk_cloudwatchlogs::operation::associate_kms_key::AssociateKmsKeyError::generic(error(
                "AccessDeniedException",
                "The specified KMS key does not exist or is not allowed to be used with Arn 'arn:aws:logs:us-east-1:111122223333:log-group:/trailkeeper/vpc-flow-logs'",
            ))
        }),
    ]
}

async fn log_groups_after_a_refused_association(policy: &'static str) -> trailkeeper::engine::regional::RegionOutcome {
    let account = "111122223333";
    let mut spec = common::trail_only(account);
    spec.flow_logs.enabled = true;
    let (trail, retention) = (
        trailkeeper::api::TrailPolicySpec::default(),
        trailkeeper::api::RetentionPolicySpec::default(),
    );
    let specs = AccountSpecs {
        baseline: &spec,
        trail_policy: &trail,
        retention: &retention,
    };
    let rules = log_key_rules(policy);
    let calls = CallRecorder::new();
    let c = clients(&rules.iter().collect::<Vec<_>>(), &calls);
    trailkeeper::engine::regional::reconcile_region(&c, &specs, None, true, false).await
}

/// N2: AssociateKmsKey refused right after this reconcile rewrote the log key's policy is the key
/// policy not yet in effect ("can take up to five minutes to take effect"): the log groups wait for
/// their key and the reconcile asks to be retried soon, instead of failing; refused with the policy
/// already in line, it fails as AccessDenied.
#[tokio::test]
async fn a_refused_key_association_right_after_the_key_policy_changed_waits_and_is_retried() {
    let rewritten = log_groups_after_a_refused_association(r#"{"Version":"2012-10-17","Statement":[]}"#).await;
    assert!(
        rewritten
            .applied
            .iter()
            .any(|c| c.action.contains("PutKeyPolicy") || c.action.contains("policy")),
        "{:?}",
        rewritten.applied
    );
    let (_, state, detail) = rewritten
        .parts
        .iter()
        .find(|(c, _, _)| *c == Component::Retention)
        .expect("the log groups' part");
    assert_eq!(state, &ComponentState::Waiting(Component::Key), "{detail}");
    assert!(detail.contains("up to five minutes"), "{detail}");
    assert!(rewritten.retry_soon);

    // The policy as trailkeeper wants it: nothing was written, so the refusal is the real one.
    let mut spec = common::trail_only("111122223333");
    spec.flow_logs.enabled = true;
    let (trail, retention) = (
        trailkeeper::api::TrailPolicySpec::default(),
        trailkeeper::api::RetentionPolicySpec::default(),
    );
    let specs = AccountSpecs {
        baseline: &spec,
        trail_policy: &trail,
        retention: &retention,
    };
    let groups = trailkeeper::desired::regional::log_groups(&specs);
    let key = trailkeeper::desired::regional::log_group_key(&specs, common::REGION, &groups).expect("a log key");
    let in_line: &'static str = Box::leak(key.policy.to_string().into_boxed_str());
    let settled = log_groups_after_a_refused_association(in_line).await;
    let (_, state, _) = settled
        .parts
        .iter()
        .find(|(c, _, _)| *c == Component::Retention)
        .expect("the log groups' part");
    assert!(
        matches!(state, ComponentState::Failed(e) if e.kind == ErrorKind::AccessDenied),
        "{state:?}"
    );
    assert!(!settled.retry_soon);
}
