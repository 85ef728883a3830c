use super::*;

#[test]
fn the_signed_string_is_end_time_path_hash_and_previous_signature() {
    let digest = DigestFile {
        digest_end_time: "2026-11-27T05:00:00Z".into(),
        digest_start_time: "2026-11-27T04:00:00Z".into(),
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

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[test]
fn only_one_whole_gzip_stream_is_content() {
    assert_eq!(gunzip(&gzip(b"{}")), Ok(b"{}".to_vec()));
    let mut appended = gzip(b"{}");
    appended.extend(gzip(b"forged"));
    assert_eq!(gunzip(&appended), Err(GzipError::TrailingData));
    let mut padded = gzip(b"{}");
    padded.push(0);
    assert_eq!(gunzip(&padded), Err(GzipError::TrailingData));
    assert_eq!(gunzip(b"{}"), Err(GzipError::NotGzip));
    let truncated = gzip(b"{\"Records\":[]}");
    assert!(matches!(
        gunzip(&truncated[..truncated.len() - 4]),
        Err(GzipError::Corrupt(_))
    ));
}

#[test]
fn region_folders_are_region_names_only() {
    for region in ["us-east-1", "us-gov-west-1", "ap-southeast-5", "il-central-1"] {
        assert!(is_region(region), "{region}");
    }
    for other in [
        "",
        "us",
        "us-east",
        "US-EAST-1",
        "us-east-1.evil.example",
        "..",
        "us--1",
    ] {
        assert!(!is_region(other), "{other}");
    }
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
        trail: TrailLocation {
            bucket: "b".into(),
            key_prefix: Some("org/".into()),
            organization_id: Some("o-abc".into()),
        },
        account: "111122223333".into(),
    };
    assert_eq!(location.account_root(), "org/AWSLogs/o-abc/111122223333/");
}
