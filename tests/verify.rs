//! `trailkeeper verify` against a digest chain written as CloudTrail writes one (the emulator
//! makes none): a valid chain of 48 hourly digests passes; each kind of tampering is found and
//! named.

mod common;

use common::chain::{self, Chain};
use common::*;
use trailkeeper::aws::{AccountClients, CallRecorder};
use trailkeeper::engine::verify::{self, DigestFile, LogLocation, Verdict, VerifyReport, sha256_hex, signing_string};

const HOUR: i64 = 3600;

struct Setup {
    aws: Inspector,
    clients: AccountClients,
    location: LogLocation,
    chain: Chain,
    start: i64,
    end: i64,
}

/// A bucket of a fresh account holding `hours` hourly digests, 3 log files each.
async fn setup(hours: i64, organization: Option<&str>) -> Setup {
    let account = new_account();
    let aws = inspector(&account).await;
    let bucket = format!("verify-{account}");
    aws.s3.create_bucket().bucket(&bucket).send().await.unwrap();
    let now = now_secs();
    let end = now - now % HOUR - HOUR;
    let location = LogLocation {
        bucket: bucket.clone(),
        prefix: Some("AWS/CloudTrail".into()),
        organization_id: organization.map(str::to_string),
        account: account.clone(),
    };
    let root = match organization {
        Some(o) => format!("AWS/CloudTrail/AWSLogs/{o}/{account}/"),
        None => format!("AWS/CloudTrail/AWSLogs/{account}/"),
    };
    let chain = chain::write_chain(
        &aws,
        chain::ChainSpec {
            bucket: &bucket,
            root: &root,
            account: &account,
            region: REGION,
            end,
            hours,
            files_per_digest: 3,
        },
    )
    .await;
    let spec = spec(&account);
    let clients = AccountClients::new(
        &base_config().await,
        REGION,
        spec.credentials.as_ref(),
        CallRecorder::new(),
    );
    Setup {
        aws,
        clients,
        location,
        chain,
        start: end - hours * HOUR,
        end,
    }
}

async fn verified(s: &Setup) -> VerifyReport {
    verify::verify(&s.clients, &s.location, s.start, s.end).await.unwrap()
}

fn verdicts(report: &VerifyReport) -> Vec<(Verdict, String)> {
    report
        .problems
        .iter()
        .map(|p| (p.verdict.clone(), p.key.clone()))
        .collect()
}

async fn read_digest(s: &Setup, key: &str) -> DigestFile {
    let object = s
        .aws
        .s3
        .get_object()
        .bucket(&s.location.bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let bytes = object.body.collect().await.unwrap().into_bytes();
    serde_json::from_slice(&verify::gunzip(&bytes).unwrap()).unwrap()
}

#[tokio::test]
async fn a_valid_chain_of_48_hourly_digests_over_two_days_passes() {
    let s = setup(48, None).await;
    let report = verified(&s).await;
    assert!(report.valid(), "{:?}", report.problems);
    assert_eq!((report.digests, report.log_files), (48, 144));
}

#[tokio::test]
async fn an_organization_trails_layout_is_verified_too() {
    let s = setup(3, Some("o-abcd123456")).await;
    let report = verified(&s).await;
    assert!(report.valid(), "{:?}", report.problems);
    assert_eq!(report.digests, 3);
}

#[tokio::test]
async fn a_changed_log_file_is_modified_and_a_removed_one_deleted() {
    let s = setup(6, None).await;
    let changed = &s.chain.log_files[4];
    s.aws
        .s3
        .put_object()
        .bucket(&s.location.bucket)
        .key(changed)
        .body(chain::gzip(br#"{"Records":[]}"#).into())
        .send()
        .await
        .unwrap();
    let removed = &s.chain.log_files[9];
    s.aws
        .s3
        .delete_object()
        .bucket(&s.location.bucket)
        .key(removed)
        .send()
        .await
        .unwrap();
    let report = verified(&s).await;
    assert!(!report.valid());
    let mut expected = vec![
        (Verdict::Modified, changed.clone()),
        (Verdict::Deleted, removed.clone()),
    ];
    expected.sort_by(|a, b| a.1.cmp(&b.1));
    assert_eq!(verdicts(&report), expected);
}

#[tokio::test]
async fn a_deleted_digest_is_missing_from_the_chain() {
    let s = setup(6, None).await;
    let gone = &s.chain.digests[2];
    s.aws
        .s3
        .delete_object()
        .bucket(&s.location.bucket)
        .key(gone)
        .send()
        .await
        .unwrap();
    let report = verified(&s).await;
    assert_eq!(verdicts(&report), [(Verdict::MissingDigest, gone.clone())]);
}

#[tokio::test]
async fn a_digest_signed_by_another_key_is_invalid() {
    let s = setup(6, None).await;
    let forged = &s.chain.digests[3];
    let digest = read_digest(&s, forged).await;
    let content = serde_json::to_vec(&digest).unwrap();
    let signature = chain::sign(
        &chain::fixture("other-test-key.pk8"),
        signing_string(&digest, &sha256_hex(&content)).as_bytes(),
    );
    chain::put_digest(&s.aws, &s.location.bucket, forged, &content, &signature).await;
    let report = verified(&s).await;
    assert!(
        verdicts(&report).contains(&(Verdict::InvalidSignature, forged.clone())),
        "{:?}",
        report.problems
    );
}

#[tokio::test]
async fn a_digest_that_does_not_name_its_predecessor_breaks_the_chain() {
    let s = setup(6, None).await;
    let broken = &s.chain.digests[4];
    let mut digest = read_digest(&s, broken).await;
    // Validly signed (with CloudTrail's key), but naming another predecessor signature: a digest
    // put in place of the real one.
    digest.previous_digest_signature = Some("00".repeat(256));
    let content = serde_json::to_vec(&digest).unwrap();
    let signature = chain::sign(
        &chain::fixture("cloudtrail-test-key.pk8"),
        signing_string(&digest, &sha256_hex(&content)).as_bytes(),
    );
    chain::put_digest(&s.aws, &s.location.bucket, broken, &content, &signature).await;
    let report = verified(&s).await;
    let found = verdicts(&report);
    assert!(found.contains(&(Verdict::BrokenChain, broken.clone())), "{found:?}");
    // Its successor now names a predecessor whose signature changed: broken too.
    assert!(
        found.contains(&(Verdict::BrokenChain, s.chain.digests[5].clone())),
        "{found:?}"
    );
}
