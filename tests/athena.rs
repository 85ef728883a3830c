//! The audit queries on moto: the Glue database and CloudTrail table, the Athena workgroup with
//! enforced encrypted results, the named queries; read back independently, repaired after drift,
//! and free of writes once in line. The named queries' SQL is checked against the table.

mod common;

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use aws_sdk_athena::types::{ResultConfigurationUpdates, WorkGroupConfigurationUpdates};
use common::*;
use sqlparser::ast::{Expr, Ident, SelectItem, Statement, visit_expressions};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use trailkeeper::api::{LoggingBaselineSpec, RetentionPolicySpec, TrailPolicySpec, TrailSource};
use trailkeeper::desired::athena::{self, HiveType, TrailLocation};
use trailkeeper::desired::{self, AccountSpecs};
use trailkeeper::engine::account::{
    AccountReport, Component, ComponentState, ReconcileOptions, RunMode, account_clients, reconcile_account,
};

/// The default baseline with its audit queries on; flow logs off (they have their own tests).
fn audit_spec(account: &str) -> LoggingBaselineSpec {
    let mut spec = spec(account);
    spec.audit_queries.enabled = true;
    spec.flow_logs.enabled = false;
    spec
}

async fn run_with(spec: &LoggingBaselineSpec, trail_policy: &TrailPolicySpec, mode: RunMode) -> AccountReport {
    let retention = RetentionPolicySpec::default();
    let specs = AccountSpecs {
        baseline: spec,
        trail_policy,
        retention: &retention,
    };
    let clients = account_clients(&base_config().await, &specs);
    reconcile_account(clients, &specs, ReconcileOptions::new(mode)).await
}

async fn run(spec: &LoggingBaselineSpec, mode: RunMode) -> AccountReport {
    run_with(spec, &TrailPolicySpec::default(), mode).await
}

fn audit_state(report: &AccountReport) -> Option<&ComponentState> {
    report.components.get(&Component::AuditQueries)
}

async fn named_queries(aws: &Inspector, work_group: &str) -> Vec<aws_sdk_athena::types::NamedQuery> {
    let ids = aws
        .athena
        .list_named_queries()
        .work_group(work_group)
        .send()
        .await
        .unwrap()
        .named_query_ids
        .unwrap_or_default();
    let mut queries = Vec::new();
    for id in ids {
        let found = aws.athena.get_named_query().named_query_id(id).send().await.unwrap();
        queries.extend(found.named_query);
    }
    queries
}

/// The Glue table, read back directly.
async fn glue_table(aws: &Inspector, database: &str, name: &str) -> aws_sdk_glue::types::Table {
    let found = aws.glue.get_table().database_name(database).name(name).send().await;
    found.unwrap().table.unwrap()
}

/// The audit workgroup's configuration, read back directly.
async fn work_group_config(aws: &Inspector) -> aws_sdk_athena::types::WorkGroupConfiguration {
    let found = aws.athena.get_work_group().work_group("trailkeeper-audit").send().await;
    found.unwrap().work_group.unwrap().configuration.unwrap()
}

#[tokio::test]
async fn the_audit_queries_exist_after_apply_and_a_second_apply_writes_nothing() {
    let account = new_account();
    let spec = audit_spec(&account);
    let first = run(&spec, RunMode::Apply).await;
    assert!(!first.failed(), "{:?} {:?}", first.error, first.components);
    assert_eq!(audit_state(&first), Some(&ComponentState::Repaired));

    // Read back with clients of our own, not through trailkeeper.
    let aws = inspector(&account).await;
    let key_id = aws.trail_key_id().await;
    aws.glue.get_database().name("trailkeeper_audit").send().await.unwrap();
    let table = glue_table(&aws, "trailkeeper_audit", "cloudtrail_logs").await;
    let storage = table.storage_descriptor().unwrap();
    let bucket = desired::trail_bucket_name(&spec);
    assert_eq!(
        storage.location(),
        Some(format!("s3://{bucket}/AWS/CloudTrail/AWSLogs/{account}/CloudTrail/").as_str())
    );
    assert_eq!(storage.columns().len(), 29);
    let partitions: Vec<&str> = table.partition_keys().iter().map(|c| c.name()).collect();
    assert_eq!(partitions, vec!["account", "region", "date"]);
    let parameters = table.parameters().unwrap();
    assert_eq!(parameters["projection.enabled"], "true");
    assert_eq!(parameters["projection.account.values"], account);
    assert_eq!(
        parameters["storage.location.template"],
        format!("s3://{bucket}/AWS/CloudTrail/AWSLogs/${{account}}/CloudTrail/${{region}}/${{date}}")
    );

    let config = work_group_config(&aws).await;
    assert_eq!(config.enforce_work_group_configuration(), Some(true));
    assert_eq!(
        config.publish_cloud_watch_metrics_enabled(),
        Some(true),
        "the workgroup's metrics"
    );
    let results = config.result_configuration().unwrap();
    let results_bucket = athena::results_bucket_name(&spec);
    assert_eq!(
        results.output_location(),
        Some(format!("s3://{results_bucket}/results/").as_str())
    );
    let encryption = results.encryption_configuration().unwrap();
    assert_eq!(encryption.encryption_option().as_str(), "SSE_KMS");
    assert!(encryption.kms_key().unwrap().ends_with(&key_id));

    let names: BTreeSet<String> = named_queries(&aws, "trailkeeper-audit")
        .await
        .into_iter()
        .map(|q| {
            assert_eq!(q.database, "trailkeeper_audit");
            q.name
        })
        .collect();
    assert_eq!(names.len(), 6, "{names:?}");
    assert!(names.contains("trailkeeper: trail and logging changes"));

    // The results bucket: encrypted with the key, private, results expire.
    let sse = aws
        .s3
        .get_bucket_encryption()
        .bucket(&results_bucket)
        .send()
        .await
        .unwrap();
    let rule = &sse.server_side_encryption_configuration.unwrap().rules[0];
    let default = rule.apply_server_side_encryption_by_default.as_ref().unwrap();
    assert_eq!(default.sse_algorithm.as_str(), "aws:kms");
    let pab = aws
        .s3
        .get_public_access_block()
        .bucket(&results_bucket)
        .send()
        .await
        .unwrap()
        .public_access_block_configuration
        .unwrap();
    assert_eq!(pab.restrict_public_buckets, Some(true));
    let lifecycle = aws
        .s3
        .get_bucket_lifecycle_configuration()
        .bucket(&results_bucket)
        .send()
        .await
        .unwrap();
    let expire = lifecycle
        .rules()
        .iter()
        .find_map(|r| r.expiration.as_ref().and_then(|e| e.days))
        .unwrap();
    assert_eq!(expire, 30);

    let second = run(&spec, RunMode::Apply).await;
    assert_eq!(second.calls.writes, 0, "{:?}", second.applied);
    assert!(second.in_sync(), "{:?} {:?}", second.drift, second.components);
    assert_eq!(audit_state(&second), Some(&ComponentState::InSync));
    let status = second.audit_queries.as_ref().unwrap();
    assert_eq!(
        (
            status.database.as_str(),
            status.table.as_str(),
            status.work_group.as_str(),
            status.named_queries
        ),
        ("trailkeeper_audit", "cloudtrail_logs", "trailkeeper-audit", 6)
    );
    assert_eq!(status.results_location, format!("s3://{results_bucket}/results/"));
}

#[tokio::test]
async fn a_workgroup_whose_encryption_was_turned_off_is_repaired() {
    let account = new_account();
    let spec = audit_spec(&account);
    assert!(!run(&spec, RunMode::Apply).await.failed());

    // Behind trailkeeper's back: results no longer encrypted nor enforced.
    let aws = inspector(&account).await;
    aws.athena
        .update_work_group()
        .work_group("trailkeeper-audit")
        .configuration_updates(
            WorkGroupConfigurationUpdates::builder()
                .enforce_work_group_configuration(false)
                .result_configuration_updates(
                    ResultConfigurationUpdates::builder()
                        .remove_encryption_configuration(true)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();

    let plan = run(&spec, RunMode::Plan).await;
    assert_eq!(plan.calls.writes, 0);
    let fields: Vec<&str> = plan
        .drift
        .iter()
        .filter(|d| d.resource == "athena:workgroup/trailkeeper-audit")
        .map(|d| d.field.as_str())
        .collect();
    assert_eq!(fields, vec!["enforceWorkGroupConfiguration", "encryption"]);
    assert!(
        plan.drift
            .iter()
            .any(|d| d.field == "encryption" && d.actual == "not encrypted")
    );
    assert_eq!(audit_state(&plan), Some(&ComponentState::Drifted));

    let repair = run(&spec, RunMode::Apply).await;
    assert_eq!(repair.applied.len(), 1, "{:?}", repair.applied);
    assert!(repair.applied[0].action.starts_with("update the workgroup"));
    let config = work_group_config(&aws).await;
    assert_eq!(config.enforce_work_group_configuration(), Some(true));
    let encryption = config
        .result_configuration()
        .unwrap()
        .encryption_configuration()
        .unwrap();
    assert_eq!(encryption.encryption_option().as_str(), "SSE_KMS");
    assert!(encryption.kms_key().unwrap().ends_with(&aws.trail_key_id().await));
    assert_eq!(run(&spec, RunMode::Apply).await.calls.writes, 0);
}

#[tokio::test]
async fn a_changed_table_and_an_edited_named_query_are_put_back_and_peoples_queries_are_kept() {
    let account = new_account();
    let spec = audit_spec(&account);
    assert!(!run(&spec, RunMode::Apply).await.failed());
    let aws = inspector(&account).await;

    // Someone turns partition projection off and edits one of trailkeeper's queries...
    let table = glue_table(&aws, "trailkeeper_audit", "cloudtrail_logs").await;
    let mut parameters = table.parameters().unwrap().clone();
    parameters.insert("projection.enabled".into(), "false".into());
    let input = aws_sdk_glue::types::TableInput::builder()
        .name("cloudtrail_logs")
        .set_storage_descriptor(table.storage_descriptor().cloned())
        .set_partition_keys(Some(table.partition_keys().to_vec()))
        .set_table_type(table.table_type().map(str::to_string))
        .set_parameters(Some(parameters))
        .build()
        .unwrap();
    aws.glue
        .update_table()
        .database_name("trailkeeper_audit")
        .table_input(input)
        .send()
        .await
        .unwrap();
    let queries = named_queries(&aws, "trailkeeper-audit").await;
    let edited = queries
        .iter()
        .find(|q| q.name == "trailkeeper: root user activity")
        .unwrap();
    aws.athena
        .update_named_query()
        .named_query_id(edited.named_query_id().unwrap())
        .name(&edited.name)
        .query_string("SELECT 1")
        .send()
        .await
        .unwrap();
    // ... and adds a query of their own to the workgroup.
    aws.athena
        .create_named_query()
        .work_group("trailkeeper-audit")
        .name("my own query")
        .database("trailkeeper_audit")
        .query_string("SELECT eventname FROM cloudtrail_logs")
        .send()
        .await
        .unwrap();

    let repair = run(&spec, RunMode::Apply).await;
    let resources: Vec<&str> = repair.applied.iter().map(|c| c.resource.as_str()).collect();
    assert_eq!(
        resources,
        vec![
            "glue:trailkeeper_audit.cloudtrail_logs",
            "athena:workgroup/trailkeeper-audit/trailkeeper: root user activity"
        ]
    );
    assert!(
        repair
            .drift
            .iter()
            .any(|d| d.field == "parameters.projection.enabled" && d.actual == "false")
    );
    let queries = named_queries(&aws, "trailkeeper-audit").await;
    assert_eq!(queries.len(), 7);
    let root = queries
        .iter()
        .find(|q| q.name == "trailkeeper: root user activity")
        .unwrap();
    assert!(root.query_string.contains("useridentity.type = 'Root'"));
    assert!(queries.iter().any(|q| q.name == "my own query"));
    assert_eq!(run(&spec, RunMode::Apply).await.calls.writes, 0);
}

#[tokio::test]
async fn an_existing_organization_trail_is_queried_in_its_bucket_under_the_organization_id() {
    let account = new_account();
    let aws = inspector(&account).await;
    let org_id = common::create_organization(&aws).await;
    let bucket = format!("org-trail-{account}");
    let key_arn = common::trail_destination(
        &aws,
        &account,
        &bucket,
        Some("org"),
        "organization-trail",
        Some(&org_id),
    )
    .await;
    let arn = aws
        .cloudtrail
        .create_trail()
        .name("organization-trail")
        .s3_bucket_name(&bucket)
        .s3_key_prefix("org")
        .is_multi_region_trail(true)
        .is_organization_trail(true)
        .kms_key_id(&key_arn)
        .send()
        .await
        .unwrap()
        .trail_arn
        .unwrap();

    let mut spec = audit_spec(&account);
    spec.trail.source = TrailSource::Existing;
    spec.trail.existing_trail_arn = Some(arn);
    let report = run(&spec, RunMode::Apply).await;
    assert_eq!(
        audit_state(&report),
        Some(&ComponentState::Repaired),
        "{:?}",
        report.components
    );
    let table = glue_table(&aws, "trailkeeper_audit", "cloudtrail_logs").await;
    assert_eq!(
        table.storage_descriptor().unwrap().location(),
        Some(format!("s3://{bucket}/org/AWSLogs/{org_id}/{account}/CloudTrail/").as_str())
    );
    // Results are encrypted with the trail's key (the baseline names none).
    let config = work_group_config(&aws).await;
    let encryption = config
        .result_configuration()
        .and_then(|r| r.encryption_configuration())
        .unwrap();
    assert_eq!(encryption.kms_key(), Some(key_arn.as_str()));
    // The trail bucket audited by the named query is the organization trail's.
    let queries = named_queries(&aws, "trailkeeper-audit").await;
    assert!(
        queries
            .iter()
            .any(|q| q.query_string.contains(&format!("= '{bucket}'")))
    );
}

#[tokio::test]
async fn audit_queries_turned_off_cost_no_athena_or_glue_call() {
    let account = new_account();
    let mut spec = audit_spec(&account);
    spec.audit_queries.enabled = false;
    let report = run(&spec, RunMode::Apply).await;
    assert!(!report.failed());
    assert_eq!(audit_state(&report), None);
    assert!(report.audit_queries.is_none());
    let services: Vec<&&str> = report
        .calls
        .by_action
        .keys()
        .filter(|a| a.starts_with("athena:") || a.starts_with("glue:"))
        .collect();
    assert!(services.is_empty(), "{services:?}");
}

#[tokio::test]
async fn a_plan_of_a_fresh_account_lists_the_audit_resources_and_writes_nothing() {
    let account = new_account();
    let spec = audit_spec(&account);
    let plan = run(&spec, RunMode::Plan).await;
    assert_eq!(plan.calls.writes, 0);
    assert_eq!(audit_state(&plan), Some(&ComponentState::Drifted));
    let pending: Vec<&str> = plan
        .pending
        .iter()
        .filter(|c| c.resource.starts_with("athena:") || c.resource.starts_with("glue:"))
        .map(|c| c.action.as_str())
        .collect();
    assert_eq!(pending.len(), 2 + 1 + 6, "{pending:?}");
    assert!(pending.contains(&"create the workgroup with enforced, encrypted results"));
}

/// Every column path of the table: top-level columns, partition keys, and struct fields
/// (`useridentity.sessioncontext.sessionissuer.arn`).
fn column_paths() -> BTreeSet<String> {
    fn walk(prefix: &str, t: &HiveType, out: &mut BTreeSet<String>) {
        out.insert(prefix.to_string());
        if let HiveType::Struct(fields) = t {
            for (name, t) in fields {
                walk(&format!("{prefix}.{name}"), t, out);
            }
        }
    }
    let mut paths = BTreeSet::new();
    for column in athena::cloudtrail_columns() {
        walk(column.name, &column.type_, &mut paths);
    }
    paths.extend(athena::PARTITION_KEYS.iter().map(|k| k.to_string()));
    paths
}

fn path(idents: &[Ident]) -> String {
    idents
        .iter()
        .map(|i| i.value.to_lowercase())
        .collect::<Vec<_>>()
        .join(".")
}

/// The column names an SQL text reads that are neither column paths nor output aliases, and how
/// many column names it reads in all.
fn unknown_names(
    statements: &Vec<Statement>,
    paths: &BTreeSet<String>,
    aliases: &BTreeSet<String>,
) -> (Vec<String>, usize) {
    let mut unknown = Vec::new();
    let mut seen = 0;
    let _ = visit_expressions(statements, |expr: &Expr| {
        let name = match expr {
            Expr::Identifier(ident) => Some(path(std::slice::from_ref(ident))),
            Expr::CompoundIdentifier(idents) => Some(path(idents)),
            _ => None,
        };
        if let Some(name) = name {
            seen += 1;
            if !paths.contains(&name) && !aliases.contains(&name) {
                unknown.push(name);
            }
        }
        ControlFlow::<()>::Continue(())
    });
    (unknown, seen)
}

#[test]
fn every_named_query_parses_and_reads_only_the_tables_columns() {
    let spec = audit_spec("123456789012");
    let location = TrailLocation {
        bucket: "trail-bucket".into(),
        key_prefix: None,
        organization_id: None,
    };
    let table = athena::cloudtrail_table(&spec, &location);
    let paths = column_paths();
    // The checker itself: the table's columns and every struct path are known.
    assert!(paths.contains("useridentity.sessioncontext.sessionissuer.arn"));
    assert!(paths.contains("date"));
    assert_eq!(
        table.columns.iter().filter(|(n, _)| paths.contains(n)).count(),
        table.columns.len()
    );

    let queries = athena::named_queries(&spec, &location.bucket);
    assert_eq!(queries.len(), 6);
    for query in &queries {
        let statements = Parser::parse_sql(&GenericDialect {}, &query.sql)
            .unwrap_or_else(|e| panic!("{}: {e}\n{}", query.name, query.sql));
        assert_eq!(statements.len(), 1, "{}", query.name);
        let Statement::Query(parsed) = &statements[0] else {
            panic!("{} is not a query", query.name)
        };
        let sqlparser::ast::SetExpr::Select(select) = parsed.body.as_ref() else {
            panic!("{} is not a SELECT", query.name)
        };
        assert_eq!(select.from.len(), 1, "{} reads one table", query.name);
        assert_eq!(
            select.from[0].relation.to_string(),
            format!("\"{}\".\"{}\"", spec.audit_queries.database, table.name),
            "{}",
            query.name
        );
        // Output aliases may be named again (ORDER BY denied).
        let aliases: BTreeSet<String> = select
            .projection
            .iter()
            .filter_map(|item| match item {
                SelectItem::ExprWithAlias { alias, .. } => Some(alias.value.to_lowercase()),
                _ => None,
            })
            .collect();
        let (unknown, seen) = unknown_names(&statements, &paths, &aliases);
        assert!(
            unknown.is_empty(),
            "{} names unknown columns {unknown:?}:\n{}",
            query.name,
            query.sql
        );
        assert!(seen >= 3, "{} reads columns", query.name);
        // Each query names a date range: Athena lists only the days asked for.
        assert!(query.sql.contains("\"date\" >="), "{}", query.name);
    }
}

#[test]
fn the_checker_catches_a_column_the_table_does_not_have() {
    let statements = Parser::parse_sql(
        &GenericDialect {},
        "SELECT useridentity.nosuchfield, eventname FROM t WHERE nosuchcolumn = 1",
    )
    .unwrap();
    let (unknown, seen) = unknown_names(&statements, &column_paths(), &BTreeSet::new());
    assert_eq!(unknown, vec!["useridentity.nosuchfield", "nosuchcolumn"]);
    assert_eq!(seen, 3);
}

#[tokio::test]
async fn a_new_database_name_moves_the_table_and_the_named_queries_to_it() {
    let account = new_account();
    let mut spec = audit_spec(&account);
    assert!(!run(&spec, RunMode::Apply).await.failed());
    spec.audit_queries.database = "audit_v2".into();
    let moved = run(&spec, RunMode::Apply).await;
    assert!(!moved.failed(), "{:?}", moved.components);
    let replaced = moved
        .applied
        .iter()
        .filter(|c| c.action == "replace the named query (its database changed)")
        .count();
    assert_eq!(replaced, 6, "{:?}", moved.applied);
    let aws = inspector(&account).await;
    glue_table(&aws, "audit_v2", "cloudtrail_logs").await;
    let queries = named_queries(&aws, "trailkeeper-audit").await;
    assert_eq!(queries.len(), 6);
    assert!(
        queries
            .iter()
            .all(|q| q.database == "audit_v2" && q.query_string.contains("\"audit_v2\"."))
    );
    // The old table is left where it is: it holds no logs, and people may still use it.
    glue_table(&aws, "trailkeeper_audit", "cloudtrail_logs").await;
    assert_eq!(run(&spec, RunMode::Apply).await.calls.writes, 0);
}

/// trailkeeper's cleanup of the account of `spec` (its deletion), its calls counted by `recorder`.
async fn cleanup_of(
    spec: &LoggingBaselineSpec,
    recorder: trailkeeper::aws::CallRecorder,
) -> Vec<trailkeeper::engine::cleanup::Step> {
    let (trail_policy, retention) = default_policies();
    let specs = AccountSpecs {
        baseline: spec,
        trail_policy: &trail_policy,
        retention: &retention,
    };
    let clients =
        trailkeeper::aws::AccountClients::new(&base_config().await, REGION, spec.credentials.as_ref(), recorder);
    trailkeeper::engine::cleanup::cleanup(&clients, &specs).await.unwrap()
}

#[tokio::test]
async fn deleting_a_baseline_under_delete_removes_the_audit_resources_but_not_peoples_tables() {
    use trailkeeper::engine::cleanup::Outcome;
    let account = new_account();
    let mut spec = audit_spec(&account);
    spec.deletion_policy = trailkeeper::api::DeletionPolicy::Delete;
    assert!(!run(&spec, RunMode::Apply).await.failed());
    let aws = inspector(&account).await;
    aws.glue
        .create_table()
        .database_name("trailkeeper_audit")
        .table_input(aws_sdk_glue::types::TableInput::builder().name("mine").build().unwrap())
        .send()
        .await
        .unwrap();

    let outcome_of = |steps: &[trailkeeper::engine::cleanup::Step], resource: &str| {
        steps.iter().find(|s| s.resource == resource).map(|s| s.outcome.clone())
    };
    let results_bucket = format!("s3://{}", athena::results_bucket_name(&spec));
    let steps = cleanup_of(&spec, trailkeeper::aws::CallRecorder::new()).await;
    assert_eq!(
        outcome_of(&steps, "athena:workgroup/trailkeeper-audit"),
        Some(Outcome::Deleted)
    );
    assert_eq!(
        outcome_of(&steps, "glue:trailkeeper_audit.cloudtrail_logs"),
        Some(Outcome::Deleted)
    );
    assert!(matches!(
        outcome_of(&steps, "glue:trailkeeper_audit"),
        Some(Outcome::Retained(_))
    ));
    assert_eq!(outcome_of(&steps, &results_bucket), Some(Outcome::Deleted));
    let wg = aws.athena.get_work_group().work_group("trailkeeper-audit").send().await;
    // moto answers an empty workgroup for a missing one (AWS: InvalidRequestException).
    assert!(wg.map(|o| o.work_group.is_none()).unwrap_or(true));
    glue_table(&aws, "trailkeeper_audit", "mine").await;

    // Again, once people's table is gone: what is left goes, what is gone is reported absent.
    aws.glue
        .delete_table()
        .database_name("trailkeeper_audit")
        .name("mine")
        .send()
        .await
        .unwrap();
    let steps = cleanup_of(&spec, trailkeeper::aws::CallRecorder::new()).await;
    assert_eq!(
        outcome_of(&steps, "athena:workgroup/trailkeeper-audit"),
        Some(Outcome::Absent)
    );
    assert_eq!(
        outcome_of(&steps, "glue:trailkeeper_audit.cloudtrail_logs"),
        Some(Outcome::Absent)
    );
    assert_eq!(outcome_of(&steps, "glue:trailkeeper_audit"), Some(Outcome::Deleted));
    assert_eq!(outcome_of(&steps, &results_bucket), Some(Outcome::Absent));
}

/// Under Delete, the workgroup stays while it holds a query of people's own, and the results
/// bucket while it holds results (README, "What trailkeeper writes": the workgroup kept when it
/// holds people's queries, the results bucket when not empty).
#[tokio::test]
async fn deleting_keeps_a_workgroup_with_peoples_queries_and_a_results_bucket_with_results() {
    use trailkeeper::engine::cleanup::Outcome;
    let account = new_account();
    let mut spec = audit_spec(&account);
    spec.deletion_policy = trailkeeper::api::DeletionPolicy::Delete;
    assert!(!run(&spec, RunMode::Apply).await.failed());
    let aws = inspector(&account).await;
    aws.athena
        .create_named_query()
        .name("my own query")
        .database("trailkeeper_audit")
        .query_string("SELECT 1")
        .work_group("trailkeeper-audit")
        .send()
        .await
        .unwrap();
    let results = athena::results_bucket_name(&spec);
    aws.s3
        .put_object()
        .bucket(&results)
        .key("results/someones-query.csv")
        .body(b"1".to_vec().into())
        .send()
        .await
        .unwrap();

    let steps = cleanup_of(&spec, trailkeeper::aws::CallRecorder::new()).await;
    let outcome_of = |resource: &str| steps.iter().find(|s| s.resource == resource).map(|s| s.outcome.clone());
    assert!(
        matches!(outcome_of("athena:workgroup/trailkeeper-audit"), Some(Outcome::Retained(ref why)) if why.contains("named queries")),
        "{steps:?}"
    );
    assert!(
        matches!(outcome_of(&format!("s3://{results}")), Some(Outcome::Retained(_))),
        "{steps:?}"
    );
    // Read back: the person's query and the result are still there.
    let queries = named_queries(&aws, "trailkeeper-audit").await;
    assert!(queries.iter().any(|q| q.name() == "my own query"), "{queries:?}");
    aws.s3
        .head_object()
        .bucket(&results)
        .key("results/someones-query.csv")
        .send()
        .await
        .expect("the result is kept");
}

/// The engine keeps `Retain` on its own, whoever calls it (the controller checks it first too):
/// cleanup under Retain sends AWS nothing at all, and every resource of the account stays.
#[tokio::test]
async fn cleanup_under_retain_sends_nothing_and_leaves_every_resource() {
    let account = new_account();
    let spec = audit_spec(&account);
    assert_eq!(
        spec.deletion_policy,
        trailkeeper::api::DeletionPolicy::Retain,
        "the default"
    );
    assert!(!run(&spec, RunMode::Apply).await.failed());
    let recorder = trailkeeper::aws::CallRecorder::new();
    let steps = cleanup_of(&spec, recorder.clone()).await;
    assert!(steps.is_empty(), "{steps:?}");
    let calls = recorder.snapshot();
    assert_eq!((calls.reads, calls.writes), (0, 0), "{calls:?}");
    // Read back on the account's own clients: the workgroup and the table are still there.
    let aws = inspector(&account).await;
    glue_table(&aws, "trailkeeper_audit", "cloudtrail_logs").await;
    let wg = aws
        .athena
        .get_work_group()
        .work_group("trailkeeper-audit")
        .send()
        .await
        .unwrap();
    assert!(wg.work_group.is_some());
    let trail = trailkeeper::desired::trail_arn(&spec);
    assert_eq!(aws.trail_is_logging(&trail).await, Some(true), "the trail still logs");
}

#[tokio::test]
async fn a_results_bucket_that_is_the_existing_trails_bucket_is_refused_before_any_write() {
    let account = new_account();
    let aws = inspector(&account).await;
    let bucket = format!("shared-logs-{account}");
    let key = common::trail_destination(&aws, &account, &bucket, None, "account-trail", None).await;
    let arn = aws
        .cloudtrail
        .create_trail()
        .name("account-trail")
        .s3_bucket_name(&bucket)
        .is_multi_region_trail(true)
        .kms_key_id(key)
        .send()
        .await
        .unwrap()
        .trail_arn
        .unwrap();
    let mut spec = audit_spec(&account);
    spec.trail.source = TrailSource::Existing;
    spec.trail.existing_trail_arn = Some(arn);
    spec.audit_queries.results_bucket_name = Some(bucket.clone());
    let report = run(&spec, RunMode::Apply).await;
    let Some(ComponentState::Failed(e)) = audit_state(&report) else {
        panic!("{:?}", report.components)
    };
    assert!(e.message.contains("a bucket of their own"), "{e}");
    // Refused before any write of the audit queries: no Athena or Glue call other than reads.
    let audit_writes: Vec<_> = report
        .calls
        .by_action
        .keys()
        .filter(|action| action.starts_with("athena:") || action.starts_with("glue:"))
        .filter(|action| {
            let operation = action.split_once(':').map_or("", |(_, o)| o);
            !["Get", "List", "Describe", "BatchGet"]
                .iter()
                .any(|read| operation.starts_with(read))
        })
        .collect();
    assert!(audit_writes.is_empty(), "{audit_writes:?}");
    assert!(
        report.applied.iter().all(|c| !c.resource.contains(&bucket)),
        "{:?}",
        report.applied
    );
    // The logs' bucket got no expiring lifecycle.
    assert!(
        aws.s3
            .get_bucket_lifecycle_configuration()
            .bucket(&bucket)
            .send()
            .await
            .is_err()
    );
}
