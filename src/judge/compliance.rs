//! Compliance evidence: the logging controls of the CIS Amazon Web Services Foundations Benchmark
//! v3.0.0, section 3 (Logging), judged from what a reconcile read, each with its evidence (the
//! resource and the setting). Pure functions.

pub use super::evidence::{
    BucketEvidence, Control, ControlResult, Evidence, KeyEvidence, OtherRegions, RecorderEvidence, RegionEvidence,
    TrailEvidence, VpcEvidence, selectors,
};
use super::evidence::{control, pass};

pub const BENCHMARK: &str =
    "CIS Amazon Web Services Foundations Benchmark v3.0.0, sections 3 (Logging) and 4 (Monitoring)";

fn no_trail() -> String {
    "no trail observed".to_string()
}

const HIDDEN: &str =
    "not observable from this account (another account's Organization trail): check it in the trail owner's account";

/// The nine controls of section 3 and the fifteen of section 4, in the benchmark's order.
pub fn evaluate(e: &Evidence) -> Vec<Control> {
    let mut controls = vec![
        cloudtrail_all_regions(e.trail.as_ref()),
        log_file_validation(e.trail.as_ref()),
        super::account_controls::config_all_regions(e),
        bucket_access_logging(e.trail_bucket.as_ref()),
        trail_encrypted(e.trail.as_ref()),
        super::account_controls::key_rotation(e),
        super::account_controls::vpc_flow_logs(e),
        object_level_logging(e.trail.as_ref(), Access::Write),
        object_level_logging(e.trail.as_ref(), Access::Read),
    ];
    controls.extend(super::monitoring_controls::evaluate(e));
    controls
}

/// 3.1: a multi-region trail that logs, with management events read and write (Prowler's
/// cloudtrail_multi_region_enabled and Steampipe's cis_v300_3_1 ask the same of the trail).
fn cloudtrail_all_regions(t: Option<&TrailEvidence>) -> Control {
    const ID: &str = "3.1";
    const TITLE: &str = "Ensure CloudTrail is enabled in all regions";
    match t {
        // The benchmark cannot be judged from here, not excluded: the evidence says where to look.
        Some(t) if !t.details_observable => control(
            ID,
            TITLE,
            ControlResult::NotApplicable,
            format!(
                "{}: IsMultiRegionTrail={}; logging and selectors {HIDDEN}",
                t.arn, t.multi_region
            ),
        ),
        Some(t) => control(
            ID,
            TITLE,
            pass(t.multi_region && t.logging && t.management_events_all),
            format!(
                "{}: IsMultiRegionTrail={}, IsLogging={}, management events read and write={}",
                t.arn, t.multi_region, t.logging, t.management_events_all
            ),
        ),
        None => control(ID, TITLE, ControlResult::Fail, no_trail()),
    }
}

/// 3.2: LogFileValidationEnabled on the trail.
fn log_file_validation(t: Option<&TrailEvidence>) -> Control {
    const ID: &str = "3.2";
    const TITLE: &str = "Ensure CloudTrail log file validation is enabled";
    match t {
        Some(t) => control(
            ID,
            TITLE,
            pass(t.log_file_validation),
            format!("{}: LogFileValidationEnabled={}", t.arn, t.log_file_validation),
        ),
        None => control(ID, TITLE, ControlResult::Fail, no_trail()),
    }
}

/// 3.4: server access logging on the trail's bucket.
fn bucket_access_logging(b: Option<&BucketEvidence>) -> Control {
    const ID: &str = "3.4";
    const TITLE: &str = "Ensure that server access logging is enabled on the CloudTrail S3 bucket";
    match b {
        Some(b) => control(
            ID,
            TITLE,
            pass(b.exists && b.access_logs_to.is_some()),
            match (b.exists, &b.access_logs_to) {
                (false, _) => format!("s3://{}: the bucket does not exist", b.name),
                (true, Some(t)) => format!("s3://{}: logging to s3://{t}", b.name),
                (true, None) => format!("s3://{}: logging off", b.name),
            },
        ),
        None => control(
            ID,
            TITLE,
            ControlResult::NotApplicable,
            "not evaluated: the trail's bucket is not trailkeeper's (an Existing trail)".into(),
        ),
    }
}

/// 3.5: the trail's log files encrypted with a KMS key (KmsKeyId set).
fn trail_encrypted(t: Option<&TrailEvidence>) -> Control {
    const ID: &str = "3.5";
    const TITLE: &str = "Ensure CloudTrail logs are encrypted at rest using KMS CMKs";
    match t {
        Some(t) => control(
            ID,
            TITLE,
            pass(t.kms_key.is_some()),
            format!("{}: KmsKeyId={}", t.arn, t.kms_key.as_deref().unwrap_or("(none)")),
        ),
        None => control(ID, TITLE, ControlResult::Fail, no_trail()),
    }
}

#[derive(Clone, Copy)]
enum Access {
    Write,
    Read,
}

/// 3.8 and 3.9: S3 object-level data events (writes, reads) on the trail.
fn object_level_logging(t: Option<&TrailEvidence>, access: Access) -> Control {
    let (id, title, kind) = match access {
        Access::Write => (
            "3.8",
            "Ensure that Object-level logging for write events is enabled for S3 bucket",
            "write",
        ),
        Access::Read => (
            "3.9",
            "Ensure that Object-level logging for read events is enabled for S3 bucket",
            "read",
        ),
    };
    match t {
        Some(t) if !t.details_observable => {
            control(id, title, ControlResult::NotApplicable, format!("{}: {HIDDEN}", t.arn))
        }
        Some(t) => {
            let on = match access {
                Access::Write => t.s3_object_writes,
                Access::Read => t.s3_object_reads,
            };
            control(
                id,
                title,
                pass(on),
                format!("{}: S3 object-level {kind} data events={on}", t.arn),
            )
        }
        None => control(id, title, ControlResult::Fail, no_trail()),
    }
}

/// The status block of the evidence.
pub fn status(e: &Evidence) -> crate::api::ComplianceStatus {
    let controls = evaluate(e);
    crate::api::ComplianceStatus {
        benchmark: BENCHMARK.into(),
        summary: summary(&controls),
        controls,
    }
}

/// `7/9`: controls passed of those that apply.
pub fn summary(controls: &[Control]) -> String {
    let applicable = controls
        .iter()
        .filter(|c| c.result != ControlResult::NotApplicable)
        .count();
    let passed = controls.iter().filter(|c| c.result == ControlResult::Pass).count();
    format!("{passed}/{applicable}")
}

#[cfg(test)]
#[path = "compliance_tests.rs"]
mod tests;
