//! The Helm chart: its CRDs are the generated ones, and its RBAC rules grant every Kubernetes API
//! request the test suite saw the controller make (recorded by the API server verifier into
//! TRAILKEEPER_K8S_CALL_LOG; scripts/test.sh runs the ignored test after the suite).

use std::collections::BTreeSet;
use std::path::Path;

fn chart() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("charts/trailkeeper")
}

#[test]
fn the_chart_crds_are_the_generated_crds() {
    for (name, yaml) in trailkeeper::api::crd_files().unwrap() {
        let in_chart = std::fs::read_to_string(chart().join("crds").join(&name)).unwrap_or_default();
        assert!(
            in_chart == yaml,
            "charts/trailkeeper/crds/{name} differs from crds/: copy crds/*.yaml into the chart"
        );
    }
    let count = std::fs::read_dir(chart().join("crds")).unwrap().count();
    assert_eq!(
        count,
        trailkeeper::api::crd_files().unwrap().len(),
        "the chart holds exactly trailkeeper's CRDs"
    );
}

/// (apiGroup, resource, verb) granted by the chart's rules (ClusterRole or Role, and the leader
/// election Role).
fn granted() -> BTreeSet<(String, String, String)> {
    let template = std::fs::read_to_string(chart().join("templates/rbac.yaml")).unwrap();
    let mut granted = BTreeSet::new();
    for document in template.split("\n---") {
        let Some((_, rules)) = document.split_once("\nrules:\n") else {
            continue;
        };
        let rules: String = rules
            .lines()
            .filter(|l| !l.trim_start().starts_with("{{"))
            .collect::<Vec<_>>()
            .join("\n");
        let rules: Vec<serde_json::Value> = serde_yaml::from_str(&rules).unwrap();
        for rule in rules {
            for group in rule["apiGroups"].as_array().unwrap() {
                for resource in rule["resources"].as_array().unwrap() {
                    for verb in rule["verbs"].as_array().unwrap() {
                        granted.insert((
                            group.as_str().unwrap().to_string(),
                            resource.as_str().unwrap().to_string(),
                            verb.as_str().unwrap().to_string(),
                        ));
                    }
                }
            }
        }
    }
    granted
}

/// The RBAC (group, resource, verb) of a request line `METHOD /apis/g/v/namespaces/ns/r/name/sub?q`.
fn requirement(line: &str) -> (String, String, String) {
    let (method, uri) = line.split_once(' ').unwrap();
    let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (group, rest) = match parts[0] {
        "api" => ("", &parts[2..]),
        _ => (parts[1], &parts[3..]),
    };
    let rest = if rest.first() == Some(&"namespaces") && rest.len() > 2 {
        &rest[2..]
    } else {
        rest
    };
    let resource = match rest {
        [r, _name, sub] => format!("{r}/{sub}"),
        [r, ..] => r.to_string(),
        [] => panic!("no resource in {line}"),
    };
    let named = rest.len() > 1;
    let verb = match (method, named) {
        ("GET", true) => "get",
        ("GET", false) if query.split('&').any(|q| q == "watch=true") => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", _) => "delete",
        _ => panic!("unexpected method in {line}"),
    };
    (group.to_string(), resource, verb.to_string())
}

#[test]
fn requests_map_to_rbac_requirements() {
    assert_eq!(
        requirement("PATCH /apis/trailkeeper.io/v1alpha1/namespaces/a/loggingbaselines/b/status?fieldManager=x"),
        (
            "trailkeeper.io".into(),
            "loggingbaselines/status".into(),
            "patch".into()
        )
    );
    assert_eq!(
        requirement("GET /apis/trailkeeper.io/v1alpha1/trailpolicies?watch=true&timeoutSeconds=290"),
        ("trailkeeper.io".into(), "trailpolicies".into(), "watch".into())
    );
    assert_eq!(
        requirement("POST /apis/events.k8s.io/v1/namespaces/a/events"),
        ("events.k8s.io".into(), "events".into(), "create".into())
    );
    assert!(granted().contains(&("coordination.k8s.io".into(), "leases".into(), "update".into())));
}

#[test]
#[ignore = "runs after the whole suite, over its request log: scripts/test.sh"]
fn the_chart_rbac_grants_every_request_the_controller_made() {
    let log = std::env::var("TRAILKEEPER_K8S_CALL_LOG").expect("scripts/test.sh sets TRAILKEEPER_K8S_CALL_LOG");
    let requests = std::fs::read_to_string(&log).unwrap_or_else(|e| panic!("cannot read {log}: {e}"));
    let needed: BTreeSet<_> = requests.lines().map(requirement).collect();
    for kind in ["loggingbaselines", "trailpolicies", "retentionpolicies"] {
        assert!(
            needed.iter().any(|(_, r, v)| r == kind && v == "watch"),
            "the log lacks the watch of {kind}"
        );
    }
    let granted = granted();
    let missing: Vec<_> = needed.difference(&granted).collect();
    assert!(missing.is_empty(), "the chart's RBAC lacks: {missing:?}");
}
