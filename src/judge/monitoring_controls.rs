//! Section 4 of the CIS AWS Foundations Benchmark v3.0.0 (Monitoring): for each control, a metric
//! filter with the prescribed pattern on the CloudWatch Logs group of the account's multi-region
//! trail, an alarm on the filter's metric with an action, and a topic with at least one confirmed
//! subscription (the benchmark's audit, steps 1-5). Pure functions.
//!
//! Prowler's `cloudwatch_log_metric_filter_*` checks ask the first two (a filter whose pattern
//! matches their expression on a trail's log group, an alarm on its metric); Security Hub
//! (CloudWatch.1-14) asks the exact prescribed pattern, which this follows: a pattern is compared
//! without spaces or quotes, and an added term fails.

use super::evidence::{Control, ControlResult, Evidence, MonitoringEvidence, control};
use crate::desired::monitoring::{CONTROLS, MonitoringControl, control_of_pattern};

/// The fifteen controls of section 4, in the benchmark's order.
pub fn evaluate(e: &Evidence) -> Vec<Control> {
    CONTROLS.iter().map(|c| judge(c, e)).collect()
}

fn title(c: &MonitoringControl) -> String {
    match c.security_hub {
        Some(hub) => format!("{} (Security Hub {hub})", c.title),
        None => c.title.to_string(),
    }
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

/// The evidence of a pass, or why the control fails.
fn verdict(c: &MonitoringControl, m: &MonitoringEvidence) -> Result<String, String> {
    let group = &m.log_group;
    let Some(filters) = &m.filters else {
        return Err(format!("log group {group} does not exist"));
    };
    let matching: Vec<_> = filters
        .iter()
        .filter(|f| control_of_pattern(&f.pattern).is_some_and(|k| k.cis == c.cis))
        .collect();
    if matching.is_empty() {
        return Err(format!(
            "no metric filter on log group {group} has the pattern the benchmark prescribes: {}",
            c.pattern
        ));
    }
    let mut why = Vec::new();
    for filter in matching {
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
                match m.topics.get(topic) {
                    Some(Ok(n)) if *n > 0 => {
                        return Ok(format!(
                            "metric filter {} on log group {group}, pattern {}; alarm {} notifies {topic} ({n} confirmed subscription{})",
                            filter.name,
                            filter.pattern,
                            alarm.name,
                            if *n == 1 { "" } else { "s" }
                        ));
                    }
                    Some(Ok(_)) => why.push(format!(
                        "alarm {} notifies {topic}, which has no confirmed subscription",
                        alarm.name
                    )),
                    Some(Err(error)) => why.push(format!("alarm {} notifies {topic}: {error}", alarm.name)),
                    None => why.push(format!("alarm {} notifies {topic}, not an SNS topic read", alarm.name)),
                }
            }
        }
    }
    Err(why.join("; "))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::judge::evidence::{AlarmEvidence, FilterEvidence, TrailEvidence};

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
                details_observable: true,
                log_group_arn: Some("arn:aws:logs:us-east-1:111122223333:log-group:g:*".into()),
                ..Default::default()
            }),
            monitoring: Some(Ok(MonitoringEvidence {
                log_group: "g".into(),
                filters: Some(filters),
                alarms,
                topics: BTreeMap::from([(TOPIC.to_string(), Ok(1))]),
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
}
