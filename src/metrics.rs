//! Process-wide Prometheus metrics, rendered in the text exposition format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};

#[derive(Default)]
struct Registry {
    aws_calls: BTreeMap<(String, String, &'static str), u64>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// One AWS call, by IAM action (`s3:GetBucketPolicy`) and outcome.
pub fn record_aws_call(action: &str, failed: bool) {
    let (service, operation) = action.split_once(':').unwrap_or(("unknown", action));
    let outcome = if failed { "error" } else { "ok" };
    if let Ok(mut r) = registry().lock() {
        *r.aws_calls
            .entry((service.to_string(), operation.to_string(), outcome))
            .or_default() += 1;
    }
}

/// The metrics in the Prometheus text format.
pub fn render() -> String {
    let mut out = String::new();
    let Ok(r) = registry().lock() else { return out };
    out.push_str("# HELP trailkeeper_aws_calls_total AWS API calls by service, operation and outcome.\n");
    out.push_str("# TYPE trailkeeper_aws_calls_total counter\n");
    for ((service, operation, outcome), n) in &r.aws_calls {
        let _ = writeln!(
            out,
            "trailkeeper_aws_calls_total{{service=\"{service}\",operation=\"{operation}\",outcome=\"{outcome}\"}} {n}"
        );
    }
    out
}
