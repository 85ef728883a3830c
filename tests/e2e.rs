//! End to end against a real Kubernetes API server, with AWS on moto. Runs when
//! TRAILKEEPER_E2E_KUBECONFIG names a kubeconfig; skipped with a printed reason otherwise.
//! Needs nothing but the API server and etcd: the controller runs in this process, and nothing
//! relies on pods, the garbage collector or a controller-manager.

mod common;

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};
use serde_json::json;
use trailkeeper::api::{LoggingBaseline, RetentionPolicy};
use trailkeeper::desired;
use trailkeeper::reconcile::controller::{self, Context, Settings};

const KUBECONFIG_ENV: &str = "TRAILKEEPER_E2E_KUBECONFIG";
const TIMEOUT: Duration = Duration::from_secs(180);

async fn client() -> Option<Client> {
    let Ok(path) = std::env::var(KUBECONFIG_ENV) else {
        eprintln!("skipped: set {KUBECONFIG_ENV} to a kubeconfig to run the end-to-end tests against a cluster");
        return None;
    };
    let kubeconfig = Kubeconfig::read_from(&path).expect("the kubeconfig reads");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("a config");
    Some(Client::try_from(config).expect("a client"))
}

/// Polls `check` every second until it is true, or fails with `what` after TIMEOUT.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn install_crds(client: &Client) {
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    for crd in trailkeeper::api::crds() {
        let name = crd.name_any();
        crds.patch(
            &name,
            &PatchParams::apply("trailkeeper-e2e").force(),
            &Patch::Apply(&crd),
        )
        .await
        .unwrap();
        let api = crds.clone();
        eventually(&format!("CRD {name} established"), || {
            let (api, name) = (api.clone(), name.clone());
            async move {
                api.get(&name)
                    .await
                    .ok()
                    .and_then(|c| c.status)
                    .and_then(|s| s.conditions)
                    .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Established" && c.status == "True"))
            }
        })
        .await;
    }
}

fn ready(b: &LoggingBaseline) -> bool {
    b.status
        .as_ref()
        .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test]
async fn the_operator_converges_examples_follows_policy_changes_repairs_drift_and_retains_on_delete() {
    let Some(client) = client().await else { return };
    install_crds(&client).await;
    let ns = format!("trailkeeper-e2e-{}", std::process::id());
    let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();

    let settings = Settings {
        resync: Duration::from_secs(5),
        retry_base: Duration::from_secs(1),
        watch_namespace: Some(ns.clone()),
        ..Settings::default()
    };
    let ctx = Arc::new(Context::new(client.clone(), common::base_config().await, settings));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(controller::run(ctx, async move {
        let _ = stopped.await;
    }));

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
        let (api, name) = (baselines.clone(), format!("acct-{account}"));
        eventually(&format!("{name} Ready"), || {
            let (api, name) = (api.clone(), name.clone());
            async move { api.get(&name).await.is_ok_and(|b| ready(&b)) }
        })
        .await;
        let aws = common::inspector(account).await;
        let spec = common::spec(account);
        let status = aws
            .cloudtrail
            .get_trail_status()
            .name(desired::trail_arn(&spec))
            .send()
            .await
            .unwrap();
        assert_eq!(status.is_logging, Some(true));
    }

    // A RetentionPolicy change reaches every baseline that uses it.
    retention
        .patch(
            "default",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"trailLogs": {"objectLock": {"defaultRetentionDays": 400}}}})),
        )
        .await
        .unwrap();
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
    eventually("logging restarted", || {
        let (ct, trail) = (aws.cloudtrail.clone(), trail.clone());
        async move {
            ct.get_trail_status()
                .name(&trail)
                .send()
                .await
                .ok()
                .and_then(|s| s.is_logging)
                == Some(true)
        }
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
    let status = aws.cloudtrail.get_trail_status().name(&trail).send().await.unwrap();
    assert_eq!(status.is_logging, Some(true), "Retain never stops logging");

    let _ = stop.send(());
    controller.await.unwrap();
    for account in &accounts[1..] {
        // The controller is stopped: strip the finalizer so that the namespace can go.
        let name = format!("acct-{account}");
        let _ = baselines
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
            )
            .await;
    }
    let _ = namespaces.delete(&ns, &DeleteParams::default()).await;
}
