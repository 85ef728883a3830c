//! The CloudWatch agent configuration of EC2 instance logs (SSM parameters and associations).

use std::collections::BTreeMap;

use super::Part;
use crate::aws::{AccountClients, AwsError, ssm};
use crate::desired::regional;

pub(super) async fn reconcile_agents(
    clients: &AccountClients,
    agents: &[regional::DesiredAgentConfig],
    tags: &BTreeMap<String, String>,
    part: &mut Part<'_>,
) -> Result<String, AwsError> {
    // Each association's instances by the status of their last run, for delivery health.
    let mut runs = Vec::new();
    for agent in agents {
        let resource = format!("ssm:{}:{}", clients.region, agent.parameter);
        let current = ssm::get_parameter(clients, agent.parameter).await?;
        let same = current
            .as_deref()
            .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
            == serde_json::from_str::<serde_json::Value>(&agent.value).ok();
        if !same {
            part.differs(
                &resource,
                "value",
                "the agent configuration of the baseline",
                current.as_ref().map_or("(none)", |_| "another configuration"),
            );
            part.act(&resource, "put the agent configuration", || {
                ssm::put_parameter(clients, agent.parameter, &agent.value, current.is_some(), tags)
            })
            .await?;
        }
        for association in &agent.associations {
            let resource = format!("ssm:{}:association/{}", clients.region, association.name);
            let found = ssm::find_association(clients, &association.name).await?;
            if let Some(f) = &found {
                runs.push((association.name.clone(), f.instances_by_status.clone()));
            }
            match found {
                None => {
                    part.differs(&resource, "exists", true, false);
                    part.act(
                        &resource,
                        &format!("create the association ({})", association.document),
                        || ssm::put_association(clients, agent, association, None),
                    )
                    .await?;
                }
                Some(found) => {
                    let differs = association
                        .parameters
                        .iter()
                        .find(|(k, v)| found.parameters.get(*k).and_then(|p| p.first()) != Some(*v));
                    let (field, expected, actual) = match differs {
                        _ if found.document != association.document => (
                            "document".to_string(),
                            association.document.to_string(),
                            found.document.clone(),
                        ),
                        // The configuration's location reads as such in drift reports.
                        Some((k, v)) => (
                            if k == "optionalConfigurationLocation" {
                                "configuration".to_string()
                            } else {
                                format!("parameters.{k}")
                            },
                            v.clone(),
                            found
                                .parameters
                                .get(k)
                                .and_then(|p| p.first())
                                .cloned()
                                .unwrap_or_default(),
                        ),
                        None => continue,
                    };
                    part.differs(&resource, &field, expected, actual);
                    part.act(
                        &resource,
                        &format!("update the association ({})", association.document),
                        || ssm::put_association(clients, agent, association, Some(&found.id)),
                    )
                    .await?;
                }
            }
        }
    }
    part.outcome
        .delivery
        .push(crate::judge::delivery::instance_logs(&clients.region, &runs));
    let platforms: Vec<&str> = agents.iter().map(|a| a.platform).collect();
    Ok(format!(
        "agent configuration for {} applied to instances tagged {}={}",
        platforms.join(" and "),
        agents[0].target.0,
        agents[0].target.1
    ))
}
