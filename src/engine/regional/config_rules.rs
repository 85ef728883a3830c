//! The AWS Config rules of a region, and the recorder trailkeeper may create for them.

use super::Part;
use crate::aws::{AccountClients, AwsError, config};
use crate::desired::regional;

pub(super) async fn reconcile_rules(
    clients: &AccountClients,
    rules: &[regional::DesiredConfigRule],
    recorder: Option<&regional::DesiredRecorder>,
    part: &mut Part<'_>,
) -> Result<String, AwsError> {
    if !config::has_recorder(clients).await? {
        let Some(recorder) = recorder else {
            return Err(AwsError {
                kind: crate::aws::ErrorKind::NotFound,
                action: "config:DescribeConfigurationRecorders".into(),
                resource: format!("region {}", clients.region),
                code: "NoConfigurationRecorder".into(),
                message: "AWS Config has no configuration recorder in this region, so Config rules cannot run: \
                          set one up, or set configRules.createRecorder: true"
                    .into(),
            });
        };
        let resource = format!("config:{}:recorder/default", clients.region);
        part.differs(&resource, "exists", true, false);
        part.act(&resource, "create and start the configuration recorder", || {
            config::create_recorder(clients, recorder)
        })
        .await?;
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
    // Whether the recorders record: delivery health, information like compliance below.
    if let Ok(status) = config::recorder_status(clients).await {
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
