//! Athena over the trail's logs: the Glue database and CloudTrail table (with partition projection
//! over account, region and date, so no partition is ever added), the workgroup that enforces
//! encrypted results in a bucket trailkeeper owns, and the named audit queries. Pure data.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Value, json};

use super::{
    ABORT_INCOMPLETE_UPLOADS_DAYS, AccountSpecs, BucketEncryption, DesiredBucket, Lifecycle, MANAGED_BY_TAG,
    MANAGED_BY_VALUE, deny_insecure_transport, partition, resource_tags,
};
use crate::api::LoggingBaselineSpec;

/// Where the trail delivers: its bucket, key prefix and, for an Organization trail, the
/// Organization's id (which CloudTrail puts in the key after `AWSLogs/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrailLocation {
    pub bucket: String,
    pub key_prefix: Option<String>,
    pub organization_id: Option<String>,
}

impl TrailLocation {
    /// `prefix/AWSLogs/[o-id/]`: the key under which the trail's files of every account start.
    pub fn logs_key_root(&self) -> String {
        let prefix = self
            .key_prefix
            .as_deref()
            .map(|p| p.trim_matches('/'))
            .filter(|p| !p.is_empty())
            .map(|p| format!("{p}/"))
            .unwrap_or_default();
        let organization = self
            .organization_id
            .as_deref()
            .map(|o| format!("{o}/"))
            .unwrap_or_default();
        format!("{prefix}AWSLogs/{organization}")
    }
}

/// A Hive column type, kept as a tree so that tests (and the audit queries' checks) can walk the
/// fields of the CloudTrail record; rendered the way Glue stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HiveType {
    String,
    Struct(Vec<(&'static str, HiveType)>),
    Array(Box<HiveType>),
    Map(Box<HiveType>, Box<HiveType>),
}

impl fmt::Display for HiveType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HiveType::String => f.write_str("string"),
            HiveType::Struct(fields) => {
                f.write_str("struct<")?;
                for (i, (name, t)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}:{t}")?;
                }
                f.write_str(">")
            }
            HiveType::Array(item) => write!(f, "array<{item}>"),
            HiveType::Map(k, v) => write!(f, "map<{k},{v}>"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub type_: HiveType,
}

/// A Glue table as trailkeeper compares it: column types as Glue stores them (strings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDefinition {
    pub name: String,
    pub table_type: String,
    /// (name, type)
    pub columns: Vec<(String, String)>,
    pub partition_keys: Vec<(String, String)>,
    pub location: String,
    pub input_format: String,
    pub output_format: String,
    pub serde_library: String,
    pub parameters: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredDatabase {
    pub name: String,
    pub description: String,
    pub tags: BTreeMap<String, String>,
}

/// The workgroup: its configuration overrides the client's, so every query's results are
/// encrypted with the key and land in the results bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredWorkGroup {
    pub name: String,
    pub description: String,
    pub output_location: String,
    /// SSE-KMS with this key; None until the key exists (a plan of a fresh account).
    pub kms_key: Option<String>,
    pub expected_bucket_owner: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedQuery {
    pub name: String,
    pub description: String,
    pub database: String,
    pub sql: String,
}

/// The partition keys, in the order of the storage location template.
pub const PARTITION_KEYS: [&str; 3] = ["account", "region", "date"];
/// The first day projected: CloudTrail's launch. Queries name a date range, so Athena only lists
/// the days they ask for.
pub const PROJECTION_START: &str = "2013/11/01";
/// How far back the named queries look, in days (people edit the copy they run).
pub const QUERY_WINDOW_DAYS: u32 = 30;
/// Named queries of trailkeeper start with this, so they are told from people's own.
pub const NAMED_QUERY_PREFIX: &str = "trailkeeper: ";
/// Noncurrent versions of query results (overwritten results) go after this many days.
pub const RESULTS_NONCURRENT_EXPIRE_DAYS: i32 = 1;
/// The prefix of the results in the results bucket.
pub const RESULTS_PREFIX: &str = "results/";

pub const INPUT_FORMAT: &str = "com.amazon.emr.cloudtrail.CloudTrailInputFormat";
pub const OUTPUT_FORMAT: &str = "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat";
pub const SERDE_LIBRARY: &str = "org.apache.hive.hcatalog.data.JsonSerDe";

/// The columns of the CloudTrail record (the format of CloudTrail's log files, as Athena's
/// documentation declares them), lowercase as Glue stores them.
pub fn cloudtrail_columns() -> Vec<Column> {
    use HiveType::{Array, Map, String as S, Struct};
    let col = |name, type_| Column { name, type_ };
    vec![
        col("eventversion", S),
        col(
            "useridentity",
            Struct(vec![
                ("type", S),
                ("principalid", S),
                ("arn", S),
                ("accountid", S),
                ("invokedby", S),
                ("accesskeyid", S),
                ("username", S),
                ("onbehalfof", Struct(vec![("userid", S), ("identitystorearn", S)])),
                (
                    "sessioncontext",
                    Struct(vec![
                        ("attributes", Struct(vec![("mfaauthenticated", S), ("creationdate", S)])),
                        (
                            "sessionissuer",
                            Struct(vec![
                                ("type", S),
                                ("principalid", S),
                                ("arn", S),
                                ("accountid", S),
                                ("username", S),
                            ]),
                        ),
                        ("sourceidentity", S),
                        ("ec2roledelivery", S),
                        (
                            "webidfederationdata",
                            Struct(vec![
                                ("federatedprovider", S),
                                ("attributes", Map(Box::new(S), Box::new(S))),
                            ]),
                        ),
                    ]),
                ),
            ]),
        ),
        col("eventtime", S),
        col("eventsource", S),
        col("eventname", S),
        col("awsregion", S),
        col("sourceipaddress", S),
        col("useragent", S),
        col("errorcode", S),
        col("errormessage", S),
        col("requestparameters", S),
        col("responseelements", S),
        col("additionaleventdata", S),
        col("requestid", S),
        col("eventid", S),
        col("readonly", S),
        col(
            "resources",
            Array(Box::new(Struct(vec![("arn", S), ("accountid", S), ("type", S)]))),
        ),
        col("eventtype", S),
        col("apiversion", S),
        col("recipientaccountid", S),
        col("serviceeventdetails", S),
        col("sharedeventid", S),
        col("vpcendpointid", S),
        col("vpcendpointaccountid", S),
        col("eventcategory", S),
        col(
            "addendum",
            Struct(vec![
                ("reason", S),
                ("updatedfields", S),
                ("originalrequestid", S),
                ("originaleventid", S),
            ]),
        ),
        col("sessioncredentialfromconsole", S),
        col("edgedevicedetails", S),
        col(
            "tlsdetails",
            Struct(vec![
                ("tlsversion", S),
                ("ciphersuite", S),
                ("clientprovidedhostheader", S),
            ]),
        ),
    ]
}

/// The regions a multi-region trail delivers from, by partition (the `region` projection).
pub fn partition_regions(region: &str) -> Vec<&'static str> {
    match partition(region) {
        "aws-cn" => vec!["cn-north-1", "cn-northwest-1"],
        "aws-us-gov" => vec!["us-gov-east-1", "us-gov-west-1"],
        _ => vec![
            "af-south-1",
            "ap-east-1",
            "ap-east-2",
            "ap-northeast-1",
            "ap-northeast-2",
            "ap-northeast-3",
            "ap-south-1",
            "ap-south-2",
            "ap-southeast-1",
            "ap-southeast-2",
            "ap-southeast-3",
            "ap-southeast-4",
            "ap-southeast-5",
            "ap-southeast-6",
            "ap-southeast-7",
            "ca-central-1",
            "ca-west-1",
            "eu-central-1",
            "eu-central-2",
            "eu-north-1",
            "eu-south-1",
            "eu-south-2",
            "eu-west-1",
            "eu-west-2",
            "eu-west-3",
            "il-central-1",
            "me-central-1",
            "me-south-1",
            "mx-central-1",
            "sa-east-1",
            "us-east-1",
            "us-east-2",
            "us-west-1",
            "us-west-2",
        ],
    }
}

/// `s3://bucket/prefix/AWSLogs/[o-id/]` : where the trail's log files of every account start.
fn logs_root(location: &TrailLocation) -> String {
    format!("s3://{}/{}", location.bucket, location.logs_key_root())
}

/// The CloudTrail table over this account's logs in the trail's bucket, with partition
/// projection: account (this account), region (every region of the partition) and date (daily).
pub fn cloudtrail_table(spec: &LoggingBaselineSpec, location: &TrailLocation) -> TableDefinition {
    cloudtrail_table_over(spec, location, std::slice::from_ref(&spec.account_id))
}

/// The CloudTrail table over the logs of `accounts` (a LogArchive's members) under one root: the
/// account is a projected partition, so a query names the accounts it reads.
pub fn cloudtrail_table_over(
    spec: &LoggingBaselineSpec,
    location: &TrailLocation,
    accounts: &[String],
) -> TableDefinition {
    let root = logs_root(location);
    let mut accounts = accounts.to_vec();
    accounts.sort();
    accounts.dedup();
    let account = accounts.join(",");
    // The table's own location: the one account's folder, or the root of them all.
    let table_location = match accounts.as_slice() {
        [one] => format!("{root}{one}/CloudTrail/"),
        _ => root.clone(),
    };
    let mut regions = partition_regions(&spec.primary_region)
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>();
    // Regions newer than this list still get a partition when the baseline names them.
    let named = spec.regions.iter().filter(|r| *r != super::regional::EVERY_REGION);
    for region in std::iter::once(&spec.primary_region).chain(named) {
        if !regions.contains(region) {
            regions.push(region.clone());
        }
    }
    regions.sort();
    let parameters = [
        ("EXTERNAL", "TRUE".to_string()),
        ("classification", "cloudtrail".to_string()),
        ("projection.enabled", "true".to_string()),
        ("projection.account.type", "enum".to_string()),
        ("projection.account.values", account.clone()),
        ("projection.region.type", "enum".to_string()),
        ("projection.region.values", regions.join(",")),
        ("projection.date.type", "date".to_string()),
        ("projection.date.format", "yyyy/MM/dd".to_string()),
        ("projection.date.range", format!("{PROJECTION_START},NOW")),
        ("projection.date.interval", "1".to_string()),
        ("projection.date.interval.unit", "DAYS".to_string()),
        (
            "storage.location.template",
            format!("{root}${{account}}/CloudTrail/${{region}}/${{date}}"),
        ),
        (MANAGED_BY_TAG, MANAGED_BY_VALUE.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    TableDefinition {
        name: spec.audit_queries.table.clone(),
        table_type: "EXTERNAL_TABLE".to_string(),
        columns: cloudtrail_columns()
            .into_iter()
            .map(|c| (c.name.to_string(), c.type_.to_string()))
            .collect(),
        partition_keys: PARTITION_KEYS
            .iter()
            .map(|k| (k.to_string(), "string".to_string()))
            .collect(),
        location: table_location,
        input_format: INPUT_FORMAT.to_string(),
        output_format: OUTPUT_FORMAT.to_string(),
        serde_library: SERDE_LIBRARY.to_string(),
        parameters,
    }
}

/// The suffix of a LogArchive's second table, over the accounts an Organization trail delivers for.
pub const ORGANIZATION_TABLE_SUFFIX: &str = "_organization";

/// The tables over a LogArchive's members (`members`: account and whether its trail is an
/// Organization trail), one per layout CloudTrail writes in the bucket: a member's own trail
/// under `AWSLogs/{account}/`, an Organization trail under `AWSLogs/{o-id}/{account}/` (AWS
/// CloudTrail user guide, "Finding your CloudTrail log files"). One storage template cannot
/// project both, so when both are present the members under the Organization trail get a table of
/// their own, `{table}_organization`; otherwise the one table (`{table}`) is over the one layout.
/// Without the Organization's id, the Organization trail's accounts cannot be located and have no
/// table (the archive refuses such members before any call).
/// https://docs.aws.amazon.com/awscloudtrail/latest/userguide/get-and-view-cloudtrail-log-files.html
pub fn archive_tables(
    spec: &LoggingBaselineSpec,
    bucket: &str,
    key_prefix: Option<&str>,
    organization_id: Option<&str>,
    members: &[(String, bool)],
) -> Vec<TableDefinition> {
    let own: Vec<String> = members.iter().filter(|m| !m.1).map(|m| m.0.clone()).collect();
    let under_organization: Vec<String> = members.iter().filter(|m| m.1).map(|m| m.0.clone()).collect();
    let location = |organization_id: Option<&str>| TrailLocation {
        bucket: bucket.to_string(),
        key_prefix: key_prefix.map(str::to_string),
        organization_id: organization_id.map(str::to_string),
    };
    let mut tables = Vec::new();
    if !own.is_empty() {
        tables.push(cloudtrail_table_over(spec, &location(None), &own));
    }
    if let (Some(organization_id), false) = (organization_id, under_organization.is_empty()) {
        let mut table = cloudtrail_table_over(spec, &location(Some(organization_id)), &under_organization);
        if !own.is_empty() {
            table.name = format!("{}{ORGANIZATION_TABLE_SUFFIX}", spec.audit_queries.table);
        }
        tables.push(table);
    }
    tables
}

pub fn database(spec: &LoggingBaselineSpec) -> DesiredDatabase {
    DesiredDatabase {
        name: spec.audit_queries.database.clone(),
        description: format!(
            "trailkeeper: Athena tables over the CloudTrail logs of account {}",
            spec.account_id
        ),
        tags: resource_tags(spec),
    }
}

/// `{prefix}-{accountId}-athena-results-{primaryRegion}` unless the baseline names the bucket.
pub fn results_bucket_name(spec: &LoggingBaselineSpec) -> String {
    spec.audit_queries.results_bucket_name.clone().unwrap_or_else(|| {
        format!(
            "{}-{}-athena-results-{}",
            spec.storage.name_prefix, spec.account_id, spec.primary_region
        )
    })
}

pub fn results_location(spec: &LoggingBaselineSpec) -> String {
    format!("s3://{}/{RESULTS_PREFIX}", results_bucket_name(spec))
}

/// The results bucket: SSE-KMS with the baseline's key, public access blocked, TLS only, and
/// results expired after the configured days (query results are copies, not audit logs).
pub fn results_bucket(specs: &AccountSpecs) -> DesiredBucket {
    let spec = specs.baseline;
    let name = results_bucket_name(spec);
    let bucket_arn = format!("arn:{}:s3:::{name}", partition(&spec.primary_region));
    DesiredBucket {
        name,
        object_lock: false,
        lock_retention: None,
        encryption: BucketEncryption::KmsTrailKey,
        policy: results_bucket_policy(&bucket_arn),
        access_logging: None,
        lifecycle: Lifecycle {
            expire_current_after_days: Some(spec.audit_queries.results_expire_after_days),
            expire_noncurrent_after_days: Some(RESULTS_NONCURRENT_EXPIRE_DAYS),
            abort_incomplete_uploads_after_days: ABORT_INCOMPLETE_UPLOADS_DAYS,
        },
        tags: resource_tags(spec),
    }
}

fn results_bucket_policy(bucket_arn: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [deny_insecure_transport(bucket_arn)]})
}

pub fn work_group(spec: &LoggingBaselineSpec, kms_key: Option<&str>) -> DesiredWorkGroup {
    DesiredWorkGroup {
        name: spec.audit_queries.work_group.clone(),
        description: format!(
            "trailkeeper: audit queries over the CloudTrail logs of account {}",
            spec.account_id
        ),
        output_location: results_location(spec),
        kms_key: kms_key.map(str::to_string),
        expected_bucket_owner: spec.account_id.clone(),
        tags: resource_tags(spec),
    }
}

/// The ready-made audits, over the last `QUERY_WINDOW_DAYS` days. `trail_bucket` is the bucket
/// the trail delivers to (its policy and lock changes are audited).
pub fn named_queries(spec: &LoggingBaselineSpec, trail_bucket: &str) -> Vec<NamedQuery> {
    named_queries_over(spec, trail_bucket, &[spec.audit_queries.table.as_str()])
}

/// The ready-made audits over `tables` of the database: one table, or every row of several (a
/// LogArchive's two layouts, `archive_tables`), so that a query names an account whichever table
/// holds it.
pub fn named_queries_over(spec: &LoggingBaselineSpec, trail_bucket: &str, tables: &[&str]) -> Vec<NamedQuery> {
    let quoted = |t: &str| format!("\"{}\".\"{t}\"", spec.audit_queries.database);
    let table = match tables {
        [one] => quoted(one),
        several => format!(
            "(\n  {}\n) AS logs",
            several
                .iter()
                .map(|t| format!("SELECT * FROM {}", quoted(t)))
                .collect::<Vec<_>>()
                .join("\n  UNION ALL\n  ")
        ),
    };
    let window = format!("\"date\" >= date_format(current_date - interval '{QUERY_WINDOW_DAYS}' day, '%Y/%m/%d')");
    let bucket = trail_bucket.replace('\'', "''");
    let query = |name: &str, description: &str, sql: String| NamedQuery {
        name: format!("{NAMED_QUERY_PREFIX}{name}"),
        description: description.to_string(),
        database: spec.audit_queries.database.clone(),
        sql,
    };
    vec![
        query(
            "trail and logging changes",
            "Who stopped, deleted or reconfigured a trail, or changed what it records",
            format!(
                "SELECT eventtime, eventname, useridentity.arn AS principal, sourceipaddress, awsregion,\n       \
                 json_extract_scalar(requestparameters, '$.name') AS trail, errorcode\n\
                 FROM {table}\n\
                 WHERE {window}\n  \
                 AND eventsource = 'cloudtrail.amazonaws.com'\n  \
                 AND eventname IN ('StopLogging', 'DeleteTrail', 'UpdateTrail', 'PutEventSelectors', \
                 'PutInsightSelectors', 'CreateTrail', 'StartLogging')\n\
                 ORDER BY eventtime DESC"
            ),
        ),
        query(
            "trail bucket policy and Object Lock changes",
            "Changes to the trail bucket's policy, Object Lock, retention and lifecycle",
            format!(
                "SELECT eventtime, eventname, useridentity.arn AS principal, sourceipaddress, errorcode\n\
                 FROM {table}\n\
                 WHERE {window}\n  \
                 AND eventsource = 's3.amazonaws.com'\n  \
                 AND eventname IN ('PutBucketPolicy', 'DeleteBucketPolicy', 'PutBucketObjectLockConfiguration', \
                 'PutObjectLockConfiguration', 'PutObjectRetention', 'PutObjectLegalHold', 'PutBucketLifecycle', \
                 'DeleteBucketLifecycle')\n  \
                 AND json_extract_scalar(requestparameters, '$.bucketName') = '{bucket}'\n\
                 ORDER BY eventtime DESC"
            ),
        ),
        query(
            "KMS key policy changes and deletion scheduling",
            "Key policy changes, key deletion scheduled or cancelled, keys or rotation disabled",
            format!(
                "SELECT eventtime, eventname, useridentity.arn AS principal, \
                 json_extract_scalar(requestparameters, '$.keyId') AS key_id, errorcode\n\
                 FROM {table}\n\
                 WHERE {window}\n  \
                 AND eventsource = 'kms.amazonaws.com'\n  \
                 AND eventname IN ('PutKeyPolicy', 'ScheduleKeyDeletion', 'CancelKeyDeletion', 'DisableKey', \
                 'DisableKeyRotation')\n\
                 ORDER BY eventtime DESC"
            ),
        ),
        query(
            "root user activity",
            "Calls made with the account's root user",
            format!(
                "SELECT eventtime, eventsource, eventname, awsregion, sourceipaddress, useragent, errorcode\n\
                 FROM {table}\n\
                 WHERE {window}\n  \
                 AND useridentity.type = 'Root'\n  \
                 AND useridentity.invokedby IS NULL\n  \
                 AND eventtype <> 'AwsServiceEvent'\n\
                 ORDER BY eventtime DESC"
            ),
        ),
        query(
            "console sign-in failures",
            "Failed AWS Management Console sign-ins",
            format!(
                "SELECT eventtime, useridentity.type AS identity_type, useridentity.arn AS principal, \
                 useridentity.username AS user_name, sourceipaddress, useragent, errormessage\n\
                 FROM {table}\n\
                 WHERE {window}\n  \
                 AND eventname = 'ConsoleLogin'\n  \
                 AND json_extract_scalar(responseelements, '$.ConsoleLogin') = 'Failure'\n\
                 ORDER BY eventtime DESC"
            ),
        ),
        query(
            "AccessDenied bursts by principal",
            "Principals denied 10 times or more within an hour",
            format!(
                "SELECT useridentity.arn AS principal, date_trunc('hour', from_iso8601_timestamp(eventtime)) AS hour,\n       \
                 count(*) AS denied, count(DISTINCT eventname) AS actions, min(eventtime) AS first_seen, \
                 max(eventtime) AS last_seen\n\
                 FROM {table}\n\
                 WHERE {window}\n  \
                 AND errorcode IN ('AccessDenied', 'AccessDeniedException', 'Client.UnauthorizedOperation', \
                 'UnauthorizedOperation')\n\
                 GROUP BY useridentity.arn, date_trunc('hour', from_iso8601_timestamp(eventtime))\n\
                 HAVING count(*) >= 10\n\
                 ORDER BY denied DESC"
            ),
        ),
    ]
}

#[cfg(test)]
mod tests;
