//! A LoggingBaselineSet's baselines, as data: which accounts it selects and each one's
//! LoggingBaseline, rendered from the template.

use std::collections::BTreeMap;

use kube::api::ObjectMeta;
use kube::{Resource, ResourceExt};
use serde_json::Value;

use crate::api::{LoggingBaseline, LoggingBaselineSet, LoggingBaselineSpec, names};

/// The label naming the set a baseline belongs to, and the one naming its account.
pub const SET_LABEL: &str = "trailkeeper.io/set";
pub const ACCOUNT_LABEL: &str = "trailkeeper.io/account-id";

/// An account a generator selected, with what the template may use of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelectedAccount {
    pub id: String,
    pub name: String,
    pub tags: BTreeMap<String, String>,
}

/// The name of the set's baseline for an account. A valid set (see `check`) has a name of at most
/// 63 characters, so the child's name is the whole set name, '-' and the account id.
pub fn baseline_name(set: &str, account: &str) -> String {
    format!("{set}-{account}")
}

/// A reason the whole set is refused, whatever its accounts: the field and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetProblem {
    pub path: String,
    pub message: String,
}

/// The spec schema of a LoggingBaseline, generated once (generating a CRD costs milliseconds).
fn baseline_spec_schema() -> &'static Value {
    static SCHEMA: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| crate::api::schema_of::<LoggingBaseline>()["properties"]["spec"].clone())
}

/// What makes a set invalid before any account is rendered: a name too long for the label its
/// baselines carry, template labels and annotations the API server would refuse, and fields of the
/// template's spec that a LoggingBaseline does not have. The CRD keeps the template's spec as
/// unknown fields (its strings hold placeholders), so neither the API server nor the typed decode
/// of a rendered spec would notice a misspelt field: `mod: Observe` would be dropped, and the
/// children would run with the default, Enforce.
pub fn check(set: &LoggingBaselineSet) -> Vec<SetProblem> {
    let mut problems = Vec::new();
    let mut problem = |path: String, message: String| problems.push(SetProblem { path, message });
    let name = set.name_any();
    if name.len() > names::LABEL_VALUE_MAX {
        problem(
            "metadata.name".into(),
            format!(
                "is {} characters long: a set's name is the value of its baselines' label {SET_LABEL}, at most {} characters",
                name.len(),
                names::LABEL_VALUE_MAX
            ),
        );
    }
    let template = &set.spec.template;
    for (key, value) in &template.labels {
        let path = crate::api::schema::join("spec.template.labels", key);
        if let Err(e) = names::check_qualified_name(key) {
            problem(path.clone(), format!("{key:?} is not a valid label key: {e}"));
        }
        if !value.contains("{{")
            && let Err(e) = names::check_label_value(value)
        {
            problem(path, format!("{value:?} is not a valid label value: {e}"));
        }
    }
    for key in template.annotations.keys() {
        if let Err(e) = names::check_qualified_name(key) {
            problem(
                crate::api::schema::join("spec.template.annotations", key),
                format!("{key:?} is not a valid annotation key: {e}"),
            );
        }
    }
    if !template.spec.is_object() {
        problem(
            "spec.template.spec".into(),
            "must be an object (a LoggingBaseline spec)".into(),
        );
    }
    for e in crate::api::schema::unknown_fields(baseline_spec_schema(), &template.spec, "spec.template.spec") {
        problem(e.path, e.message);
    }
    problems
}

/// Replaces the placeholders in every string of `value`. Err: the first unknown placeholder.
fn substitute(value: &mut Value, account: &SelectedAccount) -> Result<(), String> {
    match value {
        Value::String(s) if s.contains("{{") => {
            let mut out = String::with_capacity(s.len());
            let mut rest = s.as_str();
            while let Some(start) = rest.find("{{") {
                out.push_str(&rest[..start]);
                let after = &rest[start + 2..];
                let end = after
                    .find("}}")
                    .ok_or_else(|| format!("unclosed placeholder in {s:?}"))?;
                let name = after[..end].trim();
                let replacement =
                    match name {
                        "accountId" => account.id.clone(),
                        "accountName" => account.name.clone(),
                        tag if tag.starts_with("tag:") => account.tags.get(&tag[4..]).cloned().ok_or_else(|| {
                            format!("account {} has no tag {:?} ({{{{{name}}}}})", account.id, &tag[4..])
                        })?,
                        other => {
                            return Err(format!(
                                "unknown placeholder {{{{{other}}}}}: use accountId, accountName or tag:KEY"
                            ));
                        }
                    };
                out.push_str(&replacement);
                rest = &after[end + 2..];
            }
            out.push_str(rest);
            *s = out;
            Ok(())
        }
        Value::Array(items) => items.iter_mut().try_for_each(|v| substitute(v, account)),
        Value::Object(map) => map.values_mut().try_for_each(|v| substitute(v, account)),
        _ => Ok(()),
    }
}

/// The set's LoggingBaseline for `account`: named after the set and the account, labelled with
/// both, owned by the set. Err: why the template does not render into a valid spec.
pub fn render(set: &LoggingBaselineSet, account: &SelectedAccount) -> Result<LoggingBaseline, String> {
    let mut spec = set.spec.template.spec.clone();
    if !spec.is_object() {
        return Err("template.spec is not an object".into());
    }
    substitute(&mut spec, account)?;
    if spec.get("accountId").is_none() {
        spec["accountId"] = Value::String(account.id.clone());
    }
    if spec["accountId"] != account.id.as_str() {
        return Err(format!(
            "template.spec.accountId renders to {}, not to the account {}",
            spec["accountId"], account.id
        ));
    }
    let spec: LoggingBaselineSpec =
        serde_json::from_value(spec).map_err(|e| format!("the rendered spec is not a LoggingBaseline spec: {e}"))?;
    let set_name = set.name_any();
    // Placeholders in labels and annotations too, and the rendered label values as the API
    // server will check them.
    let mut labels = BTreeMap::new();
    for (key, value) in &set.spec.template.labels {
        let mut rendered = Value::String(value.clone());
        substitute(&mut rendered, account)?;
        let rendered = rendered.as_str().unwrap_or_default().to_string();
        names::check_label_value(&rendered).map_err(|e| {
            let path = crate::api::schema::join("spec.template.labels", key);
            format!("{path} renders to {rendered:?}, not a valid label value: {e}")
        })?;
        labels.insert(key.clone(), rendered);
    }
    labels.insert(SET_LABEL.into(), set_name.clone());
    labels.insert(ACCOUNT_LABEL.into(), account.id.clone());
    let mut annotations = BTreeMap::new();
    for (key, value) in &set.spec.template.annotations {
        let mut rendered = Value::String(value.clone());
        substitute(&mut rendered, account)?;
        annotations.insert(key.clone(), rendered.as_str().unwrap_or_default().to_string());
    }
    Ok(LoggingBaseline {
        metadata: ObjectMeta {
            name: Some(baseline_name(&set_name, &account.id)),
            namespace: set.namespace(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: set.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        spec,
        status: None,
    })
}

/// The accounts of an `accounts` generator (offline).
pub fn listed_accounts(set: &LoggingBaselineSet) -> Option<Vec<SelectedAccount>> {
    let listed = set.spec.generator.accounts.as_ref()?;
    Some(
        listed
            .iter()
            .map(|a| SelectedAccount {
                id: a.id.clone(),
                name: a.name.clone().unwrap_or_else(|| a.id.clone()),
                tags: a.tags.clone(),
            })
            .collect(),
    )
}

/// Whether `baseline` belongs to the set (its controller owner reference names the set's uid,
/// or, for a set not yet created, its label names the set).
pub fn owned_by(baseline: &LoggingBaseline, set: &LoggingBaselineSet) -> bool {
    match set.uid() {
        Some(uid) => baseline
            .owner_references()
            .iter()
            .any(|o| o.uid == uid && o.controller == Some(true)),
        None => baseline.labels().get(SET_LABEL) == Some(&set.name_any()),
    }
}

/// What a set should make of its namespace's baselines: create or update (rendered), delete
/// (owned, no longer selected), and the selected accounts it must leave alone.
#[derive(Debug, Default)]
pub struct SetPlan {
    pub apply: Vec<LoggingBaseline>,
    /// Of `apply`, those that exist with another spec, labels or annotations.
    pub updates: usize,
    /// Of `apply`, those that exist as rendered: nothing to write.
    pub unchanged: Vec<String>,
    pub delete: Vec<String>,
    pub conflicts: Vec<crate::api::SetConflict>,
}

/// Pure: the set's selected accounts against the namespace's baselines.
pub fn plan(set: &LoggingBaselineSet, selected: &[SelectedAccount], existing: &[LoggingBaseline]) -> SetPlan {
    let mut plan = SetPlan::default();
    let mut wanted = std::collections::BTreeSet::new();
    for account in selected {
        let rendered = match render(set, account) {
            Ok(b) => b,
            Err(reason) => {
                plan.conflicts.push(crate::api::SetConflict {
                    account_id: account.id.clone(),
                    baseline: None,
                    reason,
                });
                continue;
            }
        };
        let name = rendered.name_any();
        // A baseline for the same account that is not this set's: a person's (or another set's).
        let foreign = existing
            .iter()
            .find(|b| b.spec.account_id == account.id && !owned_by(b, set))
            .or_else(|| existing.iter().find(|b| b.name_any() == name && !owned_by(b, set)));
        if let Some(other) = foreign {
            plan.conflicts.push(crate::api::SetConflict {
                account_id: account.id.clone(),
                baseline: Some(other.name_any()),
                reason: format!(
                    "the LoggingBaseline {} (not of this set) already keeps account {}: left alone",
                    other.name_any(),
                    account.id
                ),
            });
            continue;
        }
        wanted.insert(name.clone());
        match existing.iter().find(|b| b.name_any() == name) {
            Some(current) if same(current, &rendered) => plan.unchanged.push(name),
            Some(_) => {
                plan.updates += 1;
                plan.apply.push(rendered);
            }
            None => plan.apply.push(rendered),
        }
    }
    for b in existing.iter().filter(|b| owned_by(b, set)) {
        if !wanted.contains(&b.name_any()) && b.metadata.deletion_timestamp.is_none() {
            plan.delete.push(b.name_any());
        }
    }
    plan
}

/// The rendered spec, labels and annotations are already the baseline's.
fn same(current: &LoggingBaseline, rendered: &LoggingBaseline) -> bool {
    let contains = |have: &BTreeMap<String, String>, want: &Option<BTreeMap<String, String>>| {
        want.iter().flatten().all(|(k, v)| have.get(k) == Some(v))
    };
    current.spec == rendered.spec
        && contains(current.labels(), &rendered.metadata.labels)
        && contains(current.annotations(), &rendered.metadata.annotations)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(spec: serde_json::Value) -> LoggingBaselineSet {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "trailkeeper.io/v1alpha1", "kind": "LoggingBaselineSet",
            "metadata": {"name": "fleet", "namespace": "accounts", "uid": "u-1"},
            "spec": {"template": {"spec": spec}, "generator": {"accounts": [
                {"id": "111122223333", "name": "payments", "tags": {"env": "prod"}},
                {"id": "444455556666"}
            ]}}
        }))
        .unwrap()
    }

    fn template() -> serde_json::Value {
        serde_json::json!({
            "primaryRegion": "us-east-1",
            "credentials": {"assumeRoleArn": "arn:aws:iam::{{accountId}}:role/trailkeeper"},
            "tags": {"account": "{{accountName}}"}
        })
    }

    #[test]
    fn the_template_renders_each_accounts_names_and_ownership() {
        let set = set(template());
        let accounts = listed_accounts(&set).unwrap();
        let b = render(&set, &accounts[0]).unwrap();
        assert_eq!(b.name_any(), "fleet-111122223333");
        assert_eq!(b.spec.account_id, "111122223333");
        assert_eq!(
            b.spec.credentials.as_ref().unwrap().assume_role_arn,
            "arn:aws:iam::111122223333:role/trailkeeper"
        );
        assert_eq!(b.spec.tags["account"], "payments");
        assert_eq!(b.labels()[SET_LABEL], "fleet");
        assert_eq!(b.owner_references()[0].uid, "u-1");
        // Without a name, the account id stands for it.
        assert_eq!(render(&set, &accounts[1]).unwrap().spec.tags["account"], "444455556666");
    }

    #[test]
    fn unknown_placeholders_and_missing_tags_are_conflicts_not_baselines() {
        let mut t = template();
        t["tags"]["team"] = "{{tag:team}}".into();
        let set = set(t);
        let p = plan(&set, &listed_accounts(&set).unwrap(), &[]);
        assert!(p.apply.is_empty());
        assert_eq!(p.conflicts.len(), 2);
        assert!(p.conflicts[0].reason.contains("no tag \"team\""), "{:?}", p.conflicts);
    }

    #[test]
    fn hand_written_baselines_are_conflicts_and_children_no_longer_selected_are_deleted() {
        let set = set(template());
        let accounts = listed_accounts(&set).unwrap();
        let mut hand = render(&set, &accounts[0]).unwrap();
        hand.metadata.name = Some("payments".into());
        hand.metadata.owner_references = None;
        let mut gone = render(
            &set,
            &SelectedAccount {
                id: "777788889999".into(),
                name: "old".into(),
                tags: Default::default(),
            },
        )
        .unwrap();
        gone.metadata.uid = Some("g".into());
        let current = render(&set, &accounts[1]).unwrap();
        let p = plan(&set, &accounts, &[hand, gone, current]);
        assert_eq!(p.conflicts.len(), 1);
        assert_eq!(p.conflicts[0].baseline.as_deref(), Some("payments"));
        assert_eq!(p.unchanged, ["fleet-444455556666"]);
        assert!(p.apply.is_empty());
        assert_eq!(p.delete, ["fleet-777788889999"]);
    }

    #[test]
    fn misspelt_template_fields_make_the_whole_set_invalid() {
        let mut t = template();
        t["mod"] = "Observe".into();
        t["regoins"] = serde_json::json!(["eu-west-1"]);
        t["trail"] = serde_json::json!({"polcyRef": {"name": "strict"}});
        t["credentials"]["externalld"] = "x".into();
        let problems = check(&set(t));
        let paths: Vec<&str> = problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "spec.template.spec.credentials.externalld",
                "spec.template.spec.mod",
                "spec.template.spec.regoins",
                "spec.template.spec.trail.polcyRef"
            ]
        );
        assert!(
            problems
                .iter()
                .all(|p| p.message.starts_with("unknown field (check its spelling"))
        );
        assert_eq!(check(&set(template())), []);
    }

    #[test]
    fn a_name_too_long_for_the_set_label_and_invalid_label_keys_are_refused() {
        let mut long = set(template());
        long.metadata.name = Some("a".repeat(64));
        assert_eq!(check(&long)[0].path, "metadata.name");
        let mut labelled = set(template());
        labelled
            .spec
            .template
            .labels
            .insert("bad key/with space".into(), "x".into());
        labelled
            .spec
            .template
            .annotations
            .insert("ok.example/fine".into(), "any text at all".into());
        let problems = check(&labelled);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].path, "spec.template.labels[\"bad key/with space\"]");
    }

    #[test]
    fn placeholders_in_labels_and_annotations_are_rendered_and_label_values_checked() {
        let mut s = set(template());
        s.spec.template.labels.insert("account".into(), "{{accountId}}".into());
        s.spec
            .template
            .annotations
            .insert("owner".into(), "team of {{accountName}}".into());
        let accounts = listed_accounts(&s).unwrap();
        let b = render(&s, &accounts[0]).unwrap();
        assert_eq!(b.labels()["account"], "111122223333");
        assert_eq!(b.annotations()["owner"], "team of payments");
        s.spec
            .template
            .labels
            .insert("name".into(), "{{accountName}} team".into());
        let err = render(&s, &accounts[0]).unwrap_err();
        assert!(
            err.contains("spec.template.labels.name renders to \"payments team\""),
            "{err}"
        );
    }
}
