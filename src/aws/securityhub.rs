//! AWS Security Hub: the account's own findings (its custom integration), read with GetFindings,
//! written with BatchImportFindings (created, changed, archived) and BatchUpdateFindings (resolved).
//!
//! Paced within Security Hub's quotas ("GetFindings - RateLimit of 3 requests per second. BurstLimit
//! of 6 requests per second. BatchImportFindings - RateLimit of 10 requests per second. BurstLimit
//! of 30 ... BatchUpdateFindings - RateLimit of 10 requests per second", API reference), in
//! batches of at most 100 findings ("Security Hub CSPM accepts up to 100 findings per batch, up to
//! 240 KB per finding, and up to 6 MB per batch", partner guide).
//! https://docs.aws.amazon.com/securityhub/1.0/APIReference/Welcome.html
//! https://docs.aws.amazon.com/securityhub/latest/partnerguide/guidelines-batchimportfindings.html

use std::time::Duration;

use aws_sdk_securityhub::types::{
    AwsSecurityFinding, AwsSecurityFindingFilters, AwsSecurityFindingIdentifier, Compliance, ComplianceStatus,
    FindingProviderFields, FindingProviderSeverity, Recommendation, RecordState, Remediation, Resource, SeverityLabel,
    StringFilter, StringFilterComparison, WorkflowStatus, WorkflowUpdate,
};

use super::{AccountClients, AwsError, ErrorKind, Pacer, check};
use crate::desired::findings::{
    BASELINE_FIELD, DIGEST_FIELD, DesiredFinding, FindingsTarget, GENERATOR_PREFIX, SCHEMA_VERSION,
};

/// At most this many findings in one BatchImportFindings or BatchUpdateFindings.
pub const BATCH: usize = 100;
/// GetFindings: 3 a second.
const READ_INTERVAL: Duration = Duration::from_millis(334);
/// BatchImportFindings and BatchUpdateFindings: 10 a second.
const WRITE_INTERVAL: Duration = Duration::from_millis(100);

/// One of trailkeeper's findings as Security Hub holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedFinding {
    pub id: String,
    pub generator_id: String,
    pub title: String,
    pub description: String,
    pub created_at: String,
    pub updated_at: String,
    /// ACTIVE or ARCHIVED.
    pub record_state: String,
    /// NEW, NOTIFIED, RESOLVED or SUPPRESSED.
    pub workflow: String,
    /// PASSED, FAILED, WARNING or NOT_AVAILABLE.
    pub compliance: String,
    /// What trailkeeper last wrote (ProductFields `trailkeeper/Digest`).
    pub digest: Option<String>,
    pub severity: String,
    pub types: Vec<String>,
    /// (type, id) of each resource.
    pub resources: Vec<(String, String)>,
}

/// A finding to import: one trailkeeper wants, or one of its own it archives.
#[derive(Clone, Debug, PartialEq)]
pub enum ToImport {
    /// `created_at`: when the finding was first imported (None: now).
    Desired {
        finding: DesiredFinding,
        created_at: Option<String>,
        updated_at: String,
    },
    /// A finding no longer judged (RecordState ARCHIVED).
    Archive {
        finding: ObservedFinding,
        updated_at: String,
    },
}

/// Runs one Security Hub call as a task of its own. Its types are large (an ASFF resource alone is
/// about 31 KB) and its (de)serializers deep: polled from the top of a worker thread's stack rather
/// than at the bottom of the reconcile that asked for it, a call never overflows the stack.
async fn on_own_task<T: Send + 'static>(
    call: impl std::future::Future<Output = T> + Send + 'static,
    action: &str,
    target: &FindingsTarget,
) -> Result<T, AwsError> {
    tokio::spawn(call).await.map_err(|e| AwsError {
        kind: ErrorKind::Transient,
        action: action.to_string(),
        resource: resource_of(target),
        code: "TaskFailed".into(),
        message: e.to_string(),
    })
}

fn resource_of(target: &FindingsTarget) -> String {
    format!("Security Hub of account {} in {}", target.account, target.region)
}

/// Security Hub's refusals, in words a person acts on: disabled in the account and Region
/// (InvalidAccessException, or InvalidAccess for a finding), or its rate limit
/// (LimitExceededException: throttling, not a quota to raise).
fn explained(mut e: AwsError, target: &FindingsTarget) -> AwsError {
    if e.code.starts_with("InvalidAccess") {
        e.kind = ErrorKind::Precondition;
        e.message = format!(
            "{}; Security Hub is not enabled in account {} in {}: enable it there (aws securityhub enable-security-hub --region {}), or set spec.securityHub.region to the Region where it is",
            e.message, target.account, target.region, target.region
        );
    } else if e.code == "LimitExceededException" {
        e.kind = ErrorKind::Throttled;
    }
    e
}

/// trailkeeper's findings of the target account, archived ones included.
pub async fn observe(clients: &AccountClients, target: &FindingsTarget) -> Result<Vec<ObservedFinding>, AwsError> {
    let equals = |value: String| {
        StringFilter::builder()
            .value(value)
            .comparison(StringFilterComparison::Equals)
            .build()
    };
    let filters = AwsSecurityFindingFilters::builder()
        .product_arn(equals(target.product_arn()))
        .aws_account_id(equals(target.account.clone()))
        .generator_id(
            StringFilter::builder()
                .value(GENERATOR_PREFIX)
                .comparison(StringFilterComparison::Prefix)
                .build(),
        )
        .build();
    let pacer = Pacer::new(READ_INTERVAL);
    let mut found = Vec::new();
    let mut token = None;
    loop {
        pacer.wait().await;
        let call = clients
            .securityhub
            .get_findings()
            .filters(filters.clone())
            .max_results(BATCH as i32)
            .set_next_token(token.take())
            .send();
        let sent = on_own_task(call, "securityhub:GetFindings", target).await?;
        let page = check(sent, "SecurityHub", "GetFindings", &resource_of(target)).map_err(|e| explained(e, target))?;
        found.extend(page.findings().iter().map(observed));
        match page.next_token() {
            Some(next) if !next.is_empty() => token = Some(next.to_string()),
            _ => return Ok(found),
        }
    }
}

fn observed(f: &AwsSecurityFinding) -> ObservedFinding {
    let text = |s: Option<&str>| s.unwrap_or_default().to_string();
    let provider = f.finding_provider_fields();
    ObservedFinding {
        id: text(f.id()),
        generator_id: text(f.generator_id()),
        title: text(f.title()),
        description: text(f.description()),
        created_at: text(f.created_at()),
        updated_at: text(f.updated_at()),
        record_state: f.record_state().map(|r| r.as_str().to_string()).unwrap_or_default(),
        workflow: f
            .workflow()
            .and_then(|w| w.status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        compliance: f
            .compliance()
            .and_then(|c| c.status())
            .map(|s| s.as_str().to_string())
            .unwrap_or_default(),
        digest: f.product_fields().and_then(|p| p.get(DIGEST_FIELD)).cloned(),
        severity: provider
            .and_then(|p| p.severity())
            .and_then(|s| s.label())
            .or_else(|| f.severity().and_then(|s| s.label()))
            .map(|l| l.as_str().to_string())
            .unwrap_or_default(),
        types: provider
            .map(|p| p.types().to_vec())
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| f.types().to_vec()),
        resources: f.resources().iter().map(|r| (text(r.r#type()), text(r.id()))).collect(),
    }
}

fn asff(target: &FindingsTarget, item: &ToImport) -> AwsSecurityFinding {
    let base = AwsSecurityFinding::builder()
        .schema_version(SCHEMA_VERSION)
        .product_arn(target.product_arn())
        .aws_account_id(&target.account)
        .region(&target.region);
    match item {
        ToImport::Desired {
            finding,
            created_at,
            updated_at,
        } => {
            let resources = finding
                .resources
                .iter()
                .map(|r| {
                    Resource::builder()
                        .r#type(&r.type_)
                        .id(&r.id)
                        .partition(target.partition.into())
                        .region(&target.region)
                        .build()
                })
                .collect();
            base.id(&finding.id)
                .generator_id(&finding.generator_id)
                .title(&finding.title)
                .description(&finding.description)
                .created_at(created_at.as_deref().unwrap_or(updated_at))
                .updated_at(updated_at)
                .last_observed_at(updated_at)
                .finding_provider_fields(
                    FindingProviderFields::builder()
                        .severity(
                            FindingProviderSeverity::builder()
                                .label(SeverityLabel::from(finding.severity.as_str()))
                                .build(),
                        )
                        .set_types(Some(finding.types.clone()))
                        .build(),
                )
                .compliance(
                    Compliance::builder()
                        .status(ComplianceStatus::from(finding.status.as_str()))
                        .set_related_requirements(
                            (!finding.related_requirements.is_empty()).then(|| finding.related_requirements.clone()),
                        )
                        .build(),
                )
                .set_resources(Some(resources))
                .remediation(
                    Remediation::builder()
                        .recommendation(
                            Recommendation::builder()
                                .text(&finding.remediation)
                                .url(&finding.remediation_url)
                                .build(),
                        )
                        .build(),
                )
                .product_fields(DIGEST_FIELD, finding.digest())
                .product_fields(BASELINE_FIELD, &finding.baseline)
                .record_state(RecordState::Active)
                .build()
        }
        ToImport::Archive { finding, updated_at } => {
            let resources = finding
                .resources
                .iter()
                .map(|(type_, id)| Resource::builder().r#type(type_).id(id).build())
                .collect();
            let mut fields = FindingProviderFields::builder().set_types(Some(finding.types.clone()));
            if !finding.severity.is_empty() {
                fields = fields.severity(
                    FindingProviderSeverity::builder()
                        .label(SeverityLabel::from(finding.severity.as_str()))
                        .build(),
                );
            }
            base.id(&finding.id)
                .generator_id(&finding.generator_id)
                .title(&finding.title)
                .description(&finding.description)
                .created_at(&finding.created_at)
                .updated_at(updated_at)
                .finding_provider_fields(fields.build())
                .set_resources(Some(resources))
                .product_fields(DIGEST_FIELD, finding.digest.clone().unwrap_or_default())
                .record_state(RecordState::Archived)
                .build()
        }
    }
}

/// Imports `items` in batches of at most 100, paced; a finding Security Hub refuses fails the
/// import with its error (the others of its batch are imported).
pub async fn import(clients: &AccountClients, target: &FindingsTarget, items: &[ToImport]) -> Result<(), AwsError> {
    let pacer = Pacer::new(WRITE_INTERVAL);
    let resource = resource_of(target);
    for batch in items.chunks(BATCH) {
        pacer.wait().await;
        let findings: Vec<AwsSecurityFinding> = batch.iter().map(|i| asff(target, i)).collect();
        let call = clients
            .securityhub
            .batch_import_findings()
            .set_findings(Some(findings))
            .send();
        let sent = on_own_task(call, "securityhub:BatchImportFindings", target).await?;
        let out = check(sent, "SecurityHub", "BatchImportFindings", &resource).map_err(|e| explained(e, target))?;
        if let Some(failed) = out.failed_findings().first() {
            let e = AwsError::refused(
                "securityhub:BatchImportFindings",
                &resource,
                failed.error_code().unwrap_or("Unknown"),
                &format!(
                    "{} of {} findings refused; {}: {}",
                    out.failed_count().unwrap_or_default(),
                    batch.len(),
                    failed.id().unwrap_or_default(),
                    failed.error_message().unwrap_or_default()
                ),
            );
            return Err(explained(e, target));
        }
    }
    Ok(())
}

/// Marks the findings `ids` RESOLVED (BatchUpdateFindings, as a Security Hub customer does).
pub async fn resolve(clients: &AccountClients, target: &FindingsTarget, ids: &[String]) -> Result<(), AwsError> {
    let pacer = Pacer::new(WRITE_INTERVAL);
    let resource = resource_of(target);
    let product = target.product_arn();
    for batch in ids.chunks(BATCH) {
        pacer.wait().await;
        let identifiers = batch
            .iter()
            .map(|id| {
                AwsSecurityFindingIdentifier::builder()
                    .id(id)
                    .product_arn(&product)
                    .build()
            })
            .collect();
        let call = clients
            .securityhub
            .batch_update_findings()
            .set_finding_identifiers(Some(identifiers))
            .workflow(WorkflowUpdate::builder().status(WorkflowStatus::Resolved).build())
            .send();
        let sent = on_own_task(call, "securityhub:BatchUpdateFindings", target).await?;
        let out = check(sent, "SecurityHub", "BatchUpdateFindings", &resource).map_err(|e| explained(e, target))?;
        if let Some(left) = out.unprocessed_findings().first() {
            let e = AwsError::refused(
                "securityhub:BatchUpdateFindings",
                &resource,
                left.error_code().unwrap_or("Unknown"),
                &format!(
                    "{} of {} findings not resolved: {}",
                    out.unprocessed_findings().len(),
                    batch.len(),
                    left.error_message().unwrap_or_default()
                ),
            );
            return Err(explained(e, target));
        }
    }
    Ok(())
}
