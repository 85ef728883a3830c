//! Scenarios 1 and 5: a member account's CreateTrail into the LogArchive account's bucket and
//! key, with the bucket and key policies trailkeeper writes for that one member
//! (`trailkeeper::desired::archive::archive`), then each with statements removed or changed.
//!
//! Each variant gets a bucket, a key and a trail name of its own (so that variants are
//! independent, and a new key's policy is exactly the variant's): at most two variants run at a
//! time, and a trail that is accepted and not watched for delivery is deleted at once (CloudTrail
//! allows five trails per region).

use futures::StreamExt;
use serde_json::{Value, json};
use trailkeeper::api::{LogArchiveSpec, RetentionPolicySpec};
use trailkeeper::desired::archive::{self, Member};

use super::report::{Basis, Checks, Expect, Outcome};
use super::resources::{create_bucket, create_key, encrypt_bucket, pause, put_bucket_policy, without};
use super::target::{Cleanup, TAG, Target};

pub const SCENARIO_TRAIL: &str = "1 CreateTrail into another account";
pub const SCENARIO_VARIABLE: &str = "5 ${aws:SourceAccount} in a Resource";

/// How one variant differs from trailkeeper's policies.
struct Variant {
    /// In the names of its bucket, key and trail.
    tag: &'static str,
    check: &'static str,
    expect: Expect,
    basis: Basis,
    /// An S3 Bucket Key on the bucket (trailkeeper's archive has one).
    bucket_key: bool,
    /// Statements removed (`{member}` stands for the member's account id).
    bucket_without: &'static [&'static str],
    key_without: &'static [&'static str],
    /// The member's own path `AWSLogs/{member}/*` in the write statement's Resource, rewritten.
    path: Path,
    /// Once accepted, logging is started and a delivery awaited.
    deliver: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    AsWritten,
    /// `AWSLogs/${aws:SourceAccount}/*`, as the Organization admission writes it.
    SourceAccountVariable,
    /// The archive account's path: not the trail's.
    ArchiveAccount,
}

const INSUFFICIENT_BUCKET_POLICY: &str = "InsufficientS3BucketPolicyException";
const INSUFFICIENT_KEY_POLICY: &str = "InsufficientEncryptionPolicyException";

const NOTHING: &[&str] = &[];
const TRAIL_VARIANTS: &[Variant] = &[
    Variant {
        tag: "full",
        check: "trailkeeper's bucket and key policies for the member (S3 Bucket Key on)",
        expect: Expect::Accepted,
        basis: Basis::Documented,
        bucket_key: true,
        bucket_without: NOTHING,
        key_without: NOTHING,
        path: Path::AsWritten,
        deliver: true,
    },
    Variant {
        tag: "nobucket",
        check: "without the bucket policy's CloudTrail statements",
        expect: Expect::Refused(INSUFFICIENT_BUCKET_POLICY),
        basis: Basis::Documented,
        bucket_key: true,
        bucket_without: &["CloudTrailAclCheck", "CloudTrailWrite{member}"],
        key_without: NOTHING,
        path: Path::AsWritten,
        deliver: false,
    },
    Variant {
        tag: "noencrypt",
        check: "without CloudTrail's kms:GenerateDataKey* (CloudTrailEncryptLogs)",
        expect: Expect::Refused(INSUFFICIENT_KEY_POLICY),
        basis: Basis::Documented,
        bucket_key: true,
        bucket_without: NOTHING,
        key_without: &["CloudTrailEncryptLogs"],
        path: Path::AsWritten,
        deliver: false,
    },
    Variant {
        tag: "nodescribe",
        check: "without CloudTrail's kms:DescribeKey (CloudTrailDescribeKey)",
        expect: Expect::Refused(INSUFFICIENT_KEY_POLICY),
        basis: Basis::Reading("M4"),
        bucket_key: true,
        bucket_without: NOTHING,
        key_without: &["CloudTrailDescribeKey"],
        path: Path::AsWritten,
        deliver: false,
    },
    Variant {
        tag: "noctdecrypt",
        check: "Bucket Key, without CloudTrail's kms:Decrypt (CloudTrailDecryptForBucketKey)",
        expect: Expect::Refused(INSUFFICIENT_KEY_POLICY),
        basis: Basis::Reading("U1"),
        bucket_key: true,
        bucket_without: NOTHING,
        key_without: &["CloudTrailDecryptForBucketKey"],
        path: Path::AsWritten,
        deliver: false,
    },
    Variant {
        tag: "nocallerdecrypt",
        check: "Bucket Key, without the caller's kms:Decrypt (Member<account>CreatesTrail)",
        expect: Expect::Refused(INSUFFICIENT_KEY_POLICY),
        basis: Basis::Reading("U1"),
        bucket_key: true,
        bucket_without: NOTHING,
        key_without: &["Member{member}CreatesTrail"],
        path: Path::AsWritten,
        deliver: false,
    },
    Variant {
        tag: "nodecrypt",
        check: "Bucket Key, without either kms:Decrypt",
        expect: Expect::Refused(INSUFFICIENT_KEY_POLICY),
        basis: Basis::Documented,
        bucket_key: true,
        bucket_without: NOTHING,
        key_without: &["CloudTrailDecryptForBucketKey", "Member{member}CreatesTrail"],
        path: Path::AsWritten,
        deliver: false,
    },
    Variant {
        tag: "nobucketkey",
        check: "no Bucket Key, without either kms:Decrypt",
        expect: Expect::Accepted,
        basis: Basis::Documented,
        bucket_key: false,
        bucket_without: NOTHING,
        key_without: &["CloudTrailDecryptForBucketKey", "Member{member}CreatesTrail"],
        path: Path::AsWritten,
        deliver: false,
    },
];

const VARIABLE_VARIANTS: &[Variant] = &[
    Variant {
        tag: "variable",
        check: "CreateTrail: the member's path written AWSLogs/${aws:SourceAccount}/*",
        expect: Expect::Accepted,
        basis: Basis::Reading("the Organization admission"),
        bucket_key: true,
        bucket_without: NOTHING,
        key_without: NOTHING,
        path: Path::SourceAccountVariable,
        deliver: true,
    },
    Variant {
        tag: "otherpath",
        check: "CreateTrail: the write statement on the archive account's path, not the member's",
        expect: Expect::Refused(INSUFFICIENT_BUCKET_POLICY),
        basis: Basis::Documented,
        bucket_key: true,
        bucket_without: NOTHING,
        key_without: NOTHING,
        path: Path::ArchiveAccount,
        deliver: false,
    },
];

/// Scenario 1 (U1, M4).
pub async fn cross_account_trail(target: &Target, cleanup: &Cleanup, checks: &Checks) -> Result<(), String> {
    run_variants(target, cleanup, checks, SCENARIO_TRAIL, TRAIL_VARIANTS).await
}

/// Scenario 5: S3 takes a policy variable in a Resource and CloudTrail honours it.
pub async fn policy_variables(target: &Target, cleanup: &Cleanup, checks: &Checks) -> Result<(), String> {
    run_variants(target, cleanup, checks, SCENARIO_VARIABLE, VARIABLE_VARIANTS).await
}

async fn run_variants(
    target: &Target,
    cleanup: &Cleanup,
    checks: &Checks,
    scenario: &'static str,
    variants: &[Variant],
) -> Result<(), String> {
    target.member()?;
    let results: Vec<Result<(), String>> = futures::stream::iter(variants)
        .map(|v| run_variant(target, cleanup, checks, scenario, v))
        .buffer_unordered(2)
        .collect()
        .await;
    results.into_iter().collect()
}

/// The archive's policies as trailkeeper writes them for one member, its trail `trail_name`
/// created by the member's caller: (bucket policy, key policy, the trails' S3 key prefix).
fn product_policies(target: &Target, bucket: &str, trail_name: &str) -> Result<(Value, Value, String), String> {
    let member = target.member()?;
    let spec: LogArchiveSpec = serde_json::from_value(json!({
        "accountId": target.archive.id,
        "region": target.region,
        "bucketName": bucket,
    }))
    .map_err(|e| format!("the archive's spec: {e}"))?;
    let trail = Member {
        account_id: member.id.clone(),
        trail_arn: format!(
            "arn:{}:cloudtrail:{}:{}:trail/{trail_name}",
            member.partition, target.region, member.id
        ),
        organization: false,
        role_arn: Some(member.principal.clone()),
    };
    let desired = archive::archive(&spec, &RetentionPolicySpec::default(), &[trail])?;
    let bucket_policy = desired
        .account
        .storage
        .map(|s| s.trail_bucket.policy)
        .ok_or("the archive has no bucket")?;
    Ok((
        bucket_policy,
        desired.account.key.policy,
        spec.key_prefix.trim_end_matches('/').to_string(),
    ))
}

fn sids(names: &[&str], member: &str) -> Vec<String> {
    names.iter().map(|n| n.replace("{member}", member)).collect()
}

/// The write statement's `AWSLogs/{member}/*` as `path` says.
fn with_path(policy: Value, member: &str, archive: &str, path: Path) -> Result<Value, String> {
    let replacement = match path {
        Path::AsWritten => return Ok(policy),
        Path::SourceAccountVariable => "${aws:SourceAccount}",
        Path::ArchiveAccount => archive,
    };
    let text = policy.to_string();
    let own = format!("/AWSLogs/{member}/*\"");
    if !text.contains(&own) {
        return Err(format!("the product's bucket policy has no path ending {own}"));
    }
    serde_json::from_str(&text.replace(&own, &format!("/AWSLogs/{replacement}/*\""))).map_err(|e| e.to_string())
}

async fn run_variant(
    target: &Target,
    cleanup: &Cleanup,
    checks: &Checks,
    scenario: &'static str,
    variant: &Variant,
) -> Result<(), String> {
    let member = target.member()?;
    let archive = &target.archive;
    let region = target.region.as_str();
    let name = target.name(variant.tag);
    let (bucket_policy, key_policy, prefix) = product_policies(target, &name, &name)?;
    let bucket_policy = with_path(
        without(bucket_policy, &sids(variant.bucket_without, &member.id))?,
        &member.id,
        &archive.id,
        variant.path,
    )?;
    let key_policy = without(key_policy, &sids(variant.key_without, &member.id))?;

    let key = create_key(target, cleanup, archive, region, &key_policy, variant.tag).await?;
    create_bucket(target, cleanup, archive, region, &name, None).await?;
    encrypt_bucket(archive, region, &name, &key, variant.bucket_key).await?;
    let put = put_bucket_policy(archive, region, &name, &bucket_policy).await;
    if variant.path == Path::SourceAccountVariable {
        checks.record(
            scenario,
            "PutBucketPolicy with AWSLogs/${aws:SourceAccount}/* in a Resource",
            Expect::Accepted,
            variant.basis,
            put.clone(),
        );
        if put != Outcome::Accepted {
            return Ok(());
        }
    }
    if put != Outcome::Accepted {
        return Err(format!("s3:PutBucketPolicy {name}: {put}"));
    }

    let cloudtrail = member.cloudtrail(region);
    let created = create_trail(target, &cloudtrail, &name, &prefix, &key).await;
    if created == Outcome::Accepted {
        cleanup.trail(&cloudtrail, &name);
    }
    checks.record(
        scenario,
        variant.check,
        variant.expect.clone(),
        variant.basis,
        created.clone(),
    );
    if created != Outcome::Accepted {
        return Ok(());
    }
    if variant.deliver {
        let (delivered, note) = delivery(target, &cloudtrail, &name).await;
        checks.record_with(
            scenario,
            format!("{}: CloudTrail delivers (GetTrailStatus)", variant.tag),
            Expect::Status("delivered"),
            variant.basis,
            delivered,
            note,
        );
    }
    // Deleted now (not at the end of the run): a region holds five trails.
    let _ = cloudtrail.stop_logging().name(&name).send().await;
    let _ = cloudtrail.delete_trail().name(&name).send().await;
    Ok(())
}

/// The member's CreateTrail, asked again while refused for the policies within the propagation
/// window (a new key's or bucket's policy may not be in effect at once); any answer then counts.
async fn create_trail(
    target: &Target,
    cloudtrail: &aws_sdk_cloudtrail::Client,
    name: &str,
    prefix: &str,
    key: &str,
) -> Outcome {
    let started = std::time::Instant::now();
    loop {
        let tag = aws_sdk_cloudtrail::types::Tag::builder()
            .key(TAG)
            .value(&target.suffix)
            .build();
        let sent = cloudtrail
            .create_trail()
            .name(name)
            .s3_bucket_name(name)
            .s3_key_prefix(prefix)
            .kms_key_id(key)
            .set_tags_list(tag.ok().map(|t| vec![t]))
            .send()
            .await;
        let answer = super::resources::outcome(sent);
        let propagating = matches!(&answer, Outcome::Refused(code)
            if code == INSUFFICIENT_BUCKET_POLICY || code == INSUFFICIENT_KEY_POLICY
                || code == "KmsKeyNotFoundException" || code == "InvalidKmsKeyIdException");
        if !propagating || started.elapsed() >= target.propagation {
            return answer;
        }
        pause(target.poll).await;
    }
}

/// Starts logging and reads GetTrailStatus until CloudTrail reports a delivery or a delivery
/// error, within the wait bound. The emulator writes no log files: there, no error is the
/// delivery.
async fn delivery(target: &Target, cloudtrail: &aws_sdk_cloudtrail::Client, name: &str) -> (Outcome, Option<String>) {
    if let Err(e) = cloudtrail.start_logging().name(name).send().await {
        return (
            Outcome::Unknown(format!("StartLogging: {}", super::resources::code_of(e))),
            None,
        );
    }
    let started = std::time::Instant::now();
    loop {
        match cloudtrail.get_trail_status().name(name).send().await {
            Ok(status) => {
                if let Some(error) = status.latest_delivery_error() {
                    return (Outcome::Status(format!("delivery error {error}")), None);
                }
                if status.latest_delivery_time().is_some() {
                    let waited = format!("first delivery after about {} s", started.elapsed().as_secs());
                    return (Outcome::Status("delivered".into()), Some(waited));
                }
                if !target.writes_logs {
                    return (
                        Outcome::Status("delivered".into()),
                        Some("the emulator judges the delivery (no LatestDeliveryError) and writes no log file".into()),
                    );
                }
            }
            Err(e) => {
                return (
                    Outcome::Unknown(format!("GetTrailStatus: {}", super::resources::code_of(e))),
                    None,
                );
            }
        }
        if started.elapsed() >= target.wait {
            return (
                Outcome::Unknown(format!("no delivery within {} minutes", target.wait.as_secs() / 60)),
                None,
            );
        }
        pause(target.poll.max(std::time::Duration::from_secs(1))).await;
    }
}
