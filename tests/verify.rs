//! `trailkeeper verify` against a digest chain written as CloudTrail writes one (the emulator
//! makes none): a valid chain of 48 hourly digests passes; each kind of tampering is found and
//! named. Each case is also run through awscli's `aws cloudtrail validate-logs` (AWS's reference
//! implementation, `awscli/customizations/cloudtrail/validation.py`) against the same objects,
//! and the files it reports INVALID must be the ones trailkeeper reports.

mod common;

use common::chain::{self, Chain};
use common::*;
use trailkeeper::aws::{AccountClients, CallRecorder};
use trailkeeper::desired::athena::TrailLocation;
use trailkeeper::engine::verify::{self, DigestFile, LogLocation, Verdict, VerifyReport, sha256_hex, signing_string};

const HOUR: i64 = 3600;
const PREFIX: &str = "AWS/CloudTrail";

struct Setup {
    account: String,
    /// Clients of the bucket's region (writes and reads of the objects).
    aws: Inspector,
    clients: AccountClients,
    location: LogLocation,
    root: String,
    chain: Chain,
    start: i64,
    end: i64,
}

/// A bucket of a fresh account holding `hours` hourly digests, 3 log files each.
async fn setup(hours: i64, organization: Option<&str>) -> Setup {
    setup_in(hours, organization, REGION).await
}

/// `setup` with the bucket in `bucket_region`; trailkeeper's clients stay in us-east-1.
async fn setup_in(hours: i64, organization: Option<&str>, bucket_region: &str) -> Setup {
    let account = new_account();
    let aws = inspector_in(&account, bucket_region).await;
    let bucket = format!("verify-{account}");
    let mut create = aws.s3.create_bucket().bucket(&bucket);
    if bucket_region != "us-east-1" {
        create = create.create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(bucket_region))
                .build(),
        );
    }
    create.send().await.unwrap();
    let now = now_secs();
    let end = now - now % HOUR - HOUR;
    let location = LogLocation {
        trail: TrailLocation {
            bucket: bucket.clone(),
            key_prefix: Some(PREFIX.into()),
            organization_id: organization.map(str::to_string),
        },
        account: account.clone(),
    };
    let root = match organization {
        Some(o) => format!("{PREFIX}/AWSLogs/{o}/{account}/"),
        None => format!("{PREFIX}/AWSLogs/{account}/"),
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
        account,
        aws,
        clients,
        location,
        root,
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

/// Our problems as (kind, key), sorted: what awscli's INVALID lines are compared with.
fn flagged(report: &VerifyReport) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = report
        .problems
        .iter()
        .map(|p| (p.kind.to_string(), p.key.clone()))
        .collect();
    out.sort();
    out
}

fn stamp(secs: i64) -> String {
    aws_smithy_types::DateTime::from_secs(secs)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap()
}

/// The files awscli's `aws cloudtrail validate-logs` reports INVALID for the setup's objects, as
/// (kind, key) sorted, over the digests of `regions` (awscli validates the region it runs in: one
/// run per region). It reaches the emulator through `AWS_ENDPOINT_URL` (every client it makes,
/// S3's of each bucket's region included), acting in the test's account with credentials of an
/// AssumeRole into it; `--s3-bucket`/`--s3-prefix` spare it GetTrail (the trail is the chain's
/// `trailkeeper`, home region us-east-1).
async fn awscli_invalid(s: &Setup, regions: &[&str]) -> Vec<(String, String)> {
    let assumed = aws_sdk_sts::Client::new(&base_config().await)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{}:role/awscli", s.account))
        .role_session_name("awscli")
        .send()
        .await
        .unwrap();
    let credentials = assumed.credentials.unwrap();
    // Path-style S3 addressing: the emulator is one host.
    let config = std::env::temp_dir().join(format!("trailkeeper-awscli-{}.config", std::process::id()));
    std::fs::write(&config, "[default]\ns3 =\n    addressing_style = path\n").unwrap();
    let mut out = Vec::new();
    for region in regions {
        let run = std::process::Command::new(awscli_path())
            .args(["cloudtrail", "validate-logs", "--verbose", "--region", region])
            .args([
                "--trail-arn",
                &format!("arn:aws:cloudtrail:{REGION}:{}:trail/trailkeeper", s.account),
            ])
            .args(["--start-time", &stamp(s.start), "--end-time", &stamp(s.end)])
            .args(["--s3-bucket", &s.location.trail.bucket, "--s3-prefix", PREFIX])
            .env("AWS_ENDPOINT_URL", &moto().endpoint)
            .env("AWS_ACCESS_KEY_ID", credentials.access_key_id())
            .env("AWS_SECRET_ACCESS_KEY", credentials.secret_access_key())
            .env("AWS_SESSION_TOKEN", credentials.session_token())
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env_remove("AWS_PROFILE")
            .output()
            .expect("awscli runs");
        let stdout = String::from_utf8_lossy(&run.stdout);
        let stderr = String::from_utf8_lossy(&run.stderr);
        // 0: all valid, 1: something INVALID; anything else is awscli failing to run.
        assert!(
            matches!(run.status.code(), Some(0 | 1)),
            "awscli failed ({:?}):\n{stdout}\n{stderr}",
            run.status
        );
        assert!(
            !stdout.contains("No digests found"),
            "awscli found no digest in {region}:\n{stdout}"
        );
        let objects = format!("s3://{}/", s.location.trail.bucket);
        for line in stderr.lines() {
            let fields: Vec<&str> = line.split('\t').collect();
            let [kind, path, verdict] = fields[..] else {
                continue;
            };
            if !verdict.starts_with("INVALID") {
                continue;
            }
            let kind = match kind {
                "Digest file" => "digest",
                "Log file" => "log",
                other => panic!("awscli reported an unknown kind of file {other}: {line}"),
            };
            let key = path.strip_prefix(&objects).unwrap_or(path);
            out.push((kind.to_string(), key.to_string()));
        }
    }
    out.sort();
    out
}

/// Our report, checked against awscli's on the same objects: the same files are not valid.
async fn verified_as_awscli(s: &Setup, regions: &[&str]) -> VerifyReport {
    let report = verified(s).await;
    assert_eq!(
        awscli_invalid(s, regions).await,
        flagged(&report),
        "awscli and trailkeeper differ: {:?}",
        report.problems
    );
    report
}

async fn put_raw(s: &Setup, key: &str, body: Vec<u8>, metadata: &[(&str, &str)]) {
    let mut put = s
        .aws
        .s3
        .put_object()
        .bucket(&s.location.trail.bucket)
        .key(key)
        .body(body.into());
    for (name, value) in metadata {
        put = put.metadata(*name, *value);
    }
    put.send().await.unwrap();
}

async fn object_bytes(s: &Setup, key: &str) -> (Vec<u8>, std::collections::HashMap<String, String>) {
    let object = s
        .aws
        .s3
        .get_object()
        .bucket(&s.location.trail.bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let metadata = object.metadata().cloned().unwrap_or_default();
    (object.body.collect().await.unwrap().into_bytes().to_vec(), metadata)
}

async fn read_digest(s: &Setup, key: &str) -> DigestFile {
    let object = s
        .aws
        .s3
        .get_object()
        .bucket(&s.location.trail.bucket)
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
    let report = verified_as_awscli(&s, &[REGION]).await;
    assert!(report.valid(), "{:?}", report.problems);
    assert_eq!((report.digests, report.log_files), (48, 144));
}

#[tokio::test]
async fn an_organization_trails_layout_is_verified_too() {
    // Not run through awscli: it takes an Organization trail's layout from GetTrail
    // (IsOrganizationTrail) and DescribeOrganization, where this test has only the objects.
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
        .bucket(&s.location.trail.bucket)
        .key(changed)
        .body(chain::gzip(br#"{"Records":[]}"#).into())
        .send()
        .await
        .unwrap();
    let removed = &s.chain.log_files[9];
    s.aws
        .s3
        .delete_object()
        .bucket(&s.location.trail.bucket)
        .key(removed)
        .send()
        .await
        .unwrap();
    let report = verified_as_awscli(&s, &[REGION]).await;
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
        .bucket(&s.location.trail.bucket)
        .key(gone)
        .send()
        .await
        .unwrap();
    let report = verified_as_awscli(&s, &[REGION]).await;
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
    chain::put_digest(&s.aws, &s.location.trail.bucket, forged, &content, &signature).await;
    let report = verified_as_awscli(&s, &[REGION]).await;
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
    chain::put_digest(&s.aws, &s.location.trail.bucket, broken, &content, &signature).await;
    let report = verified(&s).await;
    // awscli reports all valid here: it checks each digest's own signature and follows
    // previousDigestS3Object, but never compares previousDigestSignature/previousDigestHashValue
    // with the predecessor (AWS's custom implementation steps do: CloudTrail user guide, "Custom
    // implementations of CloudTrail log file integrity validation"). Only a holder of
    // CloudTrail's private key can make this case; trailkeeper is stricter than awscli on it.
    assert_eq!(awscli_invalid(&s, &[REGION]).await, Vec::<(String, String)>::new());
    let found = verdicts(&report);
    assert!(found.contains(&(Verdict::BrokenChain, broken.clone())), "{found:?}");
    // Its successor now names a predecessor whose signature changed: broken too.
    assert!(
        found.contains(&(Verdict::BrokenChain, s.chain.digests[5].clone())),
        "{found:?}"
    );
}

/// A gzip member appended to a log file (one forged record): `gzip -dc` and every reader of the
/// logs see the record, the digest's hash covers the first member only. Not valid, as awscli
/// reports it ("unexpected data after end of compressed stream").
#[tokio::test]
async fn a_log_file_with_a_second_gzip_member_appended_is_not_valid() {
    let s = setup(4, None).await;
    let forged = &s.chain.log_files[5];
    let (mut bytes, _) = object_bytes(&s, forged).await;
    bytes.extend(chain::gzip(
        br#"{"Records":[{"eventName":"DeleteTrail","eventSource":"cloudtrail.amazonaws.com"}]}"#,
    ));
    put_raw(&s, forged, bytes, &[]).await;
    let report = verified_as_awscli(&s, &[REGION]).await;
    assert_eq!(verdicts(&report), [(Verdict::TrailingData, forged.clone())]);
    assert!(!report.valid());
}

/// A log file stored uncompressed, with the content its digest lists: not what CloudTrail
/// delivered (awscli: "invalid format"), even though its content hashes right.
#[tokio::test]
async fn a_log_file_that_is_not_gzip_is_unreadable() {
    let s = setup(2, None).await;
    let plain = &s.chain.log_files[1];
    let (bytes, _) = object_bytes(&s, plain).await;
    put_raw(&s, plain, verify::gunzip(&bytes).unwrap(), &[]).await;
    let report = verified_as_awscli(&s, &[REGION]).await;
    assert_eq!(verdicts(&report), [(Verdict::Unreadable, plain.clone())]);
}

/// A digest changed after delivery (a log file dropped from its list) fails its own signature;
/// its authentic successor names the signature and hash of the digest CloudTrail wrote, and is
/// not blamed for it (a link is judged only against a predecessor that passed).
#[tokio::test]
async fn a_digest_whose_predecessor_fails_its_signature_does_not_break_the_chain() {
    let s = setup(5, None).await;
    let changed = &s.chain.digests[2];
    let (bytes, metadata) = object_bytes(&s, changed).await;
    let mut digest: serde_json::Value = serde_json::from_slice(&verify::gunzip(&bytes).unwrap()).unwrap();
    digest["logFiles"].as_array_mut().unwrap().pop();
    let metadata: Vec<(&str, &str)> = metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    put_raw(
        &s,
        changed,
        chain::gzip(&serde_json::to_vec(&digest).unwrap()),
        &metadata,
    )
    .await;
    let report = verified_as_awscli(&s, &[REGION]).await;
    assert_eq!(verdicts(&report), [(Verdict::InvalidSignature, changed.clone())]);
}

/// A digest without the `signature-algorithm` metadata CloudTrail writes is not valid (awscli:
/// "signature verification failed"), and its successor is not blamed.
#[tokio::test]
async fn a_digest_without_its_signature_algorithm_is_invalid() {
    let s = setup(4, None).await;
    let bare = &s.chain.digests[1];
    let (bytes, metadata) = object_bytes(&s, bare).await;
    put_raw(&s, bare, bytes, &[("signature", &metadata["signature"])]).await;
    let report = verified_as_awscli(&s, &[REGION]).await;
    assert_eq!(verdicts(&report), [(Verdict::InvalidSignature, bare.clone())]);
}

/// A digest stored uncompressed is not valid (awscli: "invalid format"), even with its signature.
#[tokio::test]
async fn a_digest_that_is_not_gzip_is_unreadable() {
    let s = setup(4, None).await;
    let plain = &s.chain.digests[2];
    let (bytes, metadata) = object_bytes(&s, plain).await;
    let metadata: Vec<(&str, &str)> = metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    put_raw(&s, plain, verify::gunzip(&bytes).unwrap(), &metadata).await;
    let report = verified_as_awscli(&s, &[REGION]).await;
    assert_eq!(verdicts(&report), [(Verdict::Unreadable, plain.clone())]);
}

/// A digest copied over its successor's key (metadata and all: its signature verifies) names
/// where CloudTrail put it: reported as moved (awscli: "has been moved from its original
/// location"), not only as a broken link of the digest after it.
#[tokio::test]
async fn a_digest_copied_over_its_successors_key_is_moved() {
    let s = setup(5, None).await;
    let (original, successor) = (&s.chain.digests[2], &s.chain.digests[3]);
    let (bytes, metadata) = object_bytes(&s, original).await;
    let metadata: Vec<(&str, &str)> = metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    put_raw(&s, successor, bytes, &metadata).await;
    let report = verified_as_awscli(&s, &[REGION]).await;
    assert_eq!(verdicts(&report), [(Verdict::Moved, successor.clone())]);
}

/// A multi-region trail: each region's digests are signed with that region's key, and each is
/// verified against the public keys of its own region (ListPublicKeys reference: "you must look
/// in the same Region for its corresponding public key"). A digest of eu-west-1 signed with
/// us-east-1's key is not CloudTrail's.
#[tokio::test]
async fn each_regions_digests_are_verified_with_that_regions_public_key() {
    let s = setup(3, None).await;
    let west = chain::write_chain(
        &s.aws,
        chain::ChainSpec {
            bucket: &s.location.trail.bucket,
            root: &s.root,
            account: &s.account,
            region: "eu-west-1",
            end: s.end,
            hours: 3,
            files_per_digest: 2,
        },
    )
    .await;
    let report = verified_as_awscli(&s, &[REGION, "eu-west-1"]).await;
    assert!(report.valid(), "{:?}", report.problems);
    assert_eq!((report.digests, report.log_files), (6, 15));

    // One of eu-west-1's digests signed as CloudTrail signs us-east-1's.
    let foreign = &west.digests[1];
    let mut digest = read_digest(&s, foreign).await;
    let east = s.aws.cloudtrail.list_public_keys().send().await.unwrap();
    digest.digest_public_key_fingerprint = east.public_key_list()[0].fingerprint().unwrap().to_string();
    let content = serde_json::to_vec(&digest).unwrap();
    let signature = chain::sign(
        &chain::region_key(REGION),
        signing_string(&digest, &sha256_hex(&content)).as_bytes(),
    );
    chain::put_digest(&s.aws, &s.location.trail.bucket, foreign, &content, &signature).await;
    let report = verified_as_awscli(&s, &[REGION, "eu-west-1"]).await;
    assert_eq!(verdicts(&report), [(Verdict::UnknownKey, foreign.clone())]);
}

/// A trail bucket in another region than the baseline's primary one: S3 refuses requests signed
/// for another region, so the bucket is read through clients of its own region (GetBucketLocation
/// first, as awscli does).
#[tokio::test]
async fn a_bucket_in_another_region_than_the_primary_verifies() {
    let s = setup_in(3, None, "eu-west-1").await;
    let report = verified_as_awscli(&s, &[REGION]).await;
    assert!(report.valid(), "{:?}", report.problems);
    assert_eq!((report.digests, report.log_files), (3, 9));
}
