//! AWS Organizations: the Organization's id, which an Organization trail writes into its keys, and
//! CloudTrail's trusted access, which creating an Organization trail needs.

use super::{AccountClients, AwsError, check};

/// The Organization an account belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organization {
    /// `o-...`
    pub id: String,
    pub management_account: String,
}

/// The account's Organization; None when it belongs to none.
pub async fn describe(clients: &AccountClients) -> Result<Option<Organization>, AwsError> {
    let sent = clients.organizations.describe_organization().send().await;
    match check(
        sent,
        "Organizations",
        "DescribeOrganization",
        "the account's Organization",
    ) {
        Ok(found) => Ok(found.organization().and_then(|o| {
            Some(Organization {
                id: o.id()?.to_string(),
                management_account: o.master_account_id().unwrap_or_default().to_string(),
            })
        })),
        Err(e) if e.code == "AWSOrganizationsNotInUseException" => Ok(None),
        Err(e) => Err(e),
    }
}

/// The id (`o-...`) of the Organization the account belongs to; None when it belongs to none.
pub async fn organization_id(clients: &AccountClients) -> Result<Option<String>, AwsError> {
    Ok(describe(clients).await?.map(|o| o.id))
}

/// Whether `service_principal` has trusted access in the Organization (management account only).
pub async fn trusted_access(clients: &AccountClients, service_principal: &str) -> Result<bool, AwsError> {
    let mut enabled = false;
    let mut pages = clients
        .organizations
        .list_aws_service_access_for_organization()
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = check(
            page,
            "Organizations",
            "ListAWSServiceAccessForOrganization",
            "the Organization's trusted services",
        )?;
        enabled |= page
            .enabled_service_principals()
            .iter()
            .any(|s| s.service_principal() == Some(service_principal));
    }
    Ok(enabled)
}

/// Gives `service_principal` trusted access in the Organization. Idempotent.
pub async fn enable_trusted_access(clients: &AccountClients, service_principal: &str) -> Result<(), AwsError> {
    let sent = clients
        .organizations
        .enable_aws_service_access()
        .service_principal(service_principal)
        .send()
        .await;
    check(
        sent,
        "Organizations",
        "EnableAWSServiceAccess",
        &format!("trusted access for {service_principal}"),
    )
    .map(|_| ())
}

/// An account as Organizations lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberAccount {
    pub id: String,
    pub name: String,
    /// ACTIVE, SUSPENDED, PENDING_CLOSURE...
    pub state: String,
}

/// Organizations' list calls are throttled per account (a few per second): one call at a time,
/// spaced by this, for one reader.
pub const LIST_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

/// The accounts directly under `parent` (an OU or the root).
pub async fn accounts_of_parent(
    clients: &AccountClients,
    pacer: &super::Pacer,
    parent: &str,
) -> Result<Vec<MemberAccount>, AwsError> {
    let mut accounts = Vec::new();
    let mut token = None;
    loop {
        pacer.wait().await;
        let sent = clients
            .organizations
            .list_accounts_for_parent()
            .parent_id(parent)
            .set_next_token(token.take())
            .send()
            .await;
        let page = check(sent, "Organizations", "ListAccountsForParent", parent)?;
        accounts.extend(page.accounts().iter().filter_map(|a| {
            Some(MemberAccount {
                id: a.id()?.to_string(),
                name: a.name().unwrap_or_default().to_string(),
                // `State` replaces `Status` (deprecated); emulators may fill only the latter.
                state: a
                    .state()
                    .map(|s| s.as_str().to_string())
                    .or_else(|| {
                        #[allow(deprecated)]
                        a.status().map(|s| s.as_str().to_string())
                    })
                    .unwrap_or_default(),
            })
        }));
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => return Ok(accounts),
        }
    }
}

/// The organizational units directly under `parent`.
pub async fn units_of_parent(
    clients: &AccountClients,
    pacer: &super::Pacer,
    parent: &str,
) -> Result<Vec<String>, AwsError> {
    let mut units = Vec::new();
    let mut token = None;
    loop {
        pacer.wait().await;
        let sent = clients
            .organizations
            .list_organizational_units_for_parent()
            .parent_id(parent)
            .set_next_token(token.take())
            .send()
            .await;
        let page = check(sent, "Organizations", "ListOrganizationalUnitsForParent", parent)?;
        units.extend(
            page.organizational_units()
                .iter()
                .filter_map(|u| u.id().map(str::to_string)),
        );
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => return Ok(units),
        }
    }
}

/// The roots of the Organization (one).
pub async fn roots(clients: &AccountClients, pacer: &super::Pacer) -> Result<Vec<String>, AwsError> {
    pacer.wait().await;
    let sent = clients.organizations.list_roots().send().await;
    let page = check(sent, "Organizations", "ListRoots", "the Organization's root")?;
    Ok(page.roots().iter().filter_map(|r| r.id().map(str::to_string)).collect())
}

/// An account's tags.
pub async fn account_tags(
    clients: &AccountClients,
    pacer: &super::Pacer,
    account: &str,
) -> Result<std::collections::BTreeMap<String, String>, AwsError> {
    let mut tags = std::collections::BTreeMap::new();
    let mut token = None;
    loop {
        pacer.wait().await;
        let sent = clients
            .organizations
            .list_tags_for_resource()
            .resource_id(account)
            .set_next_token(token.take())
            .send()
            .await;
        let page = check(
            sent,
            "Organizations",
            "ListTagsForResource",
            &format!("account {account}"),
        )?;
        tags.extend(page.tags().iter().map(|t| (t.key().to_string(), t.value().to_string())));
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => return Ok(tags),
        }
    }
}
