//! Delivery health: whether logs actually arrive, judged from what the reconcile already read
//! (GetTrailStatus, DescribeFlowLogs). Pure functions.

use std::collections::BTreeMap;

use crate::aws::cloudtrail::TrailDelivery;
use crate::aws::ec2::ObservedFlowLog;

/// Digests are delivered hourly: they are late only an hour after log files would be.
const DIGEST_PERIOD_SECONDS: i64 = 3600;

/// What one delivering part was last seen doing. `problem` set: it is not healthy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryFinding {
    /// `cloudtrail`, `cloudtrail-digest`, `cloudtrail-cloudwatch-logs`, `vpc-flow-logs/{region}`.
    pub component: String,
    /// Seconds since its last delivery, when it delivered at all.
    pub age_seconds: Option<i64>,
    /// The error the service reports, if any.
    pub error: Option<String>,
    pub problem: Option<String>,
}

impl DeliveryFinding {
    fn new(component: &str) -> Self {
        Self {
            component: component.to_string(),
            age_seconds: None,
            error: None,
            problem: None,
        }
    }
}

fn minutes(seconds: i64) -> String {
    match seconds / 60 {
        1 => "1 minute".to_string(),
        m => format!("{m} minutes"),
    }
}

/// One timed delivery: late after `alarm_after` seconds (or, before any delivery, that long after
/// logging started), failing when the service reports an error.
fn judge(
    component: &str,
    latest: Option<i64>,
    error: &Option<String>,
    started: Option<i64>,
    now: i64,
    alarm_after: i64,
) -> DeliveryFinding {
    let mut finding = DeliveryFinding::new(component);
    finding.age_seconds = latest.map(|t| (now - t).max(0));
    finding.error = error.clone();
    finding.problem = match (error, finding.age_seconds, started) {
        (Some(e), _, _) => Some(format!(
            "{component}: the service reports the delivery error {e} (a bucket policy, key or role changed behind trailkeeper's back?)"
        )),
        (None, Some(age), _) if age > alarm_after => Some(format!(
            "{component}: nothing delivered for {} (alarm after {})",
            minutes(age),
            minutes(alarm_after)
        )),
        (None, None, Some(started)) if now - started > alarm_after => Some(format!(
            "{component}: nothing delivered since logging started {} ago",
            minutes(now - started)
        )),
        _ => None,
    };
    finding
}

/// The trail's deliveries: log files always; digests when log file validation is on; CloudWatch
/// Logs when the trail sends there. A trail that does not log is the Trail component's business.
pub fn trail(
    delivery: &TrailDelivery,
    logging: bool,
    log_file_validation: bool,
    cloud_watch_logs: bool,
    now: i64,
    alarm_after: i64,
) -> Vec<DeliveryFinding> {
    if !logging {
        return Vec::new();
    }
    let started = delivery.logging_started;
    // LatestDeliveryError stays as the last error CloudTrail met (GetTrailStatus reference: "any
    // Amazon S3 error that CloudTrail encountered when attempting to deliver log files"; nothing
    // says a later delivery clears it). When the attempt times show that the latest attempt,
    // recent, succeeded, the error is an earlier attempt's: no alarm, the error still told. Those
    // two fields are marked "no longer in use" in the reference: absent, or not recent (frozen),
    // they order nothing and the error stands.
    // https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_GetTrailStatus.html
    let error_resolved = matches!(
        (delivery.log_files_attempt, delivery.log_files_attempt_succeeded),
        (Some(attempt), Some(succeeded)) if succeeded >= attempt && now - attempt <= alarm_after
    );
    let current_error = delivery.log_files_error.clone().filter(|_| !error_resolved);
    let mut log_files = judge(
        "cloudtrail",
        delivery.log_files,
        &current_error,
        started,
        now,
        alarm_after,
    );
    log_files.error = delivery.log_files_error.clone();
    let digests = log_file_validation.then(|| {
        judge(
            "cloudtrail-digest",
            delivery.digests,
            &delivery.digests_error,
            started,
            now,
            alarm_after + DIGEST_PERIOD_SECONDS,
        )
    });
    // A quiet account writes no log file for hours, while CloudTrail still delivers a digest
    // every hour, its logFiles list empty when no log file was delivered in the hour (CloudTrail
    // user guide, "CloudTrail digest file structure",
    // https://docs.aws.amazon.com/awscloudtrail/latest/userguide/cloudtrail-log-file-validation-digest-file-structure.html).
    // Digests arriving into the same bucket show the trail alive: log files that are only late
    // are then no alarm. A current delivery error still is.
    let digests_alive = digests
        .as_ref()
        .is_some_and(|d| d.problem.is_none() && d.age_seconds.is_some());
    if digests_alive && current_error.is_none() {
        log_files.problem = None;
    }
    let mut findings = vec![log_files];
    findings.extend(digests);
    if cloud_watch_logs {
        findings.push(judge(
            "cloudtrail-cloudwatch-logs",
            delivery.cloud_watch_logs,
            &delivery.cloud_watch_logs_error,
            started,
            now,
            alarm_after,
        ));
    }
    if let Some(e) = &delivery.notification_error {
        let mut finding = DeliveryFinding::new("cloudtrail-notifications");
        finding.error = Some(e.clone());
        finding.problem = Some(format!("cloudtrail-notifications: the SNS notification error {e}"));
        findings.push(finding);
    }
    findings
}

/// The flow logs of a region: one finding, failing when any of them reports FAILED.
/// The findings of `trail` for the deliveries of one Region other than the trail's home
/// (GetTrailStatus called there): named `cloudtrail/{region}`, `cloudtrail-digest/{region}`.
pub fn in_region(region: &str, findings: Vec<DeliveryFinding>) -> Vec<DeliveryFinding> {
    findings
        .into_iter()
        .map(|mut f| {
            let named = format!("{}/{region}", f.component);
            f.problem = f.problem.map(|p| p.replacen(&f.component, &named, 1));
            f.component = named;
            f
        })
        .collect()
}

pub fn flow_logs(region: &str, flows: &[&ObservedFlowLog]) -> DeliveryFinding {
    let mut finding = DeliveryFinding::new(&format!("vpc-flow-logs/{region}"));
    let failed: Vec<String> = flows
        .iter()
        .filter(|f| f.deliver_logs_status.as_deref() == Some("FAILED"))
        .map(|f| {
            format!(
                "{} of {} ({})",
                f.id,
                f.resource_id,
                f.deliver_logs_error.as_deref().unwrap_or("no message")
            )
        })
        .collect();
    if !failed.is_empty() {
        finding.error = Some("FAILED".into());
        finding.problem = Some(format!(
            "vpc-flow-logs/{region}: delivery FAILED for {}",
            failed.join(", ")
        ));
    }
    finding
}

/// The region's configuration recorders: failing when one does not record or reports an error.
pub fn config_recorders(region: &str, recorders: &[crate::aws::config::RecorderStatus]) -> DeliveryFinding {
    let mut finding = DeliveryFinding::new(&format!("aws-config/{region}"));
    let failing: Vec<String> = recorders
        .iter()
        .filter_map(|r| {
            if !r.recording {
                Some(format!("recorder {} is not recording", r.name))
            } else if r.last_status.as_deref() == Some("Failure") {
                Some(format!(
                    "recorder {} failed: {}",
                    r.name,
                    r.last_error.as_deref().unwrap_or("no message")
                ))
            } else {
                None
            }
        })
        .collect();
    if !failing.is_empty() {
        finding.error = recorders.iter().find_map(|r| r.last_error.clone());
        finding.problem = Some(format!("aws-config/{region}: {}", failing.join("; ")));
    }
    finding
}

/// The agent's associations of a region: failing when instances report a Failed run (from
/// DescribeAssociation's overview, read anyway to compare the association).
pub fn instance_logs(region: &str, associations: &[(String, BTreeMap<String, i32>)]) -> DeliveryFinding {
    let mut finding = DeliveryFinding::new(&format!("instance-logs/{region}"));
    let failed: Vec<String> = associations
        .iter()
        .filter_map(|(name, counts)| {
            let failed = counts.get("Failed").copied().unwrap_or(0);
            (failed > 0).then(|| {
                let total: i32 = counts.values().sum();
                format!("{name}: {failed} of {total} instances failed")
            })
        })
        .collect();
    if !failed.is_empty() {
        finding.error = Some("Failed".into());
        finding.problem = Some(format!("instance-logs/{region}: {}", failed.join("; ")));
    }
    finding
}

/// The first part that is not healthy, if any.
pub fn first_problem(findings: &[DeliveryFinding]) -> Option<&DeliveryFinding> {
    findings.iter().find(|f| f.problem.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const HOUR: i64 = 3600;

    fn delivered(minutes_ago: i64) -> TrailDelivery {
        TrailDelivery {
            logging_started: Some(NOW - 48 * HOUR),
            log_files: Some(NOW - minutes_ago * 60),
            digests: Some(NOW - minutes_ago * 60),
            ..Default::default()
        }
    }

    #[test]
    fn a_trail_that_delivered_recently_is_healthy() {
        let findings = trail(&delivered(5), true, true, false, NOW, HOUR);
        assert_eq!(findings.len(), 2);
        assert!(first_problem(&findings).is_none(), "{findings:?}");
        assert_eq!(findings[0].age_seconds, Some(300));
    }

    #[test]
    fn a_trail_silent_past_the_alarm_is_not() {
        let findings = trail(&delivered(90), true, false, false, NOW, HOUR);
        let problem = first_problem(&findings).unwrap().problem.clone().unwrap();
        assert_eq!(
            problem,
            "cloudtrail: nothing delivered for 90 minutes (alarm after 60 minutes)"
        );
    }

    #[test]
    fn digests_get_their_hour() {
        let mut d = delivered(5);
        d.digests = Some(NOW - 100 * 60);
        assert!(first_problem(&trail(&d, true, true, false, NOW, HOUR)).is_none());
        d.digests = Some(NOW - 130 * 60);
        assert_eq!(
            first_problem(&trail(&d, true, true, false, NOW, HOUR))
                .unwrap()
                .component,
            "cloudtrail-digest"
        );
    }

    #[test]
    fn a_delivery_error_is_a_problem_whatever_the_age() {
        let mut d = delivered(1);
        d.log_files_error = Some("AccessDenied".into());
        let findings = trail(&d, true, false, false, NOW, HOUR);
        assert!(
            first_problem(&findings)
                .unwrap()
                .problem
                .as_ref()
                .unwrap()
                .contains("AccessDenied")
        );
    }

    #[test]
    fn a_delivery_error_followed_by_a_successful_attempt_is_healthy() {
        let mut d = delivered(3);
        d.log_files_error = Some("AccessDenied".into());
        // The latest attempt, 3 minutes ago, succeeded: the error is an earlier attempt's.
        d.log_files_attempt = Some(NOW - 180);
        d.log_files_attempt_succeeded = Some(NOW - 180);
        let findings = trail(&d, true, false, false, NOW, HOUR);
        assert!(first_problem(&findings).is_none(), "{findings:?}");
        assert_eq!(findings[0].error.as_deref(), Some("AccessDenied"), "still told");
        // The latest attempt failed (the last success is older): the error is current.
        d.log_files_attempt_succeeded = Some(NOW - 40 * 60);
        assert!(first_problem(&trail(&d, true, false, false, NOW, HOUR)).is_some());
        // Attempt times frozen long ago order nothing: the error stands.
        d.log_files_attempt = Some(NOW - 30 * 24 * HOUR);
        d.log_files_attempt_succeeded = Some(NOW - 30 * 24 * HOUR);
        assert!(first_problem(&trail(&d, true, false, false, NOW, HOUR)).is_some());
        // No attempt times: the error stands.
        d.log_files_attempt = None;
        d.log_files_attempt_succeeded = None;
        assert!(first_problem(&trail(&d, true, false, false, NOW, HOUR)).is_some());
    }

    #[test]
    fn a_quiet_account_whose_digests_arrive_is_healthy() {
        let mut d = delivered(5);
        d.log_files = Some(NOW - 5 * HOUR);
        let findings = trail(&d, true, true, false, NOW, HOUR);
        assert!(first_problem(&findings).is_none(), "{findings:?}");
        assert_eq!(findings[0].age_seconds, Some(5 * HOUR), "the age is still told");
        // No log file at all since logging started, digests hourly: quiet too.
        d.log_files = None;
        assert!(first_problem(&trail(&d, true, true, false, NOW, HOUR)).is_none());
        // Without digests (validation off, or digests late too) lateness is all there is to go by.
        d.log_files = Some(NOW - 5 * HOUR);
        assert!(first_problem(&trail(&d, true, false, false, NOW, HOUR)).is_some());
        d.digests = Some(NOW - 3 * HOUR);
        assert_eq!(
            first_problem(&trail(&d, true, true, false, NOW, HOUR))
                .unwrap()
                .component,
            "cloudtrail"
        );
        // Digests arriving do not excuse a delivery error of log files.
        d.digests = Some(NOW - 5 * 60);
        d.log_files_error = Some("AccessDenied".into());
        assert_eq!(
            first_problem(&trail(&d, true, true, false, NOW, HOUR))
                .unwrap()
                .component,
            "cloudtrail"
        );
    }

    #[test]
    fn a_new_trail_waits_for_its_first_delivery_until_the_alarm() {
        let d = TrailDelivery {
            logging_started: Some(NOW - 10 * 60),
            ..Default::default()
        };
        assert!(first_problem(&trail(&d, true, false, false, NOW, HOUR)).is_none());
        let d = TrailDelivery {
            logging_started: Some(NOW - 2 * HOUR),
            ..Default::default()
        };
        assert!(first_problem(&trail(&d, true, false, false, NOW, HOUR)).is_some());
        assert!(
            trail(&d, false, false, false, NOW, HOUR).is_empty(),
            "not logging: not judged here"
        );
    }
}
