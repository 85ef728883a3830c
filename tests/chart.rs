//! The Helm chart: its CRDs are the generated ones, and its RBAC rules grant every Kubernetes API
//! request the operator made to the real API servers of the test run (their audit logs, in
//! TRAILKEEPER_K8S_AUDIT_DIR; scripts/test.sh runs the ignored test after the suite).

mod common;

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
    let mut granted = BTreeSet::new();
    for rule in common::cluster::chart_rules() {
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
    granted
}

/// The RBAC (group, resource, verb) an audit event's request needed; None for a non-resource
/// request (discovery, /version: granted to every authenticated user by the API server's defaults).
fn requirement(event: &serde_json::Value) -> Option<(String, String, String)> {
    let object = event.get("objectRef")?;
    let resource = match object["subresource"].as_str() {
        Some(sub) => format!("{}/{sub}", object["resource"].as_str()?),
        None => object["resource"].as_str()?.to_string(),
    };
    Some((
        object["apiGroup"].as_str().unwrap_or_default().to_string(),
        resource,
        event["verb"].as_str()?.to_string(),
    ))
}

#[test]
fn audit_events_map_to_rbac_requirements() {
    assert_eq!(
        requirement(
            &serde_json::json!({"verb": "patch", "objectRef": {"resource": "loggingbaselines",
            "subresource": "status", "apiGroup": "trailkeeper.io", "namespace": "a", "name": "b"}})
        ),
        Some((
            "trailkeeper.io".into(),
            "loggingbaselines/status".into(),
            "patch".into()
        ))
    );
    assert_eq!(
        requirement(
            &serde_json::json!({"verb": "watch", "objectRef": {"resource": "trailpolicies", "apiGroup": "trailkeeper.io"}})
        ),
        Some(("trailkeeper.io".into(), "trailpolicies".into(), "watch".into()))
    );
    assert_eq!(
        requirement(
            &serde_json::json!({"verb": "get", "objectRef": {"resource": "leases", "apiGroup": "coordination.k8s.io"}})
        ),
        Some(("coordination.k8s.io".into(), "leases".into(), "get".into()))
    );
    assert_eq!(
        requirement(&serde_json::json!({"verb": "get", "requestURI": "/version"})),
        None
    );
    assert!(granted().contains(&("coordination.k8s.io".into(), "leases".into(), "update".into())));
    assert!(!granted().contains(&("".into(), "secrets".into(), "get".into())));
}

/// What the operator must have been seen doing for the judgement below to mean something: the
/// watches of every kind, the writes of both controllers (status of baselines and sets, the set's
/// children applied and pruned, Events) and the Lease of leader election.
const MUST_BE_SEEN: &[(&str, &str, &str)] = &[
    ("trailkeeper.io", "loggingbaselines", "watch"),
    ("trailkeeper.io", "trailpolicies", "watch"),
    ("trailkeeper.io", "retentionpolicies", "watch"),
    ("trailkeeper.io", "loggingbaselinesets", "watch"),
    ("trailkeeper.io", "logarchives", "watch"),
    ("trailkeeper.io", "logarchives", "get"),
    ("trailkeeper.io", "logarchives/status", "patch"),
    ("trailkeeper.io", "loggingbaselines/status", "patch"),
    ("trailkeeper.io", "loggingbaselinesets/status", "patch"),
    ("trailkeeper.io", "trailpolicies/status", "patch"),
    ("trailkeeper.io", "retentionpolicies/status", "patch"),
    ("trailkeeper.io", "loggingbaselines", "patch"),
    ("trailkeeper.io", "loggingbaselines", "delete"),
    ("events.k8s.io", "events", "create"),
    ("coordination.k8s.io", "leases", "create"),
    ("coordination.k8s.io", "leases", "update"),
];

/// Every request the operator made to the real API servers of the whole test run, as their audit
/// logs recorded them (scripts/kube-up.sh writes them into TRAILKEEPER_K8S_AUDIT_DIR; the operator
/// acts there as service accounts granted exactly the chart's rules: tests/common/cluster.rs
/// `chart_identity`, and the chart's own ServiceAccount in tests/helm.rs): none was refused, and
/// each is granted by the chart's rules, whatever a test did with the answer.
#[test]
#[ignore = "runs after the whole suite, over the API servers' audit logs: scripts/test.sh"]
fn the_chart_rbac_grants_every_request_the_operator_made() {
    let dir = std::env::var("TRAILKEEPER_K8S_AUDIT_DIR").expect("scripts/test.sh sets TRAILKEEPER_K8S_AUDIT_DIR");
    let mut needed = BTreeSet::new();
    let mut refused = BTreeSet::new();
    let mut events = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {dir}: {e}")) {
        let path = entry.unwrap().path();
        let log = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for line in log.lines() {
            let event: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: not an audit event ({e}): {line}", path.display()));
            events += 1;
            if event["responseStatus"]["code"] == 403 {
                refused.insert(format!(
                    "{} {} {}",
                    event["user"]["username"], event["verb"], event["requestURI"]
                ));
            }
            needed.extend(requirement(&event));
        }
    }
    assert!(events > 0, "no audit event in {dir}: did the suite run?");
    assert!(refused.is_empty(), "the API server refused the operator: {refused:#?}");
    for (group, resource, verb) in MUST_BE_SEEN {
        let seen = (group.to_string(), resource.to_string(), verb.to_string());
        assert!(
            needed.contains(&seen),
            "the audit logs lack {verb} {group}/{resource}: the judgement would be blind to it"
        );
    }
    let granted = granted();
    let missing: Vec<_> = needed.difference(&granted).collect();
    assert!(missing.is_empty(), "the chart's RBAC lacks: {missing:?}");
}
