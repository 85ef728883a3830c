//! The monitoring controls, in the region of the trail's CloudWatch Logs group: the topic
//! (trailkeeper's, encrypted with the account's monitoring key of that region, or the one the
//! policy names), a metric filter and an alarm per control; and the evidence section 4 is judged
//! on, read whether or not trailkeeper manages them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::account::AccountReconcile;
use super::regional::{Part, RegionOutcome, reconcile_region_key};
use super::report::{Component, ComponentState};
use crate::aws::cloudwatch::{self, ObservedAlarm};
use crate::aws::logs::{self, ObservedMetricFilter};
use crate::aws::sns::{self, ObservedTopic};
use crate::aws::{AccountClients, AwsError, ErrorKind, kms};
use crate::desired::monitoring::{
    self, DesiredAlarm, DesiredMetricFilter, DesiredMonitoring, DesiredTopic, parse_log_group_arn,
};
use crate::judge::diff::key_matches;
use crate::judge::evidence::{AlarmEvidence, FilterEvidence, MonitoringEvidence, TopicKeyEvidence};

/// Topics read for the evidence besides trailkeeper's (alarms of other metrics are not followed).
const TOPICS_READ: usize = 5;

/// The ARN and policy of a topic's key, as read (None: no such key).
type KeyRead = Result<Option<(String, Value)>, AwsError>;

/// What one pass of reads found in the log group's region.
struct Observed {
    /// None: the log group does not exist.
    filters: Option<Vec<ObservedMetricFilter>>,
    alarms: Vec<ObservedAlarm>,
    topics: BTreeMap<String, Result<Option<ObservedTopic>, AwsError>>,
    /// Topic -> (the key it is encrypted with, that key's ARN and policy; None: no such key).
    keys: BTreeMap<String, (String, KeyRead)>,
}

/// Five reads when in line: the group's filters, the region's alarms, the topic, its
/// subscriptions and its key's policy (three more per other topic the controls' alarms notify,
/// at most five; one GetKeyPolicy per key).
async fn observe(clients: &AccountClients, group: &str, topic: Option<&str>) -> Result<Observed, AwsError> {
    let filters = logs::observe_metric_filters(clients, group).await?;
    let alarms = cloudwatch::observe_alarms(clients, "").await?;
    let metrics: BTreeSet<(String, String)> = filters
        .iter()
        .flatten()
        .flat_map(|f| f.metrics.iter().map(|(ns, name, _)| (ns.clone(), name.clone())))
        .collect();
    let mut wanted: Vec<String> = topic.into_iter().map(str::to_string).collect();
    for alarm in &alarms {
        let metric = (
            alarm.metric_namespace.clone().unwrap_or_default(),
            alarm.metric_name.clone().unwrap_or_default(),
        );
        if metrics.contains(&metric) {
            wanted.extend(alarm.alarm_actions.iter().filter(|a| a.contains(":sns:")).cloned());
        }
    }
    let mut seen = BTreeSet::new();
    wanted.retain(|t| seen.insert(t.clone()));
    wanted.truncate(TOPICS_READ + usize::from(topic.is_some()));
    let mut topics = BTreeMap::new();
    for arn in wanted {
        let read = sns::observe_topic(clients, &arn).await;
        topics.insert(arn, read);
    }
    let mut policies: BTreeMap<String, KeyRead> = BTreeMap::new();
    let mut keys = BTreeMap::new();
    for (arn, read) in &topics {
        let Ok(Some(ObservedTopic { kms_key: Some(key), .. })) = read else {
            continue;
        };
        if !policies.contains_key(key) {
            let account = arn.split(':').nth(4).unwrap_or_default();
            let policy = kms::policy_of(clients, account, key).await;
            policies.insert(key.clone(), policy);
        }
        let policy = policies.get(key).cloned().unwrap_or(Ok(None));
        keys.insert(arn.clone(), (key.clone(), policy));
    }
    Ok(Observed {
        filters,
        alarms,
        topics,
        keys,
    })
}

fn evidence(group: &str, o: &Observed) -> MonitoringEvidence {
    MonitoringEvidence {
        log_group: group.to_string(),
        filters: o.filters.as_ref().map(|filters| {
            filters
                .iter()
                .map(|f| FilterEvidence {
                    name: f.name.clone(),
                    pattern: f.pattern.clone(),
                    metrics: f
                        .metrics
                        .iter()
                        .map(|(ns, name, _)| (ns.clone(), name.clone()))
                        .collect(),
                })
                .collect()
        }),
        alarms: o
            .alarms
            .iter()
            .map(|a| AlarmEvidence {
                name: a.name.clone(),
                arn: a.arn.clone(),
                metric: (
                    a.metric_namespace.clone().unwrap_or_default(),
                    a.metric_name.clone().unwrap_or_default(),
                ),
                actions_enabled: a.actions_enabled,
                alarm_actions: a.alarm_actions.clone(),
            })
            .collect(),
        topics: o
            .topics
            .iter()
            .map(|(arn, read)| {
                let confirmed = match read {
                    Ok(Some(t)) => Ok(t.confirmed),
                    Ok(None) => Err("the topic does not exist".to_string()),
                    Err(e) => Err(e.to_string()),
                };
                (arn.clone(), confirmed)
            })
            .collect(),
        topic_keys: o
            .keys
            .iter()
            .map(|(topic, (key, policy))| {
                let (arn, policy) = match policy {
                    Ok(Some((arn, p))) => (arn.clone(), Ok(p.clone())),
                    Ok(None) => (key.clone(), Err("the key does not exist".to_string())),
                    Err(e) => (key.clone(), Err(e.to_string())),
                };
                let key = key.clone();
                (topic.clone(), TopicKeyEvidence { key, arn, policy })
            })
            .collect(),
    }
}

fn filter_in_line(desired: &DesiredMetricFilter, observed: &ObservedMetricFilter) -> bool {
    observed.pattern == desired.pattern
        && observed.metrics
            == [(
                desired.metric_namespace.clone(),
                desired.metric_name.clone(),
                desired.metric_value.clone(),
            )]
}

/// The alarm's settings that differ (field, expected, actual).
fn alarm_drift(desired: &DesiredAlarm, observed: &ObservedAlarm) -> Option<(&'static str, String, String)> {
    let fields = [
        (
            "metric",
            format!("{}/{}", desired.metric_namespace, desired.metric_name),
            format!(
                "{}/{}",
                observed.metric_namespace.as_deref().unwrap_or_default(),
                observed.metric_name.as_deref().unwrap_or_default()
            ),
        ),
        (
            "alarmActions",
            desired.alarm_actions.join(","),
            observed.alarm_actions.join(","),
        ),
        ("actionsEnabled", "true".into(), observed.actions_enabled.to_string()),
        (
            "condition",
            format!(
                "{} {} {} over {}x{}s",
                desired.statistic,
                desired.comparison,
                desired.threshold,
                desired.evaluation_periods,
                desired.period_seconds
            ),
            format!(
                "{} {} {} over {}x{}s",
                observed.statistic.as_deref().unwrap_or_default(),
                observed.comparison.as_deref().unwrap_or_default(),
                observed.threshold.unwrap_or_default(),
                observed.evaluation_periods.unwrap_or_default(),
                observed.period_seconds.unwrap_or_default()
            ),
        ),
        (
            "treatMissingData",
            desired.treat_missing_data.clone(),
            observed.treat_missing_data.clone().unwrap_or_default(),
        ),
    ];
    fields.into_iter().find(|(_, expected, actual)| expected != actual)
}

struct Apply<'a> {
    clients: &'a AccountClients,
    desired: &'a DesiredMonitoring,
    tags: &'a BTreeMap<String, String>,
}

impl Apply<'_> {
    /// trailkeeper's topic, encrypted with `key_arn` (the monitoring key; None while a plan has yet
    /// to create it): created, or re-keyed when encrypted with another key (a member's topic once
    /// had its LogArchive's, another account's, which CloudWatch could not use).
    async fn topic(&self, observed: &Observed, key_arn: Option<&str>, part: &mut Part<'_>) -> Result<(), AwsError> {
        let DesiredTopic::Kept {
            arn,
            name,
            subscriptions,
            ..
        } = &self.desired.topic
        else {
            return Ok(());
        };
        let resource = format!("sns:{arn}");
        let topic = match observed.topics.get(arn) {
            Some(Ok(topic)) => topic.clone(),
            Some(Err(e)) => return Err(e.clone()),
            None => None,
        };
        let key = key_arn.unwrap_or("(the monitoring key, once created)");
        match &topic {
            None => {
                part.differs(&resource, "exists", true, false);
                part.act(
                    &resource,
                    &format!("create the monitoring topic, encrypted with {}", monitoring::KEY_ALIAS),
                    || sns::create_topic(self.clients, name, key, self.tags),
                )
                .await?;
            }
            Some(t) if !t.kms_key.as_deref().is_some_and(|k| key_matches(k, key)) => {
                part.differs(
                    &resource,
                    "KmsMasterKeyId",
                    key,
                    t.kms_key.as_deref().unwrap_or("(none)"),
                );
                part.act(
                    &resource,
                    &format!("encrypt the monitoring topic with {}", monitoring::KEY_ALIAS),
                    || sns::set_topic_key(self.clients, arn, key),
                )
                .await?;
            }
            Some(_) => {}
        }
        let present = topic.map(|t| t.subscriptions).unwrap_or_default();
        for (protocol, endpoint) in subscriptions {
            if present.iter().any(|(p, e)| p == protocol && e == endpoint) {
                continue;
            }
            part.differs(&resource, "subscription", format!("{protocol}:{endpoint}"), "(none)");
            part.act(&resource, &format!("subscribe {protocol}:{endpoint}"), || {
                sns::subscribe(self.clients, arn, protocol, endpoint)
            })
            .await?;
        }
        Ok(())
    }

    async fn filters(&self, observed: &Observed, part: &mut Part<'_>) -> Result<(), AwsError> {
        let group = &self.desired.log_group;
        let Some(filters) = &observed.filters else {
            return Err(AwsError {
                kind: ErrorKind::NotFound,
                action: "logs:DescribeMetricFilters".into(),
                resource: format!("log group {group}"),
                code: "ResourceNotFoundException".into(),
                message: "the trail's log group (TrailPolicy cloudWatchLogs.logGroupArn) does not exist: create it, or name the group the trail delivers to".into(),
            });
        };
        for desired in self.desired.filters.values() {
            let resource = format!(
                "logs:{}:log-group:{group}:metric-filter/{}",
                self.desired.region, desired.name
            );
            match filters.iter().find(|f| f.name == desired.name) {
                Some(f) if filter_in_line(desired, f) => continue,
                Some(f) if f.pattern != desired.pattern => {
                    part.differs(&resource, "filterPattern", &desired.pattern, &f.pattern)
                }
                Some(f) => part.differs(
                    &resource,
                    "metricTransformation",
                    format!(
                        "{}/{} = {}",
                        desired.metric_namespace, desired.metric_name, desired.metric_value
                    ),
                    format!("{:?}", f.metrics),
                ),
                None => part.differs(&resource, "exists", true, false),
            }
            part.act(&resource, "put the metric filter", || {
                logs::put_metric_filter(self.clients, group, desired)
            })
            .await?;
        }
        Ok(())
    }

    async fn alarms(&self, observed: &Observed, part: &mut Part<'_>) -> Result<(), AwsError> {
        for desired in self.desired.alarms.values() {
            let resource = format!("cloudwatch:{}:alarm:{}", self.desired.region, desired.name);
            match observed.alarms.iter().find(|a| a.name == desired.name) {
                Some(a) => match alarm_drift(desired, a) {
                    None => continue,
                    Some((field, expected, actual)) => part.differs(&resource, field, expected, actual),
                },
                None => part.differs(&resource, "exists", true, false),
            }
            part.act(&resource, "put the alarm", || {
                cloudwatch::put_alarm(self.clients, desired, self.tags)
            })
            .await?;
        }
        Ok(())
    }
}

impl AccountReconcile<'_> {
    /// After the trail: keeps the monitoring controls when the TrailPolicy asks for them, and reads
    /// what section 4 is judged on from the trail's log group either way.
    pub(super) async fn reconcile_monitoring(&mut self) {
        let desired = monitoring::monitoring(self.specs.trail_policy, self.specs.baseline);
        let observed_group = self
            .report
            .evidence
            .trail
            .as_ref()
            .filter(|t| t.details_observable)
            .and_then(|t| t.log_group_arn.as_deref())
            .and_then(parse_log_group_arn)
            .map(|(region, _, group)| (region, group));
        let (region, group) = match (&desired, observed_group) {
            (Some(d), _) => (d.region.clone(), d.log_group.clone()),
            (None, Some(found)) => found,
            (None, None) => return,
        };
        let clients = self.clients.for_region(&region);
        let topic = desired.as_ref().map(|d| d.topic.arn().to_string());
        let mut observed = observe(&clients, &group, topic.as_deref()).await;
        if let (Some(d), Ok(o)) = (&desired, &observed)
            && self.apply_monitoring(&clients, d, o).await
        {
            // Judged as it is now, not as it was before the repair.
            observed = observe(&clients, &group, topic.as_deref()).await;
        }
        self.report.evidence.monitoring = Some(match &observed {
            Ok(o) => Ok(evidence(&group, o)),
            Err(e) => Err(e.to_string()),
        });
        if let (Some(_), Err(e)) = (&desired, observed) {
            self.merge_state(Component::Monitoring, ComponentState::Failed(e));
        }
    }

    /// True when something was written.
    async fn apply_monitoring(
        &mut self,
        clients: &AccountClients,
        desired: &DesiredMonitoring,
        observed: &Observed,
    ) -> bool {
        let tags = crate::desired::resource_tags(self.specs.baseline);
        let apply = Apply {
            clients,
            desired,
            tags: &tags,
        };
        let mut outcome = RegionOutcome {
            region: desired.region.clone(),
            ..Default::default()
        };
        let mut part = Part {
            outcome: &mut outcome,
            write: self.write,
            component: Component::Monitoring,
            changed: false,
        };
        let result = async {
            // The topic's key first: the topic is created (or re-keyed) with it.
            let key_arn = match &desired.topic {
                DesiredTopic::Kept { key, .. } => reconcile_region_key(clients, key, &mut part).await?,
                DesiredTopic::Named { .. } => None,
            };
            apply.topic(observed, key_arn.as_deref(), &mut part).await?;
            apply.filters(observed, &mut part).await?;
            apply.alarms(observed, &mut part).await?;
            Ok::<_, AwsError>(format!(
                "{} controls: metric filters on {}, alarms into {}",
                desired.filters.len(),
                desired.log_group,
                desired.topic.arn()
            ))
        }
        .await;
        part.finish(result);
        let written = !outcome.applied.is_empty();
        self.absorb_changes(outcome);
        written
    }
}
