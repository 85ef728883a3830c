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
use kube::runtime::reflector::ObjectRef;
use trailkeeper::api::{DeletionPolicy, LoggingBaseline};
use trailkeeper::controller::baselines::Settings;
use trailkeeper::desired::events::{Admitted, FORWARD_ROLE, FORWARD_ROLE_POLICY, FORWARD_RULE, FORWARD_TARGET_ID};
use trailkeeper::drift_events::queue::{EventSettings, route_messages};
use trailkeeper::drift_events::router::{Routed, Router, Target, parse};

const TIMEOUT: Duration = Duration::from_secs(180);
/// moto's default account: the identity of the base configuration (the operator's own).
const OPERATOR_ACCOUNT: &str = "123456789012";

/// A queue of a fresh name in the operator's account, and the events settings naming it with a
/// bus of a fresh name (tests share the emulator).
async fn events_settings(tag: &str) -> EventSettings {
    let operator = common::inspector(OPERATOR_ACCOUNT).await;
    let name = format!("tk-events-{tag}-{}", std::process::id());
    EventSettings {
        queue_url: operator.new_queue(&name).await,
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

/// A repair's bound: far under the resync of an hour, so that only the event can have triggered
/// it, and generous for a loaded machine (the repairs measured take about half a second).
const REPAIRED_WITHIN: Duration = Duration::from_secs(60);

/// The status of `name`'s last reconcile (when it ended, its calls, how long it took): it changes
/// with each reconcile that writes status.
async fn last_reconcile(api: &Api<LoggingBaseline>, name: &str) -> Option<trailkeeper::api::LastReconcile> {
    api.get(name).await.ok()?.status?.last_reconcile
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
    forwarding_role_is_as_documented(&account, &events).await;

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
        let before = last_reconcile(&api, "tampered").await;
        let tampered = Instant::now();
        aws.cloudtrail.stop_logging().name(&trail).send().await.unwrap();
        let deadline = tampered + REPAIRED_WITHIN;
        while aws.trail_is_logging(&trail).await != Some(true) {
            assert!(
                Instant::now() < deadline,
                "StopLogging not repaired within {REPAIRED_WITHIN:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        repairs.push(tampered.elapsed());
        // The repair's reconcile has ended (its status written) before the next tamper.
        cluster::eventually("the repair's status", TIMEOUT, || async {
            last_reconcile(&api, "tampered").await != before
        })
        .await;
    }
    println!("StopLogging repaired after {repairs:?} (resync 1 h)");
    repair_is_told_by_an_event_and_status_is_applied_by_trailkeeper(&client, &ns, "tampered").await;
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
    let before = last_reconcile(&api, "tampered").await;
    let (stop, running, ctx) = start(&ns, base.clone(), &events).await;
    cluster::eventually("a whole reconcile of the fresh controller", TIMEOUT, || async {
        last_reconcile(&api, "tampered").await != before
    })
    .await;
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
        &Admitted::Accounts([account.clone()].into()),
    )
    .await
    .unwrap();
    assert!(writes.is_empty(), "central writes in sync: {writes:?}");
    let _ = stop.send(());
    running.await.expect("the controller ends without a panic");
}

/// `--events-organization-id` end to end: the controller given an Organization's id admits its
/// accounts by `aws:PrincipalOrgID` (no account listed in the bus policy), a member's tamper is
/// repaired through the event, and a role of the forwarding role's name outside the Organization
/// is refused, as EventBridge evaluates the policy.
#[tokio::test]
async fn with_an_organization_id_the_bus_admits_its_accounts_and_refuses_the_others() {
    let client = cluster::admin().await;
    cluster::install_crds(&client).await;
    let ns = cluster::fresh_namespace(&client, "events-org").await;
    let management = common::inspector(&common::new_account()).await;
    let organization = common::create_organization(&management).await;
    let member = common::create_member_account(&management, &format!("member-{}", std::process::id())).await;
    let mut events = events_settings("org").await;
    events.organization_id = Some(organization.clone());
    let base = common::base_config().await;
    let (stop, running, _ctx) = start(&ns, base.clone(), &events).await;
    let api: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    api.create(
        &PostParams::default(),
        &baseline(&ns, "member", &member, DeletionPolicy::Retain),
    )
    .await
    .unwrap();
    wait_events_ready(&api, "member").await;

    let operator = common::inspector(OPERATOR_ACCOUNT).await;
    let bus = operator
        .events
        .describe_event_bus()
        .name(&events.bus_name)
        .send()
        .await
        .unwrap();
    let policy: serde_json::Value = serde_json::from_str(bus.policy().expect("the bus has a policy")).unwrap();
    let text = policy.to_string();
    assert!(
        text.contains(&format!("\"aws:PrincipalOrgID\":\"{organization}\"")),
        "{text}"
    );
    assert!(
        !text.contains(&member),
        "the member is admitted by its Organization, not by name: {text}"
    );

    let foreign = common::new_account();
    let bus_arn = bus.arn().unwrap().to_string();
    let intruder = role_that_puts_events(&foreign, FORWARD_ROLE, &bus_arn).await;
    let refused = put_forged(&intruder, &bus_arn, "trailkeeper.forged", &member).await;
    assert_eq!(refused.entries()[0].error_code(), Some("AccessDeniedException"));

    let aws = common::inspector(&member).await;
    let trail = format!("arn:aws:cloudtrail:{}:{member}:trail/trailkeeper", common::REGION);
    let tampered = Instant::now();
    aws.cloudtrail.stop_logging().name(&trail).send().await.unwrap();
    while aws.trail_is_logging(&trail).await != Some(true) {
        assert!(
            tampered.elapsed() < REPAIRED_WITHIN,
            "StopLogging not repaired within {REPAIRED_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(());
    running.await.expect("the controller ends without a panic");
}

/// What a person sees of a repair (README, "Running the operator"): an Event `DriftRepaired` on
/// the baseline naming the change (the trail's restart); and the status is server-side applied by the field manager
/// `trailkeeper`, on the status subresource.
async fn repair_is_told_by_an_event_and_status_is_applied_by_trailkeeper(client: &kube::Client, ns: &str, name: &str) {
    use k8s_openapi::api::events::v1::Event;
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let repaired = |e: &Event| {
        e.reason.as_deref() == Some("DriftRepaired")
            && e.type_.as_deref() == Some("Normal")
            && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
            && e.note
                .as_deref()
                .is_some_and(|n| n.ends_with(":trail/trailkeeper: start logging"))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = events.list(&Default::default()).await.unwrap().items;
        if seen.iter().any(repaired) {
            break;
        }
        let told: Vec<_> = seen.iter().map(|e| (e.reason.clone(), e.note.clone())).collect();
        assert!(
            Instant::now() < deadline,
            "no DriftRepaired Event naming the restart: {told:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let api: Api<LoggingBaseline> = Api::namespaced(client.clone(), ns);
    let managed = api.get(name).await.unwrap().metadata.managed_fields.unwrap_or_default();
    let status_manager = managed
        .iter()
        .find(|m| m.subresource.as_deref() == Some("status"))
        .expect("the status has a field manager");
    assert_eq!(status_manager.manager.as_deref(), Some("trailkeeper"), "{managed:?}");
    assert_eq!(
        status_manager.operation.as_deref(),
        Some("Apply"),
        "server-side apply: {managed:?}"
    );
}

/// The forwarding role read back from IAM: trusted by EventBridge for rules of its own account
/// only, allowed `events:PutEvents` on the central bus only, bounded by the documented managed
/// policy (README, "Drift repaired on its event").
async fn forwarding_role_is_as_documented(account: &str, events: &EventSettings) {
    let iam = common::inspector(account).await.iam;
    let role = iam.get_role().role_name(FORWARD_ROLE).send().await.unwrap();
    let role = role.role().expect("the forwarding role exists");
    let trust: serde_json::Value = serde_json::from_str(&common::urlencoding_decode(
        role.assume_role_policy_document().expect("a trust policy"),
    ))
    .unwrap();
    assert_eq!(
        trust["Statement"],
        serde_json::json!([{
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}},
        }]),
        "the forwarding role's trust"
    );
    assert_eq!(
        role.permissions_boundary().and_then(|b| b.permissions_boundary_arn()),
        Some("arn:aws:iam::aws:policy/AmazonEventBridgeFullAccess"),
        "the forwarding role's boundary"
    );
    let names = iam.list_role_policies().role_name(FORWARD_ROLE).send().await.unwrap();
    assert_eq!(names.policy_names(), [FORWARD_ROLE_POLICY], "one inline policy");
    let policy = iam
        .get_role_policy()
        .role_name(FORWARD_ROLE)
        .policy_name(FORWARD_ROLE_POLICY)
        .send()
        .await
        .unwrap();
    let policy: serde_json::Value =
        serde_json::from_str(&common::urlencoding_decode(policy.policy_document())).unwrap();
    assert_eq!(
        policy["Statement"],
        serde_json::json!([{
            "Sid": "PutTamperEventsOnTheCentralBus",
            "Effect": "Allow",
            "Action": "events:PutEvents",
            "Resource": format!("arn:aws:events:{}:{OPERATOR_ACCOUNT}:event-bus/{}", common::REGION, events.bus_name),
        }]),
        "the forwarding role's policy"
    );
    // No managed policy widens it.
    let attached = iam
        .list_attached_role_policies()
        .role_name(FORWARD_ROLE)
        .send()
        .await
        .unwrap();
    assert!(attached.attached_policies().is_empty(), "{attached:?}");
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
        let mut b = baseline(&ns, name, account, policy);
        b.spec.verify_integrity.enabled = true;
        api.create(&PostParams::default(), &b).await.unwrap();
    }
    wait_events_ready(&api, "kept").await;
    wait_events_ready(&api, "removed").await;
    // Their integrity verified (no digest yet: invalid), so their accounts have series.
    cluster::eventually("both accounts' integrity exported", TIMEOUT, || async {
        let text = trailkeeper::runtime::metrics::render();
        [&kept, &removed]
            .iter()
            .all(|a| text.contains(&format!("trailkeeper_integrity_valid{{account=\"{a}\"}}")))
    })
    .await;
    let series = |account: &str| {
        trailkeeper::runtime::metrics::render()
            .lines()
            .filter(|l| l.contains(&format!("account=\"{account}\"")))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert!(!series(&kept).is_empty(), "the account's series are exported");
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
    // A deleted baseline's account has no series left, whatever its deletion policy.
    for account in [&kept, &removed] {
        assert_eq!(
            series(account),
            Vec::<String>::new(),
            "series of {account} outlive its baseline"
        );
    }
    let _ = stop.send(());
    running.await.expect("the controller ends without a panic");
}

/// The central side for `admitted`, set up as the operator does (its own identity).
async fn central(events: &EventSettings, admitted: &Admitted) -> trailkeeper::desired::events::Forwarding {
    let base = common::base_config().await;
    let clients = trailkeeper::aws::AccountClients::new(&base, common::REGION, None, Default::default());
    let sqs = trailkeeper::drift_events::queue::queue_client(&base, &trailkeeper::fence::WriteGate::open());
    let (forwarding, _) =
        trailkeeper::engine::forwarding::ensure_central(&clients, &sqs, &events.queue_url, &events.bus_name, admitted)
            .await
            .unwrap();
    forwarding
}

/// What reaches the queue within `wait`, routed as the operator routes it (and deleted).
async fn drain_routed(events: &EventSettings, known: &[Target], wait: Duration) -> Vec<(String, Routed)> {
    let base = common::base_config().await;
    let sqs = trailkeeper::drift_events::queue::queue_client(&base, &trailkeeper::fence::WriteGate::open());
    let mut router = Router::default();
    let mut seen = Vec::new();
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        let messages = trailkeeper::aws::sqs::receive(&sqs, &events.queue_url, 1)
            .await
            .unwrap();
        let receipts: Vec<String> = messages.iter().map(|m| m.receipt.clone()).collect();
        for m in messages {
            let event = parse(&m.body).unwrap_or_else(|e| panic!("{e}: {}", m.body));
            let routed = router.route(&event, known);
            seen.push((event.name, routed));
        }
        if !receipts.is_empty() {
            trailkeeper::aws::sqs::delete(&sqs, &events.queue_url, &receipts)
                .await
                .unwrap();
        }
    }
    seen
}

/// A role of `name` in `account` that EventBridge callers of that account can assume, allowed to
/// put events on `bus_arn`; returns the clients of a session of it.
async fn role_that_puts_events(account: &str, name: &str, bus_arn: &str) -> aws_sdk_eventbridge::Client {
    let aws = common::inspector(account).await;
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{}:root", OPERATOR_ACCOUNT)}, "Action": "sts:AssumeRole"}]});
    aws.iam
        .create_role()
        .role_name(name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .unwrap();
    let allow = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": "events:PutEvents", "Resource": bus_arn}]});
    aws.iam
        .put_role_policy()
        .role_name(name)
        .policy_name("put")
        .policy_document(allow.to_string())
        .send()
        .await
        .unwrap();
    // A plain client of a session of the role, not trailkeeper's AccountClients: the call log
    // (TRAILKEEPER_CALL_LOG) feeds the IAM policy test, and a forger's PutEvents is not
    // trailkeeper's to grant.
    let base = common::base_config().await;
    let session = aws_sdk_sts::Client::new(&base)
        .assume_role()
        .role_arn(format!("arn:aws:iam::{account}:role/{name}"))
        .role_session_name("forger")
        .send()
        .await
        .unwrap()
        .credentials
        .unwrap();
    let credentials = aws_credential_types::Credentials::new(
        session.access_key_id,
        session.secret_access_key,
        Some(session.session_token),
        None,
        "forger",
    );
    aws_sdk_eventbridge::Client::from_conf(
        aws_sdk_eventbridge::config::Builder::from(&base)
            .region(aws_types::region::Region::new(common::REGION))
            .credentials_provider(credentials)
            .build(),
    )
}

/// A forged "AWS API Call via CloudTrail" event naming `victim`, put on `bus_arn` as `clients`.
async fn put_forged(
    clients: &aws_sdk_eventbridge::Client,
    bus_arn: &str,
    source: &str,
    victim: &str,
) -> aws_sdk_eventbridge::operation::put_events::PutEventsOutput {
    let detail = serde_json::json!({"eventName": "StopLogging", "recipientAccountId": victim,
        "eventSource": "cloudtrail.amazonaws.com"});
    clients
        .put_events()
        .entries(
            aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
                .event_bus_name(bus_arn)
                .source(source)
                .detail_type("AWS API Call via CloudTrail")
                .detail(detail.to_string())
                .build(),
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_foreign_account_cannot_feed_the_tamper_channel() {
    let events = events_settings("foreign").await;
    let (managed, foreign) = (common::new_account(), common::new_account());
    let forwarding = central(&events, &Admitted::Accounts([managed.clone()].into())).await;

    // Anyone can create a role named trailkeeper-events in their own account: the bus's policy
    // admits the managed accounts' only, as EventBridge evaluates it.
    let intruder = role_that_puts_events(&foreign, FORWARD_ROLE, &forwarding.bus_arn).await;
    let refused = put_forged(&intruder, &forwarding.bus_arn, "trailkeeper.forged", &managed).await;
    assert_eq!(refused.failed_entry_count(), 1, "{refused:?}");
    assert_eq!(refused.entries()[0].error_code(), Some("AccessDeniedException"));
    // Nobody may put an event of an AWS service's source.
    let as_aws = put_forged(&intruder, &forwarding.bus_arn, "aws.cloudtrail", &managed).await;
    assert_eq!(
        as_aws.entries()[0].error_code(),
        Some("NotAuthorizedForSourceException")
    );

    // A managed account's own role is admitted to the bus, yet what it puts itself never reaches
    // the queue: the central rule takes only the aws. sources that CloudTrail's events carry.
    let insider = role_that_puts_events(&managed, FORWARD_ROLE, &forwarding.bus_arn).await;
    let admitted = put_forged(&insider, &forwarding.bus_arn, "trailkeeper.forged", &managed).await;
    assert_eq!(admitted.failed_entry_count(), 0, "{admitted:?}");
    let known = [Target {
        baseline: ObjectRef::new("managed").within("ns"),
        account: managed.clone(),
        role_arn: None,
        // Every region kept: each event reconciles (as before the account-wide sweep).
        kept: None,
        forwarded: Vec::new(),
    }];
    let reached = drain_routed(&events, &known, Duration::from_secs(3)).await;
    assert!(reached.is_empty(), "forged events reached the queue: {reached:?}");

    // The bus follows the accounts: the managed one gone, its statement goes too.
    let base = common::base_config().await;
    let clients = trailkeeper::aws::AccountClients::new(&base, common::REGION, None, Default::default());
    let sqs = trailkeeper::drift_events::queue::queue_client(&base, &trailkeeper::fence::WriteGate::open());
    let (_, writes) = trailkeeper::engine::forwarding::ensure_central(
        &clients,
        &sqs,
        &events.queue_url,
        &events.bus_name,
        &Admitted::Accounts(Default::default()),
    )
    .await
    .unwrap();
    assert_eq!(writes, [format!("RemovePermission {}", events.bus_name)]);
    let shut = put_forged(&insider, &forwarding.bus_arn, "trailkeeper.forged", &managed).await;
    assert_eq!(shut.entries()[0].error_code(), Some("AccessDeniedException"));
}

#[tokio::test]
async fn every_tampering_call_on_trailkeepers_roles_and_recorder_reaches_the_router() {
    use trailkeeper::engine::account::{ReconcileOptions, RunMode, account_clients, reconcile_account};
    let events = events_settings("calls").await;
    let account = common::new_account();
    let forwarding = central(&events, &Admitted::Accounts([account.clone()].into())).await;
    // The account's forwarding, as a reconcile with events on sets it up (primary eu-west-1:
    // IAM's events arrive in us-east-1 only, where a rule must forward them too).
    let mut spec = common::trail_only(&account);
    spec.primary_region = "eu-west-1".into();
    spec.compliance_regions = vec!["eu-west-1".into()];
    let (trail_policy, retention) = common::default_policies();
    let specs = trailkeeper::desired::AccountSpecs {
        baseline: &spec,
        trail_policy: &trail_policy,
        retention: &retention,
    };
    let options = ReconcileOptions {
        forwarding: Some(forwarding),
        ..ReconcileOptions::new(RunMode::Apply)
    };
    let base = common::base_config().await;
    let report = reconcile_account(account_clients(&base, &specs), &specs, options).await;
    assert!(!report.failed(), "{:?} {:?}", report.error, report.components);
    for region in ["eu-west-1", "us-east-1"] {
        let aws = common::inspector_in(&account, region).await;
        let rule = aws.events.describe_rule().name(FORWARD_RULE).send().await;
        assert!(rule.is_ok(), "no forwarding rule in {region}: {rule:?}");
    }
    let known = [Target {
        baseline: ObjectRef::new("calls").within("ns"),
        account: account.clone(),
        role_arn: Some(format!("arn:aws:iam::{account}:role/trailkeeper")),
        // Every region kept: each event reconciles (as before the account-wide sweep).
        kept: None,
        forwarded: Vec::new(),
    }];
    drain_routed(&events, &known, Duration::from_secs(2)).await;

    let iam = common::inspector(&account).await.iam;
    // The emulator loads no AWS managed policy: a customer managed one of the account.
    let allow_all = serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
    let created = iam
        .create_policy()
        .policy_name("tampering")
        .policy_document(allow_all.to_string())
        .send()
        .await
        .unwrap();
    let managed_policy = created.policy().unwrap().arn().unwrap();
    iam.attach_role_policy()
        .role_name(FORWARD_ROLE)
        .policy_arn(managed_policy)
        .send()
        .await
        .unwrap();
    iam.detach_role_policy()
        .role_name(FORWARD_ROLE)
        .policy_arn(managed_policy)
        .send()
        .await
        .unwrap();
    iam.delete_role_permissions_boundary()
        .role_name(FORWARD_ROLE)
        .send()
        .await
        .unwrap();
    iam.put_role_permissions_boundary()
        .role_name(FORWARD_ROLE)
        .permissions_boundary(managed_policy)
        .send()
        .await
        .unwrap();
    let config = common::inspector_in(&account, "eu-west-1").await.config;
    config
        .put_configuration_recorder()
        .configuration_recorder(
            aws_sdk_config::types::ConfigurationRecorder::builder()
                .name("default")
                .role_arn(format!("arn:aws:iam::{account}:role/config"))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let expected = [
        "AttachRolePolicy",
        "DetachRolePolicy",
        "DeleteRolePermissionsBoundary",
        "PutRolePermissionsBoundary",
        "PutConfigurationRecorder",
    ];
    let reached = drain_routed(&events, &known, Duration::from_secs(5)).await;
    for name in expected {
        assert!(
            reached
                .iter()
                .any(|(n, routed)| n == name && matches!(routed, Routed::Reconcile(_))),
            "{name} did not reach the router as a reconcile: {reached:?}"
        );
    }
}

#[tokio::test]
async fn a_message_whose_route_failed_stays_and_is_routed_once_the_controller_is_back() {
    let events = events_settings("loss").await;
    let base = common::base_config().await;
    let sqs = trailkeeper::drift_events::queue::queue_client(&base, &trailkeeper::fence::WriteGate::open());
    // A short visibility timeout, so the message comes back within the test (the SDK client: no
    // adapter sets it).
    aws_sdk_sqs::Client::new(&base)
        .set_queue_attributes()
        .queue_url(&events.queue_url)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout, "2")
        .send()
        .await
        .unwrap();
    let account = common::new_account();
    let body = serde_json::json!({"id": "loss-1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.cloudtrail",
        "account": account, "detail": {"eventName": "StopLogging"}});
    let operator = common::inspector(OPERATOR_ACCOUNT).await;
    operator
        .sqs
        .send_message()
        .queue_url(&events.queue_url)
        .message_body(body.to_string())
        .send()
        .await
        .unwrap();
    let known = [Target {
        baseline: ObjectRef::new("loss").within("ns"),
        account: account.clone(),
        role_arn: None,
        // Every region kept: each event reconciles (as before the account-wide sweep).
        kept: None,
        forwarded: Vec::new(),
    }];
    let receive_and_route = |reconcile: futures::channel::mpsc::Sender<ObjectRef<LoggingBaseline>>| {
        let (sqs, url, known) = (sqs.clone(), events.queue_url.clone(), known.clone());
        async move {
            let mut reconcile = reconcile;
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let messages = trailkeeper::aws::sqs::receive(&sqs, &url, 1).await.unwrap();
                if !messages.is_empty() {
                    let (mut sweep, _swept) = futures::channel::mpsc::channel(4);
                    let owns_all = |_: &str| true;
                    let handled = route_messages(
                        messages,
                        &mut Router::default(),
                        &known,
                        &owns_all,
                        &mut reconcile,
                        &mut sweep,
                    )
                    .await;
                    let done = handled.done;
                    if !done.is_empty() {
                        trailkeeper::aws::sqs::delete(&sqs, &url, &done).await.unwrap();
                    }
                    return done.len();
                }
                assert!(Instant::now() < deadline, "the message did not come (back)");
            }
        }
    };
    // The controller is gone (its receiver dropped): the message is not deleted.
    let (closed, receiver) = futures::channel::mpsc::channel(4);
    drop(receiver);
    assert_eq!(receive_and_route(closed).await, 0);
    // Back: after its visibility timeout the message is routed to it, then deleted.
    let (open, mut receiver) = futures::channel::mpsc::channel(4);
    assert_eq!(receive_and_route(open).await, 1);
    assert_eq!(receiver.try_recv().ok(), Some(ObjectRef::new("loss").within("ns")));
    let left = trailkeeper::aws::sqs::receive(&sqs, &events.queue_url, 3)
        .await
        .unwrap();
    assert!(left.is_empty(), "the routed message was not deleted: {left:?}");
}

#[tokio::test]
async fn an_iam_tamper_delivered_in_us_east_1_is_repaired_for_a_primary_of_eu_west_1() {
    let client = cluster::admin().await;
    cluster::install_crds(&client).await;
    let ns = cluster::fresh_namespace(&client, "events-iam").await;
    let events = events_settings("iam").await;
    let (stop, running, _ctx) = start(&ns, common::base_config().await, &events).await;
    let account = common::new_account();
    let api: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let mut b = baseline(&ns, "flow-logs", &account, DeletionPolicy::Retain);
    b.spec.primary_region = "eu-west-1".into();
    b.spec.compliance_regions = vec!["eu-west-1".into()];
    b.spec.regions = vec!["eu-west-1".into()];
    b.spec.flow_logs.enabled = true;
    api.create(&PostParams::default(), &b).await.unwrap();
    wait_events_ready(&api, "flow-logs").await;

    // IAM is global: its events arrive on the account's bus in us-east-1 only.
    let iam = common::inspector(&account).await.iam;
    let role = trailkeeper::desired::regional::FLOW_LOG_ROLE;
    let policies = iam.list_role_policies().role_name(role).send().await.unwrap();
    let policy = policies
        .policy_names()
        .first()
        .expect("the flow-log role has its policy")
        .clone();
    let tampered = Instant::now();
    iam.delete_role_policy()
        .role_name(role)
        .policy_name(&policy)
        .send()
        .await
        .unwrap();
    let deadline = tampered + REPAIRED_WITHIN;
    loop {
        let back = iam
            .get_role_policy()
            .role_name(role)
            .policy_name(&policy)
            .send()
            .await
            .is_ok();
        if back {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "DeleteRolePolicy not repaired within {REPAIRED_WITHIN:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "DeleteRolePolicy on {role} repaired after {:?} (resync 1 h)",
        tampered.elapsed()
    );
    let _ = stop.send(());
    running.await.expect("the controller ends without a panic");
}

/// The monitoring controls' filters, alarms and topic are tamper targets: each call that changes
/// or removes one reaches the router as a reconcile of the account (CloudWatch's calls arrive as
/// source aws.monitoring, over its CBOR protocol).
#[tokio::test]
async fn every_tampering_call_on_the_monitoring_controls_reaches_the_router() {
    use trailkeeper::api::{MonitoringControls, TrailCloudWatchLogs, TrailPolicySpec};
    use trailkeeper::desired::monitoring::{CONTROLS, TOPIC_NAME};
    use trailkeeper::engine::account::{ReconcileOptions, RunMode, account_clients, reconcile_account};
    let events = events_settings("monitoring").await;
    let account = common::new_account();
    let forwarding = central(&events, &Admitted::Accounts([account.clone()].into())).await;
    let aws = common::inspector(&account).await;
    let group = "aws-cloudtrail-logs-tamper";
    aws.logs.create_log_group().log_group_name(group).send().await.unwrap();
    let mut spec = common::trail_only(&account);
    spec.compliance_regions = vec![common::REGION.into()];
    let trail_policy = TrailPolicySpec {
        cloud_watch_logs: Some(TrailCloudWatchLogs {
            log_group_arn: format!("arn:aws:logs:{}:{account}:log-group:{group}:*", common::REGION),
            role_arn: format!("arn:aws:iam::{account}:role/cloudtrail-to-logs"),
        }),
        monitoring: Some(MonitoringControls::default()),
        ..Default::default()
    };
    let retention = trailkeeper::api::RetentionPolicySpec::default();
    let specs = trailkeeper::desired::AccountSpecs {
        baseline: &spec,
        trail_policy: &trail_policy,
        retention: &retention,
    };
    let options = ReconcileOptions {
        forwarding: Some(forwarding),
        ..ReconcileOptions::new(RunMode::Apply)
    };
    let base = common::base_config().await;
    let report = reconcile_account(account_clients(&base, &specs), &specs, options).await;
    assert!(!report.failed(), "{:?} {:?}", report.error, report.components);
    let known = [Target {
        baseline: ObjectRef::new("monitoring").within("ns"),
        account: account.clone(),
        role_arn: Some(format!("arn:aws:iam::{account}:role/trailkeeper")),
        // Every region kept: each event reconciles (as before the account-wide sweep).
        kept: None,
        forwarded: Vec::new(),
    }];
    drain_routed(&events, &known, Duration::from_secs(2)).await;

    let root = &CONTROLS[2];
    aws.logs
        .delete_metric_filter()
        .log_group_name(group)
        .filter_name(root.name())
        .send()
        .await
        .unwrap();
    aws.cloudwatch
        .disable_alarm_actions()
        .alarm_names(CONTROLS[0].name())
        .send()
        .await
        .unwrap();
    aws.cloudwatch
        .delete_alarms()
        .alarm_names(CONTROLS[1].name())
        .send()
        .await
        .unwrap();
    let topic = format!("arn:aws:sns:{}:{account}:{TOPIC_NAME}", common::REGION);
    aws.sns
        .set_topic_attributes()
        .topic_arn(&topic)
        .attribute_name("KmsMasterKeyId")
        .attribute_value("alias/aws/sns")
        .send()
        .await
        .unwrap();
    let reached = drain_routed(&events, &known, Duration::from_secs(5)).await;
    for name in [
        "DeleteMetricFilter",
        "DisableAlarmActions",
        "DeleteAlarms",
        "SetTopicAttributes",
    ] {
        assert!(
            reached
                .iter()
                .any(|(n, routed)| n == name && matches!(routed, Routed::Reconcile(_))),
            "{name} did not reach the router as a reconcile: {reached:?}"
        );
    }
}

/// The forwarding's cost in sync, as the README gives it: two reads per region it keeps a rule in
/// (DescribeRule, ListTargetsByRule) and two for the role (GetRole, GetRolePolicy); no write.
#[tokio::test]
async fn the_forwarding_in_sync_costs_two_reads_per_region_and_two_for_the_role() {
    use trailkeeper::engine::account::{ReconcileOptions, RunMode, account_clients, reconcile_account};
    let events = events_settings("cost").await;
    let account = common::new_account();
    let forwarding = central(&events, &Admitted::Accounts([account.clone()].into())).await;
    let mut spec = common::trail_only(&account);
    spec.regions = vec![common::REGION.into(), "eu-west-1".into()];
    let (trail_policy, retention) = common::default_policies();
    let specs = trailkeeper::desired::AccountSpecs {
        baseline: &spec,
        trail_policy: &trail_policy,
        retention: &retention,
    };
    let base = common::base_config().await;
    let reconcile = |mode| {
        let options = ReconcileOptions {
            forwarding: Some(forwarding.clone()),
            ..ReconcileOptions::new(mode)
        };
        reconcile_account(account_clients(&base, &specs), &specs, options)
    };
    let first = reconcile(RunMode::Apply).await;
    assert!(!first.failed(), "{:?} {:?}", first.error, first.components);
    let in_sync = reconcile(RunMode::Apply).await;
    assert_eq!(in_sync.calls.writes, 0, "{:?}", in_sync.calls.by_action);
    let count = |action: &str| in_sync.calls.by_action.get(action).copied().unwrap_or_default();
    let forwarding_reads: Vec<(&str, (u32, u32))> = [
        "events:DescribeRule",
        "events:ListTargetsByRule",
        "iam:GetRole",
        "iam:GetRolePolicy",
    ]
    .into_iter()
    .map(|a| (a, count(a)))
    .collect();
    println!("forwarding reads in sync: {forwarding_reads:?}");
    // Both regions (us-east-1, the primary, also takes the global services' events): one rule each.
    assert_eq!(count("events:DescribeRule"), (2, 0));
    assert_eq!(count("events:ListTargetsByRule"), (2, 0));
    // The role (IAM is global: once per reconcile). A trail-only baseline has no other role.
    assert_eq!(count("iam:GetRole"), (1, 0));
    assert_eq!(count("iam:GetRolePolicy"), (1, 0));
}

/// Past what the central bus's policy can name (about 650 accounts in 10,240 characters), the
/// events loop does not set the bus up: it counts `setup_error`, writes no policy, and keeps
/// trying (README: give the Organization's id instead).
#[tokio::test]
async fn past_the_bus_policy_quota_the_loop_counts_setup_error_and_writes_no_policy() {
    let events = events_settings("quota").await;
    let (store, mut writer) = kube::runtime::reflector::store();
    writer.apply_watcher_event(&kube::runtime::watcher::Event::Init);
    for i in 0..700 {
        let account = format!("{:012}", 300_000_000_000u64 + i);
        let mut b = baseline("quota", &format!("acct-{i}"), &account, DeletionPolicy::Retain);
        b.metadata.uid = Some(format!("uid-{i}"));
        writer.apply_watcher_event(&kube::runtime::watcher::Event::InitApply(b));
    }
    writer.apply_watcher_event(&kube::runtime::watcher::Event::InitDone);
    let errors = || {
        trailkeeper::runtime::metrics::render()
            .lines()
            .find_map(|l| l.strip_prefix("trailkeeper_drift_events_total{outcome=\"setup_error\"} "))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = errors();
    let (reconcile, _received) = futures::channel::mpsc::channel(16);
    let ready = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let set = ready.clone();
    let run = trailkeeper::drift_events::queue::run(
        events.clone(),
        common::base_config().await,
        store,
        trailkeeper::fence::WriteGate::open(),
        move |_| {
            set.store(true, std::sync::atomic::Ordering::SeqCst);
            Vec::new()
        },
        reconcile,
        futures::channel::mpsc::channel(16).0,
    );
    // Two attempts: at once, then after a second's backoff.
    let _ = tokio::time::timeout(Duration::from_secs(2), run).await;
    assert!(
        errors() >= before + 2,
        "setup_error counted {} times",
        errors() - before
    );
    assert!(
        !ready.load(std::sync::atomic::Ordering::SeqCst),
        "the forwarding was declared ready"
    );
    let operator = common::inspector(OPERATOR_ACCOUNT).await;
    let bus = operator.events.describe_event_bus().name(&events.bus_name).send().await;
    let policy = bus.ok().and_then(|b| b.policy);
    assert!(
        policy.as_deref().is_none_or(|p| !p.contains("300000000000")),
        "a policy naming the accounts was written: {policy:?}"
    );
}

/// With sharding (issue 46): an event of an account another replica holds is not repaired and not
/// deleted: ChangeMessageVisibility makes it visible again at once, and the replica that holds
/// the account receives it (its receive count says how often it came back). ChangeMessageVisibility
/// Batch as AWS documents it, both ways: an entry of a message no longer in flight fails alone
/// (HTTP 200, the others applied); more than 10 entries, or two with one Id, refuse the request
/// (scripts/emulator/trailkeeper_sqs_visibility.py).
#[tokio::test]
async fn an_event_of_another_replicas_shard_is_handed_back_to_the_queue_not_repaired_nor_deleted() {
    let events = events_settings("shards").await;
    let base = common::base_config().await;
    let sqs = trailkeeper::drift_events::queue::queue_client(&base, &trailkeeper::fence::WriteGate::open());
    let account = common::new_account();
    let body = serde_json::json!({"id": "theirs-1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.cloudtrail",
        "account": account, "detail": {"eventName": "StopLogging"}});
    let operator = common::inspector(OPERATOR_ACCOUNT).await;
    operator
        .sqs
        .send_message()
        .queue_url(&events.queue_url)
        .message_body(body.to_string())
        .send()
        .await
        .unwrap();
    let known = [Target {
        baseline: ObjectRef::new("theirs").within("ns"),
        account: account.clone(),
        role_arn: None,
        kept: None,
        forwarded: Vec::new(),
    }];
    let url = events.queue_url.clone();

    // This replica does not hold the account: handed back, nothing routed, nothing deleted.
    let received = trailkeeper::aws::sqs::receive(&sqs, &url, 5).await.unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].receive_count, 1);
    let (mut reconcile, mut receiver) = futures::channel::mpsc::channel(4);
    let (mut sweep, _swept) = futures::channel::mpsc::channel(4);
    let mut router = Router::default();
    let handled = route_messages(
        received,
        &mut router,
        &known,
        &|_: &str| false,
        &mut reconcile,
        &mut sweep,
    )
    .await;
    assert!(handled.done.is_empty(), "{handled:?}");
    assert_eq!(handled.elsewhere.len(), 1);
    assert!(
        receiver.try_recv().is_err(),
        "not repaired by a replica that does not hold it"
    );
    trailkeeper::aws::sqs::release(&sqs, &url, &handled.elsewhere)
        .await
        .unwrap();

    // Visible again at once (the queue's visibility timeout is 30 s): the holder receives it.
    let again = trailkeeper::aws::sqs::receive(&sqs, &url, 1).await.unwrap();
    assert_eq!(again.len(), 1, "the handed-back message is visible again at once");
    assert_eq!(again[0].receive_count, 2);
    let handled = route_messages(
        again.clone(),
        &mut router,
        &known,
        &|_: &str| true,
        &mut reconcile,
        &mut sweep,
    )
    .await;
    assert_eq!(handled.done.len(), 1);
    assert_eq!(receiver.try_recv().ok(), Some(ObjectRef::new("theirs").within("ns")));
    trailkeeper::aws::sqs::delete(&sqs, &url, &handled.done).await.unwrap();

    // An entry of a message no longer in flight (deleted) fails alone: HTTP 200, no error.
    trailkeeper::aws::sqs::release(&sqs, &url, &[(again[0].receipt.clone(), 0)])
        .await
        .expect("a failed entry is reported in the response, not as an error");
    // The request's own errors refuse it whole.
    let entry = |id: &str| {
        aws_sdk_sqs::types::ChangeMessageVisibilityBatchRequestEntry::builder()
            .id(id)
            .receipt_handle(&again[0].receipt)
            .visibility_timeout(0)
            .build()
            .unwrap()
    };
    let eleven: Vec<_> = (0..11).map(|i| entry(&i.to_string())).collect();
    let raw = aws_sdk_sqs::Client::new(&base);
    let refused = raw
        .change_message_visibility_batch()
        .queue_url(&url)
        .set_entries(Some(eleven))
        .send()
        .await
        .expect_err("more than 10 entries");
    assert!(
        format!("{refused:?}").contains("TooManyEntriesInBatchRequest"),
        "{refused:?}"
    );
    let repeated = raw
        .change_message_visibility_batch()
        .queue_url(&url)
        .set_entries(Some(vec![entry("a"), entry("a")]))
        .send()
        .await
        .expect_err("two entries with one Id");
    assert!(
        format!("{repeated:?}").contains("BatchEntryIdsNotDistinct"),
        "{repeated:?}"
    );
    let ten: Vec<_> = (0..10).map(|i| entry(&i.to_string())).collect();
    raw.change_message_visibility_batch()
        .queue_url(&url)
        .set_entries(Some(ten))
        .send()
        .await
        .expect("10 entries with distinct Ids are accepted (each failing alone here)");
}
