//! Faults the emulator cannot produce, made with aws-smithy-mocks: AccessDenied names the IAM
//! action, throttling is retried with backoff, and a failing account writes nothing after it.

mod common;

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_credential_types::Credentials;
use aws_smithy_mocks::{MockResponseInterceptor, Rule, RuleMode, create_mock_http_client, mock};
use aws_smithy_types::error::ErrorMetadata;
use aws_types::region::Region;
use trailkeeper::aws::{AccountClients, CallRecorder, ErrorKind, MAX_ATTEMPTS, Services, cloudtrail, kms, s3};
use trailkeeper::desired::AccountSpecs;
use trailkeeper::reconcile::account::{Component, ComponentState, PreviousApproval, RunMode, run_account_with};

fn error(code: &str, message: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).message(message).build()
}

fn interceptor(rules: &[&Rule]) -> MockResponseInterceptor {
    rules
        .iter()
        .fold(MockResponseInterceptor::new().rule_mode(RuleMode::MatchAny), |i, r| {
            i.with_rule(r)
        })
}

/// Clients whose every service answers from `rules`, with the product's retry policy (but a
/// short first backoff so the test is quick).
fn clients(rules: &[&Rule], calls: &CallRecorder) -> AccountClients {
    let retry = RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_millis(5));
    macro_rules! client {
        ($sdk:ident) => {
            $sdk::Client::from_conf(
                $sdk::Config::builder()
                    .behavior_version(BehaviorVersion::latest())
                    .region(Region::new("us-east-1"))
                    .credentials_provider(Credentials::new("a", "b", None, None, "test"))
                    .http_client(create_mock_http_client())
                    .interceptor(interceptor(rules))
                    .interceptor(calls.clone())
                    .retry_config(retry.clone())
                    .build(),
            )
        };
    }
    let services = Services {
        sts: client!(aws_sdk_sts),
        kms: client!(aws_sdk_kms),
        s3: client!(aws_sdk_s3),
        cloudtrail: client!(aws_sdk_cloudtrail),
        ec2: client!(aws_sdk_ec2),
        logs: client!(aws_sdk_cloudwatchlogs),
        iam: client!(aws_sdk_iam),
        ssm: client!(aws_sdk_ssm),
        config: client!(aws_sdk_config),
    };
    AccountClients::from_parts("us-east-1", services, calls.clone())
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

#[tokio::test]
async fn throttling_is_retried_with_backoff_until_it_succeeds() {
    let throttled = mock!(aws_sdk_cloudtrail::Client::start_logging)
        .sequence()
        .error(|| {
            aws_sdk_cloudtrail::operation::start_logging::StartLoggingError::generic(error(
                "ThrottlingException",
                "Rate exceeded",
            ))
        })
        .times(2)
        .output(|| aws_sdk_cloudtrail::operation::start_logging::StartLoggingOutput::builder().build())
        .build();
    let calls = CallRecorder::new();
    let c = clients(&[&throttled], &calls);
    cloudtrail::start_logging(&c, "arn:aws:cloudtrail:us-east-1:111122223333:trail/t")
        .await
        .unwrap();
    assert_eq!(throttled.num_calls(), 3, "two throttled attempts, then success");
    let counts = calls.snapshot();
    assert_eq!(counts.writes, 1, "one operation, whatever its attempts");
}

#[tokio::test]
async fn throttling_that_persists_gives_a_throttled_error_after_the_attempts() {
    let throttled = mock!(aws_sdk_kms::Client::enable_key_rotation)
        .sequence()
        .error(|| {
            aws_sdk_kms::operation::enable_key_rotation::EnableKeyRotationError::generic(error(
                "ThrottlingException",
                "Rate exceeded",
            ))
        })
        .repeatedly()
        .build();
    let calls = CallRecorder::new();
    let c = clients(&[&throttled], &calls);
    let err = kms::enable_rotation(&c, "key-1").await.unwrap_err();
    assert_eq!(err.kind, ErrorKind::Throttled);
    assert_eq!(err.reason(), "Throttled");
    assert_eq!(throttled.num_calls(), MAX_ATTEMPTS as usize);
    assert!(
        err.to_string().contains("throttled after retries with backoff"),
        "{err}"
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
    let calls = CallRecorder::new();
    let c = clients(&[&identity, &key_denied, &no_bucket, &no_trail], &calls);
    let mut spec = common::spec(account);
    spec.credentials = None;
    let (trail_policy, retention) = common::default_policies();
    let specs = AccountSpecs {
        baseline: &spec,
        trail_policy: &trail_policy,
        retention: &retention,
    };
    let report = run_account_with(c, &specs, RunMode::Apply, &PreviousApproval::default()).await;

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
}
