//! LoggingBaselineSet (issue 18): baselines stamped per account from a template, on a real
//! Kubernetes API server, with AWS Organizations and the accounts on the emulator.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::cluster;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use trailkeeper::api::{LoggingBaseline, LoggingBaselineSet};
use trailkeeper::controller::baselines::Settings;
use trailkeeper::desired::set::SET_LABEL;

const TIMEOUT: Duration = Duration::from_secs(240);
/// The controller's resync in these tests.
const RESYNC: Duration = Duration::from_secs(5);

async fn start(ns: &str, base: aws_types::SdkConfig) -> cluster::Running {
    let settings = Settings {
        // Organizations is re-read on the resync: short here, so a moved account is seen soon.
        resync: RESYNC,
        retry_base: Duration::from_secs(1),
        watch_namespace: Some(ns.to_string()),
        ..Settings::default()
    };
    cluster::start_controller(base, settings).await
}

async fn setup(prefix: &str) -> (Client, String) {
    let client = cluster::admin().await;
    cluster::install_crds(&client).await;
    let ns = cluster::fresh_namespace(&client, prefix).await;
    (client, ns)
}

/// The baseline of the template: the trail, its key and storage (the regional parts have tests
/// of their own), reached through each account's trailkeeper role.
fn template() -> serde_json::Value {
    serde_json::json!({
        "primaryRegion": common::REGION,
        // The account-wide CIS reads in this region only (as tests/common's baseline): every
        // region the emulator enables would be read for each new account otherwise.
        "complianceRegions": [common::REGION],
        "credentials": {"assumeRoleArn": "arn:aws:iam::{{accountId}}:role/trailkeeper"},
        "encryption": {"administrators": ["arn:aws:iam::{{accountId}}:role/admin"]},
        "tags": {"account-name": "{{accountName}}"},
        "flowLogs": {"enabled": false},
        "instanceLogs": {"enabled": false},
        "configRules": {"enabled": false},
        "auditQueries": {"enabled": false}
    })
}

fn set(ns: &str, name: &str, generator: serde_json::Value) -> LoggingBaselineSet {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "trailkeeper.io/v1alpha1", "kind": "LoggingBaselineSet",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"template": {"labels": {"fleet": "test"}, "spec": template()}, "generator": generator}
    }))
    .unwrap()
}

fn is_ready(b: &LoggingBaseline) -> bool {
    b.status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The set's baselines by account id.
async fn children(api: &Api<LoggingBaseline>, set: &str) -> BTreeMap<String, LoggingBaseline> {
    api.list(&ListParams::default().labels(&format!("{SET_LABEL}={set}")))
        .await
        .map(|l| l.items.into_iter().map(|b| (b.spec.account_id.clone(), b)).collect())
        .unwrap_or_default()
}

struct Organization {
    management: String,
    ou_a: String,
    ou_a1: String,
    ou_b: String,
    root: String,
    /// Accounts by where they are: A, A1 (a child of A), B, root.
    in_a: Vec<String>,
    in_a1: Vec<String>,
    in_b: Vec<String>,
}

/// An Organization of 3 units (A, its child A1, and B) and 12 accounts: 4 in A, 2 in A1, 3 in B,
/// 3 under the root.
async fn organization() -> Organization {
    let management = common::new_account();
    let aws = common::inspector(&management).await;
    common::create_organization(&aws).await;
    let root = aws.organizations.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_string();
    let unit = |parent: String, name: &'static str| {
        let aws = &aws;
        async move {
            aws.organizations
                .create_organizational_unit()
                .parent_id(parent)
                .name(name)
                .send()
                .await
                .unwrap()
                .organizational_unit()
                .unwrap()
                .id()
                .unwrap()
                .to_string()
        }
    };
    let ou_a = unit(root.clone(), "workloads").await;
    let ou_a1 = unit(ou_a.clone(), "workloads-prod").await;
    let ou_b = unit(root.clone(), "sandbox").await;
    let mut placed: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (i, target) in ["a", "a", "a", "a", "a1", "a1", "b", "b", "b", "root", "root", "root"]
        .into_iter()
        .enumerate()
    {
        let created = aws
            .organizations
            .create_account()
            .account_name(format!("member-{i}"))
            .email(format!("member-{i}-{management}@example.com"))
            .send()
            .await
            .unwrap();
        let id = created
            .create_account_status()
            .unwrap()
            .account_id()
            .unwrap()
            .to_string();
        // The roles the set's template names, as the account's administrator makes them.
        common::create_roles_in(&id, &common::ACCOUNT_ROLES).await;
        let destination = match target {
            "a" => Some(&ou_a),
            "a1" => Some(&ou_a1),
            "b" => Some(&ou_b),
            _ => None,
        };
        if let Some(destination) = destination {
            aws.organizations
                .move_account()
                .account_id(&id)
                .source_parent_id(&root)
                .destination_parent_id(destination)
                .send()
                .await
                .unwrap();
        }
        placed.entry(target).or_default().push(id);
    }
    Organization {
        management,
        in_a: placed["a"].clone(),
        in_a1: placed["a1"].clone(),
        in_b: placed["b"].clone(),
        ou_a,
        ou_a1,
        ou_b,
        root,
    }
}

#[tokio::test]
async fn a_set_of_one_unit_keeps_exactly_its_accounts_baselines_as_accounts_move() {
    let (client, ns) = setup("sets-org").await;
    let org = organization().await;
    let sets: Api<LoggingBaselineSet> = Api::namespaced(client.clone(), &ns);
    let baselines: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let generator = serde_json::json!({"organization": {
        "roleArn": format!("arn:aws:iam::{}:role/trailkeeper", org.management),
        "organizationalUnits": [{"id": org.ou_a, "includeChildren": true}]
    }});
    sets.create(&PostParams::default(), &set(&ns, "workloads", generator))
        .await
        .unwrap();
    let (stop, running, _ctx) = start(&ns, common::base_config().await).await;

    let mut expected: Vec<String> = org.in_a.iter().chain(&org.in_a1).cloned().collect();
    expected.sort();
    cluster::eventually("the unit's 6 accounts each with a Ready baseline", TIMEOUT, || async {
        let found = children(&baselines, "workloads").await;
        found.keys().cloned().collect::<Vec<_>>() == expected && found.values().all(is_ready)
    })
    .await;
    cluster::eventually("the set's status counts them", TIMEOUT, || async {
        sets.get_status("workloads")
            .await
            .ok()
            .and_then(|s| s.status)
            .is_some_and(|s| {
                s.selected == 6
                    && s.baselines == 6
                    && s.ready == 6
                    && s.conflict_count == 0
                    && s.last_organizations_read.is_some()
            })
    })
    .await;

    // An account of B moved into A1 gets a baseline at the next read; one of A moved to the root
    // loses its baseline, and AWS keeps what it had (deletionPolicy Retain).
    let aws = common::inspector(&org.management).await;
    let (arriving, leaving) = (org.in_b[0].clone(), org.in_a[0].clone());
    aws.organizations
        .move_account()
        .account_id(&arriving)
        .source_parent_id(&org.ou_b)
        .destination_parent_id(&org.ou_a1)
        .send()
        .await
        .unwrap();
    aws.organizations
        .move_account()
        .account_id(&leaving)
        .source_parent_id(&org.ou_a)
        .destination_parent_id(&org.root)
        .send()
        .await
        .unwrap();
    cluster::eventually("the moved accounts' baselines follow", TIMEOUT, || async {
        let found = children(&baselines, "workloads").await;
        found.contains_key(&arriving) && !found.contains_key(&leaving) && found.len() == 6
    })
    .await;
    cluster::eventually("the arriving account's baseline is Ready", TIMEOUT, || async {
        children(&baselines, "workloads")
            .await
            .get(&arriving)
            .is_some_and(is_ready)
    })
    .await;
    let left = common::inspector(&leaving).await;
    let trail = format!("arn:aws:cloudtrail:{}:{leaving}:trail/trailkeeper", common::REGION);
    assert_eq!(
        left.trail_is_logging(&trail).await,
        Some(true),
        "Retain: the trail stays, logging"
    );
    assert!(!left.bucket_names().await.is_empty(), "Retain: the buckets stay");
    let _ = stop.send(());
    running.await.expect("the controller ends without a panic");
}

#[tokio::test]
async fn children_are_owned_and_labelled_a_template_change_updates_each_once_and_hand_written_baselines_are_left_alone()
{
    let (client, ns) = setup("sets-list").await;
    let sets: Api<LoggingBaselineSet> = Api::namespaced(client.clone(), &ns);
    let baselines: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let accounts: Vec<String> = (0..3).map(|_| common::new_account()).collect();
    // A person's baseline for the third account, written before the set.
    let mut hand = common::baseline(&accounts[2]);
    hand.spec = common::trail_only(&accounts[2]);
    hand.metadata.name = Some("written-by-hand".into());
    hand.metadata.namespace = Some(ns.clone());
    baselines.create(&PostParams::default(), &hand).await.unwrap();
    let listed: Vec<serde_json::Value> = accounts
        .iter()
        .enumerate()
        .map(|(i, id)| serde_json::json!({"id": id, "name": format!("team-{i}")}))
        .collect();
    let created = sets
        .create(
            &PostParams::default(),
            &set(&ns, "teams", serde_json::json!({"accounts": listed})),
        )
        .await
        .unwrap();
    let (stop, running, ctx) = start(&ns, common::base_config().await).await;

    cluster::eventually("two children Ready and the conflict reported", TIMEOUT, || async {
        let found = children(&baselines, "teams").await;
        let status = sets.get_status("teams").await.ok().and_then(|s| s.status);
        found.len() == 2
            && found.values().all(is_ready)
            && status.is_some_and(|s| s.conflict_count == 1 && s.ready == 2)
    })
    .await;
    let found = children(&baselines, "teams").await;
    for (i, account) in accounts[..2].iter().enumerate() {
        let child = &found[account];
        assert_eq!(child.name_any(), format!("teams-{account}"));
        let owner = &child.owner_references()[0];
        assert_eq!(
            (
                owner.kind.as_str(),
                owner.name.as_str(),
                owner.uid.as_str(),
                owner.controller
            ),
            (
                "LoggingBaselineSet",
                "teams",
                created.uid().unwrap().as_str(),
                Some(true)
            )
        );
        assert_eq!(child.labels()["fleet"], "test");
        assert_eq!(child.labels()["trailkeeper.io/account-id"], *account);
        assert_eq!(child.spec.tags["account-name"], format!("team-{i}"));
    }
    let status = sets.get_status("teams").await.unwrap().status.unwrap();
    assert_eq!(status.conflicts[0].account_id, accounts[2]);
    assert_eq!(status.conflicts[0].baseline.as_deref(), Some("written-by-hand"));
    // The SetConflicts alert's series.
    let metrics = trailkeeper::runtime::metrics::render();
    assert!(
        metrics.contains(&format!("trailkeeper_set_conflicts{{set=\"{ns}/teams\"}} 1\n")),
        "{metrics}"
    );
    // Each child's CIS controls, judged at its reconcile: 3.1 (a multi-Region trail) passes.
    for account in &accounts[..2] {
        assert!(
            metrics.contains(&format!(
                "trailkeeper_cis_control_passed{{account=\"{account}\",control=\"3.1\"}} 1\n"
            )),
            "{metrics}"
        );
    }
    let hand_now = baselines.get("written-by-hand").await.unwrap();
    assert!(
        hand_now.owner_references().is_empty(),
        "the hand-written baseline is left alone"
    );
    assert!(hand_now.labels().get(SET_LABEL).is_none());
    assert_eq!(hand_now.metadata.generation, Some(1));
    cluster::eventually("the hand-written baseline is Ready on its own", TIMEOUT, || async {
        baselines.get("written-by-hand").await.is_ok_and(|b| is_ready(&b))
    })
    .await;

    // A template change that changes nothing in AWS (the enforced regions written out: the
    // primary, as by default): every child updated once, no AWS write.
    let generations: BTreeMap<String, i64> = found
        .iter()
        .map(|(a, b)| (a.clone(), b.metadata.generation.unwrap()))
        .collect();
    let writes_before = ctx.aws.total_calls().writes;
    sets.patch(
        "teams",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"template": {"spec": {"regions": [common::REGION]}}}})),
    )
    .await
    .unwrap();
    cluster::eventually("every child follows the template", TIMEOUT, || async {
        let found = children(&baselines, "teams").await;
        found.len() == 2 && found.values().all(|b| b.spec.regions == [common::REGION])
    })
    .await;
    // Over two resyncs (proven to have run: the account was read again), each child was written
    // once, and AWS not at all.
    let reads = ctx.aws.total_calls().reads;
    tokio::time::sleep(2 * RESYNC + Duration::from_secs(2)).await;
    assert!(ctx.aws.total_calls().reads > reads, "no resync ran in the window");
    for (account, child) in children(&baselines, "teams").await {
        assert_eq!(
            child.metadata.generation,
            Some(generations[&account] + 1),
            "{account} updated once"
        );
    }
    assert_eq!(
        ctx.aws.total_calls().writes,
        writes_before,
        "AWS writes after a template change AWS does not see"
    );
    let hand_now = baselines.get("written-by-hand").await.unwrap();
    assert!(
        hand_now.spec.regions.is_empty(),
        "the hand-written baseline is not the set's"
    );
    assert_eq!(hand_now.metadata.generation, Some(1));
    let _ = stop.send(());
    running.await.expect("the controller ends without a panic");
}

fn trailkeeper(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_trailkeeper"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn validate_and_plan_expand_a_set_of_listed_accounts_into_its_baselines() {
    let dir = tempfile::tempdir().unwrap();
    let accounts: Vec<String> = (0..2).map(|_| common::new_account()).collect();
    let manifest = serde_json::json!({
        "apiVersion": "trailkeeper.io/v1alpha1", "kind": "LoggingBaselineSet",
        "metadata": {"name": "fleet", "namespace": "accounts"},
        "spec": {"template": {"spec": template()}, "generator": {"accounts": [
            {"id": accounts[0], "name": "payments"}, {"id": accounts[1], "name": "search"}
        ]}}
    });
    std::fs::write(dir.path().join("fleet.yaml"), serde_yaml::to_string(&manifest).unwrap()).unwrap();
    let path = dir.path().to_str().unwrap();
    let (code, out) = trailkeeper(&["validate", "-f", path], &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("2 LoggingBaseline, 1 LoggingBaselineSet"), "{out}");
    assert!(
        out.contains(&format!(
            "LoggingBaselineSet/accounts/fleet expands to 2 LoggingBaselines: fleet-{}, fleet-{}",
            accounts[0], accounts[1]
        )),
        "{out}"
    );
    let moto = &common::moto().endpoint;
    let (code, out) = trailkeeper(
        &["plan", "-f", path],
        &[
            ("AWS_ENDPOINT_URL", moto),
            ("AWS_REGION", common::REGION),
            ("AWS_ACCESS_KEY_ID", "test"),
            ("AWS_SECRET_ACCESS_KEY", "test"),
        ],
    );
    // Fresh accounts: changes pending in both (exit 2), each listed.
    assert_eq!(code, 2, "{out}");
    for account in &accounts {
        assert!(out.contains(account.as_str()), "{account} not in the plan:\n{out}");
    }
    // A template that does not render is a problem of the set, named with the account.
    let mut broken = manifest.clone();
    broken["spec"]["template"]["spec"]["tags"]["team"] = "{{tag:team}}".into();
    std::fs::write(dir.path().join("fleet.yaml"), serde_yaml::to_string(&broken).unwrap()).unwrap();
    let (code, out) = trailkeeper(&["validate", "-f", path], &[]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("has no tag \"team\""), "{out}");
}

#[tokio::test]
async fn the_organization_generator_reads_the_whole_organization_or_its_tagged_accounts_without_the_excluded() {
    use trailkeeper::api::OrganizationGenerator;
    let org = organization().await;
    let aws = common::inspector(&org.management).await;
    for account in [&org.in_b[1], &org.in_a1[0]] {
        aws.organizations
            .tag_resource()
            .resource_id(account.as_str())
            .tags(
                aws_sdk_organizations::types::Tag::builder()
                    .key("audit")
                    .value("yes")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }
    let clients = trailkeeper::aws::AccountClients::new(
        &common::base_config().await,
        common::REGION,
        Some(&trailkeeper::api::Credentials {
            assume_role_arn: format!("arn:aws:iam::{}:role/trailkeeper", org.management),
            external_id: None,
        }),
        Default::default(),
    );
    // The whole Organization (from its root, every unit at any depth), the management account
    // excluded: the 12 members.
    let everything = OrganizationGenerator {
        role_arn: None,
        organizational_units: Vec::new(),
        account_tags: Default::default(),
        exclude: vec![org.management.clone()],
    };
    let all = trailkeeper::controller::sets::select_from_organization(&clients, &everything, false)
        .await
        .unwrap();
    assert_eq!(all.len(), 12, "{all:?}");
    assert!(all.iter().all(|a| a.id != org.management));
    // By tag: the two tagged accounts, with their tags for the template.
    let tagged = OrganizationGenerator {
        account_tags: [("audit".to_string(), "yes".to_string())].into(),
        ..everything
    };
    let mut found = trailkeeper::controller::sets::select_from_organization(&clients, &tagged, false)
        .await
        .unwrap();
    found.sort_by(|a, b| a.id.cmp(&b.id));
    let mut expected = vec![org.in_b[1].clone(), org.in_a1[0].clone()];
    expected.sort();
    assert_eq!(found.iter().map(|a| a.id.clone()).collect::<Vec<_>>(), expected);
    assert_eq!(found[0].tags["audit"], "yes");
}

/// The Ready condition of a set.
async fn set_ready(sets: &Api<LoggingBaselineSet>, name: &str) -> Option<trailkeeper::api::Condition> {
    sets.get_status(name)
        .await
        .ok()
        .and_then(|s| s.status)
        .and_then(|s| s.conditions.into_iter().find(|c| c.type_ == "Ready"))
}

#[tokio::test]
async fn a_set_with_a_misspelt_template_field_is_refused_and_its_children_are_left_as_they_are() {
    let (client, ns) = setup("sets-typo").await;
    let sets: Api<LoggingBaselineSet> = Api::namespaced(client.clone(), &ns);
    let baselines: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let accounts: Vec<serde_json::Value> = (0..2)
        .map(|_| serde_json::json!({"id": common::new_account()}))
        .collect();
    let generator = serde_json::json!({ "accounts": accounts });
    // A set that is invalid from the start creates nothing.
    let mut typo = set(&ns, "typo", generator.clone());
    typo.spec.template.spec["mod"] = "Observe".into();
    sets.create(&PostParams::default(), &typo).await.unwrap();
    sets.create(&PostParams::default(), &set(&ns, "teams", generator.clone()))
        .await
        .unwrap();
    let (stop, running, _ctx) = start(&ns, common::base_config().await).await;
    cluster::eventually(
        "the invalid set is not Ready, with reason InvalidSpec",
        TIMEOUT,
        || async {
            set_ready(&sets, "typo").await.is_some_and(|c| {
                c.status == "False"
                    && c.reason == "InvalidSpec"
                    && c.message.contains("spec.template.spec.mod: unknown field")
            })
        },
    )
    .await;
    cluster::eventually("the valid set's two children exist", TIMEOUT, || async {
        children(&baselines, "teams").await.len() == 2
    })
    .await;
    assert!(
        children(&baselines, "typo").await.is_empty(),
        "an invalid set creates no child"
    );

    // The valid set gets a typo: its children keep their spec (Enforce stays Enforce, nothing
    // written), and the set says why.
    let before: BTreeMap<String, i64> = children(&baselines, "teams")
        .await
        .iter()
        .map(|(a, b)| (a.clone(), b.metadata.generation.unwrap_or_default()))
        .collect();
    sets.patch(
        "teams",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"template": {"spec": {"regoins": ["eu-west-1"], "trail": {"polcyRef": {"name": "strict"}}}}}})),
    )
    .await
    .unwrap();
    cluster::eventually("the changed set is refused", TIMEOUT, || async {
        set_ready(&sets, "teams").await.is_some_and(|c| {
            c.reason == "InvalidSpec"
                && c.message.contains("spec.template.spec.regoins")
                && c.message.contains("spec.template.spec.trail.polcyRef")
        })
    })
    .await;
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), &ns);
    cluster::eventually("a Warning Event says why", TIMEOUT, || async {
        events.list(&Default::default()).await.is_ok_and(|l| {
            l.items
                .iter()
                .filter(|e| e.reason.as_deref() == Some("InvalidSpec"))
                .count()
                >= 2
        })
    })
    .await;
    let after: BTreeMap<String, i64> = children(&baselines, "teams")
        .await
        .iter()
        .map(|(a, b)| (a.clone(), b.metadata.generation.unwrap_or_default()))
        .collect();
    assert_eq!(before, after, "no child changed");
    let _ = stop.send(());
    running.await.expect("the controller ends without a panic");
}

#[tokio::test]
async fn a_shard_reconciles_only_its_sets_and_counts_each_child_created_once() {
    let (client, ns) = setup("sets-shard").await;
    let sets: Api<LoggingBaselineSet> = Api::namespaced(client.clone(), &ns);
    let baselines: Api<LoggingBaseline> = Api::namespaced(client.clone(), &ns);
    let settings = Settings {
        resync: RESYNC,
        retry_base: Duration::from_secs(1),
        watch_namespace: Some(ns.clone()),
        selector: Some("shard=a".into()),
        ..Settings::default()
    };
    let (stop, running, _ctx) = cluster::start_controller(common::base_config().await, settings).await;
    let in_shard = |name: &str, shard: &str, accounts: &[String]| {
        let listed: Vec<serde_json::Value> = accounts.iter().map(|id| serde_json::json!({"id": id})).collect();
        let mut s = set(&ns, name, serde_json::json!({"accounts": listed}));
        s.metadata.labels = Some([("shard".to_string(), shard.to_string())].into());
        // The children carry the shard's label, so that the shard's baselines' watch sees them.
        s.spec.template.labels.insert("shard".into(), shard.into());
        s
    };
    let mine: Vec<String> = (0..3).map(|_| common::new_account()).collect();
    let theirs = vec![common::new_account()];
    sets.create(&PostParams::default(), &in_shard("mine", "a", &mine))
        .await
        .unwrap();
    sets.create(&PostParams::default(), &in_shard("theirs", "b", &theirs))
        .await
        .unwrap();
    cluster::eventually("the shard's set has its children Ready", TIMEOUT, || async {
        let found = children(&baselines, "mine").await;
        found.len() == 3 && found.values().all(is_ready)
    })
    .await;
    // Over two resyncs more, the other shard's set stays untouched.
    tokio::time::sleep(2 * RESYNC).await;
    assert!(
        children(&baselines, "theirs").await.is_empty(),
        "a set outside the selector was reconciled"
    );
    // Its status is the API server's default, never written: not yet observed.
    let untouched = sets.get_status("theirs").await.unwrap().status.unwrap_or_default();
    assert_eq!(
        (untouched.observed_generation, untouched.conditions.len()),
        (Some(0), 0)
    );
    // Each child announced as created once, however many reconciles ran while the cache caught up.
    let events: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), &ns);
    let announced: i64 = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|e| {
            e.reason.as_deref() == Some("BaselinesCreated") && e.involved_object.name.as_deref() == Some("mine")
        })
        .map(|e| {
            let created: i64 = e
                .message
                .as_deref()
                .and_then(|m| m.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            // Repeats of one Event are folded into a series by the recorder.
            let repeats = e.series.as_ref().and_then(|s| s.count).or(e.count).unwrap_or(1).max(1);
            created * i64::from(repeats)
        })
        .sum();
    assert_eq!(announced, 3, "children announced as created");
    let _ = stop.send(());
    running.await.expect("the controller ends without a panic");
}
