//! Helm against this binary's API server (tests/common/cluster.rs).

use std::path::{Path, PathBuf};
use std::process::Command;

use kube::Client;
use serde_json::Value;

use super::cluster;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn helm_path() -> PathBuf {
    if let Ok(path) = std::env::var("TRAILKEEPER_HELM") {
        return PathBuf::from(path);
    }
    let status = Command::new("bash")
        .arg(root().join("scripts/ensure-chart-tools.sh"))
        .status()
        .expect("scripts/ensure-chart-tools.sh runs");
    assert!(status.success(), "scripts/ensure-chart-tools.sh failed");
    root().join(".tools/helm/helm")
}

/// Helm commands change cluster-wide state (the CRDs on first install): one at a time.
static HELM: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub async fn helm(args: &[&str]) -> String {
    let _one_at_a_time = HELM.lock().await;
    let server = cluster::api_server();
    let out = Command::new(helm_path())
        .args(args)
        .arg("--kubeconfig")
        .arg(&server.admin_kubeconfig)
        .env("HELM_CACHE_HOME", server.dir.join("helm/cache"))
        .env("HELM_CONFIG_HOME", server.dir.join("helm/config"))
        .env("HELM_DATA_HOME", server.dir.join("helm/data"))
        .output()
        .expect("helm runs");
    assert!(
        out.status.success(),
        "helm {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// An installed release and what it rendered.
pub struct Release {
    pub name: String,
    pub namespace: String,
    pub objects: Vec<Value>,
}

impl Release {
    pub fn object(&self, kind: &str) -> &Value {
        self.objects
            .iter()
            .find(|o| o["kind"] == kind)
            .unwrap_or_else(|| panic!("the release renders no {kind}"))
    }

    pub fn service_account(&self) -> String {
        self.object("Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
            .as_str()
            .expect("the Deployment names its ServiceAccount")
            .to_string()
    }
}

pub async fn install(client: &Client, chart: &Path, values: Option<&Path>) -> Release {
    let namespace = cluster::fresh_namespace(client, "chart").await;
    let name = format!("tk{}", namespace.rsplit('-').next().unwrap_or("0"));
    let chart = chart.display().to_string();
    let mut args = vec!["install", &name, &chart, "-n", &namespace];
    let values = values.map(|v| v.display().to_string());
    if let Some(v) = &values {
        args.extend(["-f", v]);
    }
    helm(&args).await;
    let manifest = helm(&["get", "manifest", &name, "-n", &namespace]).await;
    let objects = serde_yaml::Deserializer::from_str(&manifest)
        .filter_map(|d| serde::Deserialize::deserialize(d).ok())
        .filter(|v: &Value| v.is_object())
        .collect();
    Release {
        name,
        namespace,
        objects,
    }
}
