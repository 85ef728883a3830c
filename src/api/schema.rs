//! Structural OpenAPI v3 validation of a value against a CRD schema: the checks the API server
//! makes before CEL (types, required fields, enums, patterns, bounds, unknown fields).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use regex::Regex;
use serde_json::Value;

/// One schema violation: the field path (`spec.trail.source`) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaError {
    pub path: String,
    pub message: String,
}

pub fn validate(schema: &Value, value: &Value) -> Vec<SchemaError> {
    let mut errors = Vec::new();
    walk(schema, value, "", &mut errors);
    errors
}

/// Only the fields the schema does not know, wherever they are: for a template whose strings hold
/// placeholders (their patterns are checked once rendered), but whose field names are final.
pub fn unknown_fields(schema: &Value, value: &Value, path: &str) -> Vec<SchemaError> {
    let mut errors = Vec::new();
    walk_names(schema, value, path, &mut errors);
    errors
}

fn walk_names(schema: &Value, value: &Value, path: &str, errors: &mut Vec<SchemaError>) {
    if schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true) && schema.get("properties").is_none() {
        return;
    }
    match value {
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk_names(item_schema, item, &format!("{path}[{i}]"), errors);
                }
            }
        }
        Value::Object(map) => {
            let properties = schema["properties"].as_object();
            let additional = schema.get("additionalProperties");
            for (field, child) in map {
                let child_path = join(path, field);
                match (properties.and_then(|p| p.get(field)), additional) {
                    (Some(child_schema), _) => walk_names(child_schema, child, &child_path, errors),
                    (None, Some(a)) if a.is_object() => walk_names(a, child, &child_path, errors),
                    (None, Some(Value::Bool(true))) => {}
                    (None, _) if properties.is_some() => errors.push(SchemaError {
                        path: child_path,
                        message: UNKNOWN_FIELD.into(),
                    }),
                    (None, _) => {}
                }
            }
        }
        _ => {}
    }
}

const UNKNOWN_FIELD: &str = "unknown field (check its spelling and indentation)";

/// `path.field`, or `path["field"]` with the name escaped when it holds anything but letters,
/// digits and `_-./:` (a trailing space, a NUL or a line break would be invisible or break the
/// line the problem is printed on).
pub fn join(path: &str, field: &str) -> String {
    let plain = !field.is_empty()
        && field
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/' | ':'));
    match (plain, path.is_empty()) {
        (true, true) => field.to_string(),
        (true, false) => format!("{path}.{field}"),
        (false, _) => format!("{path}[{field:?}]"),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The compiled `pattern`, shared: an `Arc`, not a clone of the `Regex`, because a cloned `Regex`
/// starts with an empty search cache that its first match builds again (most of the time of
/// validating a set's thousands of rendered baselines went there).
pub(crate) fn regex(pattern: &str) -> Option<Arc<Regex>> {
    static CACHE: Mutex<Option<HashMap<String, Arc<Regex>>>> = Mutex::new(None);
    let mut cache = CACHE.lock().ok()?;
    let cache = cache.get_or_insert_with(HashMap::new);
    if let Some(r) = cache.get(pattern) {
        return Some(r.clone());
    }
    let compiled = Arc::new(Regex::new(pattern).ok()?);
    cache.insert(pattern.to_string(), compiled.clone());
    Some(compiled)
}

fn walk(schema: &Value, value: &Value, path: &str, errors: &mut Vec<SchemaError>) {
    let mut fail = |message: String| {
        errors.push(SchemaError {
            path: path.to_string(),
            message,
        })
    };
    if value.is_null() {
        if schema["nullable"] != Value::Bool(true) {
            fail("must not be null".into());
        }
        return;
    }
    if schema["x-kubernetes-preserve-unknown-fields"] == Value::Bool(true) && schema.get("properties").is_none() {
        return;
    }
    if let Some(expected) = schema["type"].as_str() {
        let actual = type_name(value);
        let fits = actual == expected || (expected == "number" && actual == "integer");
        if !fits {
            fail(format!("must be of type {expected}, got {actual}"));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        let names: Vec<String> = allowed.iter().map(|a| a.to_string()).collect();
        fail(format!("must be one of {}, got {value}", names.join(", ")));
    }
    match value {
        Value::String(s) => check_string(schema, s, path, errors),
        Value::Number(n) => check_number(schema, n, path, errors),
        Value::Array(items) => walk_array(schema, items, path, errors),
        Value::Object(map) => walk_object(schema, map, path, errors),
        _ => {}
    }
}

/// A string's pattern and length.
fn check_string(schema: &Value, s: &str, path: &str, errors: &mut Vec<SchemaError>) {
    let mut fail = |message: String| {
        errors.push(SchemaError {
            path: path.to_string(),
            message,
        })
    };
    if let Some(p) = schema["pattern"].as_str()
        && regex(p).is_some_and(|r| !r.is_match(s))
    {
        fail(format!("{s:?} does not match the pattern {p}"));
    }
    let len = s.chars().count() as u64;
    if schema["minLength"].as_u64().is_some_and(|m| len < m) {
        fail(format!("must be at least {} characters long", schema["minLength"]));
    }
    if schema["maxLength"].as_u64().is_some_and(|m| len > m) {
        fail(format!("must be at most {} characters long", schema["maxLength"]));
    }
}

/// A number's bounds.
fn check_number(schema: &Value, n: &serde_json::Number, path: &str, errors: &mut Vec<SchemaError>) {
    let mut fail = |message: String| {
        errors.push(SchemaError {
            path: path.to_string(),
            message,
        })
    };
    let n = n.as_f64().unwrap_or_default();
    if schema["minimum"].as_f64().is_some_and(|m| n < m) {
        fail(format!("must be at least {}", schema["minimum"]));
    }
    if schema["maximum"].as_f64().is_some_and(|m| n > m) {
        fail(format!("must be at most {}", schema["maximum"]));
    }
}

/// An array's length, and each item against the items' schema.
fn walk_array(schema: &Value, items: &[Value], path: &str, errors: &mut Vec<SchemaError>) {
    let mut fail = |message: String| {
        errors.push(SchemaError {
            path: path.to_string(),
            message,
        })
    };
    if schema["minItems"].as_u64().is_some_and(|m| (items.len() as u64) < m) {
        fail(format!("must have at least {} items", schema["minItems"]));
    }
    if schema["maxItems"].as_u64().is_some_and(|m| (items.len() as u64) > m) {
        fail(format!("must have at most {} items", schema["maxItems"]));
    }
    if let Some(item_schema) = schema.get("items") {
        for (i, item) in items.iter().enumerate() {
            walk(item_schema, item, &format!("{path}[{i}]"), errors);
        }
    }
}

/// An object's size and required fields, and each field against its property's schema (or the
/// map's values' schema); a field the schema does not know is an error.
fn walk_object(schema: &Value, map: &serde_json::Map<String, Value>, path: &str, errors: &mut Vec<SchemaError>) {
    let mut fail = |message: String| {
        errors.push(SchemaError {
            path: path.to_string(),
            message,
        })
    };
    if schema["maxProperties"].as_u64().is_some_and(|m| (map.len() as u64) > m) {
        fail(format!("must have at most {} entries", schema["maxProperties"]));
    }
    if let Some(required) = schema["required"].as_array() {
        for field in required.iter().filter_map(Value::as_str) {
            if !map.contains_key(field) {
                errors.push(SchemaError {
                    path: join(path, field),
                    message: "is required".into(),
                });
            }
        }
    }
    let properties = schema["properties"].as_object();
    let additional = schema.get("additionalProperties");
    for (field, child) in map {
        let child_path = join(path, field);
        match (properties.and_then(|p| p.get(field)), additional) {
            (Some(child_schema), _) => walk(child_schema, child, &child_path, errors),
            // A map's keys (tags) reach AWS, which refuses control characters in them.
            (None, Some(a)) if a.is_object() && field.chars().any(char::is_control) => errors.push(SchemaError {
                path: child_path,
                message: "the key holds control characters (AWS refuses them)".into(),
            }),
            (None, Some(a)) if a.is_object() => walk(a, child, &child_path, errors),
            (None, Some(Value::Bool(true))) => {}
            (None, _) if properties.is_some() => errors.push(SchemaError {
                path: child_path,
                message: UNKNOWN_FIELD.into(),
            }),
            (None, _) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "required": ["id"], "properties": {
            "id": {"type": "string", "pattern": "^[0-9]{3}$"},
            "n": {"type": "integer", "minimum": 1, "maximum": 5},
            "mode": {"type": "string", "enum": ["A", "B"]},
            "list": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "tags": {"type": "object", "additionalProperties": {"type": "string"}}
        }})
    }

    #[test]
    fn a_conforming_value_has_no_errors() {
        let v = json!({"id": "123", "n": 3, "mode": "A", "list": ["x"], "tags": {"a": "b"}});
        assert_eq!(validate(&schema(), &v), vec![]);
    }

    #[test]
    fn each_violation_is_reported_with_its_path() {
        let v = json!({"n": 9, "mode": "C", "list": [], "tags": {"a": 1}, "typo": true});
        let mut paths: Vec<String> = validate(&schema(), &v).into_iter().map(|e| e.path).collect();
        paths.sort();
        assert_eq!(paths, vec!["id", "list", "mode", "n", "tags.a", "typo"]);
    }

    #[test]
    fn pattern_and_type_errors_name_the_value() {
        let errors = validate(&schema(), &json!({"id": "12a", "n": "x"}));
        assert!(errors[0].message.contains("\"12a\" does not match"), "{errors:?}");
        assert_eq!(errors[1].message, "must be of type integer, got string");
    }
}
