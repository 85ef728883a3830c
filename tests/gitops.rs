//! The GitOps examples of deploy/gitops/ apply as written: every Flux reference (a Kustomization's
//! dependsOn, a sourceRef) names an object the examples define, of a kind it may name, and every
//! path into this repository (a Kustomization's path, a HelmRelease's or an Argo CD Application's
//! chart) exists, with the kustomization.yaml resources it lists.

use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn documents(dir: &Path, found: &mut Vec<(PathBuf, Value)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            documents(&path, found);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            for doc in serde_yaml::Deserializer::from_str(&text) {
                let value: Value = serde::Deserialize::deserialize(doc).unwrap();
                if value.is_object() {
                    found.push((path.clone(), value));
                }
            }
        }
    }
}

fn namespace_of(object: &Value) -> &str {
    object["metadata"]["namespace"].as_str().unwrap_or("default")
}

/// The objects of kind `kind` named `name` in `namespace`.
fn defined<'a>(objects: &'a [(PathBuf, Value)], kind: &str, name: &str, namespace: &str) -> Option<&'a Value> {
    objects
        .iter()
        .map(|(_, o)| o)
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name && namespace_of(o) == namespace)
}

/// The repository URL of the GitRepository that holds this project (the examples name it so).
fn is_this_repository(objects: &[(PathBuf, Value)], source: &Value, namespace: &str) -> bool {
    let name = source["name"].as_str().unwrap_or_default();
    let ns = source["namespace"].as_str().unwrap_or(namespace);
    defined(objects, "GitRepository", name, ns)
        .and_then(|r| r["spec"]["url"].as_str())
        .is_some_and(|url| url.ends_with("/trailkeeper.git"))
}

#[test]
fn every_reference_and_path_of_the_gitops_examples_resolves() {
    let mut objects = Vec::new();
    documents(&root().join("deploy/gitops"), &mut objects);
    let mut problems = Vec::new();
    let mut flux_kustomizations = 0;
    for (file, object) in &objects {
        let at = format!("{}: {}/{}", file.display(), object["kind"], object["metadata"]["name"]);
        let namespace = namespace_of(object);
        let api = object["apiVersion"].as_str().unwrap_or_default();
        match (
            api.split('/').next().unwrap_or_default(),
            object["kind"].as_str().unwrap_or_default(),
        ) {
            ("kustomize.toolkit.fluxcd.io", "Kustomization") => {
                flux_kustomizations += 1;
                for dependency in object["spec"]["dependsOn"].as_array().into_iter().flatten() {
                    let name = dependency["name"].as_str().unwrap_or_default();
                    let ns = dependency["namespace"].as_str().unwrap_or(namespace);
                    if defined(&objects, "Kustomization", name, ns).is_none() {
                        problems.push(format!("{at}: dependsOn {name}: no Kustomization of that name (dependsOn names Kustomizations only)"));
                    }
                }
                let source = &object["spec"]["sourceRef"];
                let (kind, name) = (
                    source["kind"].as_str().unwrap_or_default(),
                    source["name"].as_str().unwrap_or_default(),
                );
                if defined(&objects, kind, name, source["namespace"].as_str().unwrap_or(namespace)).is_none() {
                    problems.push(format!("{at}: sourceRef {kind}/{name} is not defined"));
                }
                if is_this_repository(&objects, source, namespace) {
                    let dir = root().join(object["spec"]["path"].as_str().unwrap_or_default());
                    let kustomization = dir.join("kustomization.yaml");
                    match std::fs::read_to_string(&kustomization) {
                        Err(_) => problems.push(format!("{at}: {} has no kustomization.yaml", dir.display())),
                        Ok(text) => {
                            let k: Value = serde_yaml::from_str(&text).unwrap();
                            for resource in k["resources"].as_array().into_iter().flatten() {
                                if !dir.join(resource.as_str().unwrap_or_default()).exists() {
                                    problems.push(format!(
                                        "{at}: {} lists {resource}, which is missing",
                                        kustomization.display()
                                    ));
                                }
                            }
                        }
                    }
                }
            }
            ("helm.toolkit.fluxcd.io", "HelmRelease") => {
                let spec = &object["spec"]["chart"]["spec"];
                let source = &spec["sourceRef"];
                let (kind, name) = (
                    source["kind"].as_str().unwrap_or_default(),
                    source["name"].as_str().unwrap_or_default(),
                );
                if defined(&objects, kind, name, source["namespace"].as_str().unwrap_or(namespace)).is_none() {
                    problems.push(format!("{at}: sourceRef {kind}/{name} is not defined"));
                }
                let chart = root()
                    .join(spec["chart"].as_str().unwrap_or_default())
                    .join("Chart.yaml");
                if is_this_repository(&objects, source, namespace) && !chart.exists() {
                    problems.push(format!("{at}: no chart at {}", chart.display()));
                }
            }
            ("argoproj.io", "Application") => {
                let source = &object["spec"]["source"];
                let url = source["repoURL"].as_str().unwrap_or_default();
                if url.ends_with("/trailkeeper.git") {
                    let path = root()
                        .join(source["path"].as_str().unwrap_or_default())
                        .join("Chart.yaml");
                    if !path.exists() {
                        problems.push(format!("{at}: no chart at {}", path.display()));
                    }
                }
            }
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert_eq!(
        flux_kustomizations, 2,
        "the Flux example has its two Kustomizations (the operator, then the accounts)"
    );
}
