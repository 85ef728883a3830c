//! SSM: the CloudWatch agent configurations (parameters) and the associations that apply them.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_ssm::types::{AssociationFilter, AssociationFilterKey, ParameterType, Tag, Target};

use super::{AccountClients, AwsError, check, optional};
use crate::desired::regional::{DesiredAgentConfig, DesiredAssociation, PLATFORM_TAG};

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

/// An association as SSM reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedAssociation {
    pub id: String,
    pub document: String,
    pub parameters: BTreeMap<String, Vec<String>>,
    /// Instances by the status of their last run (Success, Failed, Pending, ...).
    pub instances_by_status: BTreeMap<String, i32>,
}

/// The association of this name; None when absent.
pub async fn find_association(clients: &AccountClients, name: &str) -> Result<Option<ObservedAssociation>, AwsError> {
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
    let description = described.association_description();
    Ok(Some(ObservedAssociation {
        id,
        document: description
            .and_then(|d| d.name())
            .or(found.name())
            .unwrap_or_default()
            .to_string(),
        parameters: description
            .and_then(|d| d.parameters())
            .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        instances_by_status: description
            .and_then(|d| d.overview())
            .and_then(|o| o.association_status_aggregated_count())
            .map(|c| c.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default(),
    }))
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

fn parameters(association: &DesiredAssociation) -> HashMap<String, Vec<String>> {
    association
        .parameters
        .iter()
        .map(|(k, v)| (k.clone(), vec![v.clone()]))
        .collect()
}

/// Creates `association` on the instances `config` targets, or updates the existing one.
pub async fn put_association(
    clients: &AccountClients,
    config: &DesiredAgentConfig,
    association: &DesiredAssociation,
    existing: Option<&str>,
) -> Result<(), AwsError> {
    let resource = format!("association {}", association.name);
    match existing {
        None => {
            let sent = clients
                .ssm
                .create_association()
                .name(association.document)
                .association_name(&association.name)
                .set_targets(Some(targets(config)))
                .set_parameters(Some(parameters(association)))
                .send()
                .await;
            check(sent, "SSM", "CreateAssociation", &resource).map(|_| ())
        }
        Some(id) => {
            let sent = clients
                .ssm
                .update_association()
                .association_id(id)
                .name(association.document)
                .set_targets(Some(targets(config)))
                .set_parameters(Some(parameters(association)))
                .send()
                .await;
            check(sent, "SSM", "UpdateAssociation", &resource).map(|_| ())
        }
    }
}
