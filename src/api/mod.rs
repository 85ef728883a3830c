//! The five custom resources of trailkeeper (group `trailkeeper.io`, version `v1alpha1`), their
//! defaults (the baseline of the AWS logging reference) and their validation rules, with the
//! structural validation of a value against a kind's schema (`schema`).

mod lock_in_place;
mod log_archive;
mod logging_baseline;
mod logging_baseline_set;
mod logging_baseline_status;
pub mod names;
mod network_activity;
mod policy_status;
mod retention_policy;
mod rules;
pub mod schema;
mod security_hub;
mod trail_policy;

pub use lock_in_place::*;
pub use log_archive::*;
pub use logging_baseline::*;
pub use logging_baseline_set::*;
pub use logging_baseline_status::*;
pub use network_activity::*;
pub use policy_status::*;
pub use retention_policy::*;
pub use security_hub::*;
pub use trail_policy::*;

use std::collections::BTreeMap;

use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub const GROUP: &str = "trailkeeper.io";
pub const VERSION: &str = "v1alpha1";
pub const API_VERSION: &str = "trailkeeper.io/v1alpha1";
/// The policy a baseline uses when it names none.
pub const DEFAULT_POLICY_NAME: &str = "default";

/// Validation patterns, shared by the schema and by the offline validator.
pub mod patterns {
    pub const ACCOUNT_ID: &str = r"^[0-9]{12}$";
    /// An AWS Organization id.
    pub const ORGANIZATION_ID: &str = r"^o-[a-z0-9]{10,32}$";
    pub const REGION: &str = r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2}$";
    /// A region, or `*`: every region enabled for the account.
    pub const REGION_OR_EVERY: &str = r"^(\*|[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-[0-9]{1,2})$";
    pub const IAM_ROLE_ARN: &str = r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$";
    /// A principal of a key policy: an IAM role or user ARN, or an account root.
    pub const IAM_PRINCIPAL_ARN: &str =
        r"^arn:aws[a-z-]*:iam::[0-9]{12}:(root|role/[A-Za-z0-9+=,.@_/-]{1,512}|user/[A-Za-z0-9+=,.@_/-]{1,512})$";
    pub const SNS_TOPIC_ARN: &str = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$";
    pub const KMS_KEY_ARN: &str = r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]{1,128}$";
    pub const TRAIL_ARN: &str = r"^arn:aws[a-z-]*:cloudtrail:[a-z0-9-]+:[0-9]{12}:trail/[A-Za-z0-9._-]{3,128}$";
    pub const TRAIL_NAME: &str = r"^[A-Za-z0-9][A-Za-z0-9._-]{1,126}[A-Za-z0-9]$";
    pub const BUCKET_NAME: &str = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$";
    /// A prefix of generated bucket names (with the region, a CEL rule keeps every generated name
    /// within S3's 63 characters).
    pub const NAME_PREFIX: &str = r"^[a-z0-9][a-z0-9-]{0,15}$";
    /// An STS external id: 2 to 1224 characters (the length is a separate limit because the API
    /// server compiles patterns with RE2, which refuses a repeat count above 1000).
    pub const EXTERNAL_ID: &str = r"^[A-Za-z0-9+=,.@:/-]+$";
    pub const KEY_PREFIX: &str = r"^[A-Za-z0-9!_.*'()/-]{1,200}$";
    pub const FLOW_LOG_FIELD: &str = r"^[a-z0-9-]{2,40}$";
    /// A Glue database or table name that Athena can query without quoting.
    pub const GLUE_NAME: &str = r"^[a-z0-9_]{1,255}$";
    pub const WORK_GROUP_NAME: &str = r"^[a-zA-Z0-9._-]{1,128}$";
    pub const K8S_NAME: &str = r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$";
    /// An AWS tag value: no control characters (AWS refuses them at the first tagging call).
    pub const TAG_VALUE: &str = r"^[^\x00-\x1f\x7f]*$";
    /// An approval's reference: printed in pull requests and compared with the previous one, so
    /// no surrounding whitespace (a trailing space would make an old reference "new") and no
    /// control, line-separator, zero-width or bidirectional-override characters anywhere.
    pub const APPROVAL_REFERENCE: &str = r"^[^\x00-\x20\x7f-\x{a0}\x{2000}-\x{200f}\x{2028}-\x{202f}\x{205f}-\x{206f}\x{3000}\x{feff}]([^\x00-\x1f\x7f-\x{9f}\x{200b}-\x{200f}\x{2028}-\x{202e}\x{2060}-\x{206f}\x{feff}]*[^\x00-\x20\x7f-\x{a0}\x{2000}-\x{200f}\x{2028}-\x{202f}\x{205f}-\x{206f}\x{3000}\x{feff}])?$";
}

/// The retention values CloudWatch Logs accepts, in days.
pub const CLOUDWATCH_RETENTION_DAYS: [i32; 22] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
];

/// A reference to a policy in the same namespace.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct PolicyRef {
    /// The name of the policy in the same namespace.
    #[schemars(pattern(patterns::K8S_NAME), length(min = 1, max = 253))]
    pub name: String,
}

/// An object whose fields the schema does not list (a template, validated once rendered).
pub(crate) fn preserve_unknown_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

type Crd = k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

/// The openAPIV3Schema of a kind's CRD, as JSON (Null if it has none).
pub fn schema_of<K: CustomResourceExt>() -> serde_json::Value {
    K::crd()
        .spec
        .versions
        .first()
        .and_then(|v| v.schema.as_ref())
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .unwrap_or_default()
}

/// The CEL rules of `object`'s kind, checked client-side as the API server would at admission.
/// Each kind's rules are compiled once per thread, not per call (the controller checks every
/// reconcile).
pub fn check_cel<K>(object: &K) -> Result<(), kube::core::cel::ValidationErrors>
where
    K: CustomResourceExt + Serialize,
{
    thread_local! {
        static COMPILED: std::cell::RefCell<BTreeMap<String, std::rc::Rc<kube::core::cel::CompiledSchema>>> =
            const { std::cell::RefCell::new(BTreeMap::new()) };
    }
    let kind = K::crd_name();
    let compiled = COMPILED.with(|c| c.borrow().get(kind).cloned());
    let compiled = match compiled {
        Some(compiled) => compiled,
        None => {
            let compiled = std::rc::Rc::new(kube::core::cel::compile_schema(&schema_of::<K>()));
            COMPILED.with(|c| c.borrow_mut().insert(kind.to_string(), compiled.clone()));
            compiled
        }
    };
    let value = serde_json::to_value(object).unwrap_or_default();
    kube::core::cel::validate_compiled(&compiled, &value, None)
}

/// All CRDs served by trailkeeper, in a stable order.
pub fn crds() -> Vec<Crd> {
    [
        LoggingBaseline::crd(),
        TrailPolicy::crd(),
        RetentionPolicy::crd(),
        LoggingBaselineSet::crd(),
        LogArchive::crd(),
    ]
    .into_iter()
    .map(with_kubernetes_formats)
    .map(with_unobserved_status)
    .collect()
}

/// A new object reads as not yet observed until the controller writes its first status: the API
/// server defaults an absent `status` to `observedGeneration: 0` (on every read), which kstatus
/// (Flux's health checks, Helm 4's --wait) reads as InProgress and Argo CD's health check as
/// Progressing. Without it a baseline the controller never saw (not running, or still queued)
/// would read as Current: kstatus takes an object without conditions to be done.
/// https://github.com/kubernetes-sigs/cli-utils/blob/master/pkg/kstatus/README.md
fn with_unobserved_status(crd: Crd) -> Crd {
    let Ok(mut value) = serde_json::to_value(&crd) else {
        return crd;
    };
    let Some(versions) = value.pointer_mut("/spec/versions").and_then(|v| v.as_array_mut()) else {
        return crd;
    };
    for version in versions {
        let Some(status) = version.pointer_mut("/schema/openAPIV3Schema/properties/status") else {
            continue;
        };
        if status.pointer("/properties/observedGeneration").is_some() {
            status["default"] = serde_json::json!({"observedGeneration": 0});
        }
    }
    serde_json::from_value(value).unwrap_or(crd)
}

/// schemars writes `format: uint32`/`uint64` for unsigned fields; the API server knows neither
/// and warns on every apply. The signed formats with the `minimum: 0` schemars also writes say
/// the same.
fn with_kubernetes_formats(crd: Crd) -> Crd {
    fn walk(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(map) => {
                if let Some(format) = map.get_mut("format") {
                    match format.as_str() {
                        Some("uint32") => *format = "int32".into(),
                        Some("uint64") => *format = "int64".into(),
                        _ => {}
                    }
                }
                map.values_mut().for_each(walk);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let Ok(mut value) = serde_json::to_value(&crd) else {
        return crd;
    };
    walk(&mut value);
    serde_json::from_value(value).unwrap_or(crd)
}

/// Each CRD as a YAML document, with the file name `crds/` holds it under (`<plural>.<group>.yaml`).
pub fn crd_files() -> Result<Vec<(String, String)>, serde_yaml::Error> {
    crds()
        .into_iter()
        .map(|crd| {
            let name = format!("{}.yaml", crd.metadata.name.clone().unwrap_or_default());
            let value = serde_json::to_value(&crd).map_err(<serde_yaml::Error as serde::ser::Error>::custom)?;
            Ok((name, format!("---\n{}", serde_yaml::to_string(&sorted_keys(value))?)))
        })
        .collect()
}

/// The same value with every object's keys in order: schema defaults are generated in an order
/// that varies from run to run, and `crds/` must not.
fn sorted_keys(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted_keys(v))).collect())
        }
        serde_json::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(sorted_keys).collect()),
        other => other,
    }
}

/// The CRDs as one multi-document YAML stream, as `trailkeeper crds` prints them.
pub fn crds_yaml() -> Result<String, serde_yaml::Error> {
    Ok(crd_files()?.into_iter().map(|(_, yaml)| yaml).collect())
}
