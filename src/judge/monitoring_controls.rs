//! Section 4 of the CIS AWS Foundations Benchmark v3.0.0 (Monitoring): for each control, a metric
//! filter with the prescribed pattern on the CloudWatch Logs group of the account's multi-region
//! trail that logs and records read and write management events, an alarm on the filter's metric
//! with an action, and a topic with at least one confirmed subscription that the alarm can publish
//! to (the benchmark's audit, steps 1-5; Security Hub CloudWatch.1-14). Pure functions.
//!
//! Prowler's `cloudwatch_log_metric_filter_*` checks ask the first two (a filter whose pattern
//! matches their expression on a trail's log group, an alarm on its metric); Security Hub asks the
//! exact prescribed pattern. Here a pattern is compared without spaces or quotes (an added term
//! fails), and the evidence says when the text is not the prescribed one character for character,
//! which Security Hub would fail.

use super::evidence::{
    AlarmEvidence, Control, ControlResult, Evidence, MonitoringEvidence, TopicKeyEvidence, TrailEvidence, control,
};
use super::key_policy::{Decision, decide};
use crate::desired::monitoring::{CONTROLS, MonitoringControl, Recognized, alarm_publish_context, recognize};

/// The fifteen controls of section 4, in the benchmark's order.
pub fn evaluate(e: &Evidence) -> Vec<Control> {
    CONTROLS.iter().map(|c| judge(c, e)).collect()
}

fn title(c: &MonitoringControl) -> String {
    match c.security_hub {
        Some(hub) => format!("{} (Security Hub {}, mapped to {})", c.title, hub.id, hub.maps),
        None => c.title.to_string(),
    }
}

/// What keeps a trail from being the one section 4 is judged on (CIS audit step 1: a multi-region
/// trail that is logging and records all management events, read and write; Security Hub's
/// remediation points to CloudTrail.1 for the same), or None when it qualifies.
fn disqualified(trail: &TrailEvidence) -> Option<String> {
    let missing: Vec<&str> = [
        (!trail.multi_region, "is not multi-region"),
        (!trail.logging, "is not logging"),
        (
            !trail.management_events_all,
            "does not record read and write management events",
        ),
    ]
    .into_iter()
    .filter_map(|(missing, why)| missing.then_some(why))
    .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "{} {}: section 4 is judged on a multi-region trail that is logging and records read and write management events (CIS audit step 1)",
            trail.arn,
            missing.join(", ")
        )
    })
}

fn judge(c: &MonitoringControl, e: &Evidence) -> Control {
    let fail = |why: String| control(c.cis, &title(c), ControlResult::Fail, why);
    let Some(trail) = &e.trail else {
        return fail("no trail observed".into());
    };
    if !trail.details_observable {
        return control(
            c.cis,
            &title(c),
            ControlResult::NotApplicable,
            format!(
                "covered by {}: another account's Organization trail, whose log group and alarms are in the account that owns it (judged there)",
                trail.arn
            ),
        );
    }
    if let Some(why) = disqualified(trail) {
        return fail(why);
    }
    let Some(group) = &trail.log_group_arn else {
        return fail(format!(
            "{} sends no events to CloudWatch Logs (CloudWatchLogsLogGroupArn is not set): no metric filter can see them",
            trail.arn
        ));
    };
    let monitoring = match &e.monitoring {
        None => return fail(format!("log group {group}: not read")),
        Some(Err(error)) => return fail(format!("log group {group}: {error}")),
        Some(Ok(m)) => m,
    };
    match verdict(c, monitoring) {
        Ok(evidence) => control(c.cis, &title(c), ControlResult::Pass, evidence),
        Err(why) => fail(why),
    }
}

/// Which prescribed spelling the pattern is, and whether Security Hub would take it as it is.
fn spelling(c: &MonitoringControl, r: &Recognized) -> String {
    let mut out = format!("{}'s", r.source);
    if !r.exact {
        out.push_str(" once spaces and quotes are ignored (Security Hub compares the exact text and may fail it)");
    }
    if let Some(hub) = c.security_hub
        && !r.source.ends_with(hub.id)
    {
        out.push_str(&format!(
            "; Security Hub {} prescribes its own pattern and fails this one",
            hub.id
        ));
    }
    out
}

/// Whether CloudWatch may use the topic's key when `alarm` publishes to `topic` (the key policy
/// judged for cloudwatch.amazonaws.com, kms:GenerateDataKey and kms:Decrypt, with the request
/// CloudWatch sends: `alarm_publish_context`). Err says why it cannot.
fn may_publish(alarm: &AlarmEvidence, topic: &str, key: &TopicKeyEvidence) -> Result<(), String> {
    let policy = key.policy.as_ref().map_err(|e| {
        format!(
            "alarm {} cannot be shown to publish to {topic}: the policy of its key {} could not be read ({e})",
            alarm.name, key.key
        )
    })?;
    let context = alarm_publish_context(&alarm.arn, topic);
    for action in ["kms:GenerateDataKey", "kms:Decrypt"] {
        match decide(policy, "cloudwatch.amazonaws.com", action, &key.arn, &context) {
            Ok(Decision::Allow) => {}
            Ok(_) => {
                return Err(format!(
                    "alarms cannot publish: the topic's key policy does not admit CloudWatch (alarm {} into {topic}: key {} does not let cloudwatch.amazonaws.com {action} for this alarm and topic)",
                    alarm.name, key.key
                ));
            }
            Err(e) => {
                return Err(format!(
                    "alarm {} cannot be shown to publish to {topic}: the policy of its key {} could not be judged ({e})",
                    alarm.name, key.key
                ));
            }
        }
    }
    Ok(())
}

/// The evidence of a pass, or why the control fails.
fn verdict(c: &MonitoringControl, m: &MonitoringEvidence) -> Result<String, String> {
    let group = &m.log_group;
    let Some(filters) = &m.filters else {
        return Err(format!("log group {group} does not exist"));
    };
    let matching: Vec<_> = filters
        .iter()
        .filter_map(|f| recognize(&f.pattern).filter(|r| r.control.cis == c.cis).map(|r| (f, r)))
        .collect();
    if matching.is_empty() {
        return Err(format!(
            "no metric filter on log group {group} has the pattern the benchmark prescribes: {}",
            c.pattern
        ));
    }
    let mut why = Vec::new();
    for (filter, recognized) in matching {
        let alarms: Vec<_> = m
            .alarms
            .iter()
            .filter(|a| filter.metrics.contains(&a.metric) && a.actions_enabled && !a.alarm_actions.is_empty())
            .collect();
        if alarms.is_empty() {
            why.push(format!(
                "metric filter {} on log group {group}: no alarm with an enabled action on its metric",
                filter.name
            ));
            continue;
        }
        for alarm in alarms {
            for topic in &alarm.alarm_actions {
                let confirmed = match m.topics.get(topic) {
                    Some(Ok(n)) if *n > 0 => *n,
                    Some(Ok(_)) => {
                        why.push(format!(
                            "alarm {} notifies {topic}, which has no confirmed subscription",
                            alarm.name
                        ));
                        continue;
                    }
                    Some(Err(error)) => {
                        why.push(format!("alarm {} notifies {topic}: {error}", alarm.name));
                        continue;
                    }
                    None => {
                        why.push(format!("alarm {} notifies {topic}, not an SNS topic read", alarm.name));
                        continue;
                    }
                };
                let encryption = match m.topic_keys.get(topic) {
                    None => "not encrypted".to_string(),
                    Some(key) => match may_publish(alarm, topic, key) {
                        Ok(()) => format!("encrypted with {}, whose policy admits CloudWatch", key.key),
                        Err(e) => {
                            why.push(e);
                            continue;
                        }
                    },
                };
                return Ok(format!(
                    "metric filter {} on log group {group}, pattern {} ({}); alarm {} notifies {topic} ({confirmed} confirmed subscription{}; {encryption})",
                    filter.name,
                    filter.pattern,
                    spelling(c, &recognized),
                    alarm.name,
                    if confirmed == 1 { "" } else { "s" }
                ));
            }
        }
    }
    Err(why.join("; "))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::judge::evidence::FilterEvidence;

    const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:alerts";

    pub(crate) fn evidence() -> Evidence {
        let filters = CONTROLS
            .iter()
            .map(|c| FilterEvidence {
                name: format!("f-{}", c.cis),
                pattern: c.pattern.to_string(),
                metrics: vec![("ns".into(), c.metric.into())],
            })
            .collect();
        let alarms = CONTROLS
            .iter()
            .map(|c| AlarmEvidence {
                name: format!("a-{}", c.cis),
                arn: format!(
                    "arn:aws:cloudwatch:us-east-1:111122223333:alarm:trailkeeper-cis-{}",
                    c.cis
                ),
                metric: ("ns".into(), c.metric.into()),
                actions_enabled: true,
                alarm_actions: vec![TOPIC.into()],
            })
            .collect();
        Evidence {
            trail: Some(TrailEvidence {
                arn: "arn:aws:cloudtrail:us-east-1:111122223333:trail/t".into(),
                multi_region: true,
                logging: true,
                management_events_all: true,
                details_observable: true,
                log_group_arn: Some("arn:aws:logs:us-east-1:111122223333:log-group:g:*".into()),
                ..Default::default()
            }),
            monitoring: Some(Ok(MonitoringEvidence {
                log_group: "g".into(),
                filters: Some(filters),
                alarms,
                topics: BTreeMap::from([(TOPIC.to_string(), Ok(1))]),
                topic_keys: BTreeMap::new(),
            })),
            ..Default::default()
        }
    }

    fn result(e: &Evidence, id: &str) -> (ControlResult, String) {
        let c = evaluate(e).into_iter().find(|c| c.id == id).expect("control");
        (c.result, c.evidence)
    }

    pub(crate) fn monitoring(e: &mut Evidence) -> &mut MonitoringEvidence {
        e.monitoring.as_mut().and_then(|m| m.as_mut().ok()).expect("monitoring")
    }

    #[test]
    fn filter_alarm_and_a_confirmed_subscription_pass_every_control() {
        let controls = evaluate(&evidence());
        assert_eq!(controls.len(), 15);
        for c in &controls {
            assert_eq!(c.result, ControlResult::Pass, "{}: {}", c.id, c.evidence);
        }
        let (_, evidence) = result(&evidence(), "4.3");
        assert!(evidence.contains("f-4.3") && evidence.contains("a-4.3") && evidence.contains(TOPIC));
    }

    #[test]
    fn each_missing_link_fails_with_what_is_missing() {
        let mut e = evidence();
        monitoring(&mut e).filters.as_mut().expect("filters")[0]
            .pattern
            .push_str(" && ($.x = 1)");
        let (r, why) = result(&e, "4.1");
        assert_eq!(r, ControlResult::Fail);
        assert!(why.contains("pattern the benchmark prescribes"), "{why}");

        let mut e = evidence();
        monitoring(&mut e).alarms.retain(|a| a.name != "a-4.5");
        let (r, why) = result(&e, "4.5");
        assert_eq!(r, ControlResult::Fail);
        assert!(why.contains("no alarm"), "{why}");

        let mut e = evidence();
        monitoring(&mut e).alarms[6].actions_enabled = false;
        assert_eq!(result(&e, "4.7").0, ControlResult::Fail);

        let mut e = evidence();
        monitoring(&mut e).topics.insert(TOPIC.into(), Ok(0));
        let (r, why) = result(&e, "4.9");
        assert_eq!(r, ControlResult::Fail);
        assert!(why.contains("no confirmed subscription"), "{why}");

        let mut e = evidence();
        e.trail.as_mut().expect("trail").log_group_arn = None;
        let (r, why) = result(&e, "4.2");
        assert_eq!(r, ControlResult::Fail);
        assert!(why.contains("CloudWatchLogsLogGroupArn"), "{why}");

        let mut e = evidence();
        e.trail = None;
        assert_eq!(result(&e, "4.15").0, ControlResult::Fail);
    }

    #[test]
    fn another_accounts_organization_trail_is_judged_where_it_lives() {
        let mut e = evidence();
        e.trail.as_mut().expect("trail").details_observable = false;
        let (r, why) = result(&e, "4.4");
        assert_eq!(r, ControlResult::NotApplicable);
        assert!(why.starts_with("covered by arn:aws:cloudtrail:"), "{why}");
    }

    /// E3: a trail that is not multi-region, not logging, or not recording read and write
    /// management events is not the trail section 4 is judged on: all fifteen fail and say why.
    #[test]
    fn section_4_fails_on_a_trail_cis_audit_step_1_excludes() {
        type Unset = fn(&mut TrailEvidence);
        let cases: [(Unset, &str); 3] = [
            (|t| t.multi_region = false, "is not multi-region"),
            (|t| t.logging = false, "is not logging"),
            (
                |t| t.management_events_all = false,
                "does not record read and write management events",
            ),
        ];
        for (unset, reason) in cases {
            let mut e = evidence();
            unset(e.trail.as_mut().expect("trail"));
            let controls = evaluate(&e);
            assert_eq!(controls.len(), 15);
            for c in controls {
                assert_eq!(c.result, ControlResult::Fail, "{}: {}", c.id, c.evidence);
                assert!(c.evidence.contains(reason), "{}: {}", c.id, c.evidence);
                assert!(c.evidence.contains("CIS audit step 1"), "{}", c.evidence);
            }
        }
    }

    fn topic_key(statements: serde_json::Value) -> TopicKeyEvidence {
        TopicKeyEvidence {
            key: "alias/alerts".into(),
            arn: "arn:aws:kms:us-east-1:111122223333:key/k".into(),
            policy: Ok(json!({"Version": "2012-10-17", "Statement": statements})),
        }
    }

    /// F2: an alarm into a topic whose key policy does not let CloudWatch use the key publishes
    /// nothing: the controls fail with that reason; with the monitoring key's statement they pass.
    #[test]
    fn alarms_into_a_topic_whose_key_does_not_admit_cloudwatch_fail() {
        let root = json!([{"Sid": "EnableIAMPolicies", "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "kms:*", "Resource": "*"}]);
        let mut e = evidence();
        monitoring(&mut e).topic_keys.insert(TOPIC.into(), topic_key(root));
        for c in evaluate(&e) {
            assert_eq!(c.result, ControlResult::Fail, "{}", c.id);
            assert!(
                c.evidence
                    .contains("alarms cannot publish: the topic's key policy does not admit CloudWatch"),
                "{}: {}",
                c.id,
                c.evidence
            );
        }

        let admitting = json!([{"Sid": "CloudWatchAlarmsPublishToTopic", "Effect": "Allow",
        "Principal": {"Service": "cloudwatch.amazonaws.com"},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
        "Condition": {
            "StringEquals": {"aws:SourceAccount": "111122223333", "kms:EncryptionContext:aws:sns:topicArn": TOPIC},
            "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:us-east-1:111122223333:alarm:trailkeeper-cis-*"}
        }}]);
        let mut e = evidence();
        monitoring(&mut e).topic_keys.insert(TOPIC.into(), topic_key(admitting));
        for c in evaluate(&e) {
            assert_eq!(c.result, ControlResult::Pass, "{}: {}", c.id, c.evidence);
            assert!(c.evidence.contains("whose policy admits CloudWatch"), "{}", c.evidence);
        }

        // Another account's key (a LogArchive's): its policy cannot be read from here.
        let mut e = evidence();
        monitoring(&mut e).topic_keys.insert(
            TOPIC.into(),
            TopicKeyEvidence {
                key: "arn:aws:kms:us-east-1:999988887777:key/archive".into(),
                arn: "arn:aws:kms:us-east-1:999988887777:key/archive".into(),
                policy: Err("kms:GetKeyPolicy denied".into()),
            },
        );
        let (r, why) = result(&e, "4.1");
        assert_eq!(r, ControlResult::Fail);
        assert!(why.contains("cannot be shown to publish"), "{why}");
    }

    /// N5: a pattern equal to the prescribed one only once spaces and quotes are ignored passes
    /// here, and the evidence says Security Hub compares the exact text; CIS v3.0.0's own
    /// spelling passes, and the evidence says Security Hub fails it.
    #[test]
    fn the_evidence_says_how_the_pattern_matched() {
        let (_, exact) = result(&evidence(), "4.3");
        assert!(exact.contains("(Security Hub CloudWatch.1's)"), "{exact}");

        let mut e = evidence();
        monitoring(&mut e).filters.as_mut().expect("filters")[0].pattern =
            "{($.errorCode=*UnauthorizedOperation) || ($.errorCode=AccessDenied*)}".into();
        let (r, why) = result(&e, "4.1");
        assert_eq!(r, ControlResult::Pass);
        assert!(
            why.contains("once spaces and quotes are ignored (Security Hub compares the exact text"),
            "{why}"
        );

        let mut e = evidence();
        monitoring(&mut e).filters.as_mut().expect("filters")[1].pattern =
            r#"{ ($.eventName = "ConsoleLogin") && ($.additionalEventData.MFAUsed != "Yes") }"#.into();
        let (r, why) = result(&e, "4.2");
        assert_eq!(r, ControlResult::Pass, "{why}");
        assert!(
            why.contains("CIS v3.0.0's; Security Hub CloudWatch.3 prescribes its own pattern"),
            "{why}"
        );
    }

    #[test]
    fn titles_name_the_cis_versions_security_hub_maps() {
        let controls = evaluate(&evidence());
        assert_eq!(
            controls[0].title,
            "Ensure unauthorized API calls are monitored (Security Hub CloudWatch.2, mapped to CIS v1.2.0 3.1)"
        );
        assert_eq!(controls[14].title, "Ensure AWS Organizations changes are monitored");
    }
}
