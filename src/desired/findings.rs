//! The AWS Security Hub findings of one account: its verdicts (each CIS control, the trail's
//! delivery, the logs' integrity, duplicate trails) as the AWS Security Finding Format (ASFF) wants
//! them, computed from the status the controller judged. Pure functions.
//!
//! What Security Hub requires of them (user guide, "Required top-level ASFF attributes"; partner
//! guide, "Guidelines for mapping findings into the ASFF"; API reference, AwsSecurityFinding):
//! - the account's own custom integration: ProductArn
//!   `arn:{partition}:securityhub:{region}:{account}:product/{account}/default`, imported by that
//!   account ("The identifier of the associated account must match the value of the AwsAccountId
//!   attribute");
//! - a stable Id per account and verdict (an Id seen before is an update of that finding);
//! - SchemaVersion 2018-10-08, Title of at most 256 characters, Description of at most 1024,
//!   Remediation.Recommendation.Text of at most 512; Types from the ASFF types taxonomy; Severity
//!   and Types given through FindingProviderFields (providers "should not use BatchImportFindings
//!   to update" the top-level ones).
//!
//! https://docs.aws.amazon.com/securityhub/latest/userguide/asff-required-attributes.html
//! https://docs.aws.amazon.com/securityhub/latest/partnerguide/guidelines-asff-mapping.html
//! https://docs.aws.amazon.com/securityhub/latest/userguide/securityhub-findings-format-type-taxonomy.html

use crate::api::{
    Control, ControlResult, LoggingBaselineSpec, LoggingBaselineStatus, Mode, TrailPolicySpec, TrailSource,
};

/// Every GeneratorId (and Id) trailkeeper writes starts with this: what it reads back and owns.
pub const GENERATOR_PREFIX: &str = "trailkeeper/";
/// The ProductFields entry with the digest of what a finding says: compared to skip unchanged ones.
pub const DIGEST_FIELD: &str = "trailkeeper/Digest";
/// The ProductFields entry naming the LoggingBaseline that judged the finding.
pub const BASELINE_FIELD: &str = "trailkeeper/LoggingBaseline";
pub const SCHEMA_VERSION: &str = "2018-10-08";
/// Security Hub "deletes findings 90 days after the most recent update": a finding whose verdict
/// has not changed is imported again after this many days, so it stays visible.
pub const REFRESH_AFTER_DAYS: i64 = 30;

const CIS: &str = "cis-aws-foundations-benchmark/v3.0.0";
const CIS_TYPE: &str =
    "Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark";
const BEST_PRACTICES_TYPE: &str = "Software and Configuration Checks/AWS Security Best Practices";
const TITLE_MAX: usize = 256;
const DESCRIPTION_MAX: usize = 1024;
const REMEDIATION_MAX: usize = 512;

/// Where an account's findings go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindingsTarget {
    pub account: String,
    pub region: String,
    pub partition: &'static str,
}

impl FindingsTarget {
    /// The target of a baseline with `spec.securityHub` enabled (None otherwise).
    pub fn of(spec: &LoggingBaselineSpec) -> Option<Self> {
        let hub = &spec.security_hub;
        hub.enabled.then(|| {
            let region = hub.region.clone().unwrap_or_else(|| spec.primary_region.clone());
            FindingsTarget {
                account: spec.account_id.clone(),
                partition: super::partition(&region),
                region,
            }
        })
    }

    /// The account's own custom integration.
    pub fn product_arn(&self) -> String {
        format!(
            "arn:{}:securityhub:{}:{}:product/{}/default",
            self.partition, self.region, self.account, self.account
        )
    }
}

/// ASFF `Compliance.Status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FindingStatus {
    Passed,
    Failed,
    NotAvailable,
}

impl FindingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingStatus::Passed => "PASSED",
            FindingStatus::Failed => "FAILED",
            FindingStatus::NotAvailable => "NOT_AVAILABLE",
        }
    }
}

/// ASFF `Severity.Label`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SeverityLabel {
    Informational,
    Low,
    Medium,
    High,
}

impl SeverityLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            SeverityLabel::Informational => "INFORMATIONAL",
            SeverityLabel::Low => "LOW",
            SeverityLabel::Medium => "MEDIUM",
            SeverityLabel::High => "HIGH",
        }
    }
}

/// An ASFF resource: its type (`AwsAccount`, `AwsCloudTrailTrail`, `AwsS3Bucket`) and id.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FindingResource {
    pub type_: String,
    pub id: String,
}

/// One finding as trailkeeper wants it in Security Hub (timestamps and the record state are the
/// engine's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredFinding {
    pub id: String,
    pub generator_id: String,
    pub title: String,
    pub description: String,
    pub status: FindingStatus,
    pub severity: SeverityLabel,
    pub types: Vec<String>,
    pub resources: Vec<FindingResource>,
    pub related_requirements: Vec<String>,
    pub remediation: String,
    pub remediation_url: String,
    /// `namespace/name` of the LoggingBaseline.
    pub baseline: String,
}

impl DesiredFinding {
    /// A digest of what the finding says: equal digests, nothing to import.
    pub fn digest(&self) -> String {
        let text = format!(
            "{}\n{}\n{}\n{}\n{}\n{}\n{}\n{:?}\n{:?}\n{:?}\n{}\n{}\n{}",
            self.id,
            self.generator_id,
            self.title,
            self.description,
            self.status.as_str(),
            self.severity.as_str(),
            self.remediation,
            self.types,
            self.resources,
            self.related_requirements,
            self.remediation_url,
            self.baseline,
            SCHEMA_VERSION
        );
        hex::encode(ring::digest::digest(&ring::digest::SHA256, text.as_bytes()))
    }
}

/// `text` cut to `max` characters (ASFF limits), marked when cut.
fn bounded(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

/// What the findings of one baseline are judged from.
pub struct FindingsInput<'a> {
    pub spec: &'a LoggingBaselineSpec,
    pub trail_policy: &'a TrailPolicySpec,
    /// `namespace/name` of the LoggingBaseline.
    pub baseline: &'a str,
    /// The status the controller judged this reconcile (compliance with an Organization trail's
    /// owner's section 4, the integrity verification, the duplicate trails).
    pub status: &'a LoggingBaselineStatus,
}

/// The account's findings: one per CIS control judged, the trail's delivery (once read), the
/// logs' integrity (with verifyIntegrity, once verified) and duplicate trails (once judged).
pub fn findings(input: &FindingsInput<'_>) -> Vec<DesiredFinding> {
    let Some(target) = FindingsTarget::of(input.spec) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(compliance) = &input.status.compliance {
        out.extend(compliance.controls.iter().map(|c| control(input, &target, c)));
    }
    out.extend(delivery(input, &target));
    out.extend(integrity(input, &target));
    if input.status.compliance.is_some() {
        // Judged at every reconcile that could read the account (compliance says it could).
        out.push(duplicate_trails(input, &target));
    }
    out
}

fn account_resource(target: &FindingsTarget) -> FindingResource {
    FindingResource {
        type_: "AwsAccount".into(),
        id: format!("AWS::::Account:{}", target.account),
    }
}

fn trail_resource(input: &FindingsInput<'_>, target: &FindingsTarget) -> FindingResource {
    match &input.status.trail_arn {
        Some(arn) => FindingResource {
            type_: "AwsCloudTrailTrail".into(),
            id: arn.clone(),
        },
        None => account_resource(target),
    }
}

fn bucket_resource(input: &FindingsInput<'_>, target: &FindingsTarget) -> FindingResource {
    match &input.status.bucket_name {
        Some(bucket) => FindingResource {
            type_: "AwsS3Bucket".into(),
            id: format!("arn:{}:s3:::{bucket}", target.partition),
        },
        None => trail_resource(input, target),
    }
}

fn finding_id(target: &FindingsTarget, name: &str) -> String {
    format!("{GENERATOR_PREFIX}{}/{name}", target.account)
}

/// The severity of the Security Hub control a CIS v3.0.0 control maps to, and its page.
fn security_hub_control(id: &str) -> (SeverityLabel, &'static str) {
    match id {
        "3.1" => (
            SeverityLabel::High,
            "https://docs.aws.amazon.com/securityhub/latest/userguide/cloudtrail-controls.html#cloudtrail-1",
        ),
        "3.2" => (
            SeverityLabel::Low,
            "https://docs.aws.amazon.com/securityhub/latest/userguide/cloudtrail-controls.html#cloudtrail-4",
        ),
        "3.3" => (
            SeverityLabel::Medium,
            "https://docs.aws.amazon.com/securityhub/latest/userguide/config-controls.html#config-1",
        ),
        "3.4" => (
            SeverityLabel::Low,
            "https://docs.aws.amazon.com/securityhub/latest/userguide/cloudtrail-controls.html#cloudtrail-7",
        ),
        "3.5" => (
            SeverityLabel::Medium,
            "https://docs.aws.amazon.com/securityhub/latest/userguide/cloudtrail-controls.html#cloudtrail-2",
        ),
        "3.6" => (
            SeverityLabel::Medium,
            "https://docs.aws.amazon.com/securityhub/latest/userguide/kms-controls.html#kms-4",
        ),
        "3.7" => (
            SeverityLabel::Medium,
            "https://docs.aws.amazon.com/securityhub/latest/userguide/ec2-controls.html#ec2-6",
        ),
        "3.8" => (
            SeverityLabel::Medium,
            "https://docs.aws.amazon.com/securityhub/latest/userguide/s3-controls.html#s3-22",
        ),
        "3.9" => (
            SeverityLabel::Medium,
            "https://docs.aws.amazon.com/securityhub/latest/userguide/s3-controls.html#s3-23",
        ),
        _ => (
            SeverityLabel::Low,
            "https://docs.aws.amazon.com/securityhub/latest/userguide/cloudwatch-controls.html",
        ),
    }
}

fn status_of(result: &ControlResult) -> FindingStatus {
    match result {
        ControlResult::Pass => FindingStatus::Passed,
        ControlResult::Fail => FindingStatus::Failed,
        ControlResult::NotApplicable => FindingStatus::NotAvailable,
    }
}

/// Who keeps a control, in the words of a remediation: what trailkeeper repairs at its next
/// reconcile, what it only reports, and what is not trailkeeper's to change.
fn remediation(input: &FindingsInput<'_>, id: &str) -> String {
    let spec = input.spec;
    let baseline = input.baseline;
    let managed = spec.trail.source == TrailSource::Managed;
    let enforced = spec.mode == Mode::Enforce;
    let keeps = |what: &str| {
        if enforced {
            format!("trailkeeper (LoggingBaseline {baseline}) keeps {what}: its next reconcile repairs drift.")
        } else {
            format!(
                "trailkeeper (LoggingBaseline {baseline}) keeps {what} but is in Observe mode: it reports the change it would make; set spec.mode Enforce or fix it by hand."
            )
        }
    };
    let existing = "the trail is not trailkeeper's (an Existing trail): list the setting in the TrailPolicy's manageExisting, or fix it where the trail is owned.";
    match id {
        "3.1" | "3.2" | "3.5" if managed => keeps("the trail's settings (multi-Region, logging, log file validation, KMS encryption, management events)"),
        "3.1" | "3.2" | "3.5" => existing.to_string(),
        "3.4" if managed => keeps("server access logging of the trail bucket"),
        "3.4" => "The trail bucket is its owner's: turn on its server access logging there.".to_string(),
        "3.8" | "3.9" => "Record S3 object-level data events: add dataEvents (type AWS::S3::Object) or advanced selectors to the TrailPolicy; trailkeeper then keeps them on its trail (they are billed per event).".to_string(),
        "3.3" => "Judged on the whole account: a configuration recorder of all supported resource types that records in every Region judged (configRules.createRecorder lets trailkeeper create missing ones).".to_string(),
        "3.6" => "Judged on every customer-managed key of the account: turn on automatic rotation for the keys named in the evidence (trailkeeper keeps its own keys rotating).".to_string(),
        "3.7" => "Judged on every VPC of the Regions judged: a flow log of REJECT or ALL traffic (trailkeeper keeps them on the VPCs of spec.regions; add the Regions named in the evidence).".to_string(),
        _ if input.trail_policy.monitoring.is_some() => keeps("this metric filter and alarm (TrailPolicy monitoring)"),
        _ => "Add monitoring (with cloudWatchLogs) to the TrailPolicy: trailkeeper then keeps the CIS section 4 metric filters and alarms.".to_string(),
    }
}

fn control(input: &FindingsInput<'_>, target: &FindingsTarget, c: &Control) -> DesiredFinding {
    let (severity, url) = security_hub_control(&c.id);
    let resource = match c.id.as_str() {
        "3.1" | "3.2" | "3.5" | "3.8" | "3.9" => trail_resource(input, target),
        "3.4" => bucket_resource(input, target),
        _ => account_resource(target),
    };
    let status = status_of(&c.result);
    let verdict = match status {
        FindingStatus::Passed => "passes",
        FindingStatus::Failed => "fails",
        FindingStatus::NotAvailable => "cannot be judged from this account",
    };
    DesiredFinding {
        id: finding_id(target, &format!("{CIS}/{}", c.id)),
        generator_id: format!("{GENERATOR_PREFIX}{CIS}/{}", c.id),
        title: bounded(&format!("CIS {} {}", c.id, c.title), TITLE_MAX),
        description: bounded(
            &format!(
                "Account {} {verdict} CIS AWS Foundations Benchmark v3.0.0 {}: {}",
                target.account, c.id, c.evidence
            ),
            DESCRIPTION_MAX,
        ),
        status,
        severity,
        types: vec![CIS_TYPE.into()],
        resources: vec![resource],
        related_requirements: vec![format!("CIS AWS Foundations Benchmark v3.0.0/{}", c.id)],
        remediation: bounded(&remediation(input, &c.id), REMEDIATION_MAX),
        remediation_url: url.into(),
        baseline: input.baseline.to_string(),
    }
}

/// The DeliveryHealthy message without the ages it carries ("3 min ago", "for 95 minutes"): they
/// change at every reconcile, and a finding whose verdict did not change is not imported again.
fn without_ages(message: &str) -> String {
    static AGES: std::sync::OnceLock<Option<[regex::Regex; 3]>> = std::sync::OnceLock::new();
    let Some([ago, late, since]) = AGES.get_or_init(|| {
        Some([
            regex::Regex::new(r" \d+ min ago").ok()?,
            regex::Regex::new(r"for \d+ minutes? \(alarm after").ok()?,
            regex::Regex::new(r" \d+ minutes? ago").ok()?,
        ])
    }) else {
        return message.to_string();
    };
    let message = ago.replace_all(message, "");
    let message = late.replace_all(&message, "for longer than the alarm (after");
    since.replace_all(&message, "").into_owned()
}

/// The trail's deliveries (the DeliveryHealthy condition), once read.
fn delivery(input: &FindingsInput<'_>, target: &FindingsTarget) -> Option<DesiredFinding> {
    let condition = input.status.conditions.iter().find(|c| c.type_ == "DeliveryHealthy")?;
    let status = match condition.status.as_str() {
        "True" => FindingStatus::Passed,
        "False" => FindingStatus::Failed,
        _ => FindingStatus::NotAvailable,
    };
    Some(DesiredFinding {
        id: finding_id(target, "delivery"),
        generator_id: format!("{GENERATOR_PREFIX}delivery"),
        title: "CloudTrail logs are delivered".into(),
        description: bounded(
            &format!(
                "Account {}: {} ({})",
                target.account,
                without_ages(&condition.message),
                condition.reason
            ),
            DESCRIPTION_MAX,
        ),
        status,
        severity: SeverityLabel::High,
        types: vec![BEST_PRACTICES_TYPE.into()],
        resources: vec![trail_resource(input, target)],
        related_requirements: Vec::new(),
        remediation: bounded(
            &format!(
                "See the DeliveryHealthy condition of LoggingBaseline {}: a delivery error names the bucket policy, key or role that changed; trailkeeper repairs its own resources at the next reconcile.",
                input.baseline
            ),
            REMEDIATION_MAX,
        ),
        remediation_url: "https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_GetTrailStatus.html".into(),
        baseline: input.baseline.to_string(),
    })
}

/// The last integrity verification (spec.verifyIntegrity), once it ran.
fn integrity(input: &FindingsInput<'_>, target: &FindingsTarget) -> Option<DesiredFinding> {
    if !input.spec.verify_integrity.enabled {
        return None;
    }
    let i = input.status.integrity.as_ref()?;
    let mut description = format!(
        "Account {}: {} digest files and {} log files delivered between {} and {} verified ({})",
        target.account,
        i.digests,
        i.log_files,
        i.from,
        i.to,
        if i.valid { "valid" } else { "not valid" }
    );
    if !i.problems.is_empty() {
        description.push_str(&format!(": {}", i.problems.join("; ")));
    }
    Some(DesiredFinding {
        id: finding_id(target, "integrity"),
        generator_id: format!("{GENERATOR_PREFIX}integrity"),
        title: "CloudTrail log files are intact (digest validation)".into(),
        description: bounded(&description, DESCRIPTION_MAX),
        status: if i.valid {
            FindingStatus::Passed
        } else {
            FindingStatus::Failed
        },
        severity: SeverityLabel::High,
        types: vec![BEST_PRACTICES_TYPE.into()],
        resources: vec![bucket_resource(input, target)],
        related_requirements: Vec::new(),
        remediation: bounded(
            &format!(
                "Investigate the files listed in status.integrity.problems of LoggingBaseline {}: a log file or digest that is missing or does not match was altered or deleted after delivery.",
                input.baseline
            ),
            REMEDIATION_MAX,
        ),
        remediation_url:
            "https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-validation-intro.html"
                .into(),
        baseline: input.baseline.to_string(),
    })
}

/// Management events recorded more than once in the primary Region (each copy after the first
/// is charged).
fn duplicate_trails(input: &FindingsInput<'_>, target: &FindingsTarget) -> DesiredFinding {
    let (status, description) = match &input.status.duplicate_trails {
        Some(d) => (
            FindingStatus::Failed,
            format!(
                "Account {}: {} trails record the management events in {} ({}), {} paid cop{}{}; {}",
                target.account,
                d.trails.len(),
                d.region,
                d.trails.join(", "),
                d.paid_copies,
                if d.paid_copies == 1 { "y" } else { "ies" },
                d.estimated_monthly_cost_usd
                    .map(|c| format!(", about ${c:.2} a month"))
                    .unwrap_or_default(),
                d.note
            ),
        ),
        None => (
            FindingStatus::Passed,
            format!(
                "Account {}: one trail records the management events in {}",
                target.account, input.spec.primary_region
            ),
        ),
    };
    DesiredFinding {
        id: finding_id(target, "duplicate-trails"),
        generator_id: format!("{GENERATOR_PREFIX}duplicate-trails"),
        title: "Management events are recorded once (no paid copies)".into(),
        description: bounded(&description, DESCRIPTION_MAX),
        status,
        severity: SeverityLabel::Low,
        types: vec![BEST_PRACTICES_TYPE.into()],
        resources: vec![account_resource(target)],
        related_requirements: Vec::new(),
        remediation: bounded(
            "Stop the extra trail recording management events, or delete it; beside AWS Control Tower's trail, integrate it (trail.source: Existing) instead of keeping a trail of your own.",
            REMEDIATION_MAX,
        ),
        remediation_url: "https://aws.amazon.com/cloudtrail/pricing/".into(),
        baseline: input.baseline.to_string(),
    }
}

#[cfg(test)]
#[path = "findings_tests.rs"]
mod tests;
