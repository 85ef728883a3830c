//! IAM policy documents as data, and their comparison.

use serde_json::{Map, Value};

/// Policy keys whose value AWS may return either as one string or as a list of strings.
const LIST_VALUED_KEYS: [&str; 6] = ["Action", "NotAction", "Resource", "NotResource", "AWS", "Service"];

/// True when two policy documents grant the same thing, whatever the order of statements and of
/// list entries, and whether a single value is written as a string or a one-element list.
pub fn equivalent(a: &Value, b: &Value) -> bool {
    normalize(a) == normalize(b)
}

/// The canonical form `equivalent` compares: statements sorted by Sid, every list-valued entry a
/// sorted list of strings.
pub fn normalize(policy: &Value) -> Value {
    let mut value = normalize_value(policy, None);
    if let Some(Value::Array(statements)) = value.get_mut("Statement") {
        statements.sort_by_key(|s| s.to_string());
    } else if let Some(statement @ Value::Object(_)) = value.get_mut("Statement") {
        *statement = Value::Array(vec![statement.take()]);
    }
    value
}

fn normalize_value(value: &Value, key: Option<&str>) -> Value {
    let list_valued = key.is_some_and(|k| LIST_VALUED_KEYS.contains(&k)) || key == Some("condition-value");
    match value {
        Value::Object(map) => {
            let in_condition_operator = key == Some("condition-operator");
            let normalized: Map<String, Value> = map
                .iter()
                .map(|(k, v)| {
                    // Inside Condition, the operator's map holds condition keys whose values are lists.
                    let child_key = match (key, in_condition_operator) {
                        (Some("Condition"), _) => "condition-operator",
                        (_, true) => "condition-value",
                        _ => k.as_str(),
                    };
                    (k.clone(), normalize_value(v, Some(child_key)))
                })
                .collect();
            Value::Object(normalized)
        }
        Value::String(s) if list_valued => Value::Array(vec![Value::String(s.clone())]),
        Value::Bool(b) if key == Some("condition-value") => Value::Array(vec![Value::String(b.to_string())]),
        Value::Array(items) if list_valued => {
            let mut items: Vec<Value> = items
                .iter()
                .map(|i| match i {
                    Value::Bool(b) => Value::String(b.to_string()),
                    other => other.clone(),
                })
                .collect();
            items.sort_by_key(|i| i.to_string());
            items.dedup();
            Value::Array(items)
        }
        Value::Array(items) => Value::Array(items.iter().map(|i| normalize_value(i, key)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn single_values_and_lists_of_one_are_equivalent() {
        let a = json!({"Version": "2012-10-17", "Statement": [{"Sid": "A", "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"}, "Action": "s3:GetBucketAcl",
            "Resource": "arn:aws:s3:::b", "Condition": {"StringEquals": {"aws:SourceArn": "x"}}}]});
        let b = json!({"Version": "2012-10-17", "Statement": {"Sid": "A", "Effect": "Allow",
            "Principal": {"Service": ["cloudtrail.amazonaws.com"]}, "Action": ["s3:GetBucketAcl"],
            "Resource": ["arn:aws:s3:::b"], "Condition": {"StringEquals": {"aws:SourceArn": ["x"]}}}});
        assert!(equivalent(&a, &b));
    }

    #[test]
    fn statement_and_action_order_do_not_matter_but_content_does() {
        let a = json!({"Statement": [{"Sid": "A", "Action": ["a", "b"]}, {"Sid": "B", "Action": "c"}]});
        let b = json!({"Statement": [{"Sid": "B", "Action": "c"}, {"Sid": "A", "Action": ["b", "a"]}]});
        let c = json!({"Statement": [{"Sid": "B", "Action": "c"}, {"Sid": "A", "Action": ["b", "d"]}]});
        assert!(equivalent(&a, &b));
        assert!(!equivalent(&a, &c));
    }

    #[test]
    fn boolean_condition_values_match_their_string_form() {
        let a = json!({"Statement": [{"Condition": {"Bool": {"aws:SecureTransport": "false"}}}]});
        let b = json!({"Statement": [{"Condition": {"Bool": {"aws:SecureTransport": false}}}]});
        assert!(equivalent(&a, &b));
    }
}
