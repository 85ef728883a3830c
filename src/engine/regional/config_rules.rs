//! AWS Config in a region: the recorder trailkeeper keeps (`configRules.createRecorder`), and the
//! managed rules it deploys.

use super::Part;
use crate::aws::{AccountClients, AwsError, config};
use crate::desired::regional;

/// The region's configuration recorder when the baseline keeps one: created with its delivery
/// channel where the region has none, started when stopped (logging is never left stopped). A
/// recorder that exists is not redefined: CIS 3.3 says what it records. Returns the recorders as
/// read (the evidence of 3.3 when nothing was written) and whether one exists now.
pub(super) async fn reconcile_recorder(
    clients: &AccountClients,
    recorder: Option<&regional::DesiredRecorder>,
    part: &mut Part<'_>,
) -> Result<(Vec<config::ObservedRecorder>, bool), AwsError> {
    let observed = config::observe_recorders(clients).await?;
    let Some(recorder) = recorder else {
        let exists = !observed.is_empty();
        return Ok((observed, exists));
    };
    let resource = format!("config:{}:recorder/default", clients.region);
    if observed.is_empty() {
        part.differs(&resource, "exists", true, false);
        part.act(&resource, "create and start the configuration recorder", || {
            config::create_recorder(clients, recorder)
        })
        .await?;
        return Ok((observed, true));
    }
    for stopped in observed.iter().filter(|r| !r.recording) {
        let resource = format!("config:{}:recorder/{}", clients.region, stopped.name);
        part.differs(&resource, "recording", true, false);
        part.act(&resource, "start the configuration recorder", || {
            config::start_recorder(clients, &stopped.name)
        })
        .await?;
    }
    Ok((observed, true))
}

/// The rules, in a region with a recorder (`has_recorder`: as `reconcile_recorder` left it).
pub(super) async fn reconcile_rules(
    clients: &AccountClients,
    rules: &[regional::DesiredConfigRule],
    has_recorder: bool,
    recorders: &[config::ObservedRecorder],
    part: &mut Part<'_>,
) -> Result<String, AwsError> {
    if !has_recorder {
        return Err(AwsError {
            kind: crate::aws::ErrorKind::NotFound,
            action: "config:DescribeConfigurationRecorders".into(),
            resource: format!("region {}", clients.region),
            code: "NoConfigurationRecorder".into(),
            message: "AWS Config has no configuration recorder in this region, so Config rules cannot run: \
                      set one up, or set configRules.createRecorder: true"
                .into(),
        });
    }
    let names: Vec<String> = rules.iter().map(|r| r.name.clone()).collect();
    let observed = config::observe_rules(clients, &names).await?;
    for rule in rules {
        let resource = format!("config:{}:{}", clients.region, rule.name);
        let wanted = (rule.source.clone(), rule.input.clone(), rule.scope.clone());
        if observed.get(&rule.name) != Some(&wanted) {
            let actual = if observed.contains_key(&rule.name) {
                "other settings"
            } else {
                "absent"
            };
            part.differs(&resource, "rule", &rule.source, actual);
            part.act(&resource, "put the Config rule", || config::put_rule(clients, rule))
                .await?;
        }
    }
    // Whether the recorders record: delivery health, information like compliance below (read
    // with the recorders; after a write, read again).
    let status = if part.changed && part.write {
        config::recorder_status(clients).await.ok()
    } else {
        Some(recorders.iter().map(config::ObservedRecorder::status).collect())
    };
    if let Some(status) = status {
        part.outcome
            .delivery
            .push(crate::judge::delivery::config_recorders(&clients.region, &status));
    }
    // Compliance is information for the status: when the API cannot give it, say so and go on.
    let detail = match config::compliance(clients, &names).await {
        Ok(Some(c)) => {
            let failing: Vec<&String> = c
                .iter()
                .filter(|(_, v)| v.as_str() == "NON_COMPLIANT")
                .map(|(k, _)| k)
                .collect();
            if failing.is_empty() {
                format!("{} rules, none non-compliant", rules.len())
            } else {
                format!(
                    "{} rules, non-compliant: {}",
                    rules.len(),
                    failing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                )
            }
        }
        Ok(None) => format!("{} rules, compliance not evaluated yet", rules.len()),
        Err(e) => format!("{} rules, compliance unavailable: {e}", rules.len()),
    };
    Ok(detail)
}
