//! The account-wide sweep: CIS 3.3 (AWS Config), 3.6 (key rotation) and 3.7 (flow logs) in the
//! regions a reconcile does not read (it reads the regions it keeps), and, with events on, the
//! forwarding rule of those regions, so that a tampering call there (a recorder stopped, a key's
//! rotation disabled, a flow log deleted) reaches the operator. The controller runs it on its own
//! cadence (`controller::sweep`), for all regions once per interval, for one region when an event
//! concerns it. Reads only, but for the forwarding rules (in Enforce mode, behind the write fence).

use futures::StreamExt;

use super::cis_evidence;
use super::forwarding::reconcile_forwarding_rule;
use super::regional::RegionOutcome;
use super::report::{Change, ComponentState};
use crate::api::{ComplianceSweep, RegionVerdict};
use crate::aws::{AccountClients, sts};
use crate::desired::events::{self, Forwarding};
use crate::desired::{self, AccountSpecs};

/// Regions whose forwarding rule is kept at once.
const REGION_CONCURRENCY: usize = 4;

/// What a sweep reads again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every region judged that the baseline does not keep.
    Account,
    /// These regions only (an event came from them), on top of the previous sweep.
    Regions(Vec<String>),
}

/// How one sweep runs.
#[derive(Clone, Debug)]
pub struct SweepOptions {
    pub scope: Scope,
    /// Where tampering is forwarded, when events are on: the sweep keeps the rule of its regions.
    pub forwarding: Option<Forwarding>,
    /// Whether the rules may be written (Enforce mode).
    pub write: bool,
    /// The sweep in status, which a region's refresh updates.
    pub previous: Option<ComplianceSweep>,
    /// When it runs (RFC 3339).
    pub now: String,
}

/// A sweep's result: its status, and the rule writes it made or would make.
#[derive(Clone, Debug, Default)]
pub struct SweepOutcome {
    pub sweep: ComplianceSweep,
    pub applied: Vec<Change>,
    pub pending: Vec<Change>,
    /// Some forwarding rule could not be kept (`sweep.forwarding` says why).
    pub rules_failed: bool,
    /// Every region was read (asked for, or a region's refresh without a whole sweep before).
    pub whole: bool,
}

/// The regions a sweep judges: those the controls judge (spec.complianceRegions, or every enabled
/// region) that the baseline does not keep. Err: the enabled regions could not be listed.
pub async fn swept_regions(
    clients: &AccountClients,
    specs: &AccountSpecs<'_>,
) -> Result<(Vec<String>, Vec<String>), String> {
    let spec = specs.baseline;
    let listed = &spec.compliance_regions;
    let enabled = if listed.is_empty() || desired::regional::keeps_every_region(spec) {
        Some(cis_evidence::enabled_regions(clients).await?)
    } else {
        None
    };
    let kept = desired::regional::regions(specs, enabled.as_deref());
    let judged = cis_evidence::judged_regions(&kept, listed, enabled.as_deref());
    let swept = judged.into_iter().filter(|r| !kept.contains(r)).collect();
    Ok((swept, kept))
}

/// Sweeps one account. Never fails: a failure is in the sweep's `error` or its regions.
pub async fn sweep_account(clients: &AccountClients, specs: &AccountSpecs<'_>, options: SweepOptions) -> SweepOutcome {
    let calls_before = clients.calls.snapshot();
    let spec = specs.baseline;
    let mut outcome = SweepOutcome::default();
    // A region read again needs the others' verdicts from a sweep that read them all: without
    // one (or after one that failed), the whole account is swept.
    let mut options = options;
    if options.previous.as_ref().is_none_or(|p| p.error.is_some()) {
        options.scope = Scope::Account;
    }
    outcome.whole = options.scope == Scope::Account;
    let mut sweep = match (&options.scope, &options.previous) {
        (Scope::Regions(_), Some(previous)) => ComplianceSweep {
            refreshed: Some(options.now.clone()),
            ..previous.clone()
        },
        _ => ComplianceSweep {
            time: options.now.clone(),
            ..Default::default()
        },
    };
    // The rules are written into this account only: its credentials must resolve to it.
    let identity = match sts::caller_identity(clients).await {
        Ok(identity) if identity.account == spec.account_id => Ok(()),
        Ok(identity) => Err(format!(
            "the credentials resolve to account {} ({}), not {}",
            identity.account, identity.arn, spec.account_id
        )),
        Err(e) => Err(e.to_string()),
    };
    let regions = match identity {
        Err(e) => Err(e),
        Ok(()) => match &options.scope {
            Scope::Account => swept_regions(clients, specs).await,
            Scope::Regions(only) => {
                // An event came from these regions: they are enabled. Those kept are the
                // reconcile's; those the controls do not judge (not listed) are nobody's.
                let kept = desired::regional::regions(specs, None);
                let listed = &spec.compliance_regions;
                let swept = only
                    .iter()
                    .filter(|r| !kept.contains(r) && (listed.is_empty() || listed.contains(r)))
                    .cloned()
                    .collect();
                Ok((swept, kept))
            }
        },
    };
    let (swept, kept) = match regions {
        Ok(found) => found,
        Err(e) => {
            sweep.error = Some(e);
            sweep.reads = clients.calls.snapshot().since(&calls_before).reads;
            outcome.sweep = sweep;
            return outcome;
        }
    };
    let evidence = cis_evidence::gather(clients, &swept, &Default::default()).await;
    let verdicts: Vec<RegionVerdict> = evidence.iter().map(crate::judge::account_controls::verdict).collect();
    match &options.scope {
        Scope::Account => {
            sweep.error = None;
            sweep.regions = verdicts;
        }
        Scope::Regions(_) => {
            sweep.regions.retain(|r| !swept.contains(&r.region));
            sweep.regions.extend(verdicts);
            sweep.regions.sort_by(|a, b| a.region.cmp(&b.region));
        }
    }
    if let Some(forwarding) = &options.forwarding {
        let gse = global_service_events(specs);
        let forwarded = events::forwarding_regions(&kept, &spec.primary_region, gse);
        let rule_regions: Vec<String> = swept.iter().filter(|r| !forwarded.contains(r)).cloned().collect();
        let rules = keep_rules(clients, specs, forwarding, &rule_regions, options.write).await;
        let failed: Vec<String> = rules
            .iter()
            .flat_map(|o| o.parts.iter())
            .filter(|(_, state, _)| matches!(state, ComponentState::Failed(_)))
            .map(|(_, _, detail)| detail.clone())
            .collect();
        for o in rules {
            outcome.applied.extend(o.applied);
            outcome.pending.extend(o.pending);
        }
        outcome.rules_failed = !failed.is_empty();
        sweep.forwarding = Some(if failed.is_empty() {
            format!(
                "tampering forwarded to {} from {} regions not kept",
                forwarding.bus_arn,
                rule_regions.len()
            )
        } else {
            format!("forwarding rules not kept: {}", failed.join("; "))
        });
    }
    let calls = clients.calls.snapshot().since(&calls_before);
    sweep.reads = calls.reads;
    sweep.writes = calls.writes;
    outcome.sweep = sweep;
    outcome
}

/// Whether the trail records global services' events (their Region then forwards them).
fn global_service_events(specs: &AccountSpecs<'_>) -> bool {
    match desired::account(specs).trail {
        desired::DesiredTrail::Managed(settings) => settings.global_service_events,
        desired::DesiredTrail::Existing { expected, .. } => expected.global_service_events,
    }
}

/// The sweep's forwarding rule in each of `regions` (the role is the reconcile's: IAM is global).
async fn keep_rules(
    clients: &AccountClients,
    specs: &AccountSpecs<'_>,
    forwarding: &Forwarding,
    regions: &[String],
    write: bool,
) -> Vec<RegionOutcome> {
    let account = specs.baseline.account_id.as_str();
    let tags = desired::resource_tags(specs.baseline);
    let pattern = events::sweep_pattern();
    let (tags, pattern) = (&tags, &pattern);
    let runs: Vec<futures::future::BoxFuture<'_, RegionOutcome>> = regions
        .iter()
        .map(|region| {
            let clients = clients.for_region(region);
            Box::pin(async move {
                let mut outcome = RegionOutcome {
                    region: clients.region.clone(),
                    ..Default::default()
                };
                reconcile_forwarding_rule(&clients, account, forwarding, pattern, tags, write, &mut outcome).await;
                outcome
            }) as futures::future::BoxFuture<'_, _>
        })
        .collect();
    futures::stream::iter(runs)
        .buffered(REGION_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
}
