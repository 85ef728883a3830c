//! The Helm chart on a real API server (tests/common/cluster.rs): `helm install` with the default
//! values and with each file of charts/trailkeeper/ci/, then this build's `trailkeeper run`
//! started as the chart's Deployment starts it (its args and env, read from the installed
//! release) and authenticated with a token of the chart's ServiceAccount (TokenRequest, as
//! `kubectl create token`), so the chart's RBAC is what the API server judges. Each run must reach
//! Ready, write status and Events, hold the Lease, and make no request RBAC refuses (read from the
//! API server's audit log).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::cluster;
use common::helm::{Release, install, root};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::Value;
use trailkeeper::api::LoggingBaseline;

const TIMEOUT: Duration = Duration::from_secs(180);

/// `trailkeeper run` as a process, killed on drop.
struct Operator {
    child: Child,
    log: PathBuf,
    pod_name: String,
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Operator {
    /// What it printed (its logs go to stderr, the rest to stdout).
    fn log(&self) -> String {
        let out = std::fs::read_to_string(&self.log).unwrap_or_default();
        let err = std::fs::read_to_string(self.log.with_extension("err")).unwrap_or_default();
        format!("{out}{err}")
    }
}

/// Starts this build's binary with the args and env of the release's Deployment, the token of its
/// ServiceAccount, and AWS on moto. Only the listen address is changed (a free loopback port).
fn start_operator(release: &Release, token: &str) -> Operator {
    let server = cluster::api_server();
    let pod_name = format!("{}-0", release.name);
    let container = &release.object("Deployment")["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = container["args"]
        .as_array()
        .expect("the container has args")
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let mut command = Command::new(env!("CARGO_BIN_EXE_trailkeeper"));
    command.args(&args).env_clear();
    for var in container["env"].as_array().expect("the container has env") {
        let name = var["name"].as_str().unwrap();
        let value = match (&var["value"], var["valueFrom"]["fieldRef"]["fieldPath"].as_str()) {
            (Value::String(v), _) => v.clone(),
            (_, Some("metadata.name")) => pod_name.clone(),
            (_, Some("metadata.namespace")) => release.namespace.clone(),
            other => panic!("env {name}: a source this test cannot stand in for: {other:?}"),
        };
        command.env(name, value);
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let log = server.dir.join(format!("{}.log", release.name));
    let kubeconfig = server.write_kubeconfig(&release.name, token);
    command
        .env("TRAILKEEPER_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("KUBECONFIG", kubeconfig)
        .env("AWS_ENDPOINT_URL", &common::moto().endpoint)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    if let Ok(calls) = std::env::var("TRAILKEEPER_CALL_LOG") {
        command.env("TRAILKEEPER_CALL_LOG", calls);
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(log.with_extension("err")).unwrap())
        .spawn()
        .expect("trailkeeper run starts");
    Operator { child, log, pod_name }
}

fn ready(b: &LoggingBaseline) -> bool {
    b.status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Installs the chart with `values`, runs the operator as its Deployment would, and checks that a
/// baseline in `baseline_namespace` (with `labels`) reaches Ready with status, Events and the Lease,
/// that deleting it completes (the finalizer is removed), and that RBAC refused nothing.
async fn install_and_run(values: Option<&str>, baseline_namespace: Option<&str>, labels: &[(&str, &str)]) {
    // Two cluster-wide releases running at once would both reconcile every baseline.
    static ONE_OPERATOR: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one_at_a_time = ONE_OPERATOR.lock().await;
    let client = cluster::admin().await;
    // The namespace of watchNamespace exists before the chart puts its Role there.
    if let Some(ns) = baseline_namespace {
        cluster::create_namespace(&client, ns).await;
    }
    let values = values.map(|v| root().join("charts/trailkeeper/ci").join(v));
    let release = install(&client, &root().join("charts/trailkeeper"), values.as_deref()).await;
    let service_account = release.service_account();
    let token = cluster::service_account_token(&client, &release.namespace, &service_account).await;
    let mut operator = start_operator(&release, &token);

    let namespace = match baseline_namespace {
        Some(ns) => ns.to_string(),
        None => cluster::fresh_namespace(&client, "accounts").await,
    };
    let baselines: Api<LoggingBaseline> = Api::namespaced(client.clone(), &namespace);
    let account = common::new_account();
    let mut baseline = common::baseline(&account);
    baseline.metadata.namespace = Some(namespace.clone());
    baseline.metadata.labels = Some(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    baselines.create(&PostParams::default(), &baseline).await.unwrap();
    let name = baseline.name_any();
    let what = format!("{name} Ready under the chart's ServiceAccount ({values:?})");
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !baselines.get(&name).await.is_ok_and(|b| ready(&b)) {
        if let Ok(Some(exit)) = operator.child.try_wait() {
            panic!(
                "trailkeeper run exited ({exit}) before {what}\n--- its log\n{}",
                operator.log()
            );
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}\n--- operator log\n{}",
            operator.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let stored = baselines.get(&name).await.unwrap();
    let status = stored.status.expect("status is written");
    assert!(
        status.last_reconcile.is_some() && status.trail_arn.is_some(),
        "{status:?}"
    );

    let events: Api<Event> = Api::namespaced(client.clone(), &namespace);
    let events = events.list(&Default::default()).await.unwrap().items;
    assert!(
        events
            .iter()
            .any(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name.as_str())),
        "no Event about {name}"
    );

    let leases: Api<Lease> = Api::namespaced(client.clone(), &release.namespace);
    let env = |name: &str| {
        release.object("Deployment")["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .map(str::to_string)
    };
    let mut lease_name = env("TRAILKEEPER_LEASE_NAME").expect("the chart sets the Lease name");
    // With sharding, the Lease of the account's shard.
    if let Some(shards) = env("TRAILKEEPER_SHARDS") {
        let shards: u32 = shards.parse().expect("a number of shards");
        let shard = trailkeeper::runtime::leader::shards::shard_of(&account, shards);
        lease_name = trailkeeper::runtime::leader::shards::shard_lease(&lease_name, shard);
    }
    let lease = leases.get(&lease_name).await.expect("the Lease exists");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some(operator.pod_name.as_str()),
        "the operator holds the Lease"
    );

    // Deleting the baseline runs the finalizer (Retain): the operator must be allowed to remove it.
    baselines.delete(&name, &DeleteParams::default()).await.unwrap();
    cluster::eventually(&format!("{name} deleted"), TIMEOUT, || {
        let (api, name) = (baselines.clone(), name.clone());
        async move { api.get_opt(&name).await.is_ok_and(|b| b.is_none()) }
    })
    .await;
    drop(operator);

    let user = format!("system:serviceaccount:{}:{service_account}", release.namespace);
    let requests = cluster::api_server().audit_events_of(&user);
    assert!(
        requests.len() > 5,
        "the audit log shows {} requests of {user}: the operator did not act as the chart's ServiceAccount",
        requests.len()
    );
    let forbidden: Vec<String> = requests
        .iter()
        .filter(|e| e["responseStatus"]["code"] == 403)
        .map(|e| format!("{} {}", e["verb"], e["requestURI"]))
        .collect();
    assert!(
        forbidden.is_empty(),
        "the chart's RBAC refused requests of the operator: {forbidden:#?}"
    );
}

#[tokio::test]
async fn with_default_values_the_operator_runs_cluster_wide_as_the_charts_service_account() {
    install_and_run(None, None, &[]).await;
}

#[tokio::test]
async fn with_each_ci_values_file_the_chart_installs_and_the_operator_runs_as_configured() {
    let client = cluster::admin().await;
    // monitoring-values.yaml renders a ServiceMonitor and a PrometheusRule: the cluster has the
    // Prometheus Operator's CRDs, as any cluster that enables them does (minimal stand-ins here).
    let stand_in = |kind: &str, plural: &str| -> CustomResourceDefinition {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.monitoring.coreos.com")},
            "spec": {"group": "monitoring.coreos.com", "scope": "Namespaced",
                "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase()},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
        }))
        .unwrap()
    };
    cluster::apply_crds(
        &client,
        &[
            stand_in("ServiceMonitor", "servicemonitors"),
            stand_in("PrometheusRule", "prometheusrules"),
        ],
    )
    .await;

    let mut files: Vec<String> = std::fs::read_dir(root().join("charts/trailkeeper/ci"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "ha-values.yaml",
            "monitoring-values.yaml",
            "namespaced-values.yaml",
            "sharded-values.yaml"
        ]
    );
    for file in &files {
        let text = std::fs::read_to_string(root().join("charts/trailkeeper/ci").join(file)).unwrap();
        let values: Value = serde_yaml::from_str(&text).unwrap();
        let watch = values["watchNamespace"].as_str();
        // A selector of the form key=value: the baseline carries that label.
        let selector = values["selector"].as_str().and_then(|s| s.split_once('='));
        let labels: Vec<(&str, &str)> = selector.into_iter().collect();
        install_and_run(Some(file), watch, &labels).await;
    }
}
