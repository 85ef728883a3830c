//! Athena: the audit workgroup (its enforced result configuration) and its named queries.

use aws_sdk_athena::types::{
    EncryptionConfiguration, EncryptionOption, ResultConfiguration, ResultConfigurationUpdates, Tag,
    WorkGroupConfiguration, WorkGroupConfigurationUpdates, WorkGroupState,
};

use super::{AccountClients, AwsError, ErrorKind, check};
use crate::desired::athena::{DesiredWorkGroup, NamedQuery};

const SERVICE: &str = "Athena";

/// The parts of a workgroup trailkeeper keeps.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedWorkGroup {
    pub enabled: bool,
    pub enforced: bool,
    pub output_location: Option<String>,
    /// `SSE_KMS`, `SSE_S3`, `CSE_KMS`, or None for unencrypted results.
    pub encryption: Option<String>,
    pub kms_key: Option<String>,
    pub expected_bucket_owner: Option<String>,
    pub publish_metrics: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedNamedQuery {
    pub id: String,
    pub query: NamedQuery,
}

/// Athena reports a missing workgroup as an invalid request.
fn absent(e: &AwsError) -> bool {
    e.is_not_found() || (e.code == "InvalidRequestException" && e.message.to_lowercase().contains("not found"))
}

pub async fn observe_work_group(clients: &AccountClients, name: &str) -> Result<Option<ObservedWorkGroup>, AwsError> {
    let sent = clients.athena.get_work_group().work_group(name).send().await;
    let found = match check(sent, SERVICE, "GetWorkGroup", &format!("Athena workgroup {name}")) {
        Ok(found) => found,
        Err(e) if absent(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let Some(wg) = found.work_group() else {
        return Ok(None);
    };
    let config = wg.configuration();
    let results = config.and_then(|c| c.result_configuration());
    let encryption = results.and_then(|r| r.encryption_configuration());
    Ok(Some(ObservedWorkGroup {
        enabled: wg.state() != Some(&WorkGroupState::Disabled),
        enforced: config.and_then(|c| c.enforce_work_group_configuration()) == Some(true),
        output_location: results.and_then(|r| r.output_location()).map(str::to_string),
        encryption: encryption.map(|e| e.encryption_option().as_str().to_string()),
        kms_key: encryption.and_then(|e| e.kms_key()).map(str::to_string),
        expected_bucket_owner: results.and_then(|r| r.expected_bucket_owner()).map(str::to_string),
        publish_metrics: config.and_then(|c| c.publish_cloud_watch_metrics_enabled()) == Some(true),
    }))
}

fn encryption(wg: &DesiredWorkGroup, resource: &str, action: &str) -> Result<EncryptionConfiguration, AwsError> {
    EncryptionConfiguration::builder()
        .encryption_option(EncryptionOption::SseKms)
        .set_kms_key(wg.kms_key.clone())
        .build()
        .map_err(|e| AwsError::invalid(action, resource, e))
}

pub async fn create_work_group(clients: &AccountClients, wg: &DesiredWorkGroup) -> Result<(), AwsError> {
    let resource = format!("Athena workgroup {}", wg.name);
    let action = "athena:CreateWorkGroup";
    let results = ResultConfiguration::builder()
        .output_location(&wg.output_location)
        .encryption_configuration(encryption(wg, &resource, action)?)
        .expected_bucket_owner(&wg.expected_bucket_owner)
        .build();
    let configuration = WorkGroupConfiguration::builder()
        .result_configuration(results)
        .enforce_work_group_configuration(true)
        .publish_cloud_watch_metrics_enabled(true)
        .build();
    let tags = wg
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    let sent = clients
        .athena
        .create_work_group()
        .name(&wg.name)
        .description(&wg.description)
        .configuration(configuration)
        .set_tags(Some(tags))
        .send()
        .await;
    match check(sent, SERVICE, "CreateWorkGroup", &resource) {
        // Created by an earlier reconcile that stopped before it could tell: the next observe
        // compares it like any other.
        Err(e) if e.code == "InvalidRequestException" && e.message.to_lowercase().contains("already") => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Puts back the enforced result configuration (and enables the workgroup), leaving the rest
/// (engine version, scan limits) as people set it.
pub async fn update_work_group(clients: &AccountClients, wg: &DesiredWorkGroup) -> Result<(), AwsError> {
    let resource = format!("Athena workgroup {}", wg.name);
    let results = ResultConfigurationUpdates::builder()
        .output_location(&wg.output_location)
        .encryption_configuration(encryption(wg, &resource, "athena:UpdateWorkGroup")?)
        .expected_bucket_owner(&wg.expected_bucket_owner)
        .build();
    let updates = WorkGroupConfigurationUpdates::builder()
        .result_configuration_updates(results)
        .enforce_work_group_configuration(true)
        .publish_cloud_watch_metrics_enabled(true)
        .build();
    let sent = clients
        .athena
        .update_work_group()
        .work_group(&wg.name)
        .configuration_updates(updates)
        .state(WorkGroupState::Enabled)
        .send()
        .await;
    check(sent, SERVICE, "UpdateWorkGroup", &resource).map(|_| ())
}

/// Deletes the workgroup with its named queries and query history (not the results in S3).
pub async fn delete_work_group(clients: &AccountClients, name: &str) -> Result<bool, AwsError> {
    let sent = clients
        .athena
        .delete_work_group()
        .work_group(name)
        .recursive_delete_option(true)
        .send()
        .await;
    match check(sent, SERVICE, "DeleteWorkGroup", &format!("Athena workgroup {name}")) {
        Ok(_) => Ok(true),
        Err(e) if absent(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Every named query of the workgroup.
pub async fn list_named_queries(
    clients: &AccountClients,
    work_group: &str,
) -> Result<Vec<ObservedNamedQuery>, AwsError> {
    let resource = format!("the named queries of Athena workgroup {work_group}");
    let mut ids = Vec::new();
    let mut token = None;
    loop {
        let sent = clients
            .athena
            .list_named_queries()
            .work_group(work_group)
            .set_next_token(token.take())
            .max_results(50)
            .send()
            .await;
        let page = check(sent, SERVICE, "ListNamedQueries", &resource)?;
        ids.extend(page.named_query_ids().iter().cloned());
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => break,
        }
    }
    // One read per 50 queries (BatchGetNamedQuery's limit), not one per query.
    let mut queries = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(50) {
        let sent = clients
            .athena
            .batch_get_named_query()
            .set_named_query_ids(Some(chunk.to_vec()))
            .send()
            .await;
        let found = check(sent, SERVICE, "BatchGetNamedQuery", &resource)?;
        if let Some(unprocessed) = found.unprocessed_named_query_ids().first() {
            return Err(AwsError {
                kind: ErrorKind::Transient,
                action: "athena:BatchGetNamedQuery".into(),
                resource: format!(
                    "Athena named query {}",
                    unprocessed.named_query_id().unwrap_or_default()
                ),
                code: unprocessed.error_code().unwrap_or("Unprocessed").to_string(),
                message: unprocessed
                    .error_message()
                    .unwrap_or("Athena did not return the named query; trailkeeper reads it again next time")
                    .to_string(),
            });
        }
        queries.extend(found.named_queries().iter().map(|q| ObservedNamedQuery {
            id: q.named_query_id().unwrap_or_default().to_string(),
            query: NamedQuery {
                name: q.name().to_string(),
                description: q.description().unwrap_or_default().to_string(),
                database: q.database().to_string(),
                sql: q.query_string().to_string(),
            },
        }));
    }
    Ok(queries)
}

pub async fn create_named_query(
    clients: &AccountClients,
    work_group: &str,
    query: &NamedQuery,
) -> Result<(), AwsError> {
    let sent = clients
        .athena
        .create_named_query()
        .work_group(work_group)
        .name(&query.name)
        .description(&query.description)
        .database(&query.database)
        .query_string(&query.sql)
        .send()
        .await;
    check(
        sent,
        SERVICE,
        "CreateNamedQuery",
        &format!("Athena named query \"{}\"", query.name),
    )
    .map(|_| ())
}

pub async fn update_named_query(clients: &AccountClients, id: &str, query: &NamedQuery) -> Result<(), AwsError> {
    let sent = clients
        .athena
        .update_named_query()
        .named_query_id(id)
        .name(&query.name)
        .description(&query.description)
        .query_string(&query.sql)
        .send()
        .await;
    check(
        sent,
        SERVICE,
        "UpdateNamedQuery",
        &format!("Athena named query \"{}\"", query.name),
    )
    .map(|_| ())
}

/// A named query's database cannot be updated: it is deleted and created again.
pub async fn delete_named_query(clients: &AccountClients, id: &str) -> Result<(), AwsError> {
    let sent = clients.athena.delete_named_query().named_query_id(id).send().await;
    check(sent, SERVICE, "DeleteNamedQuery", &format!("Athena named query {id}")).map(|_| ())
}
