//! Event-driven drift repair (issue 17), on a real Kubernetes API server with AWS on moto.
//!
//! The tampering call is made against the emulator, which records it as CloudTrail would and puts
//! its "AWS API Call via CloudTrail" event on the account's default bus
//! (scripts/emulator/trailkeeper_events.py); from there the event travels through trailkeeper's
//! forwarding rule, the central bus and its rule into the SQS queue, each hop checked as AWS
//! checks it (role, bus policy, queue policy). Nothing is put on the queue by the test except the
//! malformed and foreign messages the loop must survive.

mod common;

use std::time::{Duration, Instant};

use common::cluster;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use trailkeeper::api::{DeletionPolicy, LoggingBaseline};
use trailkeeper::controller::baselines::Settings;
use trailkeeper::desired::events::{FORWARD_ROLE, FORWARD_RULE, FORWARD_TARGET_ID};
use trailkeeper::drift_events::queue::EventSettings;

const TIMEOUT: Duration = Duration::from_secs(180);
/// moto's default account: the identity of the base configuration (the operator's own).
const OPERATOR_ACCOUNT: &str = "123456789012";

/// A queue of a fresh name in the operator's account, and the events settings naming it with a
/// bus of a fresh name (tests share the emulator).
async fn events_settings(tag: &str) -> EventSettings {
    let operator = common::inspector(OPERATOR_ACCOUNT).await;
    let name = format!("tk-events-{tag}-{}", std::process::id());
    let queue = operator.sqs.create_queue().queue_name(&name).send().await.unwrap();
    EventSettings {
        queue_url: queue.queue_url().unwrap().to_string(),
        bus_name: format!("tk-bus-{tag}-{}", std::process::id()),
        organization_id: None,
    }
}

async fn start(ns: &str, base: aws_types::SdkConfig, events: &EventSettings) -> cluster::Running {
    let settings = Settings {
        // The resync with events on: a repair within seconds can only come from the event.
        resync: Duration::from_secs(3600),
        retry_base: Duration::from_secs(1),
        watch_namespace: Some(ns.to_string()),
        events: Some(events.clone()),
        ..Settings::default()
    };
    cluster::start_controller(base, settings).await
}

fn condition(b: &LoggingBaseline, type_: &str) -> Option<String> {
    b.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

fn baseline(ns: &str, name: &str, account: &str, deletion: DeletionPolicy) -> LoggingBaseline {
    let mut b = common::baseline(account);
    b.spec = common::trail_only(account);
    b.spec.deletion_policy = deletion;
    b.metadata.name = Some(name.into());
    b.metadata.namespace = Some(ns.into());
    b
}

async fn wait_events_ready(api: &Api<LoggingBaseline>, name: &str) {
    cluster::eventually(&format!("{name} Ready with DriftEventsReady"), TIMEOUT, || async {
        api.get(name).await.is_ok_and(|b| {
            condition(&b, "Ready").as_deref() == Some("True")
                && condition(&b, "DriftEventsReady").as_deref() == Some("True")
        })
    })
    .await;
}

async fn forwarding_rule(
    account: &str,
) -> Option<aws_sdk_eventbridge::operation::list_targets_by_rule::ListTargetsByRuleOutput> {
    let aws = common::inspector(account).await;
    aws.events.describe_rule().name(FORWARD_RULE).send().await.ok()?;
    aws.events.list_targets_by_rule().rule(FORWARD_RULE).send().await.ok()
}

#[tokio::test]
async fn stop_logging_is_repaired_within_seconds_through_the_event_with_a_resync_of_an_hour() {
    let client = cluster::admin().await;
    cluster::install_crds(&client).await;
    let ns = cluster::fresh_namespace(&client, "events").await;
    let events = events_settings("repair").await;
    let base = common::base_config().await;
    let (stop, running, ctx) = start(&ns, base.clone(), &events).await;
    let account = common::new_account();
    let api: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let b = baseline(&ns, "tampered", &account, DeletionPolicy::Retain);
    api.create(&PostParams::default(), &b).await.unwrap();
    wait_events_ready(&api, "tampered").await;

    // The wiring: the account's rule targets the central bus as the forwarding role.
    let targets = forwarding_rule(&account).await.expect("the forwarding rule exists");
    let target = &targets.targets()[0];
    assert_eq!(target.id(), FORWARD_TARGET_ID);
    assert!(
        target
            .arn()
            .ends_with(&format!(":{OPERATOR_ACCOUNT}:event-bus/{}", events.bus_name)),
        "{target:?}"
    );
    assert_eq!(
        target.role_arn(),
        Some(format!("arn:aws:iam::{account}:role/{FORWARD_ROLE}").as_str())
    );

    // A message that is not an event, and an event of an account nobody manages: dropped, the
    // loop goes on.
    let operator = common::inspector(OPERATOR_ACCOUNT).await;
    for body in [
        "not json".to_string(),
        serde_json::json!({"id": "x", "detail-type": "AWS API Call via CloudTrail", "account": "999999999999",
            "detail": {"eventName": "StopLogging", "recipientAccountId": "999999999999"}})
        .to_string(),
    ] {
        operator
            .sqs
            .send_message()
            .queue_url(&events.queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    let aws = common::inspector(&account).await;
    let trail = trailkeeper::desired::trail_arn(&b.spec);
    let mut repairs = Vec::new();
    for _ in 0..3 {
        // Let the previous repair's own events pass.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let tampered = Instant::now();
        aws.cloudtrail.stop_logging().name(&trail).send().await.unwrap();
        let deadline = tampered + Duration::from_secs(30);
        while aws.trail_is_logging(&trail).await != Some(true) {
            assert!(Instant::now() < deadline, "StopLogging not repaired within 30 s");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        repairs.push(tampered.elapsed());
    }
    println!("StopLogging repaired after {repairs:?} (resync 1 h)");
    assert!(repairs.iter().all(|r| *r < Duration::from_secs(10)), "{repairs:?}");
    let metrics = trailkeeper::runtime::metrics::render();
    for outcome in ["reconcile", "malformed", "unknown_account", "own_write"] {
        assert!(
            metrics.contains(&format!("trailkeeper_drift_events_total{{outcome=\"{outcome}\"}}")),
            "{outcome} not counted:\n{metrics}"
        );
    }

    // In sync: a fresh controller observes the account and the central wiring and writes nothing.
    let _ = stop.send(());
    running.await.expect("the controller ends without a panic");
    drop(ctx);
    let (stop, running, ctx) = start(&ns, base.clone(), &events).await;
    cluster::eventually("a reconcile of the fresh controller", TIMEOUT, || async {
        ctx.aws.total_calls().reads > 10
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        ctx.aws.total_calls().writes,
        0,
        "writes in sync: {:?}",
        ctx.aws.total_calls()
    );
    let central = trailkeeper::aws::AccountClients::new(&base, common::REGION, None, Default::default());
    let (_, writes) = trailkeeper::engine::forwarding::ensure_central(
        &central,
        &trailkeeper::drift_events::queue::queue_client(&base, &trailkeeper::fence::WriteGate::open()),
        &events.queue_url,
        &events.bus_name,
        None,
    )
    .await
    .unwrap();
    assert!(writes.is_empty(), "central writes in sync: {writes:?}");
    let _ = stop.send(());
    running.await.expect("the controller ends without a panic");
}

#[tokio::test]
async fn the_forwarding_is_removed_by_deletion_policy_delete_only() {
    let client = cluster::admin().await;
    cluster::install_crds(&client).await;
    let ns = cluster::fresh_namespace(&client, "events-delete").await;
    let events = events_settings("delete").await;
    let (stop, running, _ctx) = start(&ns, common::base_config().await, &events).await;
    let api: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let (kept, removed) = (common::new_account(), common::new_account());
    for (name, account, policy) in [
        ("kept", &kept, DeletionPolicy::Retain),
        ("removed", &removed, DeletionPolicy::Delete),
    ] {
        api.create(&PostParams::default(), &baseline(&ns, name, account, policy))
            .await
            .unwrap();
    }
    wait_events_ready(&api, "kept").await;
    wait_events_ready(&api, "removed").await;
    for name in ["kept", "removed"] {
        api.delete(name, &DeleteParams::default()).await.unwrap();
    }
    cluster::eventually("both baselines gone", TIMEOUT, || async {
        api.list(&Default::default())
            .await
            .is_ok_and(|l| l.items.iter().all(|b| b.finalizers().is_empty()) && l.items.is_empty())
    })
    .await;
    assert!(forwarding_rule(&kept).await.is_some(), "Retain keeps the rule");
    assert!(forwarding_rule(&removed).await.is_none(), "Delete removes the rule");
    let role = |account: String| async move {
        common::inspector(&account)
            .await
            .iam
            .get_role()
            .role_name(FORWARD_ROLE)
            .send()
            .await
            .is_ok()
    };
    assert!(role(kept.clone()).await, "Retain keeps the role");
    assert!(!role(removed.clone()).await, "Delete removes the role");
    let _ = stop.send(());
    running.await.expect("the controller ends without a panic");
}
