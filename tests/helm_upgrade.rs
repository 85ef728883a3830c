//! `helm upgrade` to a chart whose CRD gained a field, the way the README says to upgrade CRDs.
//! In a test binary of its own: it changes a CRD of its API server for good.

mod common;

use std::path::Path;

use common::cluster;
use common::helm::{helm, install, root};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use serde_json::Value;
use trailkeeper::api::RetentionPolicy;

/// Helm installs `crds/` on the first install only and never upgrades them. The README's way:
/// apply the new chart's CRDs server-side, then `helm upgrade`.
#[tokio::test]
async fn an_upgrade_to_a_chart_whose_crd_gained_a_field_follows_the_readme() {
    let client = cluster::admin().await;
    let release = install(&client, &root().join("charts/trailkeeper"), None).await;

    // The next chart: its RetentionPolicy CRD has a new field.
    let next = tempfile::tempdir().unwrap();
    let chart = next.path().join("trailkeeper");
    copy_dir(&root().join("charts/trailkeeper"), &chart);
    let crd_file = chart.join("crds/retentionpolicies.trailkeeper.io.yaml");
    let mut crd: Value = serde_yaml::from_str(&std::fs::read_to_string(&crd_file).unwrap()).unwrap();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["reviewNote"] =
        serde_json::json!({"type": "string", "description": "A field the next version adds."});
    std::fs::write(&crd_file, format!("---\n{}", serde_yaml::to_string(&crd).unwrap())).unwrap();
    let chart_yaml = chart.join("Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml).unwrap();
    std::fs::write(&chart_yaml, text.replace("\nversion: ", "\nversion: 9.9.9\n# was: ")).unwrap();

    let policies: Api<RetentionPolicy> = Api::namespaced(client.clone(), &release.namespace);
    let raw: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        &release.namespace,
        &kube::api::ApiResource::erase::<RetentionPolicy>(&()),
    );
    let with_note = |name: &str| -> kube::api::DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "trailkeeper.io/v1alpha1", "kind": "RetentionPolicy",
            "metadata": {"name": name}, "spec": {"reviewNote": "kept"}
        }))
        .unwrap()
    };

    // helm upgrade alone leaves the old CRD: the new field is pruned.
    let chart_path = chart.display().to_string();
    helm(&["upgrade", &release.name, &chart_path, "-n", &release.namespace]).await;
    let stored = raw.create(&PostParams::default(), &with_note("before")).await.unwrap();
    assert!(
        stored.data["spec"].get("reviewNote").is_none(),
        "helm upgrade does not upgrade CRDs"
    );

    // The README's step: apply the chart's CRDs server-side (as kubectl apply --server-side).
    let crds: Vec<CustomResourceDefinition> = std::fs::read_dir(chart.join("crds"))
        .unwrap()
        .map(|e| serde_yaml::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap())
        .collect();
    cluster::apply_crds(&client, &crds).await;
    let stored = raw.create(&PostParams::default(), &with_note("after")).await.unwrap();
    assert_eq!(stored.data["spec"]["reviewNote"], "kept");
    // The old objects are still served, with their defaults.
    let before = policies.get("before").await.unwrap();
    assert_eq!(before.spec.trail_logs.object_lock.default_retention_days, 365);
    let history = helm(&["history", &release.name, "-n", &release.namespace, "-o", "json"]).await;
    assert!(history.contains("9.9.9"), "{history}");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
