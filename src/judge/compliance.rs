//! Compliance evidence: the logging controls of the CIS Amazon Web Services Foundations Benchmark
//! v3.0.0, section 3 (Logging), judged from what a reconcile read, each with its evidence (the
//! resource and the setting). Pure functions.

pub use crate::api::{Control, ControlResult};
use crate::desired::{EventSelectors, TrailSettings};

pub const BENCHMARK: &str = "CIS Amazon Web Services Foundations Benchmark v3.0.0, section 3 (Logging)";

/// What the controls are judged on, as read (or, for what this reconcile repaired, as written).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evidence {
    pub trail: Option<TrailEvidence>,
    /// The trail key: ARN and rotation (None: the key does not exist). Absent for a trail whose
    /// key is not trailkeeper's to read.
    pub key: Option<Option<(String, bool)>>,
    /// The trail bucket and where its access logs go (None: not logged; the bucket missing:
    /// `exists` false). Absent for a trail whose bucket is not trailkeeper's to read.
    pub trail_bucket: Option<BucketEvidence>,
    /// Per region: whether a configuration recorder records (None: not read, Config rules off).
    pub config: Vec<(String, Option<bool>)>,
    /// Per region: VPCs with a compliant flow log, VPCs (None: flow logs off).
    pub flow_logs: Vec<(String, Option<(usize, usize)>)>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketEvidence {
    pub name: String,
    pub exists: bool,
    pub access_logs_to: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrailEvidence {
    pub arn: String,
    pub multi_region: bool,
    pub logging: bool,
    pub log_file_validation: bool,
    pub kms_key: Option<String>,
    pub management_events_all: bool,
    pub s3_object_writes: bool,
    pub s3_object_reads: bool,
    /// False for another account's trail: its logging and selectors cannot be read from here.
    pub details_observable: bool,
}

impl TrailEvidence {
    pub fn observed(t: &crate::aws::cloudtrail::ObservedTrail) -> Self {
        let (management, writes, reads) = selectors(&t.event_selectors);
        Self {
            arn: t.arn.clone(),
            multi_region: t.multi_region,
            logging: t.logging,
            log_file_validation: t.log_file_validation,
            kms_key: t.kms_key.clone(),
            management_events_all: management,
            s3_object_writes: writes,
            s3_object_reads: reads,
            details_observable: t.details_observable,
        }
    }

    pub fn of(settings: &TrailSettings, arn: &str, logging: bool, kms_key: Option<String>) -> Self {
        let (management, writes, reads) = selectors(&settings.event_selectors);
        Self {
            arn: arn.to_string(),
            multi_region: settings.multi_region,
            logging,
            log_file_validation: settings.log_file_validation,
            kms_key,
            management_events_all: management,
            s3_object_writes: writes,
            s3_object_reads: reads,
            details_observable: true,
        }
    }
}

/// (management events read and write, S3 object-level writes, S3 object-level reads).
pub fn selectors(selectors: &EventSelectors) -> (bool, bool, bool) {
    let (mut management, mut writes, mut reads) = (false, false, false);
    match selectors {
        EventSelectors::Basic(basic) => {
            for s in basic {
                let (w, r) = match s.read_write_type.as_str() {
                    "All" => (true, true),
                    "WriteOnly" => (true, false),
                    "ReadOnly" => (false, true),
                    _ => (false, false),
                };
                management |= s.include_management_events && w && r;
                if s.data_resources.iter().any(|(kind, _)| kind == "AWS::S3::Object") {
                    writes |= w;
                    reads |= r;
                }
            }
        }
        EventSelectors::Advanced(advanced) => {
            for s in advanced {
                let field = |name: &str| s.field_selectors.iter().find(|f| f.field == name);
                let category = field("eventCategory").map(|f| f.equals.clone()).unwrap_or_default();
                let read_only = field("readOnly").map(|f| f.equals.clone()).unwrap_or_default();
                let (w, r) = match read_only.as_slice() {
                    [] => (true, true),
                    [v] if v == "true" => (false, true),
                    [v] if v == "false" => (true, false),
                    _ => (true, true),
                };
                if category.iter().any(|c| c == "Management") {
                    management |= w && r;
                }
                let s3 = field("resources.type").is_some_and(|f| f.equals.iter().any(|t| t == "AWS::S3::Object"));
                if category.iter().any(|c| c == "Data") && s3 {
                    writes |= w;
                    reads |= r;
                }
            }
        }
    }
    (management, writes, reads)
}

fn control(id: &str, title: &str, result: ControlResult, evidence: String) -> Control {
    Control {
        id: id.into(),
        title: title.into(),
        result,
        evidence,
    }
}

fn pass(ok: bool) -> ControlResult {
    if ok { ControlResult::Pass } else { ControlResult::Fail }
}

fn no_trail() -> String {
    "no trail observed".to_string()
}

pub fn evaluate(e: &Evidence) -> Vec<Control> {
    use ControlResult::*;
    let t = e.trail.as_ref();
    let hidden = "not observable from this account (another account's Organization trail): check it in the trail owner's account";
    let mut out = vec![
        match t {
            Some(t) if !t.details_observable => control(
                "3.1",
                "Ensure CloudTrail is enabled in all regions",
                NotApplicable,
                format!(
                    "{}: IsMultiRegionTrail={}; logging and selectors {hidden}",
                    t.arn, t.multi_region
                ),
            ),
            Some(t) => control(
                "3.1",
                "Ensure CloudTrail is enabled in all regions",
                pass(t.multi_region && t.logging && t.management_events_all),
                format!(
                    "{}: IsMultiRegionTrail={}, IsLogging={}, management events read and write={}",
                    t.arn, t.multi_region, t.logging, t.management_events_all
                ),
            ),
            None => control("3.1", "Ensure CloudTrail is enabled in all regions", Fail, no_trail()),
        },
        match t {
            Some(t) => control(
                "3.2",
                "Ensure CloudTrail log file validation is enabled",
                pass(t.log_file_validation),
                format!("{}: LogFileValidationEnabled={}", t.arn, t.log_file_validation),
            ),
            None => control(
                "3.2",
                "Ensure CloudTrail log file validation is enabled",
                Fail,
                no_trail(),
            ),
        },
    ];
    let observed: Vec<&(String, Option<bool>)> = e.config.iter().filter(|(_, r)| r.is_some()).collect();
    out.push(if observed.is_empty() {
        control(
            "3.3",
            "Ensure AWS Config is enabled in all regions",
            NotApplicable,
            "not evaluated: configRules is off for this baseline".into(),
        )
    } else {
        let recording: Vec<String> = observed
            .iter()
            .map(|(region, r)| format!("{region}: recording={}", r.unwrap_or(false)))
            .collect();
        control(
            "3.3",
            "Ensure AWS Config is enabled in all regions",
            pass(observed.iter().all(|(_, r)| *r == Some(true))),
            recording.join(", "),
        )
    });
    out.push(match &e.trail_bucket {
        Some(b) => control(
            "3.4",
            "Ensure that server access logging is enabled on the CloudTrail S3 bucket",
            pass(b.exists && b.access_logs_to.is_some()),
            match (b.exists, &b.access_logs_to) {
                (false, _) => format!("s3://{}: the bucket does not exist", b.name),
                (true, Some(t)) => format!("s3://{}: logging to s3://{t}", b.name),
                (true, None) => format!("s3://{}: logging off", b.name),
            },
        ),
        None => control(
            "3.4",
            "Ensure that server access logging is enabled on the CloudTrail S3 bucket",
            NotApplicable,
            "not evaluated: the trail's bucket is not trailkeeper's (an Existing trail)".into(),
        ),
    });
    out.push(match t {
        Some(t) => control(
            "3.5",
            "Ensure CloudTrail logs are encrypted at rest using KMS CMKs",
            pass(t.kms_key.is_some()),
            format!("{}: KmsKeyId={}", t.arn, t.kms_key.as_deref().unwrap_or("(none)")),
        ),
        None => control(
            "3.5",
            "Ensure CloudTrail logs are encrypted at rest using KMS CMKs",
            Fail,
            no_trail(),
        ),
    });
    out.push(match &e.key {
        Some(Some((arn, rotation))) => control(
            "3.6",
            "Ensure rotation for customer-created symmetric CMKs is enabled",
            pass(*rotation),
            format!("{arn}: KeyRotationEnabled={rotation}"),
        ),
        Some(None) => control(
            "3.6",
            "Ensure rotation for customer-created symmetric CMKs is enabled",
            Fail,
            "the trail key does not exist".into(),
        ),
        None => control(
            "3.6",
            "Ensure rotation for customer-created symmetric CMKs is enabled",
            NotApplicable,
            "not evaluated: the trail's key is not trailkeeper's (an Existing trail)".into(),
        ),
    });
    let flows: Vec<(&String, (usize, usize))> = e.flow_logs.iter().filter_map(|(r, c)| c.map(|c| (r, c))).collect();
    out.push(if flows.is_empty() {
        control(
            "3.7",
            "Ensure VPC flow logging is enabled in all VPCs",
            NotApplicable,
            "not evaluated: flowLogs is off for this baseline".into(),
        )
    } else {
        let coverage: Vec<String> = flows
            .iter()
            .map(|(region, (covered, total))| format!("{region}: {covered}/{total} VPCs"))
            .collect();
        control(
            "3.7",
            "Ensure VPC flow logging is enabled in all VPCs",
            pass(flows.iter().all(|(_, (covered, total))| covered == total)),
            coverage.join(", "),
        )
    });
    for (id, title, on, kind) in [
        (
            "3.8",
            "Ensure that Object-level logging for write events is enabled for S3 bucket",
            t.map(|t| t.s3_object_writes),
            "write",
        ),
        (
            "3.9",
            "Ensure that Object-level logging for read events is enabled for S3 bucket",
            t.map(|t| t.s3_object_reads),
            "read",
        ),
    ] {
        out.push(match (t, on) {
            (Some(t), _) if !t.details_observable => control(id, title, NotApplicable, format!("{}: {hidden}", t.arn)),
            (Some(t), Some(on)) => control(
                id,
                title,
                pass(on),
                format!("{}: S3 object-level {kind} data events={on}", t.arn),
            ),
            _ => control(id, title, Fail, no_trail()),
        });
    }
    out
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
mod tests {
    use super::*;
    use crate::desired::{AdvancedField, AdvancedSelector, BasicSelector};

    fn compliant() -> Evidence {
        Evidence {
            trail: Some(TrailEvidence {
                arn: "arn:aws:cloudtrail:eu-west-1:111122223333:trail/trailkeeper".into(),
                multi_region: true,
                logging: true,
                log_file_validation: true,
                kms_key: Some("arn:aws:kms:eu-west-1:111122223333:key/k".into()),
                management_events_all: true,
                s3_object_writes: true,
                s3_object_reads: true,
                details_observable: true,
            }),
            key: Some(Some(("arn:aws:kms:eu-west-1:111122223333:key/k".into(), true))),
            trail_bucket: Some(BucketEvidence {
                name: "b".into(),
                exists: true,
                access_logs_to: Some("access".into()),
            }),
            config: vec![("eu-west-1".into(), Some(true))],
            flow_logs: vec![("eu-west-1".into(), Some((2, 2)))],
        }
    }

    fn result_of(e: &Evidence, id: &str) -> (ControlResult, String) {
        let c = evaluate(e).into_iter().find(|c| c.id == id).unwrap();
        (c.result, c.evidence)
    }

    #[test]
    fn every_control_passes_on_a_compliant_account() {
        let controls = evaluate(&compliant());
        assert_eq!(controls.len(), 9);
        assert!(controls.iter().all(|c| c.result == ControlResult::Pass), "{controls:?}");
        assert_eq!(summary(&controls), "9/9");
    }

    /// One failure per control, each with the setting that fails it in its evidence.
    #[test]
    fn each_control_fails_on_its_own_setting() {
        type Break = fn(&mut Evidence);
        let cases: [(&str, Break, &str); 9] = [
            (
                "3.1",
                |e| e.trail.as_mut().unwrap().multi_region = false,
                "IsMultiRegionTrail=false",
            ),
            (
                "3.2",
                |e| e.trail.as_mut().unwrap().log_file_validation = false,
                "LogFileValidationEnabled=false",
            ),
            (
                "3.3",
                |e| e.config.push(("us-east-1".into(), Some(false))),
                "us-east-1: recording=false",
            ),
            (
                "3.4",
                |e| e.trail_bucket.as_mut().unwrap().access_logs_to = None,
                "s3://b: logging off",
            ),
            ("3.5", |e| e.trail.as_mut().unwrap().kms_key = None, "KmsKeyId=(none)"),
            (
                "3.6",
                |e| e.key = Some(Some(("k".into(), false))),
                "KeyRotationEnabled=false",
            ),
            (
                "3.7",
                |e| e.flow_logs.push(("us-east-1".into(), Some((1, 3)))),
                "us-east-1: 1/3 VPCs",
            ),
            (
                "3.8",
                |e| e.trail.as_mut().unwrap().s3_object_writes = false,
                "write data events=false",
            ),
            (
                "3.9",
                |e| e.trail.as_mut().unwrap().s3_object_reads = false,
                "read data events=false",
            ),
        ];
        for (id, break_it, evidence) in cases {
            let mut e = compliant();
            break_it(&mut e);
            let (result, text) = result_of(&e, id);
            assert_eq!(result, ControlResult::Fail, "{id}: {text}");
            assert!(text.contains(evidence), "{id}: {text}");
            let others_pass = evaluate(&e)
                .iter()
                .filter(|c| c.id != id)
                .all(|c| c.result == ControlResult::Pass);
            assert!(others_pass, "{id} broke only itself");
        }
    }

    #[test]
    fn what_is_not_evaluated_is_not_applicable_and_not_counted() {
        let mut e = compliant();
        e.config.clear();
        e.flow_logs = vec![("eu-west-1".into(), None)];
        let controls = evaluate(&e);
        assert_eq!(result_of(&e, "3.3").0, ControlResult::NotApplicable);
        assert_eq!(result_of(&e, "3.7").0, ControlResult::NotApplicable);
        assert_eq!(summary(&controls), "7/7");
    }

    #[test]
    fn object_level_logging_reads_basic_and_advanced_selectors() {
        let basic = EventSelectors::Basic(vec![BasicSelector {
            read_write_type: "WriteOnly".into(),
            include_management_events: true,
            exclude_management_event_sources: Vec::new(),
            data_resources: vec![("AWS::S3::Object".into(), vec!["arn:aws:s3".into()])],
        }]);
        assert_eq!(selectors(&basic), (false, true, false));
        let field = |f: &str, v: &str| AdvancedField {
            field: f.into(),
            equals: vec![v.into()],
            ..Default::default()
        };
        let advanced = EventSelectors::Advanced(vec![
            AdvancedSelector {
                name: "management".into(),
                field_selectors: vec![field("eventCategory", "Management")],
            },
            AdvancedSelector {
                name: "s3 reads".into(),
                field_selectors: vec![
                    field("eventCategory", "Data"),
                    field("resources.type", "AWS::S3::Object"),
                    field("readOnly", "true"),
                ],
            },
        ]);
        assert_eq!(selectors(&advanced), (true, false, true));
    }
}
