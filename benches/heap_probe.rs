//! What the controller keeps per baseline, and what a reconcile builds, in bytes allocated (a
//! counting allocator): the identity kept between reconciles (`AccountIdentity`: credentials provider and
//! identity cache), a region's SDK clients (built per reconcile, dropped after), a LoggingBaseline
//! object without status. `cargo bench --bench heap_probe` (no AWS, no cluster).

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

use counting_alloc::live;

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let base = aws_config::defaults(aws_config::BehaviorVersion::latest()).region(aws_types::region::Region::new("us-east-1"))
            .http_client(trailkeeper::aws::shared_http_client()).load().await;
        let sts = aws_sdk_sts::Client::new(&base);
        let n = 200;
        let before = live();
        let mut keep = Vec::new();
        for i in 0..n {
            let c = trailkeeper::api::Credentials { assume_role_arn: format!("arn:aws:iam::{:012}:role/trailkeeper", i), external_id: None };
            keep.push(trailkeeper::aws::AccountIdentity::with_sts(&base, "us-east-1", Some(&c), &sts));
        }
        let after = live();
        println!("AccountIdentity: {} bytes each", (after - before) / n);
        let before = live();
        let mut clients = Vec::new();
        for o in keep.iter().take(20) {
            clients.push(trailkeeper::aws::AccountClients::from_identity(o.clone(), "us-east-1", Default::default()));
        }
        let after = live();
        println!("AccountClients (12 SDK clients): {} bytes each", (after - before) / 20);
        let b: trailkeeper::api::LoggingBaseline = serde_yaml::from_str("apiVersion: trailkeeper.io/v1alpha1\nkind: LoggingBaseline\nmetadata: {name: a, namespace: b}\nspec: {accountId: '111122223333', primaryRegion: us-east-1}\n").unwrap();
        let before = live();
        let mut objs = Vec::new();
        for _ in 0..100 { objs.push(std::sync::Arc::new(b.clone())); }
        let after = live();
        println!("LoggingBaseline without status: {} bytes each", (after - before) / 100);
        per_service(&base);
    });
}

/// One SDK client of each service, built as `AccountIdentity` builds them (its retry partition,
/// the call recorder): what a client cached per account and region would cost.
fn per_service(base: &aws_types::SdkConfig) {
    let partition = aws_smithy_runtime::client::retries::RetryPartition::custom("probe")
        .token_bucket(aws_smithy_runtime::client::retries::TokenBucket::default())
        .build();
    let calls = trailkeeper::aws::CallRecorder::new();
    macro_rules! probe {
        ($sdk:ident) => {{
            let n = 50;
            let before = live();
            let mut keep = Vec::new();
            for _ in 0..n {
                keep.push($sdk::Client::from_conf(
                    $sdk::config::Builder::from(base)
                        .retry_partition(partition.clone())
                        .interceptor(calls.clone())
                        .build(),
                ));
            }
            let after = live();
            println!("{:<24} {:>7} bytes a client", stringify!($sdk), (after - before) / n);
        }};
    }
    probe!(aws_sdk_sts);
    probe!(aws_sdk_kms);
    probe!(aws_sdk_s3);
    probe!(aws_sdk_cloudtrail);
    probe!(aws_sdk_ec2);
    probe!(aws_sdk_cloudwatchlogs);
    probe!(aws_sdk_iam);
    probe!(aws_sdk_ssm);
    probe!(aws_sdk_config);
    probe!(aws_sdk_glue);
    probe!(aws_sdk_athena);
    probe!(aws_sdk_organizations);
    probe!(aws_sdk_eventbridge);
    probe!(aws_sdk_cloudwatch);
    probe!(aws_sdk_sns);
}
