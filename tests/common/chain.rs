//! A realistic CloudTrail delivery, written into a bucket as CloudTrail would (the emulator makes
//! none): gzip log files, and hourly digest files in CloudTrail's documented format, chained and
//! signed (SHA256withRSA) with the test key the emulator serves from ListPublicKeys in the
//! digest's region (tests/fixtures/cloudtrail-test-key.* for us-east-1,
//! cloudtrail-test-key-{region}.* for another region).

use std::io::Write;

use trailkeeper::engine::verify::{DigestFile, ListedLogFile, sha256_hex, signing_string};

use super::Inspector;

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// SHA256withRSA of `message` by the PKCS#8 key, hex.
pub fn sign(pkcs8: &[u8], message: &[u8]) -> String {
    let key = ring::signature::RsaKeyPair::from_pkcs8(pkcs8).unwrap();
    let mut signature = vec![0; key.public().modulus_len()];
    key.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        message,
        &mut signature,
    )
    .unwrap();
    hex::encode(signature)
}

fn stamp(secs: i64) -> String {
    aws_smithy_types::DateTime::from_secs(secs)
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .unwrap()
}

/// `20261127T0500Z` or, with seconds, `20261127T050000Z`.
fn compact(secs: i64, seconds: bool) -> String {
    let s: String = stamp(secs)
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    if seconds {
        format!("{}Z", &s[..15])
    } else {
        format!("{}Z", &s[..13])
    }
}

/// The private key of the test key pair the emulator serves for `region`.
pub fn region_key(region: &str) -> Vec<u8> {
    if region == super::REGION {
        fixture("cloudtrail-test-key.pk8")
    } else {
        fixture(&format!("cloudtrail-test-key-{region}.pk8"))
    }
}

/// What was written: every digest and log file key, in order.
pub struct Chain {
    pub digests: Vec<String>,
    pub log_files: Vec<String>,
}

/// A chain to write: `hours` hourly digests ending at `end` (seconds, on the hour), each listing
/// `files_per_digest` log files, under `root` (`{prefix}/AWSLogs/{account}/`) of `bucket`, for
/// the region `region` of a trail named `trailkeeper` whose home region is us-east-1 (`REGION`).
/// `aws` writes the objects: its clients must be of the bucket's region.
pub struct ChainSpec<'a> {
    pub bucket: &'a str,
    pub root: &'a str,
    pub account: &'a str,
    pub region: &'a str,
    pub end: i64,
    pub hours: i64,
    pub files_per_digest: usize,
}

pub async fn write_chain(aws: &Inspector, spec: ChainSpec<'_>) -> Chain {
    let ChainSpec {
        bucket,
        root,
        account,
        region,
        end,
        hours,
        files_per_digest,
    } = spec;
    let key = region_key(region);
    let regional = super::inspector_in(account, region).await;
    let public = regional.cloudtrail.list_public_keys().send().await.unwrap();
    let fingerprint = public.public_key_list()[0].fingerprint().unwrap().to_string();
    let mut chain = Chain {
        digests: Vec::new(),
        log_files: Vec::new(),
    };
    let mut previous: Option<(String, String, String)> = None; // key, sha256, signature
    for h in (0..hours).rev() {
        let digest_end = end - h * 3600;
        let day = stamp(digest_end)[..10].replace('-', "/");
        let mut listed = Vec::new();
        for i in 0..files_per_digest {
            let at = digest_end - 3600 + 60 * (i as i64 % 60);
            let object = format!(
                "{root}CloudTrail/{region}/{day}/{account}_CloudTrail_{region}_{}_{h:04}{i:05}.json.gz",
                compact(at, false)
            );
            let content = format!(
                r#"{{"Records":[{{"eventVersion":"1.10","eventTime":"{}","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"{region}","recipientAccountId":"{account}","n":{i}}}]}}"#,
                stamp(at)
            );
            aws.s3
                .put_object()
                .bucket(bucket)
                .key(&object)
                .body(gzip(content.as_bytes()).into())
                .send()
                .await
                .unwrap();
            listed.push(ListedLogFile {
                s3_bucket: bucket.to_string(),
                s3_object: object.clone(),
                hash_value: sha256_hex(content.as_bytes()),
            });
            chain.log_files.push(object);
        }
        let object = format!(
            "{root}CloudTrail-Digest/{region}/{day}/{account}_CloudTrail-Digest_{region}_trailkeeper_{home}_{}.json.gz",
            compact(digest_end, true),
            home = super::REGION
        );
        let digest = DigestFile {
            digest_start_time: stamp(digest_end - 3600),
            digest_end_time: stamp(digest_end),
            digest_s3_bucket: bucket.to_string(),
            digest_s3_object: object.clone(),
            digest_public_key_fingerprint: fingerprint.clone(),
            previous_digest_s3_bucket: previous.as_ref().map(|_| bucket.to_string()),
            previous_digest_s3_object: previous.as_ref().map(|p| p.0.clone()),
            previous_digest_hash_value: previous.as_ref().map(|p| p.1.clone()),
            previous_digest_signature: previous.as_ref().map(|p| p.2.clone()),
            log_files: listed,
        };
        let content = serde_json::to_vec(&digest).unwrap();
        let sha = sha256_hex(&content);
        let signature = sign(&key, signing_string(&digest, &sha).as_bytes());
        put_digest(aws, bucket, &object, &content, &signature).await;
        chain.digests.push(object.clone());
        previous = Some((object, sha, signature));
    }
    chain
}

/// Puts a digest file as CloudTrail does: gzip, with its signature in the object's metadata.
pub async fn put_digest(aws: &Inspector, bucket: &str, key: &str, content: &[u8], signature: &str) {
    aws.s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .metadata("signature", signature)
        .metadata("signature-algorithm", "SHA256withRSA")
        .body(gzip(content).into())
        .send()
        .await
        .unwrap();
}
