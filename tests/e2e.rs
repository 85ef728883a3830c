//! End to end on a real Kubernetes API server (tests/common/cluster.rs: etcd and kube-apiserver,
//! started by this test binary), with AWS on moto. The controller runs in this process; nothing
//! relies on pods, the garbage collector or a controller-manager.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::cluster;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use trailkeeper::api::{DeletionPolicy, LoggingBaseline, RetentionPolicy};
use trailkeeper::controller::baselines::{self, Context, Settings};
use trailkeeper::desired;

const TIMEOUT: Duration = Duration::from_secs(180);

async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    cluster::eventually(what, TIMEOUT, check).await
}

/// A client, the CRDs installed, and a namespace of a fresh name.
async fn setup() -> (Client, String) {
    let client = cluster::admin().await;
    cluster::install_crds(&client).await;
    let ns = cluster::fresh_namespace(&client, "e2e").await;
    (client, ns)
}

/// Runs the controller (in this process, as the operator's identity) on `ns` until the returned
/// sender is used.
async fn start_controller(ns: &str, base: aws_types::SdkConfig) -> cluster::Running {
    start_controller_with(ns, base, Settings::default()).await
}

async fn start_controller_with(ns: &str, base: aws_types::SdkConfig, settings: Settings) -> cluster::Running {
    let settings = Settings {
        resync: Duration::from_secs(5),
        retry_base: Duration::from_secs(1),
        watch_namespace: Some(ns.to_string()),
        ..settings
    };
    cluster::start_controller(base, settings).await
}

fn ready(b: &LoggingBaseline) -> bool {
    b.status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test]
async fn the_operator_converges_two_accounts_follows_policy_changes_repairs_drift_and_retains_on_delete() {
    let (client, ns) = setup().await;
    let (stop, controller, _) = start_controller(&ns, common::base_config().await).await;

    let retention: Api<RetentionPolicy> = Api::namespaced(client.clone(), &ns);
    let policy = json!({"apiVersion": "trailkeeper.io/v1alpha1", "kind": "RetentionPolicy",
        "metadata": {"name": "default"}, "spec": {"trailLogs": {"objectLock": {"mode": "Governance", "defaultRetentionDays": 365}}}});
    retention
        .create(&PostParams::default(), &serde_json::from_value(policy).unwrap())
        .await
        .unwrap();

    let baselines: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let accounts = [common::new_account(), common::new_account()];
    for account in &accounts {
        let mut b = common::baseline(account);
        b.metadata.namespace = Some(ns.clone());
        baselines.create(&PostParams::default(), &b).await.unwrap();
    }
    for account in &accounts {
        wait_ready(&baselines, &format!("acct-{account}")).await;
        let aws = common::inspector(account).await;
        let trail = desired::trail_arn(&common::spec(account));
        assert_eq!(aws.trail_is_logging(&trail).await, Some(true));
    }

    // A RetentionPolicy change reaches every baseline that uses it.
    set_lock_days(&retention, 400).await;
    for account in &accounts {
        let bucket = desired::trail_bucket_name(&common::spec(account));
        let aws = common::inspector(account).await;
        eventually(&format!("lock of {bucket} at 400 days"), || {
            let (s3, bucket) = (aws.s3.clone(), bucket.clone());
            async move {
                let lock = s3.get_object_lock_configuration().bucket(&bucket).send().await.ok();
                lock.and_then(|l| l.object_lock_configuration)
                    .and_then(|c| c.rule)
                    .and_then(|r| r.default_retention)
                    .and_then(|d| d.days)
                    == Some(400)
            }
        })
        .await;
    }

    // Drift made behind the operator's back is repaired within a resync.
    let account = &accounts[0];
    let aws = common::inspector(account).await;
    let trail = desired::trail_arn(&common::spec(account));
    aws.cloudtrail.stop_logging().name(&trail).send().await.unwrap();
    eventually("logging restarted", || async {
        aws.trail_is_logging(&trail).await == Some(true)
    })
    .await;

    // Deleting a baseline with deletionPolicy Retain leaves everything in AWS.
    let name = format!("acct-{account}");
    baselines.delete(&name, &DeleteParams::default()).await.unwrap();
    eventually(&format!("{name} gone"), || {
        let (api, name) = (baselines.clone(), name.clone());
        async move { api.get_opt(&name).await.is_ok_and(|b| b.is_none()) }
    })
    .await;
    let spec = common::spec(account);
    aws.s3
        .head_bucket()
        .bucket(desired::trail_bucket_name(&spec))
        .send()
        .await
        .expect("the trail bucket is retained");
    assert_eq!(
        aws.trail_is_logging(&trail).await,
        Some(true),
        "Retain never stops logging"
    );

    let _ = stop.send(());
    controller.await.unwrap();
}

/// A trail-only baseline of a fresh account in `ns`.
fn trail_only_baseline(ns: &str) -> LoggingBaseline {
    let account = common::new_account();
    let mut b = common::baseline(&account);
    b.spec = common::trail_only(&account);
    b.metadata.namespace = Some(ns.to_string());
    b
}

/// Waits until the controller has picked `name` up (its finalizer is on; its reconcile starts
/// right after).
async fn wait_finalized(api: &Api<LoggingBaseline>, name: &str) {
    eventually(&format!("{name} finalized"), || {
        let (api, name) = (api.clone(), name.to_string());
        async move { api.get(&name).await.is_ok_and(|b| !b.finalizers().is_empty()) }
    })
    .await;
}

async fn wait_ready(api: &Api<LoggingBaseline>, name: &str) {
    eventually(&format!("{name} Ready"), || {
        let (api, name) = (api.clone(), name.to_string());
        async move { api.get(&name).await.is_ok_and(|b| ready(&b)) }
    })
    .await;
}

async fn wait_gone(api: &Api<LoggingBaseline>, name: &str) {
    eventually(&format!("{name} gone"), || {
        let (api, name) = (api.clone(), name.to_string());
        async move { api.get_opt(&name).await.is_ok_and(|b| b.is_none()) }
    })
    .await;
}

#[tokio::test]
async fn deleting_a_baseline_with_the_delete_policy_cleans_up_what_holds_no_logs() {
    let (client, ns) = setup().await;
    let (stop, controller, _) = start_controller(&ns, common::base_config().await).await;
    let baselines: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let account = common::new_account();
    let mut b = common::baseline(&account);
    b.metadata.namespace = Some(ns.clone());
    b.spec.deletion_policy = DeletionPolicy::Delete;
    baselines.create(&PostParams::default(), &b).await.unwrap();
    let name = b.name_any();
    wait_ready(&baselines, &name).await;
    let stored = baselines.get(&name).await.unwrap();
    assert_eq!(
        stored.finalizers(),
        [baselines::FINALIZER],
        "the finalizer guards the cleanup"
    );

    baselines.delete(&name, &DeleteParams::default()).await.unwrap();
    wait_gone(&baselines, &name).await;

    // Read back in AWS: the empty trail bucket is gone, the key is scheduled for deletion, and
    // the trail no longer logs (moto's DeleteTrail by ARN does nothing; AWS deletes the trail).
    let aws = common::inspector(&account).await;
    let spec = common::spec(&account);
    let buckets = aws.bucket_names().await;
    assert!(
        !buckets.contains(&desired::trail_bucket_name(&spec)),
        "the empty trail bucket is deleted: {buckets:?}"
    );
    assert_eq!(aws.trail_key_state().await, "PendingDeletion");
    assert_eq!(aws.trail_is_logging(&desired::trail_arn(&spec)).await, Some(false));

    // The Events name what was deleted and what was kept.
    let reasons = event_reasons(&client, &ns).await;
    assert!(reasons.iter().any(|r| r == "Deleted"), "{reasons:?}");

    let _ = stop.send(());
    controller.await.unwrap();
}

/// Sets the default lock retention of the RetentionPolicy `default`.
async fn set_lock_days(retention: &Api<RetentionPolicy>, days: i32) {
    let patch = json!({"spec": {"trailLogs": {"objectLock": {"defaultRetentionDays": days}}}});
    retention
        .patch("default", &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
}

/// The reasons of the Events in `ns`.
async fn event_reasons(client: &Client, ns: &str) -> Vec<String> {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), ns);
    let listed = events.list(&Default::default()).await.unwrap();
    listed.items.into_iter().filter_map(|e| e.reason).collect()
}

fn condition(b: &LoggingBaseline, type_: &str) -> Option<trailkeeper::api::Condition> {
    b.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_).cloned())
}

/// An AWS endpoint that takes the connection and never answers (here: every request for one
/// account, through a proxy in front of moto). With one reconcile at a time, that baseline must
/// fail with reason Timeout within the bound, and the other baseline must still become Ready.
#[tokio::test]
async fn a_stalled_aws_endpoint_fails_its_reconcile_with_reason_timeout_and_the_others_proceed() {
    let (client, ns) = setup().await;
    let (stalled, healthy) = (common::new_account(), common::new_account());
    let proxy = common::proxy::Proxy::start(Some(stalled.clone())).await;
    let base = proxy.base_config().await;
    let bound = Duration::from_secs(5);
    let settings = Settings {
        concurrency: 1,
        reconcile_timeout: bound,
        ..Settings::default()
    };
    let (stop, controller, _) = start_controller_with(&ns, base, settings).await;
    let baselines: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let create = |account: &String| {
        let mut b = common::baseline(account);
        b.metadata.namespace = Some(ns.clone());
        b
    };
    baselines
        .create(&PostParams::default(), &create(&stalled))
        .await
        .unwrap();
    let name = format!("acct-{stalled}");
    wait_finalized(&baselines, &name).await;
    let started = tokio::time::Instant::now();
    eventually(&format!("{name} Ready=False with reason Timeout"), || {
        let (api, name) = (baselines.clone(), name.clone());
        async move {
            api.get(&name)
                .await
                .is_ok_and(|b| condition(&b, "Ready").is_some_and(|c| c.status == "False" && c.reason == "Timeout"))
        }
    })
    .await;
    // Only the reconcile bound sets reason Timeout (an SDK timeout is AwsUnavailable, after 20 s an
    // attempt and 60 s a call): the reason and the bound in the message prove which fired. The
    // time is checked against the SDK's, with room for a loaded machine.
    let first_timeout = started.elapsed();
    assert!(
        first_timeout < bound + Duration::from_secs(25),
        "the Timeout came {first_timeout:?} after the reconcile began, with a bound of {bound:?}"
    );
    // One reconcile at a time, and the stalled baseline keeps retrying: another still gets through.
    baselines
        .create(&PostParams::default(), &create(&healthy))
        .await
        .unwrap();
    let stored = baselines.get(&name).await.unwrap();
    let message = condition(&stored, "Ready").unwrap().message;
    assert!(message.contains(&stalled) && message.contains("5 s"), "{message}");
    wait_ready(&baselines, &format!("acct-{healthy}")).await;

    let reasons = event_reasons(&client, &ns).await;
    assert!(
        reasons.iter().any(|r| r == "Timeout"),
        "a Warning event with reason Timeout: {reasons:?}"
    );
    let _ = stop.send(());
    controller.await.unwrap();
}

/// Labels and annotations of a policy are not its spec: changing them re-reconciles no baseline
/// (each reconcile re-observes the account in AWS). A spec change of the RetentionPolicy or of the
/// TrailPolicy a baseline names does, at once (the resync is an hour).
#[tokio::test]
async fn a_policy_whose_labels_or_annotations_change_triggers_no_reconcile() {
    let (client, ns) = setup().await;
    let settings = Settings {
        resync: Duration::from_secs(3600),
        ..Settings::default()
    };
    // start_controller_with sets a short resync: this test needs the long one.
    let ctx = Arc::new(Context::new(
        cluster::operator().await,
        common::base_config().await,
        Settings {
            watch_namespace: Some(ns.clone()),
            ..settings
        },
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(trailkeeper::controller::run(ctx.clone(), async move {
        let _ = stopped.await;
    }));
    let retention: Api<RetentionPolicy> = Api::namespaced(client.clone(), &ns);
    let policy = json!({"apiVersion": "trailkeeper.io/v1alpha1", "kind": "RetentionPolicy",
        "metadata": {"name": "default"}, "spec": {}});
    retention
        .create(&PostParams::default(), &serde_json::from_value(policy).unwrap())
        .await
        .unwrap();
    let trail_policies: Api<trailkeeper::api::TrailPolicy> = Api::namespaced(client.clone(), &ns);
    let trail_policy = json!({"apiVersion": "trailkeeper.io/v1alpha1", "kind": "TrailPolicy",
        "metadata": {"name": "strict"}, "spec": {}});
    trail_policies
        .create(&PostParams::default(), &serde_json::from_value(trail_policy).unwrap())
        .await
        .unwrap();
    let baselines: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let account = common::new_account();
    let mut b = common::baseline(&account);
    b.metadata.namespace = Some(ns.clone());
    b.spec.trail.policy_ref = Some(serde_json::from_value(json!({"name": "strict"})).unwrap());
    baselines.create(&PostParams::default(), &b).await.unwrap();
    wait_ready(&baselines, &b.name_any()).await;
    // Reconciles are counted by their one GetCallerIdentity each. Absence is proven by order, not
    // by a quiet window: the label change comes first, then a spec change. A reconcile the label
    // change had triggered would have started before the spec change was even sent, and one
    // object's reconciles never overlap, so it would have ended before the spec change's reconcile
    // wrote what the test waits for. At that moment exactly one reconcile is counted, or two.
    let reconciles = |ctx: &Arc<Context>| {
        ctx.aws
            .total_calls()
            .by_action
            .get("sts:GetCallerIdentity")
            .map_or(0, |(n, _)| *n)
    };
    let before = reconciles(&ctx);

    retention
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "audit"}, "annotations": {"note": "reviewed"}}})),
        )
        .await
        .unwrap();
    // The control: a spec change reconciles the baseline, which applies it.
    set_lock_days(&retention, 400).await;
    eventually("the retention's spec change applied", || {
        let (baselines, name) = (baselines.clone(), b.name_any());
        async move {
            baselines.get(&name).await.is_ok_and(|b| {
                b.status
                    .and_then(|s| s.applied_retention)
                    .is_some_and(|r| r.lock_days == 400)
            })
        }
    })
    .await;
    assert_eq!(
        reconciles(&ctx) - before,
        1,
        "a label or annotation change of the RetentionPolicy reconciled the baseline"
    );

    // The same for the TrailPolicy the baseline names: its labels change nothing, its spec
    // reconciles the baseline (the trail gets the tag), an hour before its resync.
    let before = reconciles(&ctx);
    trail_policies
        .patch(
            "strict",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "audit"}}})),
        )
        .await
        .unwrap();
    trail_policies
        .patch(
            "strict",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"tags": {"reviewed-by": "audit"}}})),
        )
        .await
        .unwrap();
    let cloudtrail = common::inspector(&account).await.cloudtrail;
    let trail = trailkeeper::desired::trail_arn(&b.spec);
    eventually("the TrailPolicy's tag on the trail", || {
        let (cloudtrail, trail) = (cloudtrail.clone(), trail.clone());
        async move {
            let listed = cloudtrail.list_tags().resource_id_list(&trail).send().await;
            listed.is_ok_and(|l| {
                l.resource_tag_list()
                    .iter()
                    .flat_map(|r| r.tags_list())
                    .any(|t| t.key() == "reviewed-by" && t.value() == Some("audit"))
            })
        }
    })
    .await;
    // The tag is written after the account's identity check: this reconcile is counted.
    assert_eq!(
        reconciles(&ctx) - before,
        1,
        "a label change of the TrailPolicy reconciled the baseline"
    );
    let _ = stop.send(());
    controller.await.unwrap();
}

/// Delivery health through the controller: a trail whose last log file is two hours old gets
/// DeliveryHealthy False and a Warning Event naming the part; a fresh delivery clears it with a
/// Normal Event.
#[tokio::test]
async fn a_trail_that_stops_delivering_raises_delivery_healthy_false_and_an_event_and_recovers() {
    let (client, ns) = setup().await;
    let (stop, controller, _) = start_controller(&ns, common::base_config().await).await;
    let baselines: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let account = common::new_account();
    let mut b = common::baseline(&account);
    b.metadata.namespace = Some(ns.clone());
    b.spec.flow_logs.enabled = false;
    b.spec.audit_queries.enabled = false;
    baselines.create(&PostParams::default(), &b).await.unwrap();
    let name = b.name_any();
    wait_ready(&baselines, &name).await;
    let aws = common::inspector(&account).await;
    // Digests stopped too: one arriving would show the trail alive in a quiet account
    // (tests/delivery.rs, a_quiet_account_whose_digests_arrive_is_healthy).
    common::deliver(&aws, &b.spec, "CloudTrail", 120).await;
    common::deliver(&aws, &b.spec, "CloudTrail-Digest", 150).await;
    let delivery_state = |wanted: &'static str| {
        let (api, name) = (baselines.clone(), name.clone());
        move || {
            let (api, name) = (api.clone(), name.clone());
            async move {
                api.get(&name)
                    .await
                    .is_ok_and(|b| condition(&b, "DeliveryHealthy").is_some_and(|c| c.status == wanted))
            }
        }
    };
    eventually("DeliveryHealthy False", delivery_state("False")).await;
    let stored = baselines.get(&name).await.unwrap();
    let c = condition(&stored, "DeliveryHealthy").unwrap();
    assert_eq!(c.reason, "DeliveryFailing");
    assert!(
        c.message.starts_with("cloudtrail: nothing delivered for"),
        "{}",
        c.message
    );
    assert!(ready(&stored), "delivery is an alarm of its own, not Ready");
    eventually("a DeliveryFailing Event", || {
        let (client, ns) = (client.clone(), ns.clone());
        async move { event_reasons(&client, &ns).await.iter().any(|r| r == "DeliveryFailing") }
    })
    .await;

    common::deliver(&aws, &b.spec, "CloudTrail", 1).await;
    common::deliver(&aws, &b.spec, "CloudTrail-Digest", 1).await;
    eventually("DeliveryHealthy True", delivery_state("True")).await;
    eventually("a DeliveryRecovered Event", || {
        let (client, ns) = (client.clone(), ns.clone());
        async move {
            event_reasons(&client, &ns)
                .await
                .iter()
                .any(|r| r == "DeliveryRecovered")
        }
    })
    .await;
    let _ = stop.send(());
    controller.await.unwrap();
}

/// spec.verifyIntegrity: the controller verifies the delivered logs on its schedule and puts the
/// result in status (here a signed chain of 6 hourly digests in the trail bucket, all valid).
#[tokio::test]
async fn with_verify_integrity_the_controller_verifies_the_delivered_logs_into_status() {
    let (client, ns) = setup().await;
    let (stop, controller, _) = start_controller(&ns, common::base_config().await).await;
    let baselines: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let account = common::new_account();
    let mut b = common::baseline(&account);
    b.metadata.namespace = Some(ns.clone());
    b.spec.flow_logs.enabled = false;
    baselines.create(&PostParams::default(), &b).await.unwrap();
    let name = b.name_any();
    wait_ready(&baselines, &name).await;

    let aws = common::inspector(&account).await;
    let now = common::now_secs();
    let bucket = desired::trail_bucket_name(&b.spec);
    let root = format!("{}/AWSLogs/{account}/", b.spec.storage.key_prefix);
    common::chain::write_chain(
        &aws,
        common::chain::ChainSpec {
            bucket: &bucket,
            root: &root,
            account: &account,
            region: common::REGION,
            end: now - now % 3600 - 3600,
            hours: 6,
            files_per_digest: 2,
        },
    )
    .await;
    let patch = json!({"spec": {"verifyIntegrity": {"enabled": true}}});
    baselines
        .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap();
    eventually("status.integrity", || {
        let (api, name) = (baselines.clone(), name.clone());
        async move {
            api.get(&name)
                .await
                .is_ok_and(|b| b.status.and_then(|s| s.integrity).is_some())
        }
    })
    .await;
    let integrity = baselines.get(&name).await.unwrap().status.unwrap().integrity.unwrap();
    assert!(integrity.valid, "{integrity:?}");
    assert_eq!((integrity.digests, integrity.log_files), (6, 12), "{integrity:?}");
    let _ = stop.send(());
    controller.await.unwrap();
}

#[tokio::test]
async fn two_baselines_of_one_account_the_older_keeps_it_the_other_is_in_conflict_and_writes_nothing() {
    let (client, ns) = setup().await;
    let (stop, running, ctx) = start_controller(&ns, common::base_config().await).await;
    let api: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let account = common::new_account();
    let named = |name: &str| {
        let mut b = common::baseline(&account);
        b.spec = common::trail_only(&account);
        b.metadata.name = Some(name.into());
        b.metadata.namespace = Some(ns.clone());
        // Settings that differ: two writers would flap between them.
        b.spec.tags.insert("owner".into(), name.into());
        b
    };
    api.create(&PostParams::default(), &named("keeper")).await.unwrap();
    wait_ready(&api, "keeper").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    api.create(&PostParams::default(), &named("intruder")).await.unwrap();
    eventually("the second baseline in Conflict", || {
        let api = api.clone();
        async move {
            api.get("intruder").await.is_ok_and(|b| {
                condition(&b, "Ready").is_some_and(|c| c.status == "False" && c.reason == "Conflict")
                    && condition(&b, "Stalled").is_some_and(|c| c.status == "True")
            })
        }
    })
    .await;
    let message = condition(&api.get("intruder").await.unwrap(), "Ready").unwrap().message;
    assert!(message.contains(&format!("{ns}/keeper")), "{message}");
    assert!(event_reasons(&client, &ns).await.contains(&"Conflict".to_string()));

    // Three resyncs (5 s each): the keeper stays in line, nobody writes.
    let before = ctx.aws.total_calls();
    tokio::time::sleep(Duration::from_secs(17)).await;
    let after = ctx.aws.total_calls();
    assert_eq!(
        after.writes, before.writes,
        "writes while two baselines claim {account}"
    );
    assert!(after.reads > before.reads, "the keeper is still observed");
    assert!(ready(&api.get("keeper").await.unwrap()));

    // The keeper gone (Retain), the other takes the account over.
    api.delete("keeper", &DeleteParams::default()).await.unwrap();
    wait_gone(&api, "keeper").await;
    wait_ready(&api, "intruder").await;
    let _ = stop.send(());
    running.await.unwrap();
}

#[tokio::test]
async fn an_account_in_line_is_observed_once_per_resync() {
    let (client, ns) = setup().await;
    let (stop, running, ctx) = start_controller(&ns, common::base_config().await).await;
    let api: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let account = common::new_account();
    let mut b = common::baseline(&account);
    b.spec = common::trail_only(&account);
    b.metadata.name = Some("steady".into());
    b.metadata.namespace = Some(ns.clone());
    api.create(&PostParams::default(), &b).await.unwrap();
    wait_ready(&api, "steady").await;
    // The reads of one reconcile in line: the first resync after Ready.
    let start = ctx.aws.total_calls().reads;
    eventually("a resync", || {
        let ctx = ctx.clone();
        async move { ctx.aws.total_calls().reads > start }
    })
    .await;
    // The reconcile's reads all land within a second or so on the emulator.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let one = ctx.aws.total_calls().reads - start;
    assert!(one > 0);
    // Over four resync intervals (5 s, jittered by up to 10%): four reconciles, not eight.
    let start = ctx.aws.total_calls().reads;
    tokio::time::sleep(Duration::from_secs(20)).await;
    let reconciles = (ctx.aws.total_calls().reads - start) as f64 / one as f64;
    println!("{reconciles:.2} reconciles in 4 resync intervals ({one} reads each)");
    assert!(
        (2.5..=4.6).contains(&reconciles),
        "{reconciles:.2} reconciles in 4 resync intervals"
    );
    let _ = stop.send(());
    running.await.unwrap();
}

/// What kstatus (sigs.k8s.io/cli-utils/pkg/kstatus: Flux's health checks, Helm 4's --wait) makes of
/// a baseline as the real API server serves it: `<status> <message>`.
async fn kstatus_of<K>(client: &Client, ns: &str, name: &str) -> (String, String)
where
    K: kube::Resource<DynamicType = ()>,
{
    let resource = kube::api::ApiResource::erase::<K>(&());
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    kstatus(&serde_json::to_value(api.get(name).await.unwrap()).unwrap())
}

fn kstatus(served: &serde_json::Value) -> (String, String) {
    let kstatus = std::env::var("TRAILKEEPER_KSTATUS")
        .expect("scripts/test.sh sets TRAILKEEPER_KSTATUS (scripts/ensure-kstatus.sh builds tools/kstatus)");
    let mut child = std::process::Command::new(&kstatus)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{kstatus}: {e}"));
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(served.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "kstatus failed on {served}");
    let line = String::from_utf8(out.stdout).unwrap();
    let mut words = line.trim_end().splitn(3, ' ');
    assert_eq!(words.next(), served["metadata"]["name"].as_str());
    (
        words.next().unwrap_or_default().to_string(),
        words.next().unwrap_or_default().to_string(),
    )
}

/// kstatus on objects the real API server serves: InProgress before the controller observed a
/// new baseline (the CRD defaults an absent status to observedGeneration 0) and after its spec
/// changed, Current once Ready, Failed when a person must act (AccessDenied: the status the
/// controller writes for it, its Stalled condition carrying the IAM action to grant).
#[tokio::test]
async fn kstatus_reads_a_baseline_in_progress_current_and_failed() {
    let (client, ns) = setup().await;
    let api: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let account = common::new_account();
    let mut baseline = common::baseline(&account);
    baseline.spec = common::trail_only(&account);
    baseline.metadata.namespace = Some(ns.clone());
    let name = baseline.name_any();
    api.create(&PostParams::default(), &baseline).await.unwrap();
    let (status, message) = kstatus_of::<LoggingBaseline>(&client, &ns, &name).await;
    assert_eq!(status, "InProgress", "before any controller saw it: {message}");

    let (stop, running, _) = start_controller(&ns, common::base_config().await).await;
    wait_ready(&api, &name).await;
    assert_eq!(kstatus_of::<LoggingBaseline>(&client, &ns, &name).await.0, "Current");

    // A spec change: InProgress until the controller has observed the new generation (read on the
    // object the API server answered the patch with, before any reconcile of it).
    let resource = kube::api::ApiResource::erase::<LoggingBaseline>(&());
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(client.clone(), &ns, &resource);
    let patch = json!({"spec": {"tags": {"owner": "platform"}}});
    let changed = raw
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let (status, message) = kstatus(&serde_json::to_value(&changed).unwrap());
    assert_eq!(status, "InProgress", "{message}");
    assert!(
        message.contains("generation is 2, but latest observed generation is 1"),
        "{message}"
    );
    eventually("the new generation observed and Ready", || {
        let api = api.clone();
        let name = name.clone();
        async move {
            api.get(&name).await.is_ok_and(|b| {
                ready(&b) && b.status.as_ref().and_then(|s| s.observed_generation) == b.metadata.generation
            })
        }
    })
    .await;
    assert_eq!(kstatus_of::<LoggingBaseline>(&client, &ns, &name).await.0, "Current");
    let _ = stop.send(());
    running.await.unwrap();

    // AccessDenied, written as the controller writes it (the emulator does not enforce IAM).
    let current = api.get(&name).await.unwrap();
    let denied = trailkeeper::controller::status::not_ready(
        current.status.as_ref(),
        current.metadata.generation,
        "2026-12-04T12:00:00Z",
        "AccessDenied",
        "TrailReady not ready: cloudtrail:StartLogging denied on trail trailkeeper: grant cloudtrail:StartLogging",
    );
    let apply = json!({"apiVersion": "trailkeeper.io/v1alpha1", "kind": "LoggingBaseline", "status": denied});
    api.patch_status(&name, &PatchParams::apply("trailkeeper").force(), &Patch::Apply(&apply))
        .await
        .unwrap();
    let (status, message) = kstatus_of::<LoggingBaseline>(&client, &ns, &name).await;
    assert_eq!(status, "Failed", "{message}");
    assert!(message.contains("grant cloudtrail:StartLogging"), "{message}");
}

/// TrailPolicy and RetentionPolicy carry a status written by the controller: observedGeneration
/// (kstatus and Argo CD see a change read), Ready Accepted, and how many baselines use each; a
/// spec change is observed, and a second baseline counted, without AWS being asked twice for it.
#[tokio::test]
async fn policies_report_the_generation_read_and_the_baselines_that_use_them() {
    use trailkeeper::api::{PolicyStatus, TrailPolicy};
    let (client, ns) = setup().await;
    let trail: Api<TrailPolicy> = Api::namespaced(client.clone(), &ns);
    let retention: Api<RetentionPolicy> = Api::namespaced(client.clone(), &ns);
    let policy = |kind: &str, name: &str| json!({"apiVersion": "trailkeeper.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": {}});
    trail
        .create(
            &PostParams::default(),
            &serde_json::from_value(policy("TrailPolicy", "strict")).unwrap(),
        )
        .await
        .unwrap();
    retention
        .create(
            &PostParams::default(),
            &serde_json::from_value(policy("RetentionPolicy", "default")).unwrap(),
        )
        .await
        .unwrap();
    let unobserved = trail.get("strict").await.unwrap().status.unwrap_or_default();
    assert_eq!(
        unobserved.observed_generation,
        Some(0),
        "the CRD's default before any controller"
    );
    let (stop, running, ctx) = start_controller(&ns, common::base_config().await).await;
    let baselines: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let account = common::new_account();
    let mut b = common::baseline(&account);
    b.spec = common::trail_only(&account);
    b.spec.trail.policy_ref = Some(serde_json::from_value(json!({"name": "strict"})).unwrap());
    b.metadata.namespace = Some(ns.clone());
    baselines.create(&PostParams::default(), &b).await.unwrap();
    wait_ready(&baselines, &b.name_any()).await;

    let accepted = |s: &Option<PolicyStatus>, generation: Option<i64>, used: i32| {
        s.as_ref().is_some_and(|s| {
            s.observed_generation == generation
                && s.baselines == Some(used)
                && s.conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True" && c.reason == "Accepted")
                && !s.conditions.iter().any(|c| c.type_ == "Stalled")
        })
    };
    eventually("both policies observed, each used by the baseline", || {
        let (trail, retention) = (trail.clone(), retention.clone());
        async move {
            let (t, r) = (
                trail.get("strict").await.unwrap(),
                retention.get("default").await.unwrap(),
            );
            accepted(&t.status, t.metadata.generation, 1) && accepted(&r.status, r.metadata.generation, 1)
        }
    })
    .await;
    assert_eq!(kstatus_of::<TrailPolicy>(&client, &ns, "strict").await.0, "Current");

    // A spec change: observed (generation 2), still used by one baseline.
    trail
        .patch(
            "strict",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"deliveryAlarmAfterMinutes": 120}})),
        )
        .await
        .unwrap();
    eventually("the new generation of the TrailPolicy observed", || {
        let trail = trail.clone();
        async move {
            let t = trail.get("strict").await.unwrap();
            t.metadata.generation == Some(2) && accepted(&t.status, Some(2), 1)
        }
    })
    .await;

    // Policies come from the watch caches: over two more resyncs (5 s each) of the baseline, the
    // operator never GETs a policy of this namespace (the API server's audit log).
    let reads = ctx.aws.total_calls().reads;
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert!(
        ctx.aws.total_calls().reads > reads,
        "the baseline was reconciled meanwhile"
    );
    let operator = "system:serviceaccount:trailkeeper-operator:operator";
    let gets: Vec<String> = cluster::api_server()
        .audit_events_of(operator)
        .into_iter()
        .filter(|e| e["objectRef"]["namespace"] == ns.as_str() && e["verb"] == "get")
        .filter(|e| {
            matches!(
                e["objectRef"]["resource"].as_str(),
                Some("trailpolicies" | "retentionpolicies")
            )
        })
        .map(|e| e["requestURI"].to_string())
        .collect();
    assert!(
        gets.is_empty(),
        "policies read with a request, not from the caches: {gets:?}"
    );
    let _ = stop.send(());
    running.await.unwrap();
}

/// `--concurrency`: no more baselines than that are reconciled at once. Four baselines with a
/// concurrency of 2, every AWS answer held back 100 ms by a proxy that reads each request's access
/// key (each account's session of its role): two accounts have requests in flight at once, never
/// three.
#[tokio::test]
async fn no_more_baselines_than_the_concurrency_are_reconciled_at_once() {
    let (client, ns) = setup().await;
    let proxy = common::proxy::Proxy::start(None).await;
    proxy.delay_answers(Some(Duration::from_millis(100)));
    let base = proxy.base_config().await;
    let settings = Settings {
        concurrency: 2,
        ..Settings::default()
    };
    let (stop, controller, _) = start_controller_with(&ns, base, settings).await;
    let baselines: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let mut names = Vec::new();
    for i in 0..4 {
        let mut b = trail_only_baseline(&ns);
        b.metadata.name = Some(format!("concurrent-{i}"));
        baselines.create(&PostParams::default(), &b).await.unwrap();
        names.push(b.name_any());
    }
    for name in &names {
        wait_ready(&baselines, name).await;
    }
    assert_eq!(
        proxy.most_sessions_at_once(),
        2,
        "accounts with requests in flight at once"
    );
    let _ = stop.send(());
    controller.await.unwrap();
}

/// A reconcile and the integrity verification it triggers share one bound (README, "Under
/// stress"): every answer held back 300 ms and the digests' listing stalled, the verification is
/// cut off where the reconcile's 20 s bound ends, not a bound later; the status says it was not
/// verified in time.
#[tokio::test]
async fn a_stalled_verification_ends_within_the_reconciles_own_bound() {
    let (client, ns) = setup().await;
    let proxy = common::proxy::Proxy::start(Some("CloudTrail-Digest".into())).await;
    proxy.delay_answers(Some(Duration::from_millis(300)));
    let base = proxy.base_config().await;
    let bound = Duration::from_secs(20);
    let settings = Settings {
        concurrency: 1,
        reconcile_timeout: bound,
        ..Settings::default()
    };
    let (stop, controller, _) = start_controller_with(&ns, base, settings).await;
    let baselines: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let mut b = trail_only_baseline(&ns);
    b.spec.verify_integrity.enabled = true;
    baselines.create(&PostParams::default(), &b).await.unwrap();
    let name = b.name_any();
    wait_finalized(&baselines, &name).await;
    let started = tokio::time::Instant::now();
    eventually("the integrity verification reported", || {
        let (api, name) = (baselines.clone(), name.clone());
        async move {
            api.get(&name)
                .await
                .is_ok_and(|b| b.status.and_then(|s| s.integrity).is_some())
        }
    })
    .await;
    let elapsed = started.elapsed();
    let integrity = baselines.get(&name).await.unwrap().status.unwrap().integrity.unwrap();
    println!("verification cut off {elapsed:?} after the reconcile began (bound {bound:?})");
    assert!(!integrity.valid);
    assert_eq!(
        integrity.problems,
        ["not verified: the verification did not finish in time"]
    );
    // The reconcile itself took seconds of the bound (300 ms an answer): a second bound for the
    // verification would end well past this.
    assert!(elapsed < bound + Duration::from_secs(4), "{elapsed:?}");
    let _ = stop.send(());
    controller.await.unwrap();
}

/// A deletion's cleanup has the reconcile's bound too: with DeleteTrail never answered, the
/// cleanup of a Delete baseline ends within the bound with a Warning Event of reason Timeout, and
/// the baseline keeps its finalizer (nothing is forgotten half done).
#[tokio::test]
async fn a_stalled_cleanup_ends_within_the_bound_and_keeps_the_finalizer() {
    use k8s_openapi::api::events::v1::Event;
    let (client, ns) = setup().await;
    let proxy = common::proxy::Proxy::start(Some("DeleteTrail".into())).await;
    let base = proxy.base_config().await;
    let bound = Duration::from_secs(5);
    let settings = Settings {
        reconcile_timeout: bound,
        ..Settings::default()
    };
    let (stop, controller, _) = start_controller_with(&ns, base, settings).await;
    let baselines: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let mut b = trail_only_baseline(&ns);
    b.spec.deletion_policy = DeletionPolicy::Delete;
    baselines.create(&PostParams::default(), &b).await.unwrap();
    let name = b.name_any();
    wait_ready(&baselines, &name).await;

    baselines.delete(&name, &DeleteParams::default()).await.unwrap();
    let deleted = tokio::time::Instant::now();
    let events: Api<Event> = Api::namespaced(client.clone(), &ns);
    loop {
        let seen = events.list(&Default::default()).await.unwrap().items;
        if seen.iter().any(|e| {
            e.reason.as_deref() == Some("Timeout")
                && e.type_.as_deref() == Some("Warning")
                && e.note.as_deref().is_some_and(|n| n.contains("cleanup"))
        }) {
            break;
        }
        let told: Vec<_> = seen.iter().map(|e| (e.reason.clone(), e.note.clone())).collect();
        assert!(
            deleted.elapsed() < Duration::from_secs(60),
            "no Timeout Event of the cleanup: {told:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let elapsed = deleted.elapsed();
    println!("cleanup cut off {elapsed:?} after the delete (bound {bound:?})");
    assert!(elapsed < bound + Duration::from_secs(4), "{elapsed:?}");
    let kept = baselines.get(&name).await.expect("the baseline waits for its cleanup");
    assert!(
        kept.finalizers().iter().any(|f| f == baselines::FINALIZER),
        "{:?}",
        kept.finalizers()
    );
    let _ = stop.send(());
    controller.await.unwrap();
}
