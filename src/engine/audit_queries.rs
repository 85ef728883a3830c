//! The audit queries of an account, in its primary region: the results bucket, the Glue database
//! and CloudTrail table, the Athena workgroup and its named queries, observed and repaired in that
//! order (each needs the one before).

use crate::api::AuditQueriesStatus;
use crate::aws::athena::{self, ObservedNamedQuery, ObservedWorkGroup};
use crate::aws::{AccountClients, AwsError, glue, s3};
use crate::desired::AccountSpecs;
use crate::desired::athena::{self as desired, DesiredWorkGroup, NamedQuery, TableDefinition};
use crate::engine::regional::{Part, RegionOutcome};
use crate::engine::report::Component;
use crate::engine::writes::apply_bucket;
use crate::judge::diff::{self, key_matches};

/// One field that differs: (field, expected, actual).
type FieldDrift = (String, String, String);

/// What differs between the table trailkeeper wants and the one in Glue. Parameters that Glue or
/// Athena add (`transient_lastDdlTime`, ...) are not trailkeeper's and are ignored.
pub fn table_drift(desired: &TableDefinition, observed: &TableDefinition) -> Vec<FieldDrift> {
    let mut drift = Vec::new();
    let mut differs = |field: &str, expected: String, actual: String| {
        if expected != actual {
            drift.push((field.to_string(), expected, actual));
        }
    };
    let columns = |c: &[(String, String)]| c.iter().map(|(n, t)| format!("{n} {t}")).collect::<Vec<_>>().join(", ");
    // Glue and Athena lowercase names and types; so does trailkeeper.
    let lower = |c: &[(String, String)]| {
        c.iter()
            .map(|(n, t)| (n.to_lowercase(), t.to_lowercase().replace(' ', "")))
            .collect::<Vec<_>>()
    };
    differs("columns", columns(&desired.columns), columns(&lower(&observed.columns)));
    differs(
        "partitionKeys",
        columns(&desired.partition_keys),
        columns(&lower(&observed.partition_keys)),
    );
    differs("tableType", desired.table_type.clone(), observed.table_type.clone());
    differs(
        "location",
        desired.location.clone(),
        observed.location.trim_end_matches('/').to_string() + "/",
    );
    differs(
        "inputFormat",
        desired.input_format.clone(),
        observed.input_format.clone(),
    );
    differs(
        "outputFormat",
        desired.output_format.clone(),
        observed.output_format.clone(),
    );
    differs("serde", desired.serde_library.clone(), observed.serde_library.clone());
    for (key, value) in &desired.parameters {
        let actual = observed.parameters.get(key).cloned().unwrap_or_else(|| "(none)".into());
        differs(&format!("parameters.{key}"), value.clone(), actual);
    }
    drift
}

/// What differs between the workgroup trailkeeper wants and the one in Athena.
pub fn work_group_drift(desired: &DesiredWorkGroup, observed: &ObservedWorkGroup) -> Vec<FieldDrift> {
    let mut drift = Vec::new();
    let mut differs = |field: &str, ok: bool, expected: String, actual: String| {
        if !ok {
            drift.push((field.to_string(), expected, actual));
        }
    };
    let none = || "(none)".to_string();
    differs("state", observed.enabled, "ENABLED".into(), "DISABLED".into());
    differs(
        "enforceWorkGroupConfiguration",
        observed.enforced,
        "true".into(),
        "false".into(),
    );
    differs(
        "outputLocation",
        observed.output_location.as_deref() == Some(desired.output_location.as_str()),
        desired.output_location.clone(),
        observed.output_location.clone().unwrap_or_else(none),
    );
    let key_ok = match (&observed.kms_key, &desired.kms_key) {
        (Some(actual), Some(wanted)) => key_matches(actual, wanted),
        _ => false,
    };
    differs(
        "encryption",
        observed.encryption.as_deref() == Some("SSE_KMS") && key_ok,
        format!(
            "SSE_KMS with {}",
            desired
                .kms_key
                .as_deref()
                .unwrap_or("the baseline's key (to be created)")
        ),
        match &observed.encryption {
            Some(option) => format!("{option} {}", observed.kms_key.as_deref().unwrap_or(""))
                .trim()
                .to_string(),
            None => "not encrypted".into(),
        },
    );
    differs(
        "expectedBucketOwner",
        observed.expected_bucket_owner.as_deref() == Some(desired.expected_bucket_owner.as_str()),
        desired.expected_bucket_owner.clone(),
        observed.expected_bucket_owner.clone().unwrap_or_else(none),
    );
    differs(
        "publishCloudWatchMetrics",
        observed.publish_metrics,
        "true".into(),
        "false".into(),
    );
    drift
}

/// How a named query is brought in line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryFix {
    Create,
    /// Text or description changed.
    Update(String),
    /// The database changed, which UpdateNamedQuery cannot do.
    Replace(String),
}

/// The named queries to create or fix; people's own queries (other names) are left alone.
pub fn named_query_fixes(desired: &[NamedQuery], observed: &[ObservedNamedQuery]) -> Vec<(NamedQuery, QueryFix)> {
    desired
        .iter()
        .filter_map(|want| {
            let found = observed.iter().find(|o| o.query.name == want.name);
            let fix = match found {
                None => QueryFix::Create,
                Some(o) if o.query.database != want.database => QueryFix::Replace(o.id.clone()),
                Some(o) if o.query.sql != want.sql || o.query.description != want.description => {
                    QueryFix::Update(o.id.clone())
                }
                Some(_) => return None,
            };
            Some((want.clone(), fix))
        })
        .collect()
}

/// Reconciles the audit queries. `kms_key`: the key results are encrypted with (None before the
/// key exists); `trail_bucket`: where the trail delivers; `tables`: the CloudTrail tables over its
/// logs (an account's one, `desired::cloudtrail_table`; a LogArchive's one per layout,
/// `desired::archive_tables`), at least one.
pub async fn reconcile_audit_queries(
    clients: &AccountClients,
    specs: &AccountSpecs<'_>,
    write: bool,
    kms_key: Option<&str>,
    trail_bucket: &str,
    tables: &[TableDefinition],
    outcome: &mut RegionOutcome,
) -> AuditQueriesStatus {
    let spec = specs.baseline;
    let mut part = Part {
        outcome,
        write,
        component: Component::AuditQueries,
        changed: false,
    };
    let status = AuditQueriesStatus {
        database: spec.audit_queries.database.clone(),
        table: tables
            .first()
            .map_or_else(|| spec.audit_queries.table.clone(), |t| t.name.clone()),
        organization_table: tables.get(1).map(|t| t.name.clone()),
        work_group: spec.audit_queries.work_group.clone(),
        results_location: desired::results_location(spec),
        named_queries: 0,
    };
    let result = reconcile(clients, specs, kms_key, trail_bucket, tables, &mut part).await;
    let named_queries = *result.as_ref().unwrap_or(&0);
    part.finish(result.map(|n| {
        format!(
            "database {}, table {}, workgroup {}, {n} named queries",
            status.database, status.table, status.work_group
        )
    }));
    AuditQueriesStatus {
        named_queries,
        ..status
    }
}

/// Returns the number of trailkeeper's named queries in the workgroup.
async fn reconcile(
    clients: &AccountClients,
    specs: &AccountSpecs<'_>,
    kms_key: Option<&str>,
    trail_bucket: &str,
    tables: &[TableDefinition],
    part: &mut Part<'_>,
) -> Result<u32, AwsError> {
    let spec = specs.baseline;
    let bucket = desired::results_bucket(specs);
    let database = desired::database(spec);
    let work_group = desired::work_group(spec, kms_key);
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    let queries = desired::named_queries_over(spec, trail_bucket, &names);
    let reads = s3::Reads {
        object_lock: false,
        access_logging: false,
    };
    let (observed_bucket, database_exists, observed_tables, observed_wg) = tokio::join!(
        Box::pin(s3::observe_bucket(clients, &bucket.name, reads)),
        glue::database_exists(clients, &database.name),
        futures::future::join_all(
            tables
                .iter()
                .map(|t| glue::observe_table(clients, &database.name, &t.name))
        ),
        athena::observe_work_group(clients, &work_group.name),
    );

    // The results bucket first: the workgroup points at it.
    let delta = diff::diff_bucket(&bucket, observed_bucket?.as_ref(), kms_key);
    let resource = format!("s3://{}", bucket.name);
    for d in &delta.drift {
        part.differs(&d.resource, &d.field, &d.expected, &d.actual);
    }
    for action in &delta.actions {
        part.act(&resource, &action.to_string(), || {
            apply_bucket(clients, &bucket, kms_key, action)
        })
        .await?;
    }

    let database_exists = database_exists?;
    for (i, (table, observed)) in tables.iter().zip(observed_tables).enumerate() {
        // The database is made with the first table.
        reconcile_catalog(clients, &database, database_exists || i > 0, table, observed?, part).await?;
    }
    let observed_queries = reconcile_work_group(clients, &work_group, observed_wg?, part).await?;

    for (query, fix) in named_query_fixes(&queries, &observed_queries) {
        let resource = format!("athena:workgroup/{}/{}", work_group.name, query.name);
        match fix {
            QueryFix::Create => {
                part.differs(&resource, "exists", true, false);
                part.act(&resource, "create the named query", || {
                    athena::create_named_query(clients, &work_group.name, &query)
                })
                .await?;
            }
            QueryFix::Update(id) => {
                part.differs(&resource, "definition", "trailkeeper's audit query", "edited");
                part.act(&resource, "update the named query", || {
                    athena::update_named_query(clients, &id, &query)
                })
                .await?;
            }
            QueryFix::Replace(id) => {
                part.differs(&resource, "database", &query.database, "another database");
                part.act(&resource, "replace the named query (its database changed)", || async {
                    athena::delete_named_query(clients, &id).await?;
                    athena::create_named_query(clients, &work_group.name, &query).await
                })
                .await?;
            }
        }
    }
    Ok(queries.len() as u32)
}

/// The Glue database and a CloudTrail table over the trail's logs.
async fn reconcile_catalog(
    clients: &AccountClients,
    database: &desired::DesiredDatabase,
    database_exists: bool,
    table: &TableDefinition,
    observed_table: Option<TableDefinition>,
    part: &mut Part<'_>,
) -> Result<(), AwsError> {
    let resource = format!("glue:{}", database.name);
    if !database_exists {
        part.differs(&resource, "exists", true, false);
        part.act(&resource, "create the Glue database", || {
            glue::create_database(clients, database)
        })
        .await?;
    }
    let resource = format!("glue:{}.{}", database.name, table.name);
    match observed_table {
        None => {
            part.differs(&resource, "exists", true, false);
            part.act(&resource, "create the CloudTrail table", || {
                glue::create_table(clients, &database.name, table)
            })
            .await?;
        }
        Some(observed) => {
            let drift = table_drift(table, &observed);
            for (field, expected, actual) in &drift {
                part.differs(&resource, field, expected, actual);
            }
            if !drift.is_empty() {
                part.act(&resource, "update the CloudTrail table's definition", || {
                    glue::update_table(clients, &database.name, table)
                })
                .await?;
            }
        }
    }

    Ok(())
}

/// The workgroup (results enforced and encrypted); returns the named queries it holds.
async fn reconcile_work_group(
    clients: &AccountClients,
    work_group: &DesiredWorkGroup,
    observed: Option<ObservedWorkGroup>,
    part: &mut Part<'_>,
) -> Result<Vec<ObservedNamedQuery>, AwsError> {
    let resource = format!("athena:workgroup/{}", work_group.name);
    let queries = match observed {
        None => {
            part.differs(&resource, "exists", true, false);
            part.act(
                &resource,
                "create the workgroup with enforced, encrypted results",
                || athena::create_work_group(clients, work_group),
            )
            .await?;
            Vec::new()
        }
        Some(observed) => {
            let drift = work_group_drift(work_group, &observed);
            for (field, expected, actual) in &drift {
                part.differs(&resource, field, expected, actual);
            }
            if !drift.is_empty() {
                let fields: Vec<&str> = drift.iter().map(|(f, _, _)| f.as_str()).collect();
                let action = format!("update the workgroup ({})", fields.join(", "));
                part.act(&resource, &action, || athena::update_work_group(clients, work_group))
                    .await?;
            }
            athena::list_named_queries(clients, &work_group.name).await?
        }
    };
    Ok(queries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::athena::TrailLocation;

    fn table() -> TableDefinition {
        let spec =
            serde_json::from_value(serde_json::json!({"accountId": "123456789012", "primaryRegion": "eu-west-1"}))
                .expect("a minimal baseline");
        desired::cloudtrail_table(
            &spec,
            &TrailLocation {
                bucket: "b".into(),
                key_prefix: None,
                organization_id: None,
            },
        )
    }

    #[test]
    fn a_table_as_glue_returns_it_is_in_line() {
        let desired = table();
        let mut observed = desired.clone();
        observed
            .parameters
            .insert("transient_lastDdlTime".into(), "1700000000".into());
        observed.location = observed.location.trim_end_matches('/').to_string();
        observed.columns[0].1 = "STRING".into();
        assert_eq!(table_drift(&desired, &observed), Vec::new());
    }

    #[test]
    fn a_changed_location_projection_or_column_is_drift() {
        let desired = table();
        let mut observed = desired.clone();
        observed.location = "s3://elsewhere/".into();
        observed.parameters.remove("projection.enabled");
        observed.columns.pop();
        let fields: Vec<String> = table_drift(&desired, &observed).into_iter().map(|d| d.0).collect();
        assert_eq!(fields, vec!["columns", "location", "parameters.projection.enabled"]);
    }

    fn in_line() -> (DesiredWorkGroup, ObservedWorkGroup) {
        let desired = DesiredWorkGroup {
            name: "wg".into(),
            description: String::new(),
            output_location: "s3://r/results/".into(),
            kms_key: Some("arn:aws:kms:eu-west-1:123456789012:key/k1".into()),
            expected_bucket_owner: "123456789012".into(),
            tags: Default::default(),
        };
        let observed = ObservedWorkGroup {
            enabled: true,
            enforced: true,
            output_location: Some("s3://r/results/".into()),
            encryption: Some("SSE_KMS".into()),
            kms_key: Some("k1".into()),
            expected_bucket_owner: Some("123456789012".into()),
            publish_metrics: true,
        };
        (desired, observed)
    }

    #[test]
    fn a_workgroup_with_the_keys_id_for_its_arn_is_in_line() {
        let (desired, observed) = in_line();
        assert_eq!(work_group_drift(&desired, &observed), Vec::new());
    }

    #[test]
    fn unencrypted_or_unenforced_results_are_drift() {
        let (desired, mut observed) = in_line();
        observed.encryption = None;
        observed.kms_key = None;
        observed.enforced = false;
        let drift = work_group_drift(&desired, &observed);
        let fields: Vec<&str> = drift.iter().map(|d| d.0.as_str()).collect();
        assert_eq!(fields, vec!["enforceWorkGroupConfiguration", "encryption"]);
        assert_eq!(drift[1].2, "not encrypted");
        let (desired, mut observed) = in_line();
        observed.encryption = Some("SSE_S3".into());
        assert_eq!(work_group_drift(&desired, &observed)[0].0, "encryption");
    }

    #[test]
    fn named_queries_are_matched_by_name_and_peoples_own_are_left_alone() {
        let want = |name: &str, sql: &str| NamedQuery {
            name: name.into(),
            description: "d".into(),
            database: "db".into(),
            sql: sql.into(),
        };
        let seen = |id: &str, query: NamedQuery| ObservedNamedQuery { id: id.into(), query };
        let desired = vec![
            want("a", "SELECT 1"),
            want("b", "SELECT 2"),
            want("c", "SELECT 3"),
            want("d", "SELECT 4"),
        ];
        let mut moved = want("d", "SELECT 4");
        moved.database = "old".into();
        let observed = vec![
            seen("1", want("a", "SELECT 1")),
            seen("2", want("b", "SELECT 20")),
            seen("4", moved),
            seen("9", want("mine", "SELECT 9")),
        ];
        let fixes: Vec<(String, QueryFix)> = named_query_fixes(&desired, &observed)
            .into_iter()
            .map(|(q, f)| (q.name, f))
            .collect();
        assert_eq!(
            fixes,
            vec![
                ("b".to_string(), QueryFix::Update("2".into())),
                ("c".to_string(), QueryFix::Create),
                ("d".to_string(), QueryFix::Replace("4".into())),
            ]
        );
    }
}
