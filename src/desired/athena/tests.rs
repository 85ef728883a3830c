use super::*;
use crate::api::{LoggingBaselineSpec, RetentionPolicySpec, TrailPolicySpec};

fn spec() -> LoggingBaselineSpec {
    serde_json::from_value(json!({"accountId": "123456789012", "primaryRegion": "eu-west-1"}))
        .expect("a minimal baseline")
}

fn managed_location() -> TrailLocation {
    TrailLocation {
        bucket: "trailkeeper-123456789012-cloudtrail-eu-west-1".into(),
        key_prefix: Some("AWS/CloudTrail".into()),
        organization_id: None,
    }
}

#[test]
fn the_table_has_the_cloudtrail_record_columns_with_their_types() {
    let table = cloudtrail_table(&spec(), &managed_location());
    let columns: BTreeMap<&str, &str> = table.columns.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    assert_eq!(table.columns.len(), 29);
    for name in [
        "eventversion",
        "eventtime",
        "eventsource",
        "eventname",
        "awsregion",
        "sourceipaddress",
        "useragent",
        "errorcode",
        "errormessage",
        "requestparameters",
        "responseelements",
        "additionaleventdata",
        "requestid",
        "eventid",
        "readonly",
        "eventtype",
        "recipientaccountid",
        "sharedeventid",
        "eventcategory",
    ] {
        assert_eq!(columns.get(name), Some(&"string"), "{name}");
    }
    assert_eq!(
        columns["resources"],
        "array<struct<arn:string,accountid:string,type:string>>"
    );
    assert!(columns["useridentity"].starts_with("struct<type:string,principalid:string,arn:string,"));
    assert!(
        columns["useridentity"].contains(
            "sessionissuer:struct<type:string,principalid:string,arn:string,accountid:string,username:string>"
        )
    );
    assert!(
        columns["useridentity"]
            .contains("webidfederationdata:struct<federatedprovider:string,attributes:map<string,string>>")
    );
    assert_eq!(
        columns["tlsdetails"],
        "struct<tlsversion:string,ciphersuite:string,clientprovidedhostheader:string>"
    );
    assert_eq!(
        table.partition_keys,
        vec![
            ("account".to_string(), "string".to_string()),
            ("region".to_string(), "string".to_string()),
            ("date".to_string(), "string".to_string())
        ]
    );
    assert_eq!(table.table_type, "EXTERNAL_TABLE");
    assert_eq!(table.input_format, "com.amazon.emr.cloudtrail.CloudTrailInputFormat");
    assert_eq!(table.serde_library, "org.apache.hive.hcatalog.data.JsonSerDe");
}

#[test]
fn the_table_reads_this_accounts_logs_under_the_trail_prefix_with_projected_partitions() {
    let table = cloudtrail_table(&spec(), &managed_location());
    assert_eq!(
        table.location,
        "s3://trailkeeper-123456789012-cloudtrail-eu-west-1/AWS/CloudTrail/AWSLogs/123456789012/CloudTrail/"
    );
    let p = &table.parameters;
    assert_eq!(p["projection.enabled"], "true");
    assert_eq!(p["projection.account.type"], "enum");
    assert_eq!(p["projection.account.values"], "123456789012");
    assert_eq!(p["projection.region.type"], "enum");
    let regions: Vec<&str> = p["projection.region.values"].split(',').collect();
    assert!(regions.contains(&"eu-west-1") && regions.contains(&"us-east-1") && regions.len() > 30);
    assert_eq!(p["projection.date.type"], "date");
    assert_eq!(p["projection.date.format"], "yyyy/MM/dd");
    assert_eq!(p["projection.date.range"], "2013/11/01,NOW");
    assert_eq!(p["projection.date.interval"], "1");
    assert_eq!(p["projection.date.interval.unit"], "DAYS");
    assert_eq!(
        p["storage.location.template"],
        "s3://trailkeeper-123456789012-cloudtrail-eu-west-1/AWS/CloudTrail/AWSLogs/${account}/CloudTrail/${region}/${date}"
    );
    assert_eq!(p["classification"], "cloudtrail");
}

#[test]
fn an_organization_trail_is_read_under_the_organization_id_and_without_a_prefix_when_it_has_none() {
    let location = TrailLocation {
        bucket: "org-trail-logs".into(),
        key_prefix: None,
        organization_id: Some("o-abc123defg".into()),
    };
    let table = cloudtrail_table(&spec(), &location);
    assert_eq!(
        table.location,
        "s3://org-trail-logs/AWSLogs/o-abc123defg/123456789012/CloudTrail/"
    );
    assert_eq!(
        table.parameters["storage.location.template"],
        "s3://org-trail-logs/AWSLogs/o-abc123defg/${account}/CloudTrail/${region}/${date}"
    );
}

#[test]
fn a_region_the_list_does_not_know_is_projected_when_the_baseline_names_it() {
    let mut spec = spec();
    spec.regions = vec!["xx-future-1".into()];
    let table = cloudtrail_table(&spec, &managed_location());
    assert!(table.parameters["projection.region.values"].contains("xx-future-1"));
    let mut gov = spec.clone();
    gov.primary_region = "us-gov-west-1".into();
    gov.regions = Vec::new();
    let table = cloudtrail_table(&gov, &managed_location());
    assert_eq!(
        table.parameters["projection.region.values"],
        "us-gov-east-1,us-gov-west-1"
    );
}

#[test]
fn the_workgroup_writes_results_encrypted_with_the_key_to_the_results_bucket() {
    let wg = work_group(&spec(), Some("arn:aws:kms:eu-west-1:123456789012:key/k"));
    assert_eq!(wg.name, "trailkeeper-audit");
    assert_eq!(
        wg.output_location,
        "s3://trailkeeper-123456789012-athena-results-eu-west-1/results/"
    );
    assert_eq!(wg.kms_key.as_deref(), Some("arn:aws:kms:eu-west-1:123456789012:key/k"));
    assert_eq!(wg.expected_bucket_owner, "123456789012");
}

#[test]
fn the_results_bucket_expires_results_and_keeps_them_encrypted_and_private() {
    let (trail_policy, retention) = (TrailPolicySpec::default(), RetentionPolicySpec::default());
    let mut spec = spec();
    spec.audit_queries.results_expire_after_days = 7;
    let specs = AccountSpecs {
        baseline: &spec,
        trail_policy: &trail_policy,
        retention: &retention,
    };
    let bucket = results_bucket(&specs);
    assert_eq!(bucket.name, "trailkeeper-123456789012-athena-results-eu-west-1");
    assert_eq!(bucket.encryption, BucketEncryption::KmsTrailKey);
    assert_eq!(bucket.lifecycle.expire_current_after_days, Some(7));
    assert!(!bucket.object_lock);
    assert_eq!(bucket.policy["Statement"][0]["Sid"], "DenyInsecureTransport");
}

#[test]
fn named_queries_cover_the_common_audits_in_the_baseline_database() {
    let queries = named_queries(&spec(), "the-trail-bucket");
    let names: Vec<&str> = queries.iter().map(|q| q.name.as_str()).collect();
    assert_eq!(names.len(), 6);
    assert!(names.iter().all(|n| n.starts_with(NAMED_QUERY_PREFIX)));
    let all = queries.iter().map(|q| q.sql.as_str()).collect::<Vec<_>>().join("\n");
    for event in [
        "StopLogging",
        "DeleteTrail",
        "UpdateTrail",
        "PutEventSelectors",
        "PutBucketPolicy",
        "PutObjectLockConfiguration",
        "PutKeyPolicy",
        "ScheduleKeyDeletion",
        "'Root'",
        "ConsoleLogin",
        "AccessDenied",
    ] {
        assert!(all.contains(event), "{event}");
    }
    assert!(queries[1].sql.contains("= 'the-trail-bucket'"));
    assert!(queries.iter().all(|q| q.database == "trailkeeper_audit"));
    assert!(
        queries
            .iter()
            .all(|q| q.sql.contains("FROM \"trailkeeper_audit\".\"cloudtrail_logs\""))
    );
}

/// F6: an archive whose members deliver in both layouts gets a table per layout, each projecting
/// its own accounts, and named queries that read both; one layout, one table named as configured.
#[test]
fn an_archive_with_own_and_organization_trails_gets_a_table_per_layout_and_queries_over_both() {
    let members = [
        ("111111111111".to_string(), false),
        ("222222222222".to_string(), true),
        ("333333333333".to_string(), false),
    ];
    let tables = archive_tables(&spec(), "archive", Some("AWS/CloudTrail"), Some("o-abc123"), &members);
    let summary: Vec<(&str, &str, &str)> = tables
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.parameters["projection.account.values"].as_str(),
                t.parameters["storage.location.template"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "cloudtrail_logs",
                "111111111111,333333333333",
                "s3://archive/AWS/CloudTrail/AWSLogs/${account}/CloudTrail/${region}/${date}"
            ),
            (
                "cloudtrail_logs_organization",
                "222222222222",
                "s3://archive/AWS/CloudTrail/AWSLogs/o-abc123/${account}/CloudTrail/${region}/${date}"
            ),
        ]
    );
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    for query in named_queries_over(&spec(), "archive", &names) {
        assert!(
            query.sql.contains(
                "SELECT * FROM \"trailkeeper_audit\".\"cloudtrail_logs\"\n  UNION ALL\n  SELECT * FROM \"trailkeeper_audit\".\"cloudtrail_logs_organization\""
            ),
            "{}",
            query.sql
        );
    }

    // One layout: one table, under the configured name.
    let organization_only = archive_tables(&spec(), "archive", None, Some("o-abc123"), &members[1..2]);
    assert_eq!(organization_only.len(), 1);
    assert_eq!(organization_only[0].name, "cloudtrail_logs");
    assert!(organization_only[0].location.contains("/AWSLogs/o-abc123/"));
    let own_only = archive_tables(&spec(), "archive", None, None, &members[..1]);
    assert_eq!(own_only.len(), 1);
    assert_eq!(
        named_queries_over(&spec(), "archive", &["cloudtrail_logs"]),
        named_queries(&spec(), "archive")
    );
    // Without the Organization's id, its trail's accounts cannot be located: no table for them.
    assert_eq!(
        archive_tables(&spec(), "archive", None, None, &members[1..2]),
        Vec::new()
    );
}
