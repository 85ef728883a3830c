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

/// Log files read at once.
const CONCURRENCY: usize = 32;

/// Where a trail's files are: `{prefix/}AWSLogs/{o-id/}{account}/CloudTrail[-Digest]/{region}/...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogLocation {
    pub bucket: String,
    pub prefix: Option<String>,
    pub organization_id: Option<String>,
    pub account: String,
}

impl LogLocation {
    fn account_root(&self) -> String {
        let prefix = self
            .prefix
            .as_deref()
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
            .map(|p| format!("{p}/"))
            .unwrap_or_default();
        match &self.organization_id {
            Some(o) => format!("{prefix}AWSLogs/{o}/{}/", self.account),
            None => format!("{prefix}AWSLogs/{}/", self.account),
        }
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
        bucket,
        prefix,
        organization_id,
        account: spec.account_id.clone(),
    })
}

/// A digest file, as CloudTrail writes it (the fields integrity validation reads).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DigestFile {
    pub digest_end_time: String,
    pub digest_s3_bucket: String,
    pub digest_s3_object: String,
    pub digest_public_key_fingerprint: String,
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

/// Uncompressed content of a `.gz` object (as is when it is not gzip).
pub fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Ok(bytes.to_vec());
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
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
    /// A log file a digest lists that is gone.
    Deleted,
    /// A digest the next digest names as its predecessor that is gone.
    MissingDigest,
    /// A digest whose signature does not verify (changed, or signed by another key).
    InvalidSignature,
    /// A digest that does not name its predecessor's signature and hash.
    BrokenChain,
    /// No public key of CloudTrail has the digest's fingerprint.
    UnknownKey,
    /// The file could not be read or parsed.
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
    digest: DigestFile,
    sha256: String,
    signature: Option<String>,
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
    let bucket = &location.bucket;
    let digest_root = format!("{}CloudTrail-Digest/", location.account_root());
    let mut keys = Vec::new();
    for region in s3::list_folders(clients, bucket, &digest_root).await? {
        for day in days(start - 3600, end + 3600) {
            keys.extend(s3::list_keys(clients, bucket, &format!("{region}{day}")).await?);
        }
    }
    let public_keys = cloudtrail::list_public_keys(clients, start - 86_400, end + 86_400).await?;
    let mut report = VerifyReport::default();
    let mut read = Vec::new();
    for key in keys {
        let Some((bytes, metadata)) = s3::get_object(clients, bucket, &key).await? else {
            continue;
        };
        let content = match gunzip(&bytes) {
            Ok(c) => c,
            Err(e) => {
                report.problems.push(problem("digest", &key, Verdict::Unreadable, e));
                continue;
            }
        };
        let digest: DigestFile = match serde_json::from_slice(&content) {
            Ok(d) => d,
            Err(e) => {
                report
                    .problems
                    .push(problem("digest", &key, Verdict::Unreadable, e.to_string()));
                continue;
            }
        };
        if !seconds_of(&digest.digest_end_time).is_some_and(|t| (start..=end).contains(&t)) {
            continue;
        }
        read.push(ReadDigest {
            key,
            sha256: sha256_hex(&content),
            signature: metadata.get("signature").cloned(),
            digest,
        });
    }
    read.sort_by(|a, b| a.digest.digest_end_time.cmp(&b.digest.digest_end_time));
    report.digests = read.len();

    // Signatures, and the chain: each digest names its predecessor's signature and hash.
    let by_key: BTreeMap<&str, &ReadDigest> = read.iter().map(|d| (d.key.as_str(), d)).collect();
    let mut trusted = Vec::new();
    for d in &read {
        let Some(signature) = &d.signature else {
            report.problems.push(problem(
                "digest",
                &d.key,
                Verdict::InvalidSignature,
                "no signature in the object's metadata",
            ));
            continue;
        };
        let Some(der) = public_keys.get(&d.digest.digest_public_key_fingerprint) else {
            report.problems.push(problem(
                "digest",
                &d.key,
                Verdict::UnknownKey,
                format!(
                    "no CloudTrail public key has the fingerprint {}",
                    d.digest.digest_public_key_fingerprint
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
        if let Some(previous) = d.digest.previous_digest_s3_object.as_deref().filter(|p| !p.is_empty()) {
            match by_key.get(previous) {
                Some(p) => {
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
                None => {
                    let bucket = d.digest.previous_digest_s3_bucket.as_deref().unwrap_or(bucket);
                    if s3::get_object(clients, bucket, previous).await?.is_none() {
                        report.problems.push(problem(
                            "digest",
                            previous,
                            Verdict::MissingDigest,
                            format!("named as the predecessor of {} and gone", d.key),
                        ));
                    }
                }
            }
        }
        trusted.push(d);
    }

    // Every log file a trusted digest lists.
    // Owned, with the clients cloned into each read: the futures must be Send for any lifetime
    // (the controller runs this inside its reconcile).
    let listed: Vec<ListedLogFile> = trusted
        .iter()
        .flat_map(|d| d.digest.log_files.iter().cloned())
        .collect();
    report.log_files = listed.len();
    let results: Vec<Result<Option<FileResult>, AwsError>> = futures::stream::iter(listed)
        .map(|f| {
            let clients = clients.clone();
            async move {
                let clients = &clients;
                let verdict = match s3::get_object(clients, &f.s3_bucket, &f.s3_object).await? {
                    None => Some((Verdict::Deleted, "listed by its digest and gone".to_string())),
                    Some((bytes, _)) => match gunzip(&bytes) {
                        Err(e) => Some((Verdict::Unreadable, e)),
                        Ok(content) if sha256_hex(&content) != f.hash_value => Some((
                            Verdict::Modified,
                            "its SHA-256 differs from the one its digest lists".to_string(),
                        )),
                        Ok(_) => None,
                    },
                };
                Ok(verdict.map(|(v, detail)| problem("log", &f.s3_object, v, detail)))
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    for r in results {
        report.problems.extend(r?);
    }
    report.problems.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signed_string_is_end_time_path_hash_and_previous_signature() {
        let digest = DigestFile {
            digest_end_time: "2026-11-27T05:00:00Z".into(),
            digest_s3_bucket: "b".into(),
            digest_s3_object: "AWSLogs/1/CloudTrail-Digest/x.json.gz".into(),
            digest_public_key_fingerprint: "f".into(),
            previous_digest_s3_bucket: None,
            previous_digest_s3_object: None,
            previous_digest_hash_value: None,
            previous_digest_signature: None,
            log_files: Vec::new(),
        };
        assert_eq!(
            signing_string(&digest, "abc"),
            "2026-11-27T05:00:00Z\nb/AWSLogs/1/CloudTrail-Digest/x.json.gz\nabc\nnull"
        );
    }

    #[test]
    fn days_cover_the_range() {
        let start = seconds_of("2026-11-25T23:00:00Z").unwrap();
        let end = seconds_of("2026-11-27T01:00:00Z").unwrap();
        assert_eq!(days(start, end), ["2026/11/25/", "2026/11/26/", "2026/11/27/"]);
    }

    #[test]
    fn the_organization_layout_has_the_organization_id() {
        let location = LogLocation {
            bucket: "b".into(),
            prefix: Some("org/".into()),
            organization_id: Some("o-abc".into()),
            account: "111122223333".into(),
        };
        assert_eq!(location.account_root(), "org/AWSLogs/o-abc/111122223333/");
    }
}
