//! AWS Organizations: the Organization's id, which an Organization trail writes into its keys.

use super::{AccountClients, AwsError, check};

/// The id (`o-...`) of the Organization the account belongs to; None when it belongs to none.
pub async fn organization_id(clients: &AccountClients) -> Result<Option<String>, AwsError> {
    let sent = clients.organizations.describe_organization().send().await;
    match check(
        sent,
        "Organizations",
        "DescribeOrganization",
        "the account's Organization",
    ) {
        Ok(found) => Ok(found.organization().and_then(|o| o.id()).map(str::to_string)),
        Err(e) if e.code == "AWSOrganizationsNotInUseException" => Ok(None),
        Err(e) => Err(e),
    }
}
