//! Whether a key policy lets an AWS service use the key for a request: IAM's decision for one
//! policy ("Policy evaluation logic": an explicit Deny wins, then an Allow, else an implicit deny,
//! https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html),
//! for a service principal and single-valued request keys. It is the rule of the emulator's
//! evaluator (scripts/emulator/iam_policy.py), which judges the same requests when an alarm
//! publishes; a test holds the two to the same answers. What it does not judge (an operator
//! other than the String, Arn, Bool and Null families, a policy variable) is an error, never a
//! guess. Pure.

use std::collections::BTreeMap;

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// An explicit Deny applies.
    Deny,
    /// No Allow applies.
    ImplicitDeny,
}

/// The policy's decision on `service` doing `action` on `resource` with the request keys
/// `context`; Err names what this function does not judge.
pub fn decide(
    policy: &Value,
    service: &str,
    action: &str,
    resource: &str,
    context: &BTreeMap<String, String>,
) -> Result<Decision, String> {
    let mut allowed = false;
    for statement in listed(&policy["Statement"]) {
        if !applies(statement, service, action, resource, context)? {
            continue;
        }
        match statement["Effect"].as_str() {
            Some("Deny") => return Ok(Decision::Deny),
            Some("Allow") => allowed = true,
            _ => {}
        }
    }
    Ok(if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    })
}

fn listed(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `*` any run of characters, `?` one character; case-insensitive for actions only.
fn glob(pattern: &str, value: &str, ignore_case: bool) -> bool {
    let (p, v): (Vec<char>, Vec<char>) = if ignore_case {
        (
            pattern.to_lowercase().chars().collect(),
            value.to_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), value.chars().collect())
    };
    let (mut pi, mut vi, mut star, mut mark) = (0, 0, None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            vi = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// ArnEquals and ArnLike: the six colon-separated parts matched one by one (the last takes the
/// rest), each with wildcards.
fn arn_like(pattern: &str, value: &str) -> bool {
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    let v: Vec<&str> = value.splitn(6, ':').collect();
    p.len() == 6 && v.len() == 6 && p.iter().zip(&v).all(|(p, v)| glob(p, v, false))
}

fn principal_matches(element: &Value, service: &str) -> bool {
    match element {
        Value::String(s) => s == "*",
        Value::Object(kinds) => kinds.iter().any(|(kind, names)| {
            let names: Vec<String> = listed(names).into_iter().map(text).collect();
            // {"AWS": "*"} is "*": every principal, services included.
            (kind == "AWS" && names.iter().any(|n| n == "*"))
                || (kind == "Service" && names.iter().any(|n| n == "*" || n == service))
        }),
        _ => false,
    }
}

fn no_variables(patterns: &[String]) -> Result<(), String> {
    match patterns.iter().find(|p| p.contains("${")) {
        Some(p) => Err(format!("the policy variable in {p} is not judged")),
        None => Ok(()),
    }
}

fn applies(
    statement: &Value,
    service: &str,
    action: &str,
    resource: &str,
    context: &BTreeMap<String, String>,
) -> Result<bool, String> {
    if let Some(principal) = statement.get("Principal")
        && !principal_matches(principal, service)
    {
        return Ok(false);
    }
    if let Some(principal) = statement.get("NotPrincipal")
        && principal_matches(principal, service)
    {
        return Ok(false);
    }
    let any_of = |element: &str, value: &str, ignore_case: bool| -> Result<Option<bool>, String> {
        let Some(patterns) = statement.get(element) else {
            return Ok(None);
        };
        let patterns: Vec<String> = listed(patterns).into_iter().map(text).collect();
        no_variables(&patterns)?;
        Ok(Some(patterns.iter().any(|p| glob(p, value, ignore_case))))
    };
    if any_of("Action", action, true)? == Some(false) || any_of("NotAction", action, true)? == Some(true) {
        return Ok(false);
    }
    if any_of("Resource", resource, false)? == Some(false) || any_of("NotResource", resource, false)? == Some(true) {
        return Ok(false);
    }
    let Some(conditions) = statement.get("Condition").and_then(Value::as_object) else {
        return Ok(true);
    };
    for (operator, block) in conditions {
        for (key, expected) in block.as_object().into_iter().flatten() {
            if !condition_holds(operator, key, expected, context)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

const NEGATED: [&str; 5] = [
    "StringNotEquals",
    "StringNotEqualsIgnoreCase",
    "StringNotLike",
    "ArnNotEquals",
    "ArnNotLike",
];

/// One key of one operator block ("IAM JSON policy elements: Condition operators"): a key absent
/// from the request fails a condition, except for the negated operators and ...IfExists;
/// ForAllValues holds on an absent key, ForAnyValue does not; condition key names are not
/// case-sensitive.
fn condition_holds(
    operator: &str,
    key: &str,
    expected: &Value,
    context: &BTreeMap<String, String>,
) -> Result<bool, String> {
    let expected: Vec<String> = listed(expected).into_iter().map(text).collect();
    no_variables(&expected)?;
    let (set, op) = match operator.split_once(':') {
        Some((set @ ("ForAnyValue" | "ForAllValues"), op)) => (Some(set), op),
        Some(_) => return Err(format!("the condition operator {operator} is not judged")),
        None => (None, operator),
    };
    let (op, if_exists) = match op.strip_suffix("IfExists") {
        Some(op) => (op, true),
        None => (op, false),
    };
    let actual = context
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v.as_str());
    if op == "Null" {
        let wants_absent = expected.iter().any(|e| e.eq_ignore_ascii_case("true"));
        return Ok(actual.is_none() == wants_absent);
    }
    let positive: fn(&str, &str) -> bool = match op.replace("Not", "").as_str() {
        "StringEquals" => |e, a| e == a,
        "StringEqualsIgnoreCase" | "Bool" => |e, a| e.eq_ignore_ascii_case(a),
        "StringLike" => |e, a| glob(e, a, false),
        "ArnEquals" | "ArnLike" => arn_like,
        _ => return Err(format!("the condition operator {operator} is not judged")),
    };
    let negated = NEGATED.contains(&op);
    Ok(match (actual, set) {
        (None, Some("ForAllValues")) => true,
        (None, Some(_)) => false,
        (None, None) => if_exists || negated,
        (Some(a), _) => expected.iter().any(|e| positive(e, a)) != negated,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::policy_eval;

    const SERVICE: &str = "cloudwatch.amazonaws.com";
    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234";

    fn context() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("aws:SourceAccount".to_string(), "111122223333".to_string()),
            (
                "aws:SourceArn".to_string(),
                "arn:aws:cloudwatch:us-east-1:111122223333:alarm:trailkeeper-cis-4.1-x".to_string(),
            ),
            (
                "kms:EncryptionContext:aws:sns:topicArn".to_string(),
                "arn:aws:sns:us-east-1:111122223333:trailkeeper-monitoring".to_string(),
            ),
        ])
    }

    fn statement(principal: Value, action: Value, condition: Value) -> Value {
        json!({"Effect": "Allow", "Principal": principal, "Action": action, "Resource": "*", "Condition": condition})
    }

    /// The same policies and requests judged here and by the emulator's evaluator get the same
    /// decision: the evidence and the emulator apply one rule.
    #[test]
    fn decides_as_the_emulators_evaluator_does() {
        let service = json!({"Service": SERVICE});
        let root = json!({"AWS": "arn:aws:iam::111122223333:root"});
        let policies = [
            json!({"Statement": [statement(service.clone(), json!(["kms:Decrypt", "kms:GenerateDataKey*"]), json!({}))]}),
            json!({"Statement": [statement(root.clone(), json!("kms:*"), json!({}))]}),
            json!({"Statement": [statement(json!("*"), json!("kms:*"), json!({"StringEquals": {"kms:CallerAccount": "111122223333"}}))]}),
            json!({"Statement": [statement(json!({"AWS": "*"}), json!("kms:GenerateDataKey*"), json!({}))]}),
            json!({"Statement": [statement(service.clone(), json!("kms:GenerateDataKey*"), json!({
                "StringEquals": {"aws:SourceAccount": "111122223333", "kms:EncryptionContext:aws:sns:topicArn": "arn:aws:sns:us-east-1:111122223333:trailkeeper-monitoring"},
                "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:us-east-1:111122223333:alarm:trailkeeper-cis-*"}
            }))]}),
            json!({"Statement": [statement(service.clone(), json!("kms:GenerateDataKey*"), json!({
                "ArnLike": {"aws:SourceArn": "arn:aws:cloudwatch:us-east-1:111122223333:alarm:other-*"}
            }))]}),
            json!({"Statement": [statement(service.clone(), json!("kms:GenerateDataKey*"), json!({
                "StringEquals": {"aws:sourceaccount": "444455556666"}
            }))]}),
            json!({"Statement": [statement(service.clone(), json!("kms:*"), json!({
                "StringNotEquals": {"aws:SourceAccount": "444455556666"},
                "StringEqualsIfExists": {"kms:ViaService": "sns.us-east-1.amazonaws.com"},
                "Null": {"kms:EncryptionContext:aws:sns:topicArn": "false"}
            }))]}),
            json!({"Statement": [statement(service.clone(), json!("kms:*"), json!({
                "ForAnyValue:StringLike": {"kms:EncryptionContextKeys": "aws:sns:*"}
            }))]}),
            json!({"Statement": [statement(service.clone(), json!("kms:*"), json!({
                "ForAllValues:StringEquals": {"kms:EncryptionContextKeys": "aws:sns:topicArn"}
            }))]}),
            json!({"Statement": [
                statement(service.clone(), json!("kms:*"), json!({})),
                {"Effect": "Deny", "Principal": "*", "Action": "kms:Decrypt", "Resource": "*",
                 "Condition": {"StringNotLike": {"aws:SourceArn": "arn:aws:cloudwatch:*:111122223333:alarm:*"}}}
            ]}),
            json!({"Statement": [
                statement(service.clone(), json!("kms:*"), json!({})),
                {"Effect": "Deny", "NotPrincipal": {"Service": SERVICE}, "Action": "kms:*", "Resource": "*"}
            ]}),
            json!({"Statement": [{"Effect": "Allow", "Principal": service.clone(), "NotAction": "kms:Decrypt", "Resource": "*"}]}),
            json!({"Statement": [{"Effect": "Allow", "Principal": service.clone(), "Action": "kms:*", "NotResource": KEY}]}),
            json!({"Statement": [statement(json!({"Service": ["events.amazonaws.com", SERVICE]}), json!("KMS:decrypt"), json!({
                "Bool": {"aws:SecureTransport": "true"}
            }))]}),
        ];
        let mut other_source = context();
        other_source.insert(
            "aws:SourceArn".into(),
            "arn:aws:cloudwatch:eu-west-1:444455556666:alarm:x".into(),
        );
        let contexts = [context(), other_source, BTreeMap::new()];
        for policy in &policies {
            for ctx in &contexts {
                for action in ["kms:Decrypt", "kms:GenerateDataKey"] {
                    let ours = decide(policy, SERVICE, action, KEY, ctx).expect("judged");
                    let theirs =
                        policy_eval::decide(policy, json!({"Service": SERVICE}), action, Some(KEY), json!(ctx));
                    let ours = match ours {
                        Decision::Allow => "Allow",
                        Decision::Deny => "Deny",
                        Decision::ImplicitDeny => "ImplicitDeny",
                    };
                    assert_eq!(ours, theirs, "{policy} {action} {ctx:?}");
                }
            }
        }
    }

    #[test]
    fn what_is_not_judged_is_an_error_not_a_guess() {
        let numeric = json!({"Statement": [statement(json!({"Service": SERVICE}), json!("kms:*"), json!({
            "NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}
        }))]});
        assert!(decide(&numeric, SERVICE, "kms:Decrypt", KEY, &context()).is_err());
        let variable = json!({"Statement": [statement(json!({"Service": SERVICE}), json!("kms:*"), json!({
            "StringEquals": {"aws:SourceAccount": "${aws:PrincipalAccount}"}
        }))]});
        assert!(decide(&variable, SERVICE, "kms:Decrypt", KEY, &context()).is_err());
    }
}
