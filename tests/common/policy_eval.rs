//! IAM's decision on a policy, by the emulator's evaluator (scripts/emulator/iam_policy.py, pure
//! Python): the policy unit tests judge the documents trailkeeper writes as AWS would, both ways
//! (what must be allowed, and what must not), without an emulator round trip.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// A request: who (`{"AWS": arn}`, `{"Service": name}`), what, on which resource (None for a trust
/// policy) and the request context.
pub fn request(principal: Value, action: &str, resource: Option<&str>, context: Value) -> Value {
    json!({"principal": principal, "action": action, "resource": resource, "context": context})
}

/// `Allow`, `Deny` or `ImplicitDeny` for each request.
pub fn decisions(policy: &Value, requests: &[Value]) -> Vec<String> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/emulator/iam_policy.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the evaluator");
    let input = json!({"policy": policy, "requests": requests}).to_string();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("the evaluator reads its input");
    let out = child.wait_with_output().expect("the evaluator answers");
    assert!(out.status.success(), "the evaluator failed on {input}");
    serde_json::from_slice(&out.stdout).expect("a JSON list of decisions")
}

/// The decision on one request.
pub fn decide(policy: &Value, principal: Value, action: &str, resource: Option<&str>, context: Value) -> String {
    decisions(policy, &[request(principal, action, resource, context)]).remove(0)
}
