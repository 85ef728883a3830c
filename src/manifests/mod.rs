//! Manifests read from files: loading (files, directories, multi-document YAML), validation as
//! the API server would (schema, CEL) plus the references between them, and the resolution of
//! each LoggingBaseline to the policies it uses.

mod files;
mod resolve;

pub use files::{collect_files, load};
pub use resolve::{ResolvedArchive, ResolvedBaseline, resolve};

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use kube::core::cel::{CompiledSchema, compile_schema, validate_compiled};
use serde::Deserialize;
use serde_json::Value;

use crate::api::{
    API_VERSION, LogArchive, LoggingBaseline, LoggingBaselineSet, PolicyRef, RetentionPolicy, TrailPolicy, names,
    schema,
};

/// Files larger than this are refused rather than parsed.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// One problem found in the manifests, printed as one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    /// `Kind/namespace/name`, or `document N` when the document has no identity.
    pub object: String,
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            String::new()
        } else {
            format!(" {}:", self.path)
        };
        write!(f, "{}: {}:{path} {}", self.file, self.object, self.message)
    }
}

/// A file that could not be read at all (missing, unreadable, not text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    pub file: String,
    pub message: String,
}

impl fmt::Display for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: cannot read: {}", self.file, self.message)
    }
}

/// One YAML document of a file.
#[derive(Clone, Debug)]
pub struct Document {
    pub file: String,
    pub index: usize,
    pub value: Value,
}

/// The trailkeeper objects of a set of manifests, typed.
#[derive(Clone, Debug, Default)]
pub struct ManifestSet {
    /// The LoggingBaselines written out, and those of the sets with an `accounts` generator.
    pub baselines: Vec<(String, LoggingBaseline)>,
    pub sets: Vec<(String, LoggingBaselineSet)>,
    /// Per set: the names of the baselines it expands to (None: an `organization` generator,
    /// expanded by the controller from AWS Organizations).
    pub expansions: Vec<(String, Option<Vec<String>>)>,
    pub trail_policies: Vec<(String, TrailPolicy)>,
    pub retention_policies: Vec<(String, RetentionPolicy)>,
    pub archives: Vec<(String, LogArchive)>,
}

pub fn parse_documents(file: &str, text: &str, documents: &mut Vec<Document>, problems: &mut Vec<Problem>) {
    for (index, doc) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let object = format!("document {}", index + 1);
        let yaml = match serde_yaml::Value::deserialize(doc) {
            Ok(v) => v,
            Err(e) => {
                problems.push(Problem {
                    file: file.into(),
                    object,
                    path: String::new(),
                    message: yaml_error(&e),
                });
                // The parser cannot resume after a syntax error.
                return;
            }
        };
        if yaml.is_null() {
            continue;
        }
        // JSON has no NaN nor infinity: converted, they would silently become null.
        if let Some(path) = non_finite_number(&yaml, "") {
            problems.push(Problem {
                file: file.into(),
                object,
                path,
                message: "is .nan or .inf: not a number the API server can store (write a finite number)".into(),
            });
            continue;
        }
        match serde_json::to_value(&yaml) {
            Ok(value) => documents.push(Document {
                file: file.into(),
                index,
                value,
            }),
            Err(e) => problems.push(Problem {
                file: file.into(),
                object,
                path: String::new(),
                message: format!("not a Kubernetes object: {e}"),
            }),
        }
    }
}

/// What serde_yaml refuses, said for a person, with the line when the parser knows it.
fn yaml_error(e: &serde_yaml::Error) -> String {
    let text = e.to_string();
    let line = e
        .location()
        .map(|l| format!(" (line {})", l.line()))
        .unwrap_or_default();
    if text.contains("as u128") || text.contains("as i128") {
        let number = text.split('`').nth(1).unwrap_or("a number");
        return format!(
            "the integer {number} does not fit in 64 bits{line}: Kubernetes stores integers from -2^63 to 2^63-1"
        );
    }
    if text.contains("repetition limit exceeded") {
        return format!(
            "aliases expand to too many nodes{line}: a document that repeats itself this much (an alias bomb?) is not read"
        );
    }
    if text.contains("recursion limit exceeded") {
        return format!("nested too deeply{line}: a manifest this deep is not read");
    }
    format!("not valid YAML: {text}")
}

/// The path of the first NaN or infinity in a YAML value.
fn non_finite_number(value: &serde_yaml::Value, path: &str) -> Option<String> {
    match value {
        serde_yaml::Value::Number(n) => n.as_f64().filter(|f| !f.is_finite()).map(|_| path.to_string()),
        serde_yaml::Value::Sequence(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| non_finite_number(item, &format!("{path}[{i}]"))),
        serde_yaml::Value::Mapping(map) => map.iter().find_map(|(k, v)| {
            let key = match k {
                serde_yaml::Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other).unwrap_or_default().trim().to_string(),
            };
            non_finite_number(v, &schema::join(path, &key))
        }),
        serde_yaml::Value::Tagged(tagged) => non_finite_number(&tagged.value, path),
        _ => None,
    }
}

fn object_id(doc: &Document) -> String {
    // Quoted and escaped unless plain, so that a name holding a line break or nothing at all
    // still prints as one visible line.
    let shown = |s: &str| {
        let plain = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        if plain { s.to_string() } else { format!("{s:?}") }
    };
    let kind = shown(doc.value["kind"].as_str().unwrap_or("?"));
    let ns = shown(doc.value["metadata"]["namespace"].as_str().unwrap_or("default"));
    match doc.value["metadata"]["name"].as_str() {
        Some(name) => format!("{kind}/{ns}/{}", shown(name)),
        None => format!("{kind} (document {})", doc.index + 1),
    }
}

/// Validates the documents and returns the typed objects with every problem found.
pub fn validate(documents: &[Document]) -> (ManifestSet, Vec<Problem>) {
    SCHEMAS.with(|schemas| validate_with(documents, schemas))
}

thread_local! {
    /// Each kind's schema, generated and compiled once per thread: a process validates with the
    /// same schemas whatever it reads (the CEL programs are not shared across threads).
    static SCHEMAS: BTreeMap<&'static str, Schema> = [
        ("LoggingBaseline", crate::api::schema_of::<LoggingBaseline>()),
        ("TrailPolicy", crate::api::schema_of::<TrailPolicy>()),
        ("RetentionPolicy", crate::api::schema_of::<RetentionPolicy>()),
        ("LoggingBaselineSet", crate::api::schema_of::<LoggingBaselineSet>()),
        ("LogArchive", crate::api::schema_of::<LogArchive>()),
    ]
    .into_iter()
    .map(|(kind, schema)| (kind, Schema::new(schema)))
    .collect();
}

fn validate_with(documents: &[Document], schemas: &BTreeMap<&'static str, Schema>) -> (ManifestSet, Vec<Problem>) {
    let mut set = ManifestSet::default();
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for doc in documents {
        let object = object_id(doc);
        let mut problem = |path: &str, message: String| {
            problems.push(Problem {
                file: doc.file.clone(),
                object: object.clone(),
                path: path.to_string(),
                message,
            })
        };
        if !doc.value.is_object() {
            problem(
                "",
                "not a Kubernetes object (expected a mapping with apiVersion and kind)".into(),
            );
            continue;
        }
        let api_version = doc.value["apiVersion"].as_str().unwrap_or_default();
        let kind = doc.value["kind"].as_str().unwrap_or_default();
        let Some(schema) = schemas.get(kind).filter(|_| api_version == API_VERSION) else {
            problem(
                "",
                format!(
                    "apiVersion {api_version:?} kind {kind:?} is not a trailkeeper resource (expected {API_VERSION} LoggingBaseline, LoggingBaselineSet, TrailPolicy, RetentionPolicy or LogArchive)"
                ),
            );
            continue;
        };
        let metadata_problems = check_metadata(&doc.value["metadata"]);
        let identity_invalid = metadata_problems
            .iter()
            .any(|(path, _)| path == "metadata.name" || path == "metadata.namespace");
        for (path, message) in metadata_problems {
            problem(&path, message);
        }
        if identity_invalid {
            continue;
        }
        if !seen.insert(object.clone()) {
            problem("", "defined more than once".into());
            continue;
        }
        // What the API server judges: the object without its null fields (see without_null_fields).
        let stored = without_null_fields(&doc.value);
        let mut body = stored.clone();
        // Type and metadata are the API server's business (only name and namespace matter here),
        // and status is written by the controller.
        if let Some(map) = body.as_object_mut() {
            for field in ["apiVersion", "kind", "metadata", "status"] {
                map.remove(field);
            }
        }
        let errors = schema.check(&body);
        let invalid = !errors.is_empty();
        for (path, message) in errors {
            problem(&path, message);
        }
        if invalid {
            continue;
        }
        let typed = match kind {
            "LoggingBaseline" => {
                serde_json::from_value(stored.clone()).map(|b| set.baselines.push((doc.file.clone(), b)))
            }
            "TrailPolicy" => {
                serde_json::from_value(stored.clone()).map(|p| set.trail_policies.push((doc.file.clone(), p)))
            }
            "LoggingBaselineSet" => serde_json::from_value::<LoggingBaselineSet>(stored.clone()).map(|p| {
                let set_problems = crate::desired::set::check(&p);
                if set_problems.is_empty() {
                    set.sets.push((doc.file.clone(), p));
                }
                for e in set_problems {
                    problem(&e.path, e.message);
                }
            }),
            "LogArchive" => serde_json::from_value(stored.clone()).map(|a| set.archives.push((doc.file.clone(), a))),
            _ => serde_json::from_value(stored.clone()).map(|p| set.retention_policies.push((doc.file.clone(), p))),
        };
        if let Err(e) = typed {
            problem("", format!("does not decode: {e}"));
        }
    }
    let expanded = match schemas.get("LoggingBaseline") {
        Some(schema) => expand_sets(&mut set, schema, &mut seen),
        None => Vec::new(),
    };
    problems.extend(expanded);
    problems.extend(check_references(&set));
    (set, problems)
}

/// `value` without the fields whose value is null, at any depth (list items are kept). The API
/// server prunes a null field that is not nullable before it defaults and evaluates rules ("null
/// values for fields that either don't specify the nullable flag, or give it a false value, will
/// be pruned before defaulting happens": Kubernetes, "Extend the Kubernetes API with
/// CustomResourceDefinitions", Defaulting and Nullable), and its CEL takes a nullable field set to
/// null as absent (`has()` is false; the API server accepts `expireAfterDays: null` under a rule
/// that compares it with a number, where kube's client-side CEL fails to evaluate). Judged without
/// its nulls, an object gets the API server's verdict, not an evaluation error.
/// https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#defaulting-and-nullable
pub fn without_null_fields(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_null_fields(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_null_fields).collect()),
        other => other.clone(),
    }
}

/// The baselines of the sets with an `accounts` generator, rendered and validated as written-out
/// LoggingBaselines would be (schema and CEL rules), added to `set.baselines`.
fn expand_sets(set: &mut ManifestSet, schema: &Schema, seen: &mut BTreeSet<String>) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (file, s) in &set.sets {
        let ns = namespace_of(&s.metadata);
        let object = format!("LoggingBaselineSet/{ns}/{}", name_of(&s.metadata));
        let Some(accounts) = crate::desired::set::listed_accounts(s) else {
            set.expansions.push((object, None));
            continue;
        };
        let mut names = Vec::new();
        for account in &accounts {
            let mut problem = |message: String| {
                problems.push(Problem {
                    file: file.clone(),
                    object: object.clone(),
                    path: format!("spec.generator.accounts[{}]", account.id),
                    message,
                })
            };
            let baseline = match crate::desired::set::render(s, account) {
                Ok(b) => b,
                Err(e) => {
                    problem(e);
                    continue;
                }
            };
            let Ok(mut body) = serde_json::to_value(&baseline) else {
                continue;
            };
            if let Some(map) = body.as_object_mut() {
                for field in ["apiVersion", "kind", "metadata", "status"] {
                    map.remove(field);
                }
            }
            if let Some((path, message)) = schema.check(&body).first() {
                problem(format!("the rendered LoggingBaseline: {path}: {message}"));
                continue;
            }
            let id = format!("LoggingBaseline/{ns}/{}", name_of(&baseline.metadata));
            if !seen.insert(id.clone()) {
                problem(format!("{id} is defined more than once"));
                continue;
            }
            names.push(name_of(&baseline.metadata));
            set.baselines.push((file.clone(), baseline));
        }
        set.expansions.push((object, Some(names)));
    }
    problems
}

/// A kind's schema with its CEL rules compiled once per run: compiling them is most of the cost
/// of validating one object, and a set of 5,000 accounts validates 5,000 rendered baselines.
struct Schema {
    structural: Value,
    cel: CompiledSchema,
}

impl Schema {
    fn new(structural: Value) -> Self {
        let cel = compile_schema(&structural);
        Self { structural, cel }
    }

    /// The problems of an object's body (without apiVersion, kind, metadata and status) as the API
    /// server finds them: the structural schema first, the CEL rules only on a body that passes it.
    fn check(&self, body: &Value) -> Vec<(String, String)> {
        let errors = schema::validate(&self.structural, body);
        if !errors.is_empty() {
            return errors.into_iter().map(|e| (e.path, e.message)).collect();
        }
        match validate_compiled(&self.cel, body, None) {
            Ok(()) => Vec::new(),
            Err(errors) => errors
                .into_vec()
                .into_iter()
                .map(|e| (e.field_path, e.message))
                .collect(),
        }
    }
}

/// The object's name and namespace as the API server checks those of a custom resource (a DNS-1123
/// subdomain and a DNS-1123 label), and its label and annotation keys and label values.
fn check_metadata(metadata: &Value) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let mut string_at = |field: &str, check: fn(&str) -> Result<(), String>, required: bool| {
        let path = format!("metadata.{field}");
        match &metadata[field] {
            Value::Null if !required => {}
            Value::String(s) => {
                if let Err(e) = check(s) {
                    problems.push((path, format!("{s:?} is not a valid {field}: {e}")));
                }
            }
            Value::Null => problems.push((path, "is required".into())),
            other => problems.push((path, format!("must be a string, got {other}"))),
        }
    };
    string_at("name", names::check_dns1123_subdomain, true);
    string_at("namespace", names::check_dns1123_label, false);
    for field in ["labels", "annotations"] {
        let path = format!("metadata.{field}");
        let entries = match &metadata[field] {
            Value::Null => continue,
            Value::Object(entries) => entries,
            other => {
                problems.push((path, format!("must be a mapping of strings, got {other}")));
                continue;
            }
        };
        let mut bytes = 0;
        for (key, value) in entries {
            let entry_path = schema::join(&path, key);
            bytes += key.len() + value.as_str().map_or(0, str::len);
            if let Err(e) = names::check_qualified_name(key) {
                problems.push((entry_path.clone(), format!("{key:?} is not a valid key: {e}")));
            }
            match value.as_str() {
                None => problems.push((entry_path, format!("must be a string, got {value}"))),
                Some(v) if field == "labels" => {
                    if let Err(e) = names::check_label_value(v) {
                        problems.push((entry_path, format!("{v:?} is not a valid label value: {e}")));
                    }
                }
                Some(_) => {}
            }
        }
        if field == "annotations" && bytes > names::ANNOTATIONS_MAX_BYTES {
            problems.push((
                path,
                format!(
                    "{bytes} bytes: annotations may have {} bytes in all",
                    names::ANNOTATIONS_MAX_BYTES
                ),
            ));
        }
    }
    problems
}

fn namespace_of(meta: &kube::core::ObjectMeta) -> String {
    meta.namespace.clone().unwrap_or_else(|| "default".to_string())
}

fn name_of(meta: &kube::core::ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

/// Policy references that name a policy absent from the same namespace, and accounts claimed by
/// more than one baseline.
fn check_references(set: &ManifestSet) -> Vec<Problem> {
    let mut problems = Vec::new();
    let trail_policies: BTreeSet<(String, String)> = set
        .trail_policies
        .iter()
        .map(|(_, p)| (namespace_of(&p.metadata), name_of(&p.metadata)))
        .collect();
    let retention_policies: BTreeSet<(String, String)> = set
        .retention_policies
        .iter()
        .map(|(_, p)| (namespace_of(&p.metadata), name_of(&p.metadata)))
        .collect();
    let archives: BTreeSet<(String, String)> = set
        .archives
        .iter()
        .map(|(_, a)| (namespace_of(&a.metadata), name_of(&a.metadata)))
        .collect();
    for (file, a) in &set.archives {
        let ns = namespace_of(&a.metadata);
        if let Some(r) = &a.spec.retention_policy_ref
            && !retention_policies.contains(&(ns.clone(), r.name.clone()))
        {
            problems.push(Problem {
                file: file.clone(),
                object: format!("LogArchive/{ns}/{}", name_of(&a.metadata)),
                path: "spec.retentionPolicyRef.name".into(),
                message: format!("RetentionPolicy {:?} does not exist in namespace {ns:?}", r.name),
            });
        }
    }
    let mut accounts: BTreeMap<&str, String> = BTreeMap::new();
    for (file, b) in &set.baselines {
        let ns = namespace_of(&b.metadata);
        let object = format!("LoggingBaseline/{ns}/{}", name_of(&b.metadata));
        let mut check = |path: &str, kind: &str, reference: &Option<PolicyRef>, known: &BTreeSet<(String, String)>| {
            if let Some(r) = reference
                && !known.contains(&(ns.clone(), r.name.clone()))
            {
                problems.push(Problem {
                    file: file.clone(),
                    object: object.clone(),
                    path: path.into(),
                    message: format!("{kind} {:?} does not exist in namespace {ns:?}", r.name),
                });
            }
        };
        check(
            "spec.trail.policyRef.name",
            "TrailPolicy",
            &b.spec.trail.policy_ref,
            &trail_policies,
        );
        check(
            "spec.retentionPolicyRef.name",
            "RetentionPolicy",
            &b.spec.retention_policy_ref,
            &retention_policies,
        );
        check(
            "spec.storage.archiveRef.name",
            "LogArchive",
            &b.spec.storage.archive_ref,
            &archives,
        );
        if let Some(other) = accounts.insert(&b.spec.account_id, object.clone()) {
            problems.push(Problem {
                file: file.clone(),
                object,
                path: "spec.accountId".into(),
                message: format!(
                    "account {} is already claimed by {other}: one LoggingBaseline per account",
                    b.spec.account_id
                ),
            });
        }
    }
    problems
}
