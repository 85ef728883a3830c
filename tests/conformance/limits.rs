//! Scenario 4: what S3 and KMS refuse of a policy when it is written (F5, M3): a bucket policy
//! over 20 KB, a key policy over 32 KB, a principal that does not exist. The documents are
//! trailkeeper's archive policies (`desired::archive::bucket_policy`, `key_policy`): as many
//! members as fit under each limit (accepted), then one more (refused); an administrator or a
//! reader that does not exist (refused), then the caller, who does (accepted).

use serde_json::{Value, json};
use trailkeeper::api::{Admission, LogArchiveSpec};
use trailkeeper::desired::archive::{self, BUCKET_POLICY_LIMIT, KEY_POLICY_LIMIT, Member};

use super::report::{Basis, Checks, Expect};
use super::resources::{create_bucket, create_key, outcome, put_bucket_policy, size};
use super::target::{Cleanup, Target};

pub const SCENARIO: &str = "4 policy limits and principals";

/// Whether the emulator on this branch enforces policy limits and principals
/// (scripts/emulator/trailkeeper_policies.py, installed by trailkeeper_strict).
pub fn emulator_models_it() -> bool {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts/emulator/trailkeeper_policies.py")
        .is_file()
}

fn spec(
    target: &Target,
    bucket: &str,
    administrators: &[String],
    reader: Option<&str>,
) -> Result<LogArchiveSpec, String> {
    let readers: Vec<Value> = reader
        .map(|r| json!({"principal": r, "accounts": ["300000000001"]}))
        .into_iter()
        .collect();
    serde_json::from_value(json!({
        "accountId": target.archive.id,
        "region": target.region,
        "bucketName": bucket,
        "administrators": administrators,
        "readers": readers,
    }))
    .map_err(|e| format!("the archive's spec: {e}"))
}

/// `n` members of made-up accounts, each with a trail and a role (named by condition only).
fn members(target: &Target, n: usize) -> Vec<Member> {
    let part = &target.archive.partition;
    (0..n)
        .map(|i| {
            let account = format!("{:012}", 300_000_000_000u64 + i as u64);
            Member {
                trail_arn: format!("arn:{part}:cloudtrail:{}:{account}:trail/trailkeeper", target.region),
                role_arn: Some(format!("arn:{part}:iam::{account}:role/trailkeeper")),
                organization: false,
                account_id: account,
            }
        })
        .collect()
}

/// A policy of `members` members.
struct Measured {
    members: usize,
    policy: Value,
}

/// The largest policy `build(n)` at most `limit` bytes and the smallest over it.
fn around_the_limit(limit: usize, build: impl Fn(usize) -> Value) -> Result<(Measured, Measured), String> {
    let mut n = 1;
    while size(&build(n)) <= limit {
        n += 1;
        if n > 10_000 {
            return Err(format!("no policy over {limit} bytes"));
        }
    }
    let measured = |members| Measured {
        members,
        policy: build(members),
    };
    Ok((measured(n - 1), measured(n)))
}

pub async fn limits(target: &Target, cleanup: &Cleanup, checks: &Checks) -> Result<(), String> {
    let account = &target.archive;
    let region = target.region.as_str();
    let bucket = target.name("limits");
    create_bucket(target, cleanup, account, region, &bucket, None).await?;

    // S3: 20 KB.
    let plain = spec(target, &bucket, &[], None)?;
    let (
        Measured {
            members: fit,
            policy: under,
        },
        Measured {
            members: over_n,
            policy: over,
        },
    ) = around_the_limit(BUCKET_POLICY_LIMIT, |n| {
        archive::bucket_policy(&plain, &members(target, n), Admission::Trails)
    })?;
    // The figures go to the notes: a check's name pairs it with the other target's.
    checks.record_with(
        SCENARIO,
        "PutBucketPolicy at most 20,480 bytes (as many members as fit)",
        Expect::Accepted,
        Basis::Documented,
        put_bucket_policy(account, region, &bucket, &under).await,
        Some(format!("{} bytes, {fit} members", size(&under))),
    );
    checks.record_with(
        SCENARIO,
        "PutBucketPolicy over 20,480 bytes (one member more)",
        Expect::RefusedAny,
        Basis::Documented,
        put_bucket_policy(account, region, &bucket, &over).await,
        Some(format!("{} bytes, {over_n} members", size(&over))),
    );

    // KMS: 32 KB, on one key created at the limit.
    let baseline = archive::as_baseline(&plain);
    let (
        Measured {
            members: fit,
            policy: under,
        },
        Measured {
            members: over_n,
            policy: over,
        },
    ) = around_the_limit(KEY_POLICY_LIMIT, |n| {
        archive::key_policy(&plain, &baseline, &members(target, n), Admission::Trails)
    })?;
    let kms = account.kms(region);
    let tag = aws_sdk_kms::types::Tag::builder()
        .tag_key(super::target::TAG)
        .tag_value(&target.suffix)
        .build()
        .map_err(|e| e.to_string())?;
    let created = kms.create_key().policy(under.to_string()).tags(tag).send().await;
    let key = created
        .as_ref()
        .ok()
        .and_then(|c| c.key_metadata())
        .and_then(|m| m.arn())
        .map(str::to_string);
    if let Some(arn) = &key {
        cleanup.key(&kms, arn);
    }
    checks.record_with(
        SCENARIO,
        "CreateKey with a key policy at most 32,768 bytes (as many members as fit)",
        Expect::Accepted,
        Basis::Documented,
        outcome(created),
        Some(format!("{} bytes, {fit} members", size(&under))),
    );
    let key = match key {
        Some(k) => k,
        None => {
            create_key(
                target,
                cleanup,
                account,
                region,
                &archive::key_policy(&plain, &baseline, &[], Admission::Trails),
                "limits",
            )
            .await?
        }
    };
    let put_key_policy = |policy: Value| {
        let (kms, key) = (kms.clone(), key.clone());
        async move {
            outcome(
                kms.put_key_policy()
                    .key_id(key)
                    .policy_name("default")
                    .policy(policy.to_string())
                    .send()
                    .await,
            )
        }
    };
    let over_note = Some(format!("{} bytes, {over_n} members", size(&over)));
    checks.record_with(
        SCENARIO,
        "PutKeyPolicy over 32,768 bytes (one member more)",
        // KMS lists LimitExceededException and MalformedPolicyDocumentException for PutKeyPolicy
        // without saying which a size gets: any refusal holds, the table shows the code.
        Expect::RefusedAny,
        Basis::Documented,
        put_key_policy(over).await,
        over_note,
    );

    // Principals named outright must exist: an administrator in the key policy, a reader in the
    // bucket policy.
    let missing = format!(
        "arn:{}:iam::{}:role/{}",
        account.partition,
        account.id,
        target.name("missing")
    );
    let with_admin = |admin: &str| -> Result<Value, String> {
        let s = spec(target, &bucket, &[admin.to_string()], None)?;
        Ok(archive::key_policy(
            &s,
            &archive::as_baseline(&s),
            &[],
            Admission::Trails,
        ))
    };
    checks.record(
        SCENARIO,
        "PutKeyPolicy naming an administrator role that does not exist",
        Expect::Refused("MalformedPolicyDocumentException"),
        Basis::Documented,
        put_key_policy(with_admin(&missing)?).await,
    );
    checks.record(
        SCENARIO,
        "PutKeyPolicy naming the caller as administrator",
        Expect::Accepted,
        Basis::Documented,
        put_key_policy(with_admin(&account.principal)?).await,
    );
    let with_reader = |reader: &str| -> Result<Value, String> {
        let s = spec(target, &bucket, &[], Some(reader))?;
        Ok(archive::bucket_policy(&s, &members(target, 1), Admission::Trails))
    };
    checks.record(
        SCENARIO,
        "PutBucketPolicy naming a reader role that does not exist",
        Expect::Refused("MalformedPolicy"),
        Basis::Documented,
        put_bucket_policy(account, region, &bucket, &with_reader(&missing)?).await,
    );
    checks.record(
        SCENARIO,
        "PutBucketPolicy naming the caller as reader",
        Expect::Accepted,
        Basis::Documented,
        put_bucket_policy(account, region, &bucket, &with_reader(&account.principal)?).await,
    );
    Ok(())
}
