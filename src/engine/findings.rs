//! One account's findings in AWS Security Hub: observe trailkeeper's findings there, then write
//! only the difference (import what is new, changed or about to expire; archive what is no longer
//! judged; resolve what passes). In line: one read, no write. A baseline deleted: its findings are
//! archived.

use crate::api::SecurityHubStatus;
use crate::aws::securityhub::{self, ToImport};
use crate::aws::{AccountClients, AwsError};
use crate::desired::findings::{DesiredFinding, FindingStatus, FindingsTarget};
use crate::judge::findings::{plan, updated_at};

/// Brings the target's Security Hub to `desired`. `clients` are the account's (any Region: the
/// target's is used).
pub async fn export(
    clients: &AccountClients,
    target: &FindingsTarget,
    desired: &[DesiredFinding],
) -> Result<SecurityHubStatus, AwsError> {
    let clients = clients.for_region(&target.region);
    // Boxed, as each call: Security Hub's types are large.
    let observed = Box::pin(securityhub::observe(&clients, target)).await?;
    let now = jiff::Timestamp::now();
    let writes = plan(desired, &observed, now.as_second());
    let stamps: Vec<&str> = observed.iter().map(|o| o.updated_at.as_str()).collect();
    let at = updated_at(now, &stamps);
    let mut items: Vec<ToImport> = writes
        .import
        .iter()
        .map(|(finding, created_at)| ToImport::Desired {
            finding: finding.clone(),
            created_at: created_at.clone().filter(|c| !c.is_empty()),
            updated_at: at.clone(),
        })
        .collect();
    items.extend(writes.archive.iter().map(|finding| ToImport::Archive {
        finding: finding.clone(),
        updated_at: at.clone(),
    }));
    if !items.is_empty() {
        Box::pin(securityhub::import(&clients, target, &items)).await?;
    }
    if !writes.resolve.is_empty() {
        Box::pin(securityhub::resolve(&clients, target, &writes.resolve)).await?;
    }
    Ok(SecurityHubStatus {
        region: target.region.clone(),
        product_arn: target.product_arn(),
        findings: desired.len() as u32,
        failed: desired.iter().filter(|d| d.status == FindingStatus::Failed).count() as u32,
        imported: writes.import.len() as u32,
        archived: writes.archive.len() as u32,
        resolved: writes.resolve.len() as u32,
    })
}

/// Archives every active finding of trailkeeper's for the target account (the baseline that
/// judged them is gone); returns how many.
pub async fn archive_all(clients: &AccountClients, target: &FindingsTarget) -> Result<u32, AwsError> {
    let status = Box::pin(export(clients, target, &[])).await?;
    Ok(status.archived)
}
