//! IAM: the role VPC Flow Logs assumes to deliver into CloudWatch Logs.

use std::collections::BTreeMap;

use aws_sdk_iam::types::Tag;
use serde_json::Value;

use super::{AccountClients, AwsError, check, optional};

/// IAM returns policy documents URL-encoded.
fn decode(document: &str) -> Option<Value> {
    let bytes = document.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    let text = String::from_utf8(out).ok()?;
    serde_json::from_str(&text)
        .ok()
        .or_else(|| serde_json::from_str(document).ok())
}

/// A role as IAM reports it: its trust policy, its inline policy of the name asked for, and its
/// permissions boundary.
#[derive(Clone, Debug, PartialEq)]
pub struct ObservedRole {
    pub trust: Option<Value>,
    pub inline: Option<Value>,
    pub boundary: Option<String>,
}

/// The role with its inline policy named `policy_name`; None when the role is absent.
pub async fn observe_role(
    clients: &AccountClients,
    role: &str,
    policy_name: &str,
) -> Result<Option<ObservedRole>, AwsError> {
    let resource = format!("role {role}");
    let Some(found) = optional(
        clients.iam.get_role().role_name(role).send().await,
        "IAM",
        "GetRole",
        &resource,
    )?
    else {
        return Ok(None);
    };
    let trust = found
        .role()
        .and_then(|r| r.assume_role_policy_document())
        .and_then(decode);
    let boundary = found
        .role()
        .and_then(|r| r.permissions_boundary())
        .and_then(|b| b.permissions_boundary_arn())
        .map(str::to_string);
    let inline = optional(
        clients
            .iam
            .get_role_policy()
            .role_name(role)
            .policy_name(policy_name)
            .send()
            .await,
        "IAM",
        "GetRolePolicy",
        &resource,
    )?;
    Ok(Some(ObservedRole {
        trust,
        inline: inline
            .map(|p| p.policy_document().to_string())
            .as_deref()
            .and_then(decode),
        boundary,
    }))
}

/// Creates the role with its trust policy, bounded by `boundary`.
pub async fn create_role(
    clients: &AccountClients,
    role: &str,
    trust: &Value,
    boundary: Option<&str>,
    description: &str,
    tags: &BTreeMap<String, String>,
) -> Result<(), AwsError> {
    let tags = tags
        .iter()
        .filter_map(|(k, v)| Tag::builder().key(k).value(v).build().ok())
        .collect();
    let sent = clients
        .iam
        .create_role()
        .role_name(role)
        .assume_role_policy_document(trust.to_string())
        .set_permissions_boundary(boundary.map(str::to_string))
        .description(description)
        .set_tags(Some(tags))
        .send()
        .await;
    match check(sent, "IAM", "CreateRole", &format!("role {role}")) {
        Err(e) if e.code == "EntityAlreadyExists" => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Sets the role's permissions boundary.
pub async fn put_boundary(clients: &AccountClients, role: &str, boundary: &str) -> Result<(), AwsError> {
    let sent = clients
        .iam
        .put_role_permissions_boundary()
        .role_name(role)
        .permissions_boundary(boundary)
        .send()
        .await;
    check(sent, "IAM", "PutRolePermissionsBoundary", &format!("role {role}")).map(|_| ())
}

pub async fn update_trust(clients: &AccountClients, role: &str, trust: &Value) -> Result<(), AwsError> {
    let sent = clients
        .iam
        .update_assume_role_policy()
        .role_name(role)
        .policy_document(trust.to_string())
        .send()
        .await;
    check(sent, "IAM", "UpdateAssumeRolePolicy", &format!("role {role}")).map(|_| ())
}

pub async fn put_role_policy(clients: &AccountClients, role: &str, name: &str, policy: &Value) -> Result<(), AwsError> {
    let sent = clients
        .iam
        .put_role_policy()
        .role_name(role)
        .policy_name(name)
        .policy_document(policy.to_string())
        .send()
        .await;
    check(sent, "IAM", "PutRolePolicy", &format!("role {role}")).map(|_| ())
}

/// Deletes the role and its inline policies (a role with policies cannot be deleted). Returns
/// whether it existed.
pub async fn delete_role(clients: &AccountClients, role: &str, inline_policies: &[&str]) -> Result<bool, AwsError> {
    let resource = format!("role {role}");
    for name in inline_policies {
        let sent = clients
            .iam
            .delete_role_policy()
            .role_name(role)
            .policy_name(*name)
            .send()
            .await;
        optional(sent, "IAM", "DeleteRolePolicy", &resource)?;
    }
    let sent = clients.iam.delete_role().role_name(role).send().await;
    Ok(optional(sent, "IAM", "DeleteRole", &resource)?.is_some())
}

/// Whether the role exists.
pub async fn role_exists(clients: &AccountClients, role: &str) -> Result<bool, AwsError> {
    let found = optional(
        clients.iam.get_role().role_name(role).send().await,
        "IAM",
        "GetRole",
        &format!("role {role}"),
    )?;
    Ok(found.is_some())
}

/// Makes sure the service-linked role of a service exists (e.g. AWSServiceRoleForConfig).
pub async fn ensure_service_linked_role(clients: &AccountClients, role: &str, service: &str) -> Result<bool, AwsError> {
    let resource = format!("role {role}");
    if optional(
        clients.iam.get_role().role_name(role).send().await,
        "IAM",
        "GetRole",
        &resource,
    )?
    .is_some()
    {
        return Ok(false);
    }
    let sent = clients
        .iam
        .create_service_linked_role()
        .aws_service_name(service)
        .send()
        .await;
    match check(sent, "IAM", "CreateServiceLinkedRole", &resource) {
        // Created meanwhile (AWS answers InvalidInput "... has been taken").
        Err(e)
            if e.code == "EntityAlreadyExists"
                || (e.code == "InvalidInput" && e.message.contains("has been taken")) =>
        {
            Ok(false)
        }
        other => other.map(|_| true),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn url_encoded_and_plain_documents_decode() {
        let plain = r#"{"Version":"2012-10-17"}"#;
        assert_eq!(super::decode(plain).unwrap()["Version"], "2012-10-17");
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%7D";
        assert_eq!(super::decode(encoded).unwrap()["Version"], "2012-10-17");
    }
}
