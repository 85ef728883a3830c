//! `trailkeeper verify`: the integrity of delivered CloudTrail logs, as `aws cloudtrail
//! validate-logs` checks it (CloudTrail user guide, "CloudTrail log file integrity validation",
//! "CloudTrail digest file structure"): each digest file's RSA signature against CloudTrail's
//! public key of its fingerprint, the chain of digests (each names its predecessor's signature
//! and hash), and the SHA-256 of every log file a digest lists.

use std::collections::BTreeMap;
use std::io::Read;

use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::aws::{AccountClients, AwsError, cloudtrail, s3};
use crate::desired::athena::TrailLocation;
use crate::progress::Progress;

/// Log files read at once.
const CONCURRENCY: usize = 32;

/// Where one account's files of a trail are:
/// `{prefix/}AWSLogs/{o-id/}{account}/CloudTrail[-Digest]/{region}/...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLocation {
    pub trail: TrailLocation,
    pub account: String,
}

impl LogLocation {
    fn account_root(&self) -> String {
        format!("{}{}/", self.trail.logs_key_root(), self.account)
    }
}

/// Where a baseline's trail delivers: its own bucket, or the Existing trail's (read from it).
pub async fn location_of(
    clients: &AccountClients,
    spec: &crate::api::LoggingBaselineSpec,
    trail_policy: &crate::api::TrailPolicySpec,
) -> Result<LogLocation, AwsError> {
    use crate::api::TrailSource;
    let (bucket, prefix, organization) = match spec.trail.source {
        TrailSource::Managed => (
            crate::desired::trail_bucket_name(spec),
            Some(spec.storage.key_prefix.clone()),
            trail_policy.organization_trail,
        ),
        TrailSource::Existing => {
            let arn = spec.trail.existing_trail_arn.clone().unwrap_or_default();
            let foreign = arn.split(':').nth(4).is_some_and(|o| o != spec.account_id);
            let trail = if foreign {
                cloudtrail::observe_foreign_trail(clients, &arn).await?
            } else {
                cloudtrail::observe_trail(clients, &arn).await?
            };
            let Some(trail) = trail else {
                return Err(AwsError::invalid(
                    "cloudtrail:GetTrail",
                    &arn,
                    "the Existing trail was not found",
                ));
            };
            (trail.bucket.unwrap_or_default(), trail.key_prefix, trail.organization)
        }
    };
    let organization_id = if organization {
        crate::aws::organizations::organization_id(clients).await?
    } else {
        None
    };
    Ok(LogLocation {
        trail: TrailLocation {
            bucket,
            key_prefix: prefix,
            organization_id,
        },
        account: spec.account_id.clone(),
    })
}

/// Where a member of a LogArchive delivers: the archive's bucket and prefix, under the member's
/// account (an Organization trail's: under the Organization's id). Read with the archive
/// account's credentials: the member's own role has no access to the archive.
pub fn archive_location(
    archive: &crate::api::LogArchiveSpec,
    member: &crate::api::LoggingBaselineSpec,
    trail_policy: &crate::api::TrailPolicySpec,
) -> LogLocation {
    LogLocation {
        trail: TrailLocation {
            bucket: crate::desired::archive::bucket_name(archive),
            key_prefix: Some(archive.key_prefix.clone()),
            organization_id: archive
                .organization_id
                .clone()
                .filter(|_| trail_policy.organization_trail),
        },
        account: member.account_id.clone(),
    }
}

/// A digest file, as CloudTrail writes it (the fields integrity validation reads).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DigestFile {
    pub digest_end_time: String,
    pub digest_s3_bucket: String,
    pub digest_s3_object: String,
    pub digest_public_key_fingerprint: String,
    pub digest_start_time: String,
    #[serde(default)]
    pub previous_digest_s3_bucket: Option<String>,
    #[serde(default)]
    pub previous_digest_s3_object: Option<String>,
    #[serde(default)]
    pub previous_digest_hash_value: Option<String>,
    #[serde(default)]
    pub previous_digest_signature: Option<String>,
    #[serde(default)]
    pub log_files: Vec<ListedLogFile>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ListedLogFile {
    pub s3_bucket: String,
    pub s3_object: String,
    pub hash_value: String,
}

/// What the string signed for a digest is: its end time, its S3 path, the hex SHA-256 of its
/// (uncompressed) content, and the previous digest's signature (`null` for the first).
pub fn signing_string(digest: &DigestFile, content_sha256_hex: &str) -> String {
    format!(
        "{}\n{}/{}\n{}\n{}",
        digest.digest_end_time,
        digest.digest_s3_bucket,
        digest.digest_s3_object,
        content_sha256_hex,
        digest.previous_digest_signature.as_deref().unwrap_or("null")
    )
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// Why an object is not one gzip stream, as CloudTrail writes its log and digest files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GzipError {
    NotGzip,
    Corrupt(String),
    /// Bytes after the end of the first gzip stream: a second member appended, which `gzip -dc`
    /// and every other reader of the file decompress as part of it.
    TrailingData,
}

impl std::fmt::Display for GzipError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GzipError::NotGzip => f.write_str("invalid format: not gzip"),
            GzipError::Corrupt(e) => write!(f, "invalid format: {e}"),
            GzipError::TrailingData => f.write_str("unexpected data after end of compressed stream"),
        }
    }
}

/// Uncompressed content of a `.gz` object that is exactly one gzip stream. Only the first stream
/// would be hashed otherwise, while readers see every appended one: awscli's validate-logs
/// (`awscli/customizations/cloudtrail/validation.py`, `_download_log`) reports any unused data
/// after the stream as INVALID, and an object that is not gzip as an invalid format.
pub fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, GzipError> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(GzipError::NotGzip);
    }
    let mut out = Vec::new();
    let mut decoder = flate2::bufread::GzDecoder::new(bytes);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| GzipError::Corrupt(e.to_string()))?;
    if !decoder.into_inner().is_empty() {
        return Err(GzipError::TrailingData);
    }
    Ok(out)
}

/// Whether `signature_hex` is a valid SHA256withRSA signature of `message` by the DER key.
pub fn signature_valid(public_key_der: &[u8], message: &[u8], signature_hex: &str) -> bool {
    let Ok(signature) = hex::decode(signature_hex) else {
        return false;
    };
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, public_key_der)
        .verify(message, &signature)
        .is_ok()
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Verdict {
    Valid,
    /// A log file whose hash differs from the one its digest lists.
    Modified,
    /// A log file with data after the end of its gzip stream (a second member appended): what
    /// its digest covers is the first stream only, what readers see is all of it.
    TrailingData,
    /// A log file a digest lists that is gone.
    Deleted,
    /// A digest the next digest names as its predecessor that is gone.
    MissingDigest,
    /// A digest whose signature does not verify (changed, or signed by another key), or that has
    /// no signature or signature algorithm in its metadata.
    InvalidSignature,
    /// A digest read from another place than the one it names (`digestS3Bucket`/`digestS3Object`).
    Moved,
    /// A digest that does not name its predecessor's signature and hash.
    BrokenChain,
    /// No public key of CloudTrail in the digest's region has the digest's fingerprint.
    UnknownKey,
    /// The file could not be read or parsed (not gzip, not a digest).
    Unreadable,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileResult {
    /// `digest` or `log`.
    pub kind: &'static str,
    pub key: String,
    pub verdict: Verdict,
    pub detail: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    pub digests: usize,
    pub log_files: usize,
    /// Every file that is not valid.
    pub problems: Vec<FileResult>,
}

impl VerifyReport {
    pub fn valid(&self) -> bool {
        self.problems.is_empty() && self.digests > 0
    }
}

struct ReadDigest {
    key: String,
    /// The region folder it was listed under: its public key is looked up in that region.
    region: String,
    digest: DigestFile,
    sha256: String,
    signature: Option<String>,
    signature_algorithm: Option<String>,
}

/// The only algorithm CloudTrail signs digests with (CloudTrail user guide, "CloudTrail digest
/// file structure": the `signature-algorithm` metadata is `SHA256withRSA`).
const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";

/// The fields awscli requires before it reads a digest (`DigestTraverser.required_digest_keys`):
/// a digest without one of them is an invalid format, present as `null` or not.
const REQUIRED_DIGEST_FIELDS: [&str; 6] = [
    "digestPublicKeyFingerprint",
    "digestS3Bucket",
    "digestS3Object",
    "previousDigestSignature",
    "digestEndTime",
    "digestStartTime",
];

/// Whether a folder name is an AWS region's (`us-east-1`, `us-gov-west-1`): the clients of the
/// region are built from it, so a folder someone else wrote is not taken as one.
fn is_region(name: &str) -> bool {
    let parts: Vec<&str> = name.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts
            .last()
            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// The digest in `content`, or why it is not one.
fn parse_digest(content: &[u8]) -> Result<DigestFile, String> {
    let value: serde_json::Value = serde_json::from_slice(content).map_err(|e| format!("invalid format: {e}"))?;
    if let Some(missing) = REQUIRED_DIGEST_FIELDS.iter().find(|f| value.get(**f).is_none()) {
        return Err(format!("invalid format: no {missing}"));
    }
    serde_json::from_value(value).map_err(|e| format!("invalid format: {e}"))
}

/// The clients that read each bucket: S3 answers a request sent to another region than the
/// bucket's with a redirect, so each bucket is read through its own region's clients, as awscli
/// does (`S3ClientProvider`: GetBucketLocation, then a client of that region).
struct BucketClients<'a> {
    primary: &'a AccountClients,
    by_bucket: BTreeMap<String, AccountClients>,
}

impl<'a> BucketClients<'a> {
    fn new(primary: &'a AccountClients) -> Self {
        Self {
            primary,
            by_bucket: BTreeMap::new(),
        }
    }

    async fn of(&mut self, bucket: &str) -> Result<AccountClients, AwsError> {
        if let Some(c) = self.by_bucket.get(bucket) {
            return Ok(c.clone());
        }
        let region = s3::bucket_region(self.primary, bucket).await?;
        let clients = self.primary.for_region(&region);
        self.by_bucket.insert(bucket.to_string(), clients.clone());
        Ok(clients)
    }
}

/// The day folders `YYYY/MM/DD/` from `start` to `end` (seconds).
fn days(start: i64, end: i64) -> Vec<String> {
    let mut out = Vec::new();
    let mut day = start - start.rem_euclid(86_400);
    while day <= end {
        let date = aws_smithy_types::DateTime::from_secs(day)
            .fmt(aws_smithy_types::date_time::Format::DateTime)
            .unwrap_or_default();
        out.push(format!("{}/", date.get(..10).unwrap_or_default().replace('-', "/")));
        day += 86_400;
    }
    out
}

fn seconds_of(rfc3339: &str) -> Option<i64> {
    aws_smithy_types::DateTime::from_str(rfc3339, aws_smithy_types::date_time::Format::DateTime)
        .ok()
        .map(|t| t.secs())
}

fn problem(kind: &'static str, key: &str, verdict: Verdict, detail: impl Into<String>) -> FileResult {
    FileResult {
        kind,
        key: key.to_string(),
        verdict,
        detail: detail.into(),
    }
}

/// Verifies the digests ending between `start` and `end` (seconds) and the log files they list.
pub async fn verify(
    clients: &AccountClients,
    location: &LogLocation,
    start: i64,
    end: i64,
) -> Result<VerifyReport, AwsError> {
    verify_counting(clients, location, start, end, &Progress::none()).await
}

/// `verify`, counting the files (digests, then the log files they list) on `progress`.
pub async fn verify_counting(
    clients: &AccountClients,
    location: &LogLocation,
    start: i64,
    end: i64,
    progress: &Progress,
) -> Result<VerifyReport, AwsError> {
    let bucket = &location.trail.bucket;
    let mut buckets = BucketClients::new(clients);
    let trail_bucket = buckets.of(bucket).await?;
    let keys = digest_keys(&trail_bucket, location, start, end).await?;
    let digest_files = keys.len() as u64;
    progress.add_total(digest_files);
    let mut report = VerifyReport::default();
    let mut read = read_digests(&trail_bucket, bucket, keys, start, end, &mut report).await?;
    progress.advance(digest_files);
    read.sort_by(|a, b| a.digest.digest_end_time.cmp(&b.digest.digest_end_time));
    report.digests = read.len();
    let passed = check_signatures(clients, bucket, &read, start, end, &mut report).await?;
    let trusted = check_chain(&mut buckets, bucket, &read, passed, &mut report).await?;
    check_log_files(&mut buckets, &trusted, &mut report, progress).await?;
    report.problems.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(report)
}

/// The digest files under each region folder of the account's digest root, for the days around
/// the period, with the region each was listed under.
async fn digest_keys(
    trail_bucket: &AccountClients,
    location: &LogLocation,
    start: i64,
    end: i64,
) -> Result<Vec<(String, String)>, AwsError> {
    let bucket = &location.trail.bucket;
    let digest_root = format!("{}CloudTrail-Digest/", location.account_root());
    let mut keys = Vec::new();
    for folder in s3::list_folders(trail_bucket, bucket, &digest_root).await? {
        let region = folder
            .strip_prefix(&digest_root)
            .unwrap_or_default()
            .trim_end_matches('/')
            .to_string();
        if !is_region(&region) {
            continue;
        }
        for day in days(start - 3600, end + 3600) {
            for key in s3::list_keys(trail_bucket, bucket, &format!("{folder}{day}")).await? {
                keys.push((region.clone(), key));
            }
        }
    }
    Ok(keys)
}

/// Each digest read, unzipped and parsed (an unreadable one is a problem), kept when it ends in
/// the period.
async fn read_digests(
    trail_bucket: &AccountClients,
    bucket: &str,
    keys: Vec<(String, String)>,
    start: i64,
    end: i64,
    report: &mut VerifyReport,
) -> Result<Vec<ReadDigest>, AwsError> {
    let mut read = Vec::new();
    for (region, key) in keys {
        let Some((bytes, metadata)) = s3::get_object(trail_bucket, bucket, &key).await? else {
            continue;
        };
        let digest = match gunzip(&bytes)
            .map_err(|e| e.to_string())
            .and_then(|content| Ok((parse_digest(&content)?, content)))
        {
            Ok((digest, content)) => (digest, sha256_hex(&content)),
            Err(e) => {
                report.problems.push(problem("digest", &key, Verdict::Unreadable, e));
                continue;
            }
        };
        let (digest, sha256) = digest;
        if !seconds_of(&digest.digest_end_time).is_some_and(|t| (start..=end).contains(&t)) {
            continue;
        }
        read.push(ReadDigest {
            key,
            region,
            sha256,
            signature: metadata.get("signature").cloned(),
            signature_algorithm: metadata.get("signature-algorithm").cloned(),
            digest,
        });
    }
    Ok(read)
}

/// Each digest on its own, in awscli's order: where it was read, its public key (in its own
/// region: ListPublicKeys, "Each digest file is signed with a private key unique to its
/// Region. When you validate a digest file from a specific Region, you must look in the same
/// Region for its corresponding public key",
/// https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_ListPublicKeys.html),
/// its signature.
async fn check_signatures<'r>(
    clients: &AccountClients,
    bucket: &str,
    read: &'r [ReadDigest],
    start: i64,
    end: i64,
    report: &mut VerifyReport,
) -> Result<Vec<&'r ReadDigest>, AwsError> {
    let mut public_keys: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let mut passed: Vec<&ReadDigest> = Vec::new();
    for d in read {
        if d.digest.digest_s3_bucket != bucket || d.digest.digest_s3_object != d.key {
            report.problems.push(problem(
                "digest",
                &d.key,
                Verdict::Moved,
                format!(
                    "has been moved from its original location s3://{}/{}",
                    d.digest.digest_s3_bucket, d.digest.digest_s3_object
                ),
            ));
            continue;
        }
        let (Some(signature), Some(algorithm)) = (&d.signature, &d.signature_algorithm) else {
            report.problems.push(problem(
                "digest",
                &d.key,
                Verdict::InvalidSignature,
                "no signature or signature-algorithm in the object's metadata",
            ));
            continue;
        };
        if algorithm != SIGNATURE_ALGORITHM {
            report.problems.push(problem(
                "digest",
                &d.key,
                Verdict::InvalidSignature,
                format!("signature-algorithm {algorithm}: CloudTrail signs with {SIGNATURE_ALGORITHM} only"),
            ));
            continue;
        }
        if !public_keys.contains_key(&d.region) {
            let regional =
                cloudtrail::list_public_keys(&clients.for_region(&d.region), start - 86_400, end + 86_400).await?;
            public_keys.insert(d.region.clone(), regional);
        }
        let Some(der) = public_keys
            .get(&d.region)
            .and_then(|keys| keys.get(&d.digest.digest_public_key_fingerprint))
        else {
            report.problems.push(problem(
                "digest",
                &d.key,
                Verdict::UnknownKey,
                format!(
                    "no CloudTrail public key of {} has the fingerprint {}",
                    d.region, d.digest.digest_public_key_fingerprint
                ),
            ));
            continue;
        };
        if !signature_valid(der, signing_string(&d.digest, &d.sha256).as_bytes(), signature) {
            report.problems.push(problem(
                "digest",
                &d.key,
                Verdict::InvalidSignature,
                "the signature does not verify: the digest was changed or not signed by CloudTrail",
            ));
            continue;
        }
        passed.push(d);
    }

    Ok(passed)
}

/// The chain: each digest names its predecessor's signature and hash (CloudTrail user guide,
/// "Custom implementations of CloudTrail log file integrity validation"). A link is judged
/// only against a predecessor that passed on its own: one that failed is reported already,
/// and its authentic successor is not to blame for it (awscli reports such a successor valid).
async fn check_chain<'r>(
    buckets: &mut BucketClients<'_>,
    bucket: &str,
    read: &'r [ReadDigest],
    passed: Vec<&'r ReadDigest>,
    report: &mut VerifyReport,
) -> Result<Vec<&'r ReadDigest>, AwsError> {
    let read_at: BTreeMap<&str, &ReadDigest> = read.iter().map(|d| (d.key.as_str(), d)).collect();
    let passed_at: BTreeMap<&str, &ReadDigest> = passed.iter().map(|d| (d.key.as_str(), *d)).collect();
    let mut trusted = Vec::new();
    for d in &passed {
        if let Some(previous) = d.digest.previous_digest_s3_object.as_deref().filter(|p| !p.is_empty()) {
            let previous_bucket = d.digest.previous_digest_s3_bucket.as_deref().unwrap_or(bucket);
            if previous_bucket == bucket && read_at.contains_key(previous) {
                if let Some(p) = passed_at.get(previous) {
                    let same_signature = p.signature.as_deref() == d.digest.previous_digest_signature.as_deref();
                    let same_hash = d.digest.previous_digest_hash_value.as_deref() == Some(p.sha256.as_str());
                    if !(same_signature && same_hash) {
                        report.problems.push(problem(
                            "digest",
                            &d.key,
                            Verdict::BrokenChain,
                            format!("does not name the signature and hash of its predecessor {previous}"),
                        ));
                    }
                }
            } else {
                let previous_clients = buckets.of(previous_bucket).await?;
                if s3::get_object(&previous_clients, previous_bucket, previous)
                    .await?
                    .is_none()
                {
                    report.problems.push(problem(
                        "digest",
                        previous,
                        Verdict::MissingDigest,
                        format!("named as the predecessor of {} and gone", d.key),
                    ));
                }
            }
        }
        trusted.push(*d);
    }

    Ok(trusted)
}

/// Every log file a trusted digest lists.
/// Owned, with the clients cloned into each read: the futures must be Send for any lifetime
/// (the controller runs this inside its reconcile).
async fn check_log_files(
    buckets: &mut BucketClients<'_>,
    trusted: &[&ReadDigest],
    report: &mut VerifyReport,
    progress: &Progress,
) -> Result<(), AwsError> {
    let listed: Vec<ListedLogFile> = trusted
        .iter()
        .flat_map(|d| d.digest.log_files.iter().cloned())
        .collect();
    report.log_files = listed.len();
    progress.add_total(listed.len() as u64);
    let mut reads = Vec::with_capacity(listed.len());
    for f in listed {
        reads.push((buckets.of(&f.s3_bucket).await?, f));
    }
    let results: Vec<Result<Option<FileResult>, AwsError>> = futures::stream::iter(reads)
        .map(|(clients, f)| async move {
            let verdict = match s3::get_object(&clients, &f.s3_bucket, &f.s3_object).await? {
                None => Some((Verdict::Deleted, "listed by its digest and gone".to_string())),
                Some((bytes, _)) => match gunzip(&bytes) {
                    Err(GzipError::TrailingData) => Some((Verdict::TrailingData, GzipError::TrailingData.to_string())),
                    Err(e) => Some((Verdict::Unreadable, e.to_string())),
                    Ok(content) if sha256_hex(&content) != f.hash_value => Some((
                        Verdict::Modified,
                        "its SHA-256 differs from the one its digest lists".to_string(),
                    )),
                    Ok(_) => None,
                },
            };
            progress.advance(1);
            Ok(verdict.map(|(v, detail)| problem("log", &f.s3_object, v, detail)))
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for r in results {
        report.problems.extend(r?);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
