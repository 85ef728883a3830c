//! SSM: the CloudWatch agent configurations (parameters) and the associations that apply them.

use std::collections::BTreeMap;

use aws_sdk_ssm::types::{AssociationFilter, AssociationFilterKey, ParameterType, Tag, Target};

use super::{AccountClients, AwsError, check, optional};
use crate::desired::regional::{AGENT_DOCUMENT, DesiredAgentConfig, PLATFORM_TAG};

pub async fn get_parameter(clients: &AccountClients, name: &str) -> Result<Option<String>, AwsError> {
    let sent = clients.ssm.get_parameter().name(name).send().await;
    let out = optional(sent, "SSM", "GetParameter", &format!("parameter {name}"))?;
    Ok(out.and_then(|o| o.parameter().and_then(|p| p.value()).map(str::to_string)))
}

pub async fn put_parameter(
    clients: &AccountClients,
    name: &str,
    value: &str,
    exists: bool,
    tags: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let mut request = clients
        .ssm
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::String);
    if exists {
        // Tags cannot be sent with Overwrite.
        request = request.overwrite(true);
    } else {
        let tags = tags
            .iter()
            .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
            .collect();
        request = request.set_tags(Some(tags));
    }
    check(
        request.send().await,
        "SSM",
        "PutParameter",
        &format!("parameter {name}"),
    )
    .map(|_| ())
}

/// The association of this name: its id, and the parameter location it applies. None when absent.
pub async fn find_association(
    clients: &AccountClients,
    name: &str,
) -> Result<Option<(String, Option<String>)>, AwsError> {
    let filter = AssociationFilter::builder()
        .key(AssociationFilterKey::AssociationName)
        .value(name)
        .build()
        .map_err(|e| AwsError {
            kind: super::ErrorKind::Invalid,
            action: "ssm:ListAssociations".into(),
            resource: format!("association {name}"),
            code: "InvalidFilter".into(),
            message: e.to_string(),
        })?;
    let sent = clients
        .ssm
        .list_associations()
        .association_filter_list(filter)
        .send()
        .await;
    let out = check(sent, "SSM", "ListAssociations", &format!("association {name}"))?;
    let Some(found) = out.associations().iter().find(|a| a.association_name() == Some(name)) else {
        return Ok(None);
    };
    let id = found.association_id().unwrap_or_default().to_string();
    let sent = clients.ssm.describe_association().association_id(&id).send().await;
    let described = check(sent, "SSM", "DescribeAssociation", &format!("association {name}"))?;
    let location = described
        .association_description()
        .and_then(|d| d.parameters())
        .and_then(|p| p.get("optionalConfigurationLocation"))
        .and_then(|v| v.first())
        .cloned();
    Ok(Some((id, location)))
}

fn targets(config: &DesiredAgentConfig) -> Vec<Target> {
    vec![
        Target::builder()
            .key(format!("tag:{}", config.target.0))
            .values(&config.target.1)
            .build(),
        Target::builder()
            .key(format!("tag:{PLATFORM_TAG}"))
            .values(config.platform)
            .build(),
    ]
}

fn parameters(config: &DesiredAgentConfig) -> std::collections::HashMap<String, Vec<String>> {
    [
        ("action", "configure"),
        ("mode", "ec2"),
        ("optionalConfigurationSource", "ssm"),
        ("optionalConfigurationLocation", config.parameter),
        ("optionalRestart", "yes"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), vec![v.to_string()]))
    .collect()
}

/// Creates the association that applies `config` to its targets, or updates the existing one.
pub async fn put_association(
    clients: &AccountClients,
    config: &DesiredAgentConfig,
    existing: Option<&str>,
) -> Result<(), AwsError> {
    let resource = format!("association {}", config.association);
    match existing {
        None => {
            let sent = clients
                .ssm
                .create_association()
                .name(AGENT_DOCUMENT)
                .association_name(&config.association)
                .set_targets(Some(targets(config)))
                .set_parameters(Some(parameters(config)))
                .send()
                .await;
            check(sent, "SSM", "CreateAssociation", &resource).map(|_| ())
        }
        Some(id) => {
            let sent = clients
                .ssm
                .update_association()
                .association_id(id)
                .name(AGENT_DOCUMENT)
                .set_targets(Some(targets(config)))
                .set_parameters(Some(parameters(config)))
                .send()
                .await;
            check(sent, "SSM", "UpdateAssociation", &resource).map(|_| ())
        }
    }
}
