//! Glue Data Catalog: the database and the CloudTrail table Athena queries.

use std::collections::BTreeMap;

use aws_sdk_glue::types::{Column, DatabaseInput, SerDeInfo, StorageDescriptor, TableInput};

use super::{AccountClients, AwsError, check, optional};
use crate::desired::athena::{DesiredDatabase, TableDefinition};

const SERVICE: &str = "Glue";

/// Whether the database exists.
pub async fn database_exists(clients: &AccountClients, name: &str) -> Result<bool, AwsError> {
    let sent = clients.glue.get_database().name(name).send().await;
    Ok(optional(sent, SERVICE, "GetDatabase", &format!("Glue database {name}"))?.is_some())
}

pub async fn create_database(clients: &AccountClients, database: &DesiredDatabase) -> Result<(), AwsError> {
    let resource = format!("Glue database {}", database.name);
    let input = DatabaseInput::builder()
        .name(&database.name)
        .description(&database.description)
        .build()
        .map_err(|e| AwsError::invalid("glue:CreateDatabase", &resource, e))?;
    let sent = clients
        .glue
        .create_database()
        .database_input(input)
        .set_tags(Some(database.tags.clone().into_iter().collect()))
        .send()
        .await;
    match check(sent, SERVICE, "CreateDatabase", &resource) {
        // Created by an earlier reconcile that stopped before it could tell.
        Err(e) if e.code == "AlreadyExistsException" => Ok(()),
        other => other.map(|_| ()),
    }
}

fn columns(columns: Option<&[Column]>) -> Vec<(String, String)> {
    columns
        .unwrap_or_default()
        .iter()
        .map(|c| (c.name().to_string(), c.r#type().unwrap_or_default().to_string()))
        .collect()
}

/// The table as trailkeeper compares it; None when it does not exist.
pub async fn observe_table(
    clients: &AccountClients,
    database: &str,
    name: &str,
) -> Result<Option<TableDefinition>, AwsError> {
    let sent = clients.glue.get_table().database_name(database).name(name).send().await;
    let Some(found) = optional(sent, SERVICE, "GetTable", &format!("Glue table {database}.{name}"))? else {
        return Ok(None);
    };
    let Some(table) = found.table() else {
        return Ok(None);
    };
    let storage = table.storage_descriptor();
    Ok(Some(TableDefinition {
        name: table.name().to_string(),
        table_type: table.table_type().unwrap_or_default().to_string(),
        columns: columns(storage.map(|s| s.columns())),
        partition_keys: columns(Some(table.partition_keys())),
        location: storage.and_then(|s| s.location()).unwrap_or_default().to_string(),
        input_format: storage.and_then(|s| s.input_format()).unwrap_or_default().to_string(),
        output_format: storage.and_then(|s| s.output_format()).unwrap_or_default().to_string(),
        serde_library: storage
            .and_then(|s| s.serde_info())
            .and_then(|s| s.serialization_library())
            .unwrap_or_default()
            .to_string(),
        parameters: table
            .parameters()
            .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_else(BTreeMap::new),
    }))
}

fn table_input(table: &TableDefinition, resource: &str, action: &str) -> Result<TableInput, AwsError> {
    let column = |(name, type_): &(String, String)| {
        Column::builder()
            .name(name)
            .r#type(type_)
            .build()
            .map_err(|e| AwsError::invalid(action, resource, e))
    };
    let storage = StorageDescriptor::builder()
        .set_columns(Some(table.columns.iter().map(column).collect::<Result<_, _>>()?))
        .location(&table.location)
        .input_format(&table.input_format)
        .output_format(&table.output_format)
        .serde_info(SerDeInfo::builder().serialization_library(&table.serde_library).build())
        .build();
    TableInput::builder()
        .name(&table.name)
        .table_type(&table.table_type)
        .storage_descriptor(storage)
        .set_partition_keys(Some(table.partition_keys.iter().map(column).collect::<Result<_, _>>()?))
        .set_parameters(Some(table.parameters.clone().into_iter().collect()))
        .build()
        .map_err(|e| AwsError::invalid(action, resource, e))
}

pub async fn create_table(clients: &AccountClients, database: &str, table: &TableDefinition) -> Result<(), AwsError> {
    let resource = format!("Glue table {database}.{}", table.name);
    let input = table_input(table, &resource, "glue:CreateTable")?;
    let sent = clients
        .glue
        .create_table()
        .database_name(database)
        .table_input(input)
        .send()
        .await;
    match check(sent, SERVICE, "CreateTable", &resource) {
        // Created by an earlier reconcile that stopped before it could tell: the next observe
        // compares it like any other.
        Err(e) if e.code == "AlreadyExistsException" => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Replaces the table's definition (Glue keeps the previous one as a table version).
pub async fn update_table(clients: &AccountClients, database: &str, table: &TableDefinition) -> Result<(), AwsError> {
    let resource = format!("Glue table {database}.{}", table.name);
    let input = table_input(table, &resource, "glue:UpdateTable")?;
    let sent = clients
        .glue
        .update_table()
        .database_name(database)
        .table_input(input)
        .send()
        .await;
    check(sent, SERVICE, "UpdateTable", &resource).map(|_| ())
}

/// Deletes the table (metadata only: the logs it reads stay where they are).
pub async fn delete_table(clients: &AccountClients, database: &str, name: &str) -> Result<bool, AwsError> {
    let sent = clients
        .glue
        .delete_table()
        .database_name(database)
        .name(name)
        .send()
        .await;
    Ok(optional(sent, SERVICE, "DeleteTable", &format!("Glue table {database}.{name}"))?.is_some())
}

/// Deletes the database when it holds no table (it may hold people's own): `None` when it did
/// not exist, else whether it was deleted.
pub async fn delete_database_if_empty(clients: &AccountClients, name: &str) -> Result<Option<bool>, AwsError> {
    let resource = format!("Glue database {name}");
    let sent = clients
        .glue
        .get_tables()
        .database_name(name)
        .max_results(1)
        .send()
        .await;
    let Some(tables) = optional(sent, SERVICE, "GetTables", &resource)? else {
        return Ok(None);
    };
    if !tables.table_list().is_empty() {
        return Ok(Some(false));
    }
    let sent = clients.glue.delete_database().name(name).send().await;
    Ok(optional(sent, SERVICE, "DeleteDatabase", &resource)?.map(|_| true))
}
