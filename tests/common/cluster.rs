//! A real Kubernetes control plane for the tests: etcd and kube-apiserver on free loopback ports
//! (scripts/kube-up.sh), one per test binary, started on first use. TLS with a throwaway CA, a
//! `system:masters` token for the tests, RBAC authorization, a service-account signing key (so
//! TokenRequest works and a test can act as the chart's ServiceAccount) and an audit log (so a
//! test can find every request RBAC refused).
//! No controller-manager runs: namespaces never finish deleting and nothing is garbage-collected,
//! so every test works in namespaces of fresh names.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, ResourceExt};

pub struct ApiServer {
    /// `https://127.0.0.1:PORT`
    pub url: String,
    /// Holds the CA, the kubeconfigs, the logs and etcd's data; removed when the binary ends.
    pub dir: PathBuf,
    /// A kubeconfig with the `system:masters` token (for Helm).
    pub admin_kubeconfig: PathBuf,
    /// One JSON line per request (audit level Metadata).
    pub audit_log: PathBuf,
    admin_token: String,
}

/// A kubeconfig for `url` that authenticates with `token`.
pub fn kubeconfig_yaml(url: &str, ca: &Path, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {url}\n    certificate-authority: {ca}\nusers:\n- name: test\n  user:\n    token: {token}\ncontexts:\n- name: test\n  context: {{cluster: test, user: test}}\ncurrent-context: test\n",
        ca = ca.display()
    )
}

/// The control plane of this test binary, started by scripts/kube-up.sh, which stops it (and
/// removes its files) when this process ends.
pub fn api_server() -> &'static ApiServer {
    static SERVER: OnceLock<ApiServer> = OnceLock::new();
    SERVER.get_or_init(start)
}

fn start() -> ApiServer {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // etcd's writes without fsync are not an option in Debian's 3.4: keep its data in memory.
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let dir = tempfile::Builder::new()
        .prefix("trailkeeper-kube-")
        .tempdir_in(base)
        .expect("a temporary folder")
        .keep();
    let out = Command::new("bash")
        .arg(root.join("scripts/kube-up.sh"))
        .arg(&dir)
        .arg(std::process::id().to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/kube-up.sh runs");
    assert!(
        out.status.success(),
        "scripts/kube-up.sh failed: a real API server is part of the test run (see above)"
    );
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name))
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join(name).display()))
            .trim()
            .to_string()
    };
    ApiServer {
        url: read("url"),
        admin_token: read("token"),
        admin_kubeconfig: dir.join("admin.kubeconfig"),
        audit_log: dir.join("audit.log"),
        dir,
    }
}

impl ApiServer {
    /// A client acting with `token`.
    pub async fn client_with_token(&self, token: &str) -> Client {
        let yaml = kubeconfig_yaml(&self.url, &self.dir.join("ca.crt"), token);
        let kubeconfig = Kubeconfig::from_yaml(&yaml).expect("the kubeconfig parses");
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("a client configuration");
        Client::try_from(config).expect("a client")
    }

    /// Writes a kubeconfig that authenticates with `token` (for a subprocess) and returns its path.
    pub fn write_kubeconfig(&self, name: &str, token: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.kubeconfig"));
        std::fs::write(&path, kubeconfig_yaml(&self.url, &self.dir.join("ca.crt"), token)).unwrap();
        path
    }

    /// The audit events (JSON) of the requests made by `user`.
    pub fn audit_events_of(&self, user: &str) -> Vec<serde_json::Value> {
        let log = std::fs::read_to_string(&self.audit_log).unwrap_or_default();
        log.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["user"]["username"] == user)
            .collect()
    }
}

/// The rules of every Role and ClusterRole of the chart (charts/trailkeeper/templates/rbac.yaml,
/// its template lines dropped): what the operator may do, whatever the values.
pub fn chart_rules() -> Vec<serde_json::Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/trailkeeper/templates/rbac.yaml");
    let template = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut all = Vec::new();
    for document in template.split("\n---") {
        let Some((_, rules)) = document.split_once("\nrules:\n") else {
            continue;
        };
        let rules: String = rules
            .lines()
            .filter(|l| !l.trim_start().starts_with("{{"))
            .collect::<Vec<_>>()
            .join("\n");
        let rules: Vec<serde_json::Value> = serde_yaml::from_str(&rules).expect("the chart's rules parse");
        all.extend(rules);
    }
    all
}

/// The ClusterRole holding the chart's rules (created once per binary).
const CHART_ROLE: &str = "trailkeeper-chart-rules";

/// A ServiceAccount `namespace/name` granted the chart's RBAC rules and nothing else, its token and
/// its user name. The operator runs in the tests under such an identity, so the API server judges
/// the chart's RBAC (a missing rule is a 403 in the test), and the audit log, which records the
/// requests of service accounts only (scripts/kube-up.sh), holds everything the operator asked for
/// (tests/chart.rs judges it after the run). The chart's namespaced Role (the Lease) is granted
/// cluster-wide here: the rules are judged by group, resource and verb.
pub async fn chart_identity(client: &Client, namespace: &str, name: &str) -> (String, String) {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    static ROLE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    ROLE.get_or_init(|| async {
        let role: ClusterRole = serde_json::from_value(serde_json::json!({
            "metadata": {"name": CHART_ROLE}, "rules": chart_rules()
        }))
        .expect("the chart's rules are PolicyRules");
        Api::<ClusterRole>::all(client.clone())
            .patch(
                CHART_ROLE,
                &PatchParams::apply("trailkeeper-tests").force(),
                &Patch::Apply(&role),
            )
            .await
            .unwrap_or_else(|e| panic!("the API server refused the chart's rules: {e}"));
    })
    .await;
    create_namespace(client, namespace).await;
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let account: ServiceAccount = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    match accounts.create(&PostParams::default(), &account).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("ServiceAccount {namespace}/{name}: {e}"),
    }
    let binding: ClusterRoleBinding = serde_json::from_value(serde_json::json!({
        "metadata": {"name": format!("{namespace}-{name}")},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CHART_ROLE},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(client.clone())
        .patch(
            &format!("{namespace}-{name}"),
            &PatchParams::apply("trailkeeper-tests").force(),
            &Patch::Apply(&binding),
        )
        .await
        .unwrap_or_else(|e| panic!("ClusterRoleBinding {namespace}-{name}: {e}"));
    let token = service_account_token(client, namespace, name).await;
    (token, format!("system:serviceaccount:{namespace}:{name}"))
}

/// A client acting as the operator: the ServiceAccount `trailkeeper-operator/operator`, which the
/// chart's RBAC rules bind (see `chart_identity`). One per test binary.
pub async fn operator() -> Client {
    static TOKEN: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    let token = TOKEN
        .get_or_init(|| async {
            let client = admin().await;
            chart_identity(&client, "trailkeeper-operator", "operator").await.0
        })
        .await;
    api_server().client_with_token(token).await
}

/// A `system:masters` client of this binary's API server (started on first use).
pub async fn admin() -> Client {
    let server = api_server();
    server.client_with_token(&server.admin_token).await
}

/// Creates a namespace of a fresh name (`{prefix}-{pid}-{n}`) and returns its name.
pub async fn fresh_namespace(client: &Client, prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    create_namespace(client, &name).await;
    name
}

/// Creates the namespace `name` unless it exists.
pub async fn create_namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    match namespaces.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => panic!("namespace {name}: {e}"),
    }
}

/// Polls `check` every 250 ms until it is true, or fails with `what` after `timeout`.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Applies trailkeeper's CRDs (server-side apply, as `kubectl apply --server-side -f crds/`
/// does) and waits until each is Established.
pub async fn apply_crds(client: &Client, crds: &[CustomResourceDefinition]) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds {
        let name = crd.name_any();
        api.patch(
            &name,
            &PatchParams::apply("trailkeeper-tests").force(),
            &Patch::Apply(crd),
        )
        .await
        .unwrap_or_else(|e| panic!("the API server refused the CRD {name}: {e}"));
    }
    for crd in crds {
        let name = crd.name_any();
        eventually(&format!("CRD {name} established"), Duration::from_secs(30), || {
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

/// Installs trailkeeper's CRDs once per test binary.
pub async fn install_crds(client: &Client) {
    static INSTALLED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    INSTALLED
        .get_or_init(|| async { apply_crds(client, &trailkeeper::api::crds()).await })
        .await;
}

/// A token of the ServiceAccount `name` in `namespace` (TokenRequest, as `kubectl create token`).
pub async fn service_account_token(client: &Client, namespace: &str, name: &str) -> String {
    let request = serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": {"audiences": ["https://kubernetes.default.svc"], "expirationSeconds": 3600}
    });
    let uri = format!("/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token");
    let req = http::Request::post(uri)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&request).unwrap())
        .unwrap();
    let reply: serde_json::Value = client
        .request(req)
        .await
        .unwrap_or_else(|e| panic!("TokenRequest for {namespace}/{name}: {e}"));
    reply["status"]["token"]
        .as_str()
        .expect("a token in the TokenRequest status")
        .to_string()
}

/// A controller running in this process, its stop signal and its context.
pub type Running = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
    std::sync::Arc<trailkeeper::controller::baselines::Context>,
);

/// Runs the controller (in this process, as the operator's identity: `operator`) with `settings`,
/// until the returned sender is used.
pub async fn start_controller(
    base: aws_types::SdkConfig,
    settings: trailkeeper::controller::baselines::Settings,
) -> Running {
    use trailkeeper::controller::baselines::Context;
    let ctx = std::sync::Arc::new(Context::new(operator().await, base, settings));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let controller = tokio::spawn(trailkeeper::controller::run(ctx.clone(), async move {
        let _ = stopped.await;
    }));
    (stop, controller, ctx)
}
