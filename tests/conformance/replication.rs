//! Scenario 2: the archive's replication with Object Lock and KMS (U2, F1, M1, M2), with the
//! replica key's policy, the role's trust and permissions, and the rule trailkeeper writes
//! (`desired::archive::replication`, `replication_role_trust`, `replication_role_policy`,
//! `aws::s3::put_replication`), each pair of buckets an archive spec of its own:
//! - `archive`: a locked source (Governance, 2 days by default) into a locked replica (Governance,
//!   1 day): with the role's kms:Decrypt on the replica key removed, an object FAILs (F1); with
//!   it, the next one is COMPLETED, its replica under the source's retention, not the replica's
//!   default, and encrypted with the replica key (M2); the trust with its ...IfExists conditions
//!   lets S3 assume the role (U2).
//! - `unlocked`: a locked source into a replica without Object Lock: the rule is accepted and the
//!   object FAILs (M1).
//! - `plaintrust`: the same trust without IfExists (StringEquals, ArnLike): whether S3 sends
//!   aws:SourceAccount and aws:SourceArn when it assumes the role (U2).
//!
//! S3 replicates "within seconds", most objects "within 15 minutes" (Replication Time Control's
//! promise, not a bound without it): each object's status is read until it leaves PENDING, for
//! at most the run's wait.

use aws_sdk_s3::types::ObjectLockMode;
use serde_json::{Value, json};
use trailkeeper::api::{LogArchiveSpec, RetentionPolicySpec};
use trailkeeper::desired::archive;

use super::report::{Basis, Checks, Expect, Outcome};
use super::resources::{create_bucket, create_key, encrypt_bucket, pause, step};
use super::target::{Account, Cleanup, TAG, Target};

pub const SCENARIO: &str = "2 replication (Object Lock, KMS)";

/// One source bucket, its replica and role, as one archive spec.
struct Pair {
    spec: LogArchiveSpec,
    source: String,
    replica: String,
    role_name: String,
    role_arn: String,
}

fn pair(target: &Target, source: &str, replica: &str) -> Result<Pair, String> {
    let spec: LogArchiveSpec = serde_json::from_value(json!({
        "accountId": target.archive.id,
        "region": target.region,
        "bucketName": source,
        "replication": {"region": target.replica_region, "bucketName": replica},
    }))
    .map_err(|e| format!("the archive's spec: {e}"))?;
    let role_name = format!("{source}-role");
    Ok(Pair {
        role_arn: format!(
            "arn:{}:iam::{}:role/{role_name}",
            target.archive.partition, target.archive.id
        ),
        spec,
        source: source.to_string(),
        replica: replica.to_string(),
        role_name,
    })
}

/// `policy` with kms:Decrypt taken out of its EncryptReplicas statement (F1's broken role).
fn without_replica_decrypt(mut policy: Value) -> Result<Value, String> {
    let statements = policy["Statement"]
        .as_array_mut()
        .ok_or("a policy without statements")?;
    let statement = statements
        .iter_mut()
        .find(|s| s["Sid"] == "EncryptReplicas")
        .ok_or("the product's replication role policy has no statement EncryptReplicas")?;
    let actions = statement["Action"]
        .as_array_mut()
        .ok_or("EncryptReplicas has no action list")?;
    let before = actions.len();
    actions.retain(|a| a != "kms:Decrypt");
    if actions.len() == before {
        return Err("EncryptReplicas grants no kms:Decrypt".into());
    }
    Ok(policy)
}

/// The trust without IfExists: what it would be if S3 always said on whose behalf it assumes.
fn plain_trust(trust: Value) -> Value {
    let text = trust
        .to_string()
        .replace("StringEqualsIfExists", "StringEquals")
        .replace("ArnLikeIfExists", "ArnLike");
    serde_json::from_str(&text).unwrap_or(trust)
}

async fn create_role(
    target: &Target,
    cleanup: &Cleanup,
    account: &Account,
    pair: &Pair,
    trust: &Value,
    permissions: &Value,
) -> Result<(), String> {
    let iam = account.iam();
    let tag = aws_sdk_iam::types::Tag::builder()
        .key(TAG)
        .value(&target.suffix)
        .build()
        .map_err(|e| e.to_string())?;
    step(
        &format!("iam:CreateRole {}", pair.role_name),
        iam.create_role()
            .role_name(&pair.role_name)
            .assume_role_policy_document(trust.to_string())
            .tags(tag)
            .send()
            .await,
    )?;
    cleanup.role(&iam, &pair.role_name);
    put_role_policy(account, pair, permissions).await
}

async fn put_role_policy(account: &Account, pair: &Pair, permissions: &Value) -> Result<(), String> {
    step(
        &format!("iam:PutRolePolicy {}", pair.role_name),
        account
            .iam()
            .put_role_policy()
            .role_name(&pair.role_name)
            .policy_name(archive::REPLICATION_ROLE_POLICY)
            .policy_document(permissions.to_string())
            .send()
            .await,
    )
    .map(|_| ())
}

/// trailkeeper's rule (`aws::s3::put_replication`): every object, SSE-KMS objects included,
/// into the replica with the replica key, delete markers not replicated.
async fn put_rule(target: &Target, pair: &Pair, replica_key: &str) -> Outcome {
    let clients = target.archive.product_clients(&target.region);
    let rule = trailkeeper::aws::s3::ReplicationRule {
        id: archive::REPLICATION_RULE_ID.to_string(),
        enabled: true,
        destination: format!("arn:{}:s3:::{}", target.archive.partition, pair.replica),
        replica_kms_key: Some(replica_key.to_string()),
        sse_kms_objects: true,
        delete_markers: false,
    };
    match trailkeeper::aws::s3::put_replication(&clients, &pair.source, &pair.role_arn, &rule).await {
        Ok(()) => Outcome::Accepted,
        Err(e) => Outcome::Refused(e.to_string()),
    }
}

async fn put_object(target: &Target, bucket: &str, key: &str) -> Result<(), String> {
    step(
        &format!("s3:PutObject {bucket}/{key}"),
        target
            .archive
            .s3(&target.region)
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type("application/json")
            .body(br#"{"Records":[]}"#.to_vec().into())
            .send()
            .await,
    )
    .map(|_| ())
}

/// The source object's replication status once S3 has acted (COMPLETED, FAILED), or what it is
/// at the bound.
async fn settled(target: &Target, bucket: &str, key: &str) -> Outcome {
    let s3 = target.archive.s3(&target.region);
    let started = std::time::Instant::now();
    loop {
        let status = match s3.head_object().bucket(bucket).key(key).send().await {
            Ok(head) => head.replication_status().map(|s| s.as_str().to_string()),
            Err(e) => return Outcome::Unknown(format!("HeadObject: {}", super::resources::code_of(e))),
        };
        match status.as_deref() {
            Some("PENDING") => {}
            Some(done) => return Outcome::Status(done.to_string()),
            // No status: no rule applied to the object (not yet in effect when it was put).
            None => return Outcome::Status("not replicated (no replication status)".into()),
        }
        if started.elapsed() >= target.wait {
            return Outcome::Unknown(format!("PENDING after {} s", started.elapsed().as_secs()));
        }
        pause(target.poll).await;
    }
}

/// Why S3 failed the object, on the emulator (its replication failure event's reason, which the
/// emulator serves); None on AWS, where the reason is in S3's event notifications, not read here.
async fn failure_reason(target: &Target, bucket: &str, key: &str) -> Option<String> {
    if !target.is_emulator() {
        return None;
    }
    let answer =
        crate::common::moto_api::get(&format!("/moto-api/trailkeeper/replication?bucket={bucket}&key={key}")).await;
    answer["failure"]
        .as_str()
        .map(|r| format!("the emulator's failure reason: {r}"))
}

pub async fn replication(target: &Target, cleanup: &Cleanup, checks: &Checks) -> Result<(), String> {
    let account = &target.archive;
    let (region, replica_region) = (target.region.as_str(), target.replica_region.as_str());
    let archive_pair = pair(target, &target.name("src"), &target.name("replica"))?;
    let unlocked_pair = pair(target, &target.name("src-unlocked"), &target.name("replica-unlocked"))?;
    let plain_pair = pair(target, &target.name("src-plaintrust"), &target.name("replica"))?;
    let retention = RetentionPolicySpec::default();

    // The archive key (no member: the replication role reaches it through IAM) and the replica
    // key, with trailkeeper's policies.
    let source_key_policy = archive::archive(&archive_pair.spec, &retention, &[])?
        .account
        .key
        .policy;
    let source_key = create_key(target, cleanup, account, region, &source_key_policy, "archive key").await?;
    let replica = archive::replication(&archive_pair.spec, &retention).ok_or("no replication in the spec")?;
    let replica_key = create_key(
        target,
        cleanup,
        account,
        replica_region,
        &replica.key.policy,
        "replica key",
    )
    .await?;

    for (bucket, days) in [
        (&archive_pair.source, 2),
        (&unlocked_pair.source, 1),
        (&plain_pair.source, 1),
    ] {
        create_bucket(target, cleanup, account, region, bucket, Some(days)).await?;
        encrypt_bucket(account, region, bucket, &source_key, true).await?;
    }
    create_bucket(target, cleanup, account, replica_region, &archive_pair.replica, Some(1)).await?;
    encrypt_bucket(account, replica_region, &archive_pair.replica, &replica_key, true).await?;
    create_bucket(target, cleanup, account, replica_region, &unlocked_pair.replica, None).await?;
    encrypt_bucket(account, replica_region, &unlocked_pair.replica, &replica_key, true).await?;

    let permissions = |p: &Pair| archive::replication_role_policy(&p.spec, &source_key, &replica_key);
    let trust = |p: &Pair| archive::replication_role_trust(&p.spec);
    let broken = without_replica_decrypt(permissions(&archive_pair))?;
    create_role(target, cleanup, account, &archive_pair, &trust(&archive_pair), &broken).await?;
    create_role(
        target,
        cleanup,
        account,
        &unlocked_pair,
        &trust(&unlocked_pair),
        &permissions(&unlocked_pair),
    )
    .await?;
    create_role(
        target,
        cleanup,
        account,
        &plain_pair,
        &plain_trust(trust(&plain_pair)),
        &permissions(&plain_pair),
    )
    .await?;
    // IAM is eventually consistent: a new role may not be assumable at once.
    pause(target.settle).await;

    let rule = put_rule(target, &archive_pair, &replica_key).await;
    if rule != Outcome::Accepted {
        return Err(format!("s3:PutBucketReplication {}: {rule}", archive_pair.source));
    }
    checks.record(
        SCENARIO,
        "PutBucketReplication from a locked bucket into an unlocked one",
        Expect::Accepted,
        Basis::Documented,
        put_rule(target, &unlocked_pair, &replica_key).await,
    );
    let plain_rule = put_rule(target, &plain_pair, &replica_key).await;
    if plain_rule != Outcome::Accepted {
        return Err(format!("s3:PutBucketReplication {}: {plain_rule}", plain_pair.source));
    }
    // "It can take a while" for a new configuration to apply to new objects.
    pause(target.settle).await;

    put_object(target, &archive_pair.source, "no-replica-decrypt.json").await?;
    put_object(target, &unlocked_pair.source, "unlocked.json").await?;
    put_object(target, &plain_pair.source, "plain-trust.json").await?;
    let (no_decrypt, unlocked, plain) = tokio::join!(
        settled(target, &archive_pair.source, "no-replica-decrypt.json"),
        settled(target, &unlocked_pair.source, "unlocked.json"),
        settled(target, &plain_pair.source, "plain-trust.json"),
    );
    checks.record_with(
        SCENARIO,
        "an object, the role without kms:Decrypt on the replica key (Bucket Key)",
        Expect::Status("FAILED"),
        Basis::Documented,
        no_decrypt,
        failure_reason(target, &archive_pair.source, "no-replica-decrypt.json").await,
    );
    checks.record_with(
        SCENARIO,
        "an object into the unlocked replica",
        Expect::Status("FAILED"),
        Basis::Documented,
        unlocked,
        failure_reason(target, &unlocked_pair.source, "unlocked.json").await,
    );
    checks.record_with(
        SCENARIO,
        "an object, the trust without IfExists (plain StringEquals/ArnLike)",
        Expect::Status("FAILED"),
        Basis::Reading("U2"),
        plain,
        failure_reason(target, &plain_pair.source, "plain-trust.json").await,
    );

    put_role_policy(account, &archive_pair, &permissions(&archive_pair)).await?;
    pause(target.settle).await;
    put_object(target, &archive_pair.source, "replicated.json").await?;
    let replicated = settled(target, &archive_pair.source, "replicated.json").await;
    let completed = replicated == Outcome::Status("COMPLETED".into());
    checks.record(
        SCENARIO,
        "an object, trailkeeper's role (trust with IfExists, kms:Decrypt on the replica key)",
        Expect::Status("COMPLETED"),
        Basis::Documented,
        replicated,
    );
    if completed {
        replica_checks(target, checks, &archive_pair, &replica_key).await;
    }
    Ok(())
}

/// The replica keeps the source object's retention (mode and date), not the replica bucket's
/// default, and is encrypted with the replica key.
async fn replica_checks(target: &Target, checks: &Checks, pair: &Pair, replica_key: &str) {
    let key = "replicated.json";
    let source = target
        .archive
        .s3(&target.region)
        .head_object()
        .bucket(&pair.source)
        .key(key)
        .send()
        .await;
    let replica = target
        .archive
        .s3(&target.replica_region)
        .head_object()
        .bucket(&pair.replica)
        .key(key)
        .send()
        .await;
    let (source, replica) = match (source, replica) {
        (Ok(s), Ok(r)) => (s, r),
        (Err(e), _) | (_, Err(e)) => {
            checks.record(
                SCENARIO,
                "the replica's retention",
                Expect::Status("the source's"),
                Basis::Documented,
                Outcome::Unknown(format!("HeadObject: {}", super::resources::code_of(e))),
            );
            return;
        }
    };
    let lock = |mode: Option<&ObjectLockMode>, until: Option<&aws_smithy_types::DateTime>| {
        format!(
            "{} until {}",
            mode.map(|m| m.as_str()).unwrap_or("none"),
            until.map(|d| d.secs().to_string()).unwrap_or_else(|| "-".into())
        )
    };
    let source_lock = lock(source.object_lock_mode(), source.object_lock_retain_until_date());
    let replica_lock = lock(replica.object_lock_mode(), replica.object_lock_retain_until_date());
    checks.record_with(
        SCENARIO,
        "the replica's retention (source: 2 days, replica's default: 1 day)",
        Expect::Status("the source's"),
        Basis::Documented,
        Outcome::Status(if source_lock == replica_lock && source.object_lock_mode().is_some() {
            "the source's".into()
        } else {
            format!("{replica_lock}, the source's {source_lock}")
        }),
        Some(format!("source {source_lock}; replica {replica_lock}")),
    );
    let encrypted_with = replica.ssekms_key_id().unwrap_or("none").to_string();
    checks.record(
        SCENARIO,
        "the replica's key",
        Expect::Status("the replica key"),
        Basis::Documented,
        Outcome::Status(if encrypted_with == replica_key {
            "the replica key".into()
        } else {
            encrypted_with
        }),
    );
}
