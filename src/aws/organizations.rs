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
