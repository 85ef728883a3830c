//! The generated CRDs: `crds/` is current, the real API server accepts them (defaults valid
//! against their own schemas, no warnings), every field is described where `kubectl explain` reads
//! it, and every CEL rule answers both ways, on the API server at admission and with kube's
//! client-side CEL (what `trailkeeper validate` uses), which must agree.

mod common;

use std::fmt::Debug;

use common::cluster;
use kube::api::{Api, PostParams};
use kube::{Client, CustomResourceExt, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use trailkeeper::api::{LogArchive, LoggingBaseline, LoggingBaselineSet, RetentionPolicy, TrailPolicy};

#[test]
fn the_crds_directory_holds_what_trailkeeper_crds_prints() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let files = trailkeeper::api::crd_files().unwrap();
    assert_eq!(files.len(), 5);
    for (name, yaml) in files {
        let on_disk = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        assert!(
            on_disk == yaml,
            "crds/{name} is stale: run `cargo run -- crds --dir crds` and commit"
        );
    }
    let extra: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
        .filter(|n| !n.ends_with(".trailkeeper.io.yaml"))
        .collect();
    assert!(
        extra.is_empty(),
        "files in crds/ that trailkeeper does not generate: {extra:?}"
    );
}

#[test]
fn the_crds_carry_names_columns_and_the_cel_rules() {
    let yaml = trailkeeper::api::crds_yaml().unwrap();
    for needle in [
        "self.source != 'Existing' || has(self.existingTrailArn)",
        "self.mode != 'Compliance' || self.acknowledgeIrreversible",
        "self == oldSelf",
        "self in [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]",
        "oldSelf.trailLogs.expireAfterDays",
        "oldSelf.trailLogs.objectLock.defaultRetentionDays",
        "self.approval.reference != oldSelf.approval.reference",
        "- lb",
        "- tp",
        "- rp",
        "- lbs",
        "has(self.accounts) != has(self.organization)",
        "x-kubernetes-preserve-unknown-fields: true",
        "name: Conflicts",
        "- trailkeeper",
        "name: Account",
        "name: Region",
        "name: Ready",
        "name: Age",
        "status: {}",
    ] {
        assert!(yaml.contains(needle), "the CRDs lack {needle:?}");
    }
}

#[test]
fn no_unsigned_formats_reach_the_crds() {
    let yaml = trailkeeper::api::crds_yaml().unwrap();
    assert!(
        !yaml.contains("format: uint"),
        "the API server does not know uint32/uint64 and warns on every apply"
    );
}

/// Judges objects the way the API server does and the way `trailkeeper validate` does, and fails
/// when either disagrees with the expected verdict.
struct Judge {
    client: Client,
    namespace: String,
}

static NEXT_NAME: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn fresh_name() -> String {
    format!("o{}", NEXT_NAME.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
}

trait Kind:
    Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
    + CustomResourceExt
    + Serialize
    + DeserializeOwned
    + Clone
    + Debug
{
}
impl Kind for LoggingBaseline {}
impl Kind for TrailPolicy {}
impl Kind for RetentionPolicy {}
impl Kind for LoggingBaselineSet {}
impl Kind for LogArchive {}

fn dry_run() -> PostParams {
    PostParams {
        dry_run: true,
        ..PostParams::default()
    }
}

impl Judge {
    async fn new() -> Self {
        let client = cluster::admin().await;
        cluster::install_crds(&client).await;
        let namespace = cluster::fresh_namespace(&client, "crds").await;
        Self { client, namespace }
    }

    fn api<K: Kind>(&self) -> Api<K> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn named<K: Kind>(&self, object: &K) -> K {
        let mut object = object.clone();
        object.meta_mut().name = Some(fresh_name());
        object.meta_mut().namespace = Some(self.namespace.clone());
        object
    }

    /// The API server's verdict on creating `object` (dry run: nothing is stored).
    async fn server_create<K: Kind>(&self, object: &K) -> Result<(), String> {
        self.api::<K>()
            .create(&dry_run(), &self.named(object))
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// The API server's verdict on changing `old` (stored for real) into `new` (dry run).
    async fn server_update<K: Kind>(&self, new: &K, old: &K) -> Result<(), String> {
        let stored = self
            .api::<K>()
            .create(&PostParams::default(), &self.named(old))
            .await
            .unwrap_or_else(|e| panic!("the old object is valid, but the API server refused it: {e}"));
        let mut new = new.clone();
        new.meta_mut().name = stored.meta().name.clone();
        new.meta_mut().namespace = stored.meta().namespace.clone();
        new.meta_mut().resource_version = stored.resource_version();
        self.api::<K>()
            .replace(&stored.name_any(), &dry_run(), &new)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    async fn accepts<K: Kind>(&self, object: &K) {
        offline(object).unwrap_or_else(|e| panic!("trailkeeper validate rejected {object:?}: {e}"));
        self.server_create(object)
            .await
            .unwrap_or_else(|e| panic!("the API server rejected {object:?}: {e}"));
    }

    async fn rejects<K: Kind>(&self, object: &K, needle: &str) {
        rejected_with(offline(object), needle, "trailkeeper validate");
        rejected_with(self.server_create(object).await, needle, "the API server");
    }

    async fn accepts_update<K: Kind>(&self, new: &K, old: &K) {
        kube::core::cel::validate_cel_update(new, old)
            .unwrap_or_else(|e| panic!("client-side CEL rejected the update to {new:?}: {e:?}"));
        self.server_update(new, old)
            .await
            .unwrap_or_else(|e| panic!("the API server rejected the update to {new:?}: {e}"));
    }

    async fn rejects_update<K: Kind>(&self, new: &K, old: &K, needle: &str) {
        rejected_with(
            kube::core::cel::validate_cel_update(new, old),
            needle,
            "client-side CEL",
        );
        rejected_with(self.server_update(new, old).await, needle, "the API server");
    }
}

/// The verdict of `trailkeeper validate` (schema and CEL rules, offline) on `object`.
fn offline<K: Kind>(object: &K) -> Result<(), String> {
    let value = serde_json::to_value(object).unwrap();
    let documents = [trailkeeper::manifests::Document {
        file: "test.yaml".into(),
        index: 0,
        value,
    }];
    let (_, problems) = trailkeeper::manifests::validate(&documents);
    match problems.is_empty() {
        true => Ok(()),
        false => Err(problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n")),
    }
}

fn rejected_with<T: Debug>(result: Result<(), T>, needle: &str, judge: &str) {
    let err = result.expect_err(&format!("{judge} should reject this ({needle})"));
    let text = format!("{err:?}");
    assert!(
        text.contains(needle),
        "{judge} rejected it, but not for {needle:?}: {text}"
    );
}

fn baseline(extra: &str) -> LoggingBaseline {
    baseline_in("us-east-1", extra)
}

fn baseline_in(region: &str, extra: &str) -> LoggingBaseline {
    serde_yaml::from_str(&format!(
        "apiVersion: trailkeeper.io/v1alpha1\nkind: LoggingBaseline\nmetadata: {{name: b, namespace: n}}\nspec:\n  accountId: \"111122223333\"\n  primaryRegion: {region}\n{extra}"
    ))
    .unwrap()
}

fn retention(spec: &str) -> RetentionPolicy {
    serde_yaml::from_str(&format!(
        "apiVersion: trailkeeper.io/v1alpha1\nkind: RetentionPolicy\nmetadata: {{name: default, namespace: n}}\nspec:\n{spec}"
    ))
    .unwrap()
}

fn trail_policy(spec: &str) -> TrailPolicy {
    serde_yaml::from_str(&format!(
        "apiVersion: trailkeeper.io/v1alpha1\nkind: TrailPolicy\nmetadata: {{name: default, namespace: n}}\nspec:\n{spec}"
    ))
    .unwrap()
}

#[tokio::test]
async fn an_existing_trail_needs_its_arn() {
    let judge = Judge::new().await;
    judge
        .rejects(&baseline("  trail: {source: Existing}"), "existingTrailArn")
        .await;
    judge
        .accepts(&baseline(
            "  trail: {source: Existing, existingTrailArn: 'arn:aws:cloudtrail:us-east-1:111122223333:trail/org'}",
        ))
        .await;
    judge.accepts(&baseline("  trail: {source: Managed}")).await;
}

#[tokio::test]
async fn the_account_id_is_immutable() {
    let judge = Judge::new().await;
    let old = baseline("");
    judge.accepts_update(&old.clone(), &old).await;
    let mut new = old.clone();
    new.spec.account_id = "999988887777".into();
    judge.rejects_update(&new, &old, "accountId is immutable").await;
}

#[tokio::test]
async fn the_flow_log_aggregation_interval_is_60_or_600() {
    let judge = Judge::new().await;
    judge
        .accepts(&baseline("  flowLogs: {maxAggregationInterval: 60}"))
        .await;
    judge
        .rejects(&baseline("  flowLogs: {maxAggregationInterval: 300}"), "60 or 600")
        .await;
}

#[tokio::test]
async fn generated_bucket_names_stay_within_63_characters() {
    let judge = Judge::new().await;
    // The default prefix (11 characters) with the longest region of the partition today.
    judge.accepts(&baseline("  storage: {}")).await;
    judge
        .accepts(&baseline("  storage: {namePrefix: a-sixteen-chars}"))
        .await;
    judge
        .rejects(
            &baseline_in("us-isob-northeast-12", "  storage: {namePrefix: a-sixteen-chars}"),
            "63 characters",
        )
        .await;
}

#[tokio::test]
async fn an_external_id_of_up_to_1224_characters_is_accepted() {
    let judge = Judge::new().await;
    let role = "arn:aws:iam::111122223333:role/trailkeeper";
    let with_id = |id: &str| {
        baseline(&format!(
            "  credentials: {{assumeRoleArn: '{role}', externalId: '{id}'}}"
        ))
    };
    judge.accepts(&with_id(&"a".repeat(1224))).await;
    judge.accepts(&with_id("payments:prod/2026")).await;
    judge.rejects(&with_id(&"a".repeat(1225)), "1224").await;
    judge.rejects(&with_id("no spaces"), "externalId").await;
}

#[tokio::test]
async fn the_results_bucket_may_not_be_the_trail_or_access_log_bucket() {
    let judge = Judge::new().await;
    for name in [
        "trailkeeper-111122223333-cloudtrail-us-east-1",
        "trailkeeper-111122223333-cloudtrail-access-us-east-1",
    ] {
        judge
            .rejects(
                &baseline(&format!("  auditQueries: {{resultsBucketName: {name}}}")),
                "a bucket of their own",
            )
            .await;
    }
    judge
        .rejects(
            &baseline("  storage: {bucketName: my-logs}\n  auditQueries: {resultsBucketName: my-logs}"),
            "a bucket of their own",
        )
        .await;
    judge
        .rejects(
            &baseline(
                "  storage: {namePrefix: acme}\n  auditQueries: {resultsBucketName: acme-111122223333-cloudtrail-us-east-1}",
            ),
            "a bucket of their own",
        )
        .await;
    judge
        .accepts(&baseline("  auditQueries: {resultsBucketName: my-query-results}"))
        .await;
    judge.accepts(&baseline("")).await;
}

#[tokio::test]
async fn a_compliance_lock_needs_the_acknowledgement() {
    let judge = Judge::new().await;
    judge
        .rejects(
            &retention("  trailLogs: {objectLock: {mode: Compliance, defaultRetentionDays: 365}}"),
            "acknowledgeIrreversible",
        )
        .await;
    judge
        .accepts(&retention(
            "  trailLogs: {objectLock: {mode: Compliance, defaultRetentionDays: 365, acknowledgeIrreversible: true}}",
        ))
        .await;
    judge
        .accepts(&retention(
            "  trailLogs: {objectLock: {mode: Governance, defaultRetentionDays: 365}}",
        ))
        .await;
}

#[tokio::test]
async fn log_group_retention_only_takes_cloudwatch_values() {
    let judge = Judge::new().await;
    for field in ["instanceLogs", "flowLogs"] {
        judge
            .accepts(&retention(&format!("  {field}: {{retentionDays: 90}}")))
            .await;
        judge
            .rejects(
                &retention(&format!("  {field}: {{retentionDays: 100}}")),
                "CloudWatch Logs",
            )
            .await;
    }
}

#[tokio::test]
async fn data_and_advanced_selectors_are_exclusive_and_field_selectors_need_an_operator() {
    let judge = Judge::new().await;
    judge
        .accepts(&trail_policy(
            "  dataEvents: [{type: 'AWS::S3::Object', values: ['arn:aws:s3']}]",
        ))
        .await;
    judge
        .rejects(
            &trail_policy(
                "  dataEvents: [{type: 'AWS::S3::Object', values: ['arn:aws:s3']}]\n  advancedEventSelectors: [{name: a, fieldSelectors: [{field: eventCategory, equals: [Data]}]}]",
            ),
            "either dataEvents or advancedEventSelectors",
        )
        .await;
    judge
        .rejects(
            &trail_policy("  advancedEventSelectors: [{name: a, fieldSelectors: [{field: eventCategory}]}]"),
            "at least one operator",
        )
        .await;
}

/// Each retention in days, with how to write it in a spec.
const RETENTION_FIELDS: [(&str, &str); 5] = [
    // A one-day lock: expiry may not come before the lock ends (tested on its own below).
    (
        "trailLogs.expireAfterDays",
        "  trailLogs: {expireAfterDays: DAYS, objectLock: {mode: Governance, defaultRetentionDays: 1}}",
    ),
    (
        "trailLogs.noncurrentVersionsExpireAfterDays",
        "  trailLogs: {noncurrentVersionsExpireAfterDays: DAYS}",
    ),
    ("accessLogs.expireAfterDays", "  accessLogs: {expireAfterDays: DAYS}"),
    ("instanceLogs.retentionDays", "  instanceLogs: {retentionDays: DAYS}"),
    ("flowLogs.retentionDays", "  flowLogs: {retentionDays: DAYS}"),
];

fn with_days(template: &str, days: Option<i32>, approval: Option<&str>) -> RetentionPolicy {
    let mut spec = match days {
        Some(d) => template.replace("DAYS", &d.to_string()),
        None => String::new(),
    };
    if let Some(reference) = approval {
        spec.push_str(&format!("\n  approval: {{reference: {reference}, reason: test}}"));
    }
    if spec.is_empty() {
        spec = "  {}".into();
    }
    // The API server applies defaults before the rules run; serde does the same here.
    retention(&spec)
}

#[tokio::test]
async fn shortening_any_retention_needs_a_new_approval() {
    let judge = Judge::new().await;
    for (field, template) in RETENTION_FIELDS {
        let forever = with_days(template, None, None);
        let ninety = with_days(template, Some(90), None);
        // forever -> 90 days without approval: rejected
        judge.rejects_update(&ninety, &forever, field).await;
        // with a new approval: accepted
        judge
            .accepts_update(&with_days(template, Some(90), Some("CHG-1")), &forever)
            .await;
        // with the approval already used for the previous change: rejected
        let previous = with_days(template, Some(180), Some("CHG-1"));
        judge
            .rejects_update(&with_days(template, Some(90), Some("CHG-1")), &previous, field)
            .await;
        judge
            .accepts_update(&with_days(template, Some(90), Some("CHG-2")), &previous)
            .await;
        // lengthening, and back to forever, need no approval
        judge
            .accepts_update(&with_days(template, Some(365), None), &ninety)
            .await;
        judge.accepts_update(&forever, &ninety).await;
        // a new object is never a transition
        judge.accepts(&ninety).await;
    }
}

#[tokio::test]
async fn trail_logs_may_not_expire_before_their_lock_ends() {
    let judge = Judge::new().await;
    let needle = "expire them no earlier than the lock ends";
    // The default lock: Governance, 365 days.
    judge
        .rejects(&retention("  trailLogs: {expireAfterDays: 30}"), needle)
        .await;
    judge
        .rejects(
            &retention(
                "  trailLogs: {expireAfterDays: 364, objectLock: {mode: Governance, defaultRetentionDays: 365}}",
            ),
            needle,
        )
        .await;
    judge
        .accepts(&retention(
            "  trailLogs: {expireAfterDays: 365, objectLock: {mode: Governance, defaultRetentionDays: 365}}",
        ))
        .await;
    judge
        .accepts(&retention(
            "  trailLogs: {expireAfterDays: 30, objectLock: {mode: Disabled, defaultRetentionDays: 365}}",
        ))
        .await;
}

fn lock(mode: &str, days: i32, approval: Option<&str>) -> RetentionPolicy {
    let ack = if mode == "Compliance" {
        ", acknowledgeIrreversible: true"
    } else {
        ""
    };
    let mut spec = format!("  trailLogs: {{objectLock: {{mode: {mode}, defaultRetentionDays: {days}{ack}}}}}");
    if let Some(reference) = approval {
        spec.push_str(&format!("\n  approval: {{reference: {reference}}}"));
    }
    retention(&spec)
}

#[tokio::test]
async fn weakening_the_lock_needs_a_new_approval() {
    let judge = Judge::new().await;
    let governance = lock("Governance", 365, None);
    judge
        .rejects_update(&lock("Governance", 30, None), &governance, "objectLock is weakened")
        .await;
    judge
        .rejects_update(&lock("Disabled", 365, None), &governance, "objectLock is weakened")
        .await;
    judge
        .rejects_update(
            &lock("Governance", 365, None),
            &lock("Compliance", 365, None),
            "objectLock is weakened",
        )
        .await;
    judge
        .accepts_update(&lock("Governance", 30, Some("CHG-9")), &governance)
        .await;
    // Stronger needs no approval.
    judge.accepts_update(&lock("Governance", 730, None), &governance).await;
    judge.accepts_update(&lock("Compliance", 365, None), &governance).await;
}

#[tokio::test]
async fn the_api_server_accepts_every_crd_without_a_warning() {
    let client = cluster::admin().await;
    for crd in trailkeeper::api::crds() {
        let name = crd.name_any();
        let request = http::Request::patch(format!(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}?fieldManager=trailkeeper-tests&force=true"
        ))
        .header("content-type", "application/apply-patch+yaml")
        .body(kube::client::Body::from(serde_json::to_vec(&crd).unwrap()))
        .unwrap();
        let response = client.send(request).await.unwrap();
        let status = response.status();
        let warnings: Vec<String> = response
            .headers()
            .get_all("warning")
            .iter()
            .map(|w| String::from_utf8_lossy(w.as_bytes()).to_string())
            .collect();
        let body = response.into_body().collect_bytes().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "the API server refused the CRD {name} ({status}): {}",
            String::from_utf8_lossy(&body)
        );
        assert!(warnings.is_empty(), "the API server warned on {name}: {warnings:?}");
    }
    cluster::apply_crds(&client, &trailkeeper::api::crds()).await;
}

/// The API server fills in the schema's defaults; the controller reads objects with serde's
/// defaults. Both must give the same spec, or an object means one thing to the API server (and
/// to `kubectl get -o yaml`) and another to trailkeeper.
#[tokio::test]
async fn the_api_servers_defaults_are_trailkeepers_defaults() {
    let judge = Judge::new().await;
    async fn check<K: Kind>(judge: &Judge, minimal: K, spec_of: impl Fn(&K) -> serde_json::Value) {
        let stored = judge
            .api::<K>()
            .create(&PostParams::default(), &judge.named(&minimal))
            .await
            .unwrap_or_else(|e| panic!("the API server refused a minimal {}: {e}", K::kind(&())));
        let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
            judge.client.clone(),
            &judge.namespace,
            &kube::api::ApiResource::erase::<K>(&()),
        );
        let served = raw.get(&stored.name_any()).await.unwrap();
        assert_eq!(
            served.data["spec"],
            spec_of(&minimal),
            "{}: the API server's defaults (left) differ from trailkeeper's (right)",
            K::kind(&())
        );
        // The defaulted object is itself valid: an update that changes nothing is accepted.
        judge
            .api::<K>()
            .replace(&stored.name_any(), &PostParams::default(), &stored)
            .await
            .unwrap();
    }
    check(&judge, baseline(""), |b| serde_json::to_value(&b.spec).unwrap()).await;
    check(&judge, trail_policy("  {}"), |p| serde_json::to_value(&p.spec).unwrap()).await;
    check(&judge, retention("  {}"), |p| serde_json::to_value(&p.spec).unwrap()).await;
    check(
        &judge,
        baseline_set("  generator: {accounts: [{id: '111122223333'}]}"),
        |s| serde_json::to_value(&s.spec).unwrap(),
    )
    .await;
}

/// Every field of the five kinds is described where `kubectl explain` reads it: the OpenAPI v3
/// document the API server publishes for the group.
#[tokio::test]
async fn every_field_has_a_description_that_kubectl_explain_shows() {
    let client = cluster::admin().await;
    cluster::install_crds(&client).await;
    let path = "/openapi/v3/apis/trailkeeper.io/v1alpha1";
    // The API server publishes a new CRD's schema a moment after it is established.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    let document = loop {
        let request = http::Request::get(path).body(Vec::new()).unwrap();
        match client.request::<serde_json::Value>(request).await {
            Ok(d) if d["components"]["schemas"]["io.trailkeeper.v1alpha1.RetentionPolicy"].is_object() => break d,
            _ if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await
            }
            other => panic!("no schema of trailkeeper.io at {path}: {other:?}"),
        }
    };
    fn walk(schema: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
        if let Some(properties) = schema["properties"].as_object() {
            for (name, field) in properties {
                let field_path = format!("{path}.{name}");
                let described = field["description"].as_str().is_some_and(|d| !d.trim().is_empty());
                if !described {
                    missing.push(field_path.clone());
                }
                walk(field, &field_path, missing);
            }
        }
        for nested in ["items", "additionalProperties"] {
            if schema[nested].is_object() {
                walk(&schema[nested], &format!("{path}[]"), missing);
            }
        }
        if let Some(all) = schema["allOf"].as_array() {
            all.iter().for_each(|s| walk(s, path, missing));
        }
    }
    let mut missing = Vec::new();
    let mut fields = 0;
    for kind in [
        "LoggingBaseline",
        "TrailPolicy",
        "RetentionPolicy",
        "LoggingBaselineSet",
        "LogArchive",
    ] {
        let schema = &document["components"]["schemas"][format!("io.trailkeeper.v1alpha1.{kind}")];
        assert!(schema.is_object(), "no served schema of {kind}");
        for part in ["spec", "status"] {
            if schema["properties"][part].is_object() {
                let text = serde_json::to_string(&schema["properties"][part]).unwrap();
                fields += text.matches("\"type\"").count();
                walk(&schema["properties"][part], &format!("{kind}.{part}"), &mut missing);
            }
        }
    }
    assert!(
        fields > 100,
        "the served schemas hold only {fields} typed nodes: the walk read the wrong document"
    );
    assert!(missing.is_empty(), "fields without a description: {missing:#?}");
}

fn baseline_set(generator: &str) -> LoggingBaselineSet {
    serde_yaml::from_str(&format!(
        "apiVersion: trailkeeper.io/v1alpha1\nkind: LoggingBaselineSet\nmetadata: {{name: s}}\nspec:\n  template:\n    spec:\n      primaryRegion: us-east-1\n      credentials: {{assumeRoleArn: 'arn:aws:iam::{{{{accountId}}}}:role/trailkeeper'}}\n{generator}\n"
    ))
    .unwrap()
}

#[tokio::test]
async fn a_set_has_exactly_one_generator_and_valid_account_ids() {
    let judge = Judge::new().await;
    judge
        .rejects(&baseline_set("  generator: {}"), "exactly one generator")
        .await;
    judge
        .rejects(
            &baseline_set("  generator: {accounts: [{id: '111122223333'}], organization: {}}"),
            "exactly one generator",
        )
        .await;
    judge
        .accepts(&baseline_set("  generator: {accounts: [{id: '111122223333'}]}"))
        .await;
    judge
        .accepts(&baseline_set(
            "  generator: {organization: {organizationalUnits: [{id: ou-ab12-abcd1234}], exclude: ['111122223333']}}",
        ))
        .await;
    judge
        .rejects(
            &baseline_set("  generator: {accounts: [{id: '1234'}]}"),
            "spec.generator.accounts[0].id",
        )
        .await;
}

/// The paths of the optional fields (not `required` by their object's schema) of `value`'s
/// objects, at any depth, list items included.
fn optional_fields(
    schema: &serde_json::Value,
    value: &serde_json::Value,
    path: &mut Vec<String>,
    out: &mut Vec<Vec<String>>,
) {
    match value {
        serde_json::Value::Object(map) => {
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(|f| f.as_str()).collect())
                .unwrap_or_default();
            for (field, field_schema) in schema["properties"].as_object().into_iter().flatten() {
                path.push(field.clone());
                if !required.contains(&field.as_str()) {
                    out.push(path.clone());
                }
                if let Some(child) = map.get(field) {
                    optional_fields(field_schema, child, path, out);
                }
                path.pop();
            }
        }
        serde_json::Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i.to_string());
                optional_fields(&schema["items"], item, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn set_null(value: &mut serde_json::Value, path: &[String]) {
    let (last, parents) = path.split_last().unwrap();
    let mut at = value;
    for p in parents {
        at = match at {
            serde_json::Value::Array(items) => &mut items[p.parse::<usize>().unwrap()],
            other => &mut other[p.as_str()],
        };
    }
    at[last.as_str()] = serde_json::Value::Null;
}

/// Every optional field of each kind set to null, in an object the API server accepted as
/// written and with its defaults: `trailkeeper validate` (and so `diff`, which reads manifests
/// the same way) gives the API server's verdict. The API server prunes a null of a non-nullable
/// field and takes a nullable one set to null as absent in its rules; a rule that fails to
/// evaluate offline is no verdict.
#[tokio::test]
async fn explicit_nulls_are_judged_as_the_api_server_judges_them() {
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    let judge = Judge::new().await;
    let kinds = [
        (
            "LoggingBaseline",
            trailkeeper::api::schema_of::<LoggingBaseline>(),
            serde_json::json!({"accountId": "111122223333", "primaryRegion": "us-east-1",
                "regions": ["us-east-1", "eu-west-1"], "tags": {"team": "audit"}}),
        ),
        (
            "TrailPolicy",
            trailkeeper::api::schema_of::<TrailPolicy>(),
            serde_json::json!({}),
        ),
        (
            "RetentionPolicy",
            trailkeeper::api::schema_of::<RetentionPolicy>(),
            serde_json::json!({"trailLogs": {"expireAfterDays": 400}, "approval": {"reference": "CHG-1"}}),
        ),
        (
            "LoggingBaselineSet",
            trailkeeper::api::schema_of::<LoggingBaselineSet>(),
            serde_json::json!({"template": {"spec": {"primaryRegion": "us-east-1",
                "credentials": {"assumeRoleArn": "arn:aws:iam::{{accountId}}:role/trailkeeper"}}},
                "generator": {"accounts": [{"id": "111122223333"}]}}),
        ),
    ];
    let mut disagreements = Vec::new();
    let mut judged = 0;
    for (kind, schema, spec) in kinds {
        let gvk = GroupVersionKind::gvk("trailkeeper.io", "v1alpha1", kind);
        let api: Api<DynamicObject> =
            Api::namespaced_with(judge.client.clone(), &judge.namespace, &ApiResource::from_gvk(&gvk));
        let object = |spec: &serde_json::Value| {
            serde_json::json!({"apiVersion": "trailkeeper.io/v1alpha1", "kind": kind,
                "metadata": {"name": fresh_name(), "namespace": judge.namespace}, "spec": spec})
        };
        // The object as written, and as the API server stores it (its defaults filled in).
        let defaulted = api
            .create(&dry_run(), &serde_json::from_value(object(&spec)).unwrap())
            .await
            .unwrap_or_else(|e| panic!("the base {kind} is valid: {e}"))
            .data["spec"]
            .clone();
        for base in [spec, defaulted] {
            let mut fields = Vec::new();
            optional_fields(&schema["properties"]["spec"], &base, &mut Vec::new(), &mut fields);
            for field in fields {
                let mut nulled = base.clone();
                set_null(&mut nulled, &field);
                let value = object(&nulled);
                let server = api
                    .create(&dry_run(), &serde_json::from_value(value.clone()).unwrap())
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string());
                let documents = [trailkeeper::manifests::Document {
                    file: "test.yaml".into(),
                    index: 0,
                    value,
                }];
                let (_, problems) = trailkeeper::manifests::validate(&documents);
                let offline: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                judged += 1;
                if server.is_ok() != offline.is_empty() {
                    disagreements.push(format!(
                        "{kind} spec.{} = null: API server {server:?}, validate {offline:?}",
                        field.join(".")
                    ));
                }
            }
        }
    }
    assert!(judged > 100, "only {judged} fields judged");
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

#[tokio::test]
async fn an_approval_reference_has_no_surrounding_space_nor_control_characters() {
    let judge = Judge::new().await;
    let with_reference = |reference: &str| {
        let mut policy = retention("  {}");
        policy.spec.approval = Some(trailkeeper::api::Approval {
            reference: reference.to_string(),
            reason: None,
        });
        policy
    };
    for ok in ["CHG-1234", "SEC 12 (urgent)", "Änderung-7"] {
        judge.accepts(&with_reference(ok)).await;
    }
    // A trailing space would make the previous reference "new" to the transition rules.
    for bad in [
        "CHG-1234 ",
        " CHG-1234",
        "CHG-1234\n",
        "CHG\u{0}1234",
        "CHG-1234\u{202e}",
        "\u{feff}CHG-1234",
    ] {
        judge.rejects(&with_reference(bad), "approval.reference").await;
    }
}

#[tokio::test]
async fn tag_keys_reserved_by_aws_and_control_characters_in_values_are_refused() {
    let judge = Judge::new().await;
    judge
        .accepts(&baseline("  tags: {team: payments, cost-center: \"42\"}"))
        .await;
    judge
        .rejects(&baseline("  tags: {\"aws:createdBy\": me}"), "may not start with aws:")
        .await;
    judge
        .rejects(&baseline("  tags: {\"\": x}"), "1 to 128 characters")
        .await;
    judge.rejects(&baseline("  tags: {team: \"a\\nb\"}"), "spec.tags").await;
    judge
        .rejects(&trail_policy("  tags: {\"aws:x\": y}"), "may not start with aws:")
        .await;
}

fn log_archive(extra: &str) -> LogArchive {
    serde_yaml::from_str(&format!(
        "apiVersion: trailkeeper.io/v1alpha1\nkind: LogArchive\nmetadata: {{name: a, namespace: n}}\nspec:\n  accountId: \"777788889999\"\n  region: us-east-1\n{extra}"
    ))
    .unwrap()
}

/// A member of a LogArchive delivers into the archive with its key: it names no key, bucket or
/// Existing trail of its own, and sends no flow logs to a trail bucket it does not have.
#[tokio::test]
async fn a_member_of_a_log_archive_names_no_key_bucket_or_existing_trail_of_its_own() {
    let judge = Judge::new().await;
    let member = |extra: &str| baseline(&format!("  storage: {{archiveRef: {{name: org-archive}}{extra}}}"));
    for (spec, what) in [
        (member(", bucketName: my-bucket"), "bucketName"),
        (
            baseline(
                "  storage: {archiveRef: {name: org-archive}}\n  encryption: {kmsKeyArn: 'arn:aws:kms:us-east-1:111122223333:key/k'}",
            ),
            "kmsKeyArn",
        ),
        (
            baseline("  storage: {archiveRef: {name: org-archive}}\n  flowLogs: {destination: S3}"),
            "flow logs",
        ),
        (
            baseline(
                "  storage: {archiveRef: {name: org-archive}}\n  trail: {source: Existing, existingTrailArn: 'arn:aws:cloudtrail:us-east-1:111122223333:trail/org'}",
            ),
            "trail.source Managed",
        ),
    ] {
        judge.rejects(&spec, "storage.archiveRef").await;
        judge.rejects(&spec, what).await;
    }
    // Without the archive, the same settings are an account's own.
    judge
        .accepts(&baseline(
            "  storage: {bucketName: my-bucket}\n  flowLogs: {destination: S3}",
        ))
        .await;
}

#[tokio::test]
async fn a_log_archive_replicates_into_another_region_and_keeps_its_account_and_region() {
    let judge = Judge::new().await;
    judge.accepts(&log_archive("  replication: {region: eu-west-1}")).await;
    judge
        .rejects(&log_archive("  replication: {region: us-east-1}"), "another region")
        .await;
    judge
        .rejects(&log_archive("  organizationId: not-an-org"), "organizationId")
        .await;
    let old = log_archive("");
    let mut moved = old.clone();
    moved.spec.region = "eu-west-1".into();
    judge.rejects_update(&moved, &old, "region is immutable").await;
    let mut other = old.clone();
    other.spec.account_id = "111122223333".into();
    judge.rejects_update(&other, &old, "accountId is immutable").await;
}

/// Admitting the Organization widens who may write into the locked archive: it names the
/// Organization and carries an approval, new in the change that asks for it; a key prefix
/// holding `AWSLogs` is refused (CloudTrail refuses it into another account's bucket).
#[tokio::test]
async fn a_log_archive_admits_the_organization_only_with_its_id_and_a_new_approval() {
    let judge = Judge::new().await;
    let organization = "  organizationId: o-abcdefghij\n";
    let approval = |reference: &str| format!("  approval: {{reference: {reference}, reason: more than 43 members}}\n");
    judge
        .rejects(
            &log_archive(&format!("  admission: Organization\n{}", approval("CHG-1"))),
            "set it",
        )
        .await;
    judge
        .rejects(
            &log_archive(&format!("{organization}  admission: Organization\n")),
            "it needs spec.approval",
        )
        .await;
    let admitting = log_archive(&format!(
        "{organization}  admission: Organization\n{}",
        approval("CHG-1")
    ));
    judge.accepts(&admitting).await;

    let trails = log_archive(&format!("{organization}{}", approval("CHG-1")));
    judge
        .rejects_update(&admitting, &trails, "a reference that is new in this change")
        .await;
    let approved = log_archive(&format!(
        "{organization}  admission: Organization\n{}",
        approval("CHG-2")
    ));
    judge.accepts_update(&approved, &trails).await;
    // Already admitted, or narrowed back to the trails: no new approval needed.
    judge.accepts_update(&admitting, &admitting).await;
    judge.accepts_update(&trails, &admitting).await;

    judge
        .rejects(
            &log_archive("  keyPrefix: logs/AWSLogs/111122223333"),
            "may not contain AWSLogs",
        )
        .await;
    judge.accepts(&log_archive("  keyPrefix: org-logs")).await;
}

/// Network activity events, as CloudTrail takes them: a NetworkActivity selector names one event
/// source it records them for, with Equals; its fields are those CloudTrail supports; errorCode is
/// VpceAccessDenied. The TrailPolicy's own field lists each source once.
#[tokio::test]
async fn network_activity_selectors_are_judged_as_cloudtrail_judges_them() {
    let judge = Judge::new().await;
    let selector = |fields: &str| {
        trail_policy(&format!(
            "  advancedEventSelectors: [{{name: n, fieldSelectors: [{fields}]}}]"
        ))
    };
    let category = "{field: eventCategory, equals: [NetworkActivity]}";
    judge
        .accepts(&selector(&format!(
            "{category}, {{field: eventSource, equals: [kms.amazonaws.com]}}, {{field: errorCode, equals: [VpceAccessDenied]}}, {{field: vpcEndpointId, startsWith: [vpce-]}}"
        )))
        .await;
    judge
        .accepts(&trail_policy(
            "  networkActivityEvents: {eventSources: [kms.amazonaws.com, ec2.amazonaws.com], onlyAccessDenied: true}",
        ))
        .await;
    for (fields, needle) in [
        (category.to_string(), "needs one eventSource field"),
        (
            format!("{category}, {{field: eventSource, equals: [kms.amazonaws.com, ec2.amazonaws.com]}}"),
            "one selector per event source",
        ),
        (
            format!("{category}, {{field: eventSource, equals: [iam.amazonaws.com]}}"),
            "needs one eventSource field",
        ),
        (
            format!("{category}, {{field: eventSource, startsWith: [kms]}}"),
            "needs one eventSource field",
        ),
        (
            format!("{category}, {{field: eventSource, equals: [kms.amazonaws.com]}}, {{field: readOnly, equals: ['true']}}"),
            "filters on eventCategory, eventSource, eventName, errorCode, vpcEndpointId only",
        ),
        (
            format!("{category}, {{field: eventSource, equals: [kms.amazonaws.com]}}, {{field: errorCode, equals: [AccessDenied]}}"),
            "errorCode takes Equals VpceAccessDenied",
        ),
        (
            "{field: eventCategory, equals: [NetworkActivity, Management]}, {field: eventSource, equals: [kms.amazonaws.com]}".to_string(),
            "takes the Equals operator with that one value",
        ),
    ] {
        judge.rejects(&selector(&fields), needle).await;
    }
    // A service outside the list does not even decode into the typed policy: judged as raw YAML.
    let unknown: serde_json::Value = serde_yaml::from_str(
        "apiVersion: trailkeeper.io/v1alpha1\nkind: TrailPolicy\nmetadata: {name: default, namespace: n}\nspec:\n  networkActivityEvents: {eventSources: [iam.amazonaws.com]}",
    )
    .unwrap();
    let documents = [trailkeeper::manifests::Document {
        file: "test.yaml".into(),
        index: 0,
        value: unknown.clone(),
    }];
    let (_, problems) = trailkeeper::manifests::validate(&documents);
    rejected_with(
        if problems.is_empty() {
            Ok(())
        } else {
            Err(format!("{problems:?}"))
        },
        "iam.amazonaws.com",
        "trailkeeper validate",
    );
    let mut object: kube::api::DynamicObject = serde_json::from_value(unknown).unwrap();
    object.metadata.name = Some(fresh_name());
    object.metadata.namespace = Some(judge.namespace.clone());
    let resource = kube::discovery::ApiResource::erase::<TrailPolicy>(&());
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(judge.client.clone(), &judge.namespace, &resource);
    rejected_with(
        api.create(&dry_run(), &object)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        "iam.amazonaws.com",
        "the API server",
    );
    judge
        .rejects(
            &trail_policy("  networkActivityEvents: {eventSources: [kms.amazonaws.com, kms.amazonaws.com]}"),
            "lists each service once",
        )
        .await;
}

/// Locking an existing trail bucket in place is acknowledged, carries an approval, and concerns
/// the bucket of a Managed trail only.
#[tokio::test]
async fn locking_an_existing_bucket_in_place_needs_the_acknowledgement_and_an_approval() {
    let judge = Judge::new().await;
    let lock = |ack: bool| {
        format!(
            "  storage:\n    bucketName: payments-cloudtrail\n    lockExistingBucket: {{acknowledgeIrreversible: {ack}, approval: {{reference: CHG-1}}}}"
        )
    };
    judge.accepts(&baseline(&lock(true))).await;
    judge
        .rejects(&baseline(&lock(false)), "set acknowledgeIrreversible: true")
        .await;
    judge
        .rejects(
            &baseline(&format!(
                "{}\n  trail: {{source: Existing, existingTrailArn: 'arn:aws:cloudtrail:us-east-1:111122223333:trail/org-trail'}}",
                lock(true)
            )),
            "locks the trail bucket of a Managed trail",
        )
        .await;
}

/// `regions: ["*"]` keeps every enabled region, alone; a recorder trailkeeper keeps needs its
/// access-log bucket (issue 43): both ways, offline and on the API server.
#[tokio::test]
async fn every_region_is_named_alone_and_a_kept_recorder_needs_trailkeepers_bucket() {
    let judge = Judge::new().await;
    judge.accepts(&baseline("  regions: ['*']")).await;
    judge.accepts(&baseline("  regions: [us-east-1, eu-west-1]")).await;
    judge
        .rejects(&baseline("  regions: ['*', eu-west-1]"), "names no other region")
        .await;
    judge.rejects(&baseline("  regions: ['eu-*']"), "regions").await;
    judge
        .accepts(&baseline(
            "  regions: ['*']\n  configRules: {enabled: false, createRecorder: true}",
        ))
        .await;
    let existing =
        "  trail: {source: Existing, existingTrailArn: 'arn:aws:cloudtrail:us-east-1:111122223333:trail/org'}";
    judge
        .rejects(
            &baseline(&format!("{existing}\n  configRules: {{createRecorder: true}}")),
            "configRules.createRecorder",
        )
        .await;
    judge.accepts(&baseline(existing)).await;
    judge
        .rejects(
            &baseline("  storage: {archiveRef: {name: org}}\n  configRules: {createRecorder: true}"),
            "configRules.createRecorder",
        )
        .await;
}
