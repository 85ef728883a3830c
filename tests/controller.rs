//! The controller's reconcile against a verified API server (tower-test: each request's method,
//! path and body is asserted, and answered with a canned object) and AWS on moto.

mod common;

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use http::{Request, Response};
use kube::Client;
use kube::client::Body;
use kube::runtime::controller::Action;
use serde_json::{Value, json};
use trailkeeper::api::{DeletionPolicy, LoggingBaseline};
use trailkeeper::controller::baselines::{Context, FINALIZER, Settings, reconcile};
use trailkeeper::desired;

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

async fn context() -> (Arc<Context>, ApiServerVerifier) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let ctx = Arc::new(Context::new(client, common::base_config().await, Settings::default()));
    (ctx, ApiServerVerifier(handle))
}

/// Answers the requests a reconcile makes, asserting each one.
struct ApiServerVerifier(Handle);

impl ApiServerVerifier {
    /// Takes the next request, asserts its method and path, and answers `status` with `reply`.
    /// Returns the request's JSON body (Null when empty).
    async fn expect(&mut self, method: &str, path: &str, status: u16, reply: Value) -> Value {
        let (request, send) = tokio::time::timeout(std::time::Duration::from_secs(60), self.0.next_request())
            .await
            .expect("a request within 60 s")
            .expect("the service is alive");
        assert_eq!(request.method().as_str(), method, "method of {}", request.uri());
        assert_eq!(request.uri().path(), path);
        let body = request.into_body().collect_bytes().await.unwrap();
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap()
        };
        send.send_response(
            Response::builder()
                .status(status)
                .body(Body::from(serde_json::to_vec(&reply).unwrap()))
                .unwrap(),
        );
        body
    }

    async fn not_found(&mut self, path: &str) {
        let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"});
        self.expect("GET", path, 404, status).await;
    }

    async fn event(&mut self, ns: &str) -> Value {
        let path = format!("/apis/events.k8s.io/v1/namespaces/{ns}/events");
        let event = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e", "namespace": ns}, "eventTime": "2026-01-01T00:00:00.000000Z"});
        self.expect("POST", &path, 201, event).await
    }
}

const NS: &str = "accounts";

fn baseline_object(account: &str, finalized: bool) -> LoggingBaseline {
    let mut b = common::baseline(account);
    b.metadata.namespace = Some(NS.into());
    b.metadata.uid = Some(format!("uid-{account}"));
    b.metadata.generation = Some(1);
    b.metadata.resource_version = Some("1".into());
    if finalized {
        b.metadata.finalizers = Some(vec![FINALIZER.into()]);
    }
    b
}

fn path(b: &LoggingBaseline) -> String {
    format!(
        "/apis/trailkeeper.io/v1alpha1/namespaces/{NS}/loggingbaselines/{}",
        b.metadata.name.as_deref().unwrap()
    )
}

fn policy_path(plural: &str, name: &str) -> String {
    format!("/apis/trailkeeper.io/v1alpha1/namespaces/{NS}/{plural}/{name}")
}

fn deleting(mut b: LoggingBaseline) -> LoggingBaseline {
    b.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2026-11-26T00:00:00Z".parse().unwrap(),
    ));
    b
}

#[tokio::test]
async fn the_finalizer_is_added_on_first_sight_before_anything_else() {
    let (ctx, mut api) = context().await;
    let b = baseline_object(&common::new_account(), false);
    let reply = serde_json::to_value(baseline_object(&common::new_account(), true)).unwrap();
    let object_path = path(&b);
    let server = tokio::spawn(async move {
        let patch = api.expect("PATCH", &object_path, 200, reply).await;
        let ops = patch.as_array().expect("a JSON patch");
        assert!(
            ops.iter()
                .any(|op| op["op"] == "add" && op["value"] == json!([FINALIZER])),
            "{patch}"
        );
        api
    });
    let action = reconcile(Arc::new(b), ctx.clone()).await.unwrap();
    assert_eq!(action, Action::await_change());
    server.await.unwrap();
    assert_eq!(
        ctx.aws.total_calls().reads + ctx.aws.total_calls().writes,
        0,
        "no AWS call before the finalizer"
    );
}

#[tokio::test]
async fn a_reconcile_converges_the_account_and_patches_status_once() {
    let (ctx, mut api) = context().await;
    let account = common::new_account();
    let mut b = baseline_object(&account, true);
    // As in production, where the audit queries are on by default.
    b.spec.audit_queries.enabled = true;
    let status_path = format!("{}/status", path(&b));
    let reply = serde_json::to_value(&b).unwrap();
    let server = tokio::spawn(async move {
        api.not_found(&policy_path("trailpolicies", "default")).await;
        api.not_found(&policy_path("retentionpolicies", "default")).await;
        let patch = api.expect("PATCH", &status_path, 200, reply).await;
        let event = api.event(NS).await;
        (patch, event)
    });
    let action = reconcile(Arc::new(b.clone()), ctx).await.unwrap();
    assert_ne!(
        action,
        Action::await_change(),
        "an account in line is resynced periodically"
    );
    let (patch, event) = server.await.unwrap();

    assert_eq!(patch["apiVersion"], "trailkeeper.io/v1alpha1");
    assert_eq!(patch["kind"], "LoggingBaseline");
    let status = &patch["status"];
    assert_eq!(status["observedGeneration"], 1);
    let conditions = status["conditions"].as_array().unwrap();
    let types: Vec<&str> = conditions.iter().map(|c| c["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "KeyReady",
            "StorageReady",
            "TrailReady",
            "RetentionApplied",
            "FlowLogsReady",
            "AuditQueriesReady",
            "DeliveryHealthy",
            "Ready"
        ]
    );
    // The trail was created by this reconcile: its deliveries are read from the next one on.
    let delivery = &conditions[conditions.len() - 2];
    assert_eq!(
        (&delivery["status"], &delivery["reason"]),
        (&json!("Unknown"), &json!("AwaitingFirstDelivery"))
    );
    assert!(
        conditions
            .iter()
            .filter(|c| c["type"] != "DeliveryHealthy")
            .all(|c| c["status"] == "True" && c["lastTransitionTime"].is_string()),
        "{conditions:?}"
    );
    // What a fresh account gets is created, not repaired.
    assert!(
        conditions
            .iter()
            .filter(|c| ["KeyReady", "StorageReady", "TrailReady"].contains(&c["type"].as_str().unwrap()))
            .all(|c| c["reason"] == "Created"),
        "{conditions:?}"
    );
    assert_eq!(
        status["trailArn"],
        format!("arn:aws:cloudtrail:us-east-1:{account}:trail/trailkeeper")
    );
    assert_eq!(status["bucketName"], desired::trail_bucket_name(&b.spec));
    assert!(
        status["kmsKeyArn"]
            .as_str()
            .unwrap()
            .starts_with(&format!("arn:aws:kms:us-east-1:{account}:key/"))
    );
    assert!(status["lastReconcile"]["writes"].as_u64().unwrap() > 0);
    assert!(status["lastReconcile"]["reads"].as_u64().unwrap() > 0);
    assert_eq!(status["appliedRetention"]["lockMode"], "Governance");
    assert_eq!(
        status["auditQueries"],
        json!({
            "database": "trailkeeper_audit",
            "table": "cloudtrail_logs",
            "workGroup": "trailkeeper-audit",
            "resultsLocation": format!("s3://trailkeeper-{account}-athena-results-us-east-1/results/"),
            "namedQueries": 6
        })
    );
    assert_eq!(event["reason"], "Provisioned");
    assert_eq!(event["type"], "Normal");
}

#[tokio::test]
async fn an_invalid_reference_sets_a_false_condition_and_makes_no_aws_call() {
    let (ctx, mut api) = context().await;
    let mut b = baseline_object(&common::new_account(), true);
    b.spec.retention_policy_ref = Some(trailkeeper::api::PolicyRef {
        name: "long-term".into(),
    });
    let object_path = path(&b);
    let status_path = format!("{object_path}/status");
    let reply = serde_json::to_value(&b).unwrap();
    // The API server's copy has the drift of an earlier reconcile; the cache's copy is slim and
    // has none (context::slim). What is applied must be the whole status, or it would remove it.
    let mut whole = reply.clone();
    let earlier_drift =
        json!([{"resource": "s3://b", "field": "versioning", "expected": "Enabled", "actual": "Suspended"}]);
    whole["status"] = json!({"drift": earlier_drift});
    let server = tokio::spawn(async move {
        api.not_found(&policy_path("trailpolicies", "default")).await;
        api.not_found(&policy_path("retentionpolicies", "long-term")).await;
        api.expect("GET", &object_path, 200, whole).await;
        let patch = api.expect("PATCH", &status_path, 200, reply).await;
        let event = api.event(NS).await;
        (patch, event)
    });
    let action = reconcile(Arc::new(b), ctx.clone()).await.unwrap();
    assert_eq!(
        action,
        Action::await_change(),
        "nothing to retry until the reference changes"
    );
    let (patch, event) = server.await.unwrap();
    assert_eq!(
        patch["status"]["drift"], earlier_drift,
        "the rest of the status is kept"
    );
    let conditions = patch["status"]["conditions"].as_array().unwrap();
    let ready = conditions.iter().find(|c| c["type"] == "Ready").expect("Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "InvalidReference");
    // kstatus reads Stalled: no retry fixes a reference, a person must.
    let stalled = conditions.iter().find(|c| c["type"] == "Stalled").expect("Stalled");
    assert_eq!(
        (&stalled["status"], &stalled["reason"]),
        (&json!("True"), &json!("InvalidReference"))
    );
    assert!(
        ready["message"]
            .as_str()
            .unwrap()
            .contains("RetentionPolicy \"long-term\" does not exist")
    );
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["reason"], "InvalidReference");
    let calls = ctx.aws.total_calls();
    assert_eq!(calls.reads + calls.writes, 0);
}

#[tokio::test]
async fn retain_cleanup_removes_the_finalizer_and_touches_no_aws_resource() {
    let (ctx, mut api) = context().await;
    let b = deleting(baseline_object(&common::new_account(), true));
    assert_eq!(b.spec.deletion_policy, DeletionPolicy::Retain);
    let object_path = path(&b);
    let reply = serde_json::to_value(&b).unwrap();
    let server = tokio::spawn(async move {
        let event = api.event(NS).await;
        let patch = api.expect("PATCH", &object_path, 200, reply).await;
        (event, patch)
    });
    reconcile(Arc::new(b), ctx.clone()).await.unwrap();
    let (event, patch) = server.await.unwrap();
    assert_eq!(event["reason"], "Retained");
    assert!(
        patch.as_array().unwrap().iter().any(|op| op["op"] == "remove"),
        "{patch}"
    );
    let calls = ctx.aws.total_calls();
    assert_eq!(calls.reads + calls.writes, 0, "Retain makes no AWS call");
}

/// Deletes `b` (Delete policy) through the controller: the cleanup's two events (what was
/// deleted, what was retained), then the finalizer's removal.
async fn delete_with_cleanup_events(b: &LoggingBaseline) -> (Value, Value) {
    let (ctx, mut api) = context().await;
    let b = deleting(b.clone());
    let object_path = path(&b);
    let reply = serde_json::to_value(&b).unwrap();
    let server = tokio::spawn(async move {
        let deleted = api.event(NS).await;
        let retained = api.event(NS).await;
        api.expect("PATCH", &object_path, 200, reply).await;
        (deleted, retained)
    });
    reconcile(Arc::new(b), ctx).await.unwrap();
    server.await.unwrap()
}

#[tokio::test]
async fn delete_cleanup_keeps_a_bucket_that_holds_objects_and_the_key_of_its_logs() {
    let account = common::new_account();
    let mut b = baseline_object(&account, true);
    b.spec.deletion_policy = DeletionPolicy::Delete;
    // Converge the account, then put a log file in the trail bucket.
    common::converge(&b.spec).await;
    let aws = common::inspector(&account).await;
    let bucket = desired::trail_bucket_name(&b.spec);
    // moto applies a bucket policy's Deny (here: non-TLS) to every object call, ignoring its
    // condition: remove the policy before writing the object (AWS would accept it over TLS).
    aws.s3.delete_bucket_policy().bucket(&bucket).send().await.unwrap();
    aws.s3
        .put_object()
        .bucket(&bucket)
        .key(format!("AWS/CloudTrail/AWSLogs/{account}/log.json.gz"))
        .body(ByteStream::from_static(b"{}"))
        .send()
        .await
        .unwrap();

    let (deleted, retained) = delete_with_cleanup_events(&b).await;
    assert_eq!(deleted["reason"], "Deleted");
    let deleted = deleted["note"].as_str().unwrap();
    assert!(deleted.contains("trail/trailkeeper: deleted"), "{deleted}");
    assert_eq!(retained["reason"], "Retained");
    assert_eq!(retained["type"], "Warning");
    let retained = retained["note"].as_str().unwrap();
    assert!(
        retained.contains(&format!("s3://{bucket}: retained: it holds objects")),
        "{retained}"
    );
    // moto delivers the server access log of that PutObject: the access-log bucket holds it.
    let access_bucket = desired::access_log_bucket_name(&b.spec);
    assert!(
        retained.contains(&format!("s3://{access_bucket}: retained: it holds objects")),
        "{retained}"
    );
    assert!(retained.contains("retained logs are encrypted with it"), "{retained}");

    // Read back: the bucket and its log are there, the trail and the empty bucket are gone.
    aws.s3
        .head_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("the bucket with logs is kept");
    let objects = aws.s3.list_objects_v2().bucket(&bucket).send().await.unwrap();
    assert_eq!(objects.key_count(), Some(1));
    aws.s3
        .head_bucket()
        .bucket(&access_bucket)
        .send()
        .await
        .expect("the bucket with access logs is kept");
    // moto's DeleteTrail by ARN does nothing (AWS deletes the trail): check the trail stopped logging.
    let trail_arn = desired::trail_arn(&b.spec);
    let trail_status = aws.cloudtrail.get_trail_status().name(&trail_arn).send().await.unwrap();
    assert_eq!(trail_status.is_logging, Some(false));
    assert_eq!(aws.trail_key_state().await, "Enabled");
}

#[tokio::test]
async fn delete_cleanup_of_an_account_never_applied_succeeds() {
    let (ctx, mut api) = context().await;
    let mut b = deleting(baseline_object(&common::new_account(), true));
    b.spec.deletion_policy = DeletionPolicy::Delete;
    let object_path = path(&b);
    let reply = serde_json::to_value(&b).unwrap();
    let server = tokio::spawn(async move { api.expect("PATCH", &object_path, 200, reply).await });
    reconcile(Arc::new(b), ctx.clone()).await.unwrap();
    let patch = server.await.unwrap();
    assert!(patch.as_array().unwrap().iter().any(|op| op["op"] == "remove"));
    assert_eq!(ctx.aws.total_calls().writes, 0);
}

#[tokio::test]
async fn delete_cleanup_deletes_an_empty_trail_bucket_and_schedules_the_key_with_the_longest_window() {
    let account = common::new_account();
    let mut b = baseline_object(&account, true);
    b.spec.deletion_policy = DeletionPolicy::Delete;
    common::converge(&b.spec).await;

    let (deleted, retained) = delete_with_cleanup_events(&b).await;
    let bucket = desired::trail_bucket_name(&b.spec);
    let access_bucket = desired::access_log_bucket_name(&b.spec);
    let note = deleted["note"].as_str().unwrap();
    assert!(note.contains(&format!("s3://{bucket}: deleted")), "{note}");
    assert!(note.contains("scheduled for deletion in 30 days"), "{note}");
    // moto logs the bucket operations into the access-log bucket, which is therefore kept.
    let note = retained["note"].as_str().unwrap();
    assert!(note.contains(&format!("s3://{access_bucket}: retained")), "{note}");

    let aws = common::inspector(&account).await;
    assert_eq!(aws.bucket_names().await, [access_bucket]);
    assert_eq!(aws.trail_key_state().await, "PendingDeletion");
}

#[tokio::test]
async fn a_policy_that_breaks_the_crd_rules_is_reported_and_never_reaches_aws() {
    let (ctx, mut api) = context().await;
    let b = baseline_object(&common::new_account(), true);
    let object_path = path(&b);
    let status_path = format!("{object_path}/status");
    let reply = serde_json::to_value(&b).unwrap();
    let whole = reply.clone();
    // Admitted under an older CRD, or written around admission: a Compliance lock not acknowledged.
    let policy = json!({"apiVersion": "trailkeeper.io/v1alpha1", "kind": "RetentionPolicy",
        "metadata": {"name": "default", "namespace": NS},
        "spec": {"trailLogs": {"objectLock": {"mode": "Compliance", "defaultRetentionDays": 3650}}}});
    let server = tokio::spawn(async move {
        api.not_found(&policy_path("trailpolicies", "default")).await;
        api.expect("GET", &policy_path("retentionpolicies", "default"), 200, policy)
            .await;
        api.expect("GET", &object_path, 200, whole).await;
        let patch = api.expect("PATCH", &status_path, 200, reply).await;
        api.event(NS).await;
        patch
    });
    assert_eq!(
        reconcile(Arc::new(b), ctx.clone()).await.unwrap(),
        Action::await_change()
    );
    let patch = server.await.unwrap();
    let ready = &patch["status"]["conditions"][0];
    assert_eq!(ready["reason"], "InvalidSpec");
    assert!(
        ready["message"].as_str().unwrap().contains("acknowledgeIrreversible"),
        "{ready}"
    );
    let calls = ctx.aws.total_calls();
    assert_eq!(calls.reads + calls.writes, 0);
}

#[tokio::test]
async fn the_controller_lists_and_watches_its_five_kinds_and_stops_on_shutdown() {
    let (ctx, mut api) = context().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(trailkeeper::controller::run(ctx, async move {
        let _ = stopped.await;
    }));
    let mut seen = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    // The baselines' controller watches baselines, both policies and the archives (what they
    // admit); the sets' controller, sets and (as their owner) baselines; the archives'
    // controller, archives and (their members) baselines.
    while seen.len() < 10 {
        let next = tokio::time::timeout_at(deadline, api.0.next_request()).await;
        let (request, send) = next.expect("list and watch of the five kinds within 60 s").unwrap();
        let uri = request.uri().to_string();
        let kind = [
            "loggingbaselines",
            "trailpolicies",
            "retentionpolicies",
            "loggingbaselinesets",
            "logarchives",
        ]
        .into_iter()
        .find(|k| request.uri().path().ends_with(k))
        .unwrap_or_else(|| panic!("unexpected request {uri}"));
        let watch = uri.contains("watch=true");
        seen.insert((kind, watch));
        let body = if watch {
            Vec::new()
        } else {
            serde_json::to_vec(
                &json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": "1"}, "items": []}),
            )
            .unwrap()
        };
        send.send_response(Response::builder().status(200).body(Body::from(body)).unwrap());
    }
    let _ = stop.send(());
    drop(api);
    tokio::time::timeout(std::time::Duration::from_secs(30), run)
        .await
        .expect("stops on shutdown")
        .unwrap();
}

#[tokio::test]
async fn the_lease_is_created_renewed_with_its_version_and_lost_on_conflict() {
    use trailkeeper::runtime::leader::{Elector, KubeLease, Timing};
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    let mut api = ApiServerVerifier(handle);
    let path = "/apis/coordination.k8s.io/v1/namespaces/trailkeeper/leases/trailkeeper";
    let lease = |rv: &str, holder: &str| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "trailkeeper", "namespace": "trailkeeper", "resourceVersion": rv},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": "2026-11-26T00:00:00.000000Z", "leaseTransitions": 0}})
    };
    let server = tokio::spawn(async move {
        api.not_found(path).await;
        let created = api
            .expect(
                "POST",
                "/apis/coordination.k8s.io/v1/namespaces/trailkeeper/leases",
                201,
                lease("1", "a"),
            )
            .await;
        api.expect("GET", path, 200, lease("1", "a")).await;
        let renewed = api.expect("PUT", path, 200, lease("2", "a")).await;
        api.expect("GET", path, 200, lease("2", "a")).await;
        let conflict = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409, "message": "the object has been modified"});
        api.expect("PUT", path, 409, conflict).await;
        (created, renewed)
    });
    let mut elector = Elector::new(
        KubeLease::new(client, "trailkeeper", "trailkeeper"),
        "a",
        Timing::default(),
    );
    let (now, wall) = (
        trailkeeper::runtime::leader::monotonic_ms(),
        trailkeeper::runtime::leader::wall_ms(),
    );
    assert!(elector.round(now, wall).await.unwrap());
    assert!(elector.round(now + 2000, wall + 2000).await.unwrap());
    assert!(
        !elector.round(now + 4000, wall + 4000).await.unwrap(),
        "a conflict means another replica wrote the lease"
    );
    assert!(!elector.is_leader(now + 4000));
    let (created, renewed) = server.await.unwrap();
    assert_eq!(created["spec"]["holderIdentity"], "a");
    assert_eq!(
        renewed["metadata"]["resourceVersion"], "1",
        "a renewal carries the version it read"
    );
    assert_eq!(
        renewed["spec"]["acquireTime"], created["spec"]["acquireTime"],
        "a renewal keeps acquireTime"
    );
}

/// spec.securityHub: the reconcile exports the account's findings once its status is judged, and
/// says so (FindingsExported, status.securityHub); deleting the baseline, even under Retain,
/// archives them (nothing judges them any more) before the finalizer goes.
#[tokio::test]
async fn findings_are_exported_with_the_status_and_archived_when_the_baseline_goes() {
    let account = common::new_account();
    let aws = common::inspector(&account).await;
    aws.securityhub.enable_security_hub().send().await.unwrap();
    let mut b = baseline_object(&account, true);
    b.spec.security_hub.enabled = true;
    let (ctx, mut api) = context().await;
    let status_path = format!("{}/status", path(&b));
    let reply = serde_json::to_value(&b).unwrap();
    let server = tokio::spawn(async move {
        api.not_found(&policy_path("trailpolicies", "default")).await;
        api.not_found(&policy_path("retentionpolicies", "default")).await;
        let patch = api.expect("PATCH", &status_path, 200, reply).await;
        api.event(NS).await;
        patch
    });
    reconcile(Arc::new(b.clone()), ctx).await.unwrap();
    let patch = server.await.unwrap();
    let status = &patch["status"];
    let conditions = status["conditions"].as_array().unwrap();
    let exported = conditions
        .iter()
        .find(|c| c["type"] == "FindingsExported")
        .unwrap_or_else(|| panic!("{conditions:?}"));
    assert_eq!(
        (&exported["status"], &exported["reason"]),
        (&json!("True"), &json!("Exported"))
    );
    assert_eq!(conditions.last().unwrap()["type"], "Ready", "Ready stays last");
    let findings = status["securityHub"]["findings"].as_u64().unwrap();
    assert!(findings >= 24, "{status}");
    assert_eq!(status["securityHub"]["imported"].as_u64(), Some(findings));
    assert_eq!(
        status["securityHub"]["productArn"],
        format!("arn:aws:securityhub:us-east-1:{account}:product/{account}/default")
    );
    let hub = || async {
        tokio::spawn(aws.securityhub.get_findings().send())
            .await
            .unwrap()
            .unwrap()
            .findings()
            .iter()
            .map(|f| f.record_state().map(|r| r.as_str().to_string()).unwrap_or_default())
            .collect::<Vec<_>>()
    };
    let states = hub().await;
    assert_eq!(states.len() as u64, findings);
    assert!(states.iter().all(|s| s == "ACTIVE"));

    let (ctx, mut api) = context().await;
    let gone = deleting(b);
    let object_path = path(&gone);
    let reply = serde_json::to_value(&gone).unwrap();
    let server = tokio::spawn(async move {
        let archived = api.event(NS).await;
        let retained = api.event(NS).await;
        api.expect("PATCH", &object_path, 200, reply).await;
        (archived, retained)
    });
    reconcile(Arc::new(gone), ctx).await.unwrap();
    let (archived, retained) = server.await.unwrap();
    assert_eq!(archived["reason"], "FindingsArchived", "{archived}");
    assert!(
        archived["note"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{findings} findings archived"))
    );
    assert_eq!(retained["reason"], "Retained");
    let states = hub().await;
    assert!(states.iter().all(|s| s == "ARCHIVED"), "{states:?}");
}
