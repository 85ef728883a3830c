//! What one reconcile (or plan) of an account reports: per component its state, the drift seen,
//! the writes pending and made. Shared by the engine's parts, the controller's status and the
//! command line's output.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::api::{AuditQueriesStatus, Drift, Mode};
use crate::aws::sts::Identity;
use crate::aws::{AwsError, CallCounts};

/// Apply writes the difference (unless the baseline is in Observe mode); Plan only reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunMode {
    Apply,
    Plan,
}

/// The parts of an account's baseline, each with its own condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    Key,
    Storage,
    Trail,
    Retention,
    FlowLogs,
    InstanceLogs,
    ConfigRules,
    AuditQueries,
    /// The rules that forward tampering to the operator's queue (with `--events-queue-url`).
    DriftEvents,
    /// The monitoring controls: metric filters, alarms and their topic (TrailPolicy `monitoring`).
    Monitoring,
    /// A LogArchive's replica: its bucket, key, role and the replication rule.
    Replication,
}

impl Component {
    pub const ALL: [Component; 11] = [
        Component::Key,
        Component::Storage,
        Component::Trail,
        Component::Retention,
        Component::FlowLogs,
        Component::InstanceLogs,
        Component::ConfigRules,
        Component::AuditQueries,
        Component::DriftEvents,
        Component::Monitoring,
        Component::Replication,
    ];
}

#[derive(Clone, Debug, PartialEq)]
pub enum ComponentState {
    /// Observed in line with the baseline; nothing written.
    InSync,
    /// Drift found and repaired by the writes listed in the report.
    Repaired,
    /// Drift found and not repaired: a plan, or a baseline in Observe mode.
    Drifted,
    /// Drift that trailkeeper may not repair (an existing trail's unmanaged settings).
    NotCompliant,
    /// A change that needs an approval in the RetentionPolicy.
    ApprovalRequired(String),
    /// Not managed for this baseline (an existing trail's storage and key).
    NotManaged,
    Failed(AwsError),
    /// Not attempted because a component it depends on failed.
    Waiting(Component),
    /// A member of a LogArchive whose policies do not admit its trail yet: the message names the
    /// archive.
    WaitingForArchive(String),
    /// trailkeeper will not do what the spec asks until a person decides (its own refusal, not
    /// AWS's): the reason (a condition reason) and what to do.
    Refused {
        reason: &'static str,
        message: String,
    },
    /// In line with the spec, but AWS reports that it does not work, or not yet for everything (a
    /// replicated object FAILED, a Batch Replication job running): why, and what to check.
    NotEffective {
        reason: &'static str,
        message: String,
    },
}

#[derive(Clone, Debug, PartialEq)]
pub enum EngineError {
    /// The credentials belong to another account: nothing was written.
    WrongAccount {
        expected: String,
        actual: String,
        arn: String,
    },
    Aws(AwsError),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::WrongAccount { expected, actual, arn } => write!(
                f,
                "the credentials resolve to account {actual} ({arn}), not to spec.accountId {expected}: nothing was written; \
                 set spec.credentials.assumeRoleArn to a role in account {expected}"
            ),
            EngineError::Aws(e) => write!(f, "{e}"),
        }
    }
}

impl EngineError {
    pub fn reason(&self) -> &'static str {
        match self {
            EngineError::WrongAccount { .. } => "WrongAccount",
            EngineError::Aws(e) => e.reason(),
        }
    }
}

/// One planned or applied write.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub resource: String,
    pub action: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct AccountReport {
    pub account_id: String,
    pub region: String,
    pub mode: Mode,
    pub identity: Option<Identity>,
    /// What differed from the baseline when observed.
    pub drift: Vec<Drift>,
    /// Drift trailkeeper reports but may not repair.
    pub not_compliant: Vec<Drift>,
    /// Writes that would bring the account in line (plan, Observe mode, or blocked).
    pub pending: Vec<Change>,
    /// Writes made.
    pub applied: Vec<Change>,
    pub components: BTreeMap<Component, ComponentState>,
    /// Components whose resources this reconcile created (a first convergence, not a repair).
    pub created: std::collections::BTreeSet<Component>,
    /// Per component, one line per region (`us-east-1: 3/3 VPCs covered, ...`).
    pub details: BTreeMap<Component, Vec<String>>,
    pub error: Option<EngineError>,
    pub key_arn: Option<String>,
    pub trail_arn: Option<String>,
    pub bucket_name: Option<String>,
    pub access_log_bucket_name: Option<String>,
    /// Where to run the audit queries (when they are enabled and were reconciled).
    pub audit_queries: Option<AuditQueriesStatus>,
    /// Whether logs arrive: the trail's deliveries and each region's flow logs, as last read.
    pub delivery: Vec<crate::judge::delivery::DeliveryFinding>,
    /// The trail's deliveries could be read (a trail of this account, observed).
    pub delivery_observed: bool,
    /// What the benchmark's logging controls are judged on.
    pub evidence: crate::judge::compliance::Evidence,
    /// Trails recording the account's management events more than once in the primary Region.
    pub duplicate_trails: Option<crate::judge::duplicate_trails::DuplicateTrails>,
    /// AWS Control Tower's trail, when it records this account's events.
    pub control_tower: Option<crate::judge::control_tower::ControlTowerTrail>,
    /// Something written elsewhere or just now is not yet in force (a LogArchive's new policies, a
    /// key policy AWS applies lazily): reconcile again soon, not at the next resync.
    pub retry_soon: bool,
    /// The regions this reconcile kept (its regional parts, the forwarding of tampering).
    pub regions: Vec<String>,
    /// What the parts read that the account-wide controls judge too, by region: read once.
    pub known: std::collections::BTreeMap<String, super::cis_evidence::Known>,
    pub calls: CallCounts,
    pub duration: Duration,
    /// Reconciles of the account in this run (`plan` and `apply` try a transient failure again).
    pub attempts: u32,
}

impl AccountReport {
    /// The report of an account's reconcile before it has observed anything.
    pub fn new(account_id: &str, region: &str, mode: Mode) -> Self {
        AccountReport {
            account_id: account_id.to_string(),
            region: region.to_string(),
            mode,
            identity: None,
            drift: Vec::new(),
            not_compliant: Vec::new(),
            pending: Vec::new(),
            applied: Vec::new(),
            components: BTreeMap::new(),
            created: Default::default(),
            details: BTreeMap::new(),
            error: None,
            key_arn: None,
            trail_arn: None,
            bucket_name: None,
            access_log_bucket_name: None,
            audit_queries: None,
            delivery: Vec::new(),
            delivery_observed: false,
            evidence: Default::default(),
            duplicate_trails: None,
            control_tower: None,
            retry_soon: false,
            regions: Vec::new(),
            known: Default::default(),
            calls: CallCounts::default(),
            duration: Duration::ZERO,
            attempts: 1,
        }
    }

    /// In line with the baseline: nothing pending, nothing failed, nothing non-compliant.
    pub fn in_sync(&self) -> bool {
        self.error.is_none()
            && self.pending.is_empty()
            && self.not_compliant.is_empty()
            && self.components.values().all(|s| {
                matches!(
                    s,
                    ComponentState::InSync | ComponentState::Repaired | ComponentState::NotManaged
                )
            })
    }

    pub fn failed(&self) -> bool {
        self.error.is_some() || self.components.values().any(|s| matches!(s, ComponentState::Failed(_)))
    }

    /// Failed, and only for what may pass on its own (a network error, a timeout, AWS unavailable
    /// or throttling): worth another try soon. Not what a person must fix (AccessDenied, an
    /// invalid request, another account's credentials).
    pub fn failed_transiently(&self) -> bool {
        let transient = |e: &crate::aws::AwsError| {
            matches!(
                e.kind,
                crate::aws::ErrorKind::Transient | crate::aws::ErrorKind::Throttled
            )
        };
        let errors: Vec<&crate::aws::AwsError> = match &self.error {
            Some(EngineError::WrongAccount { .. }) => return false,
            Some(EngineError::Aws(e)) => vec![e],
            None => self
                .components
                .values()
                .filter_map(|s| match s {
                    ComponentState::Failed(e) => Some(e),
                    _ => None,
                })
                .collect(),
        };
        !errors.is_empty() && errors.into_iter().all(transient)
    }
}

/// What the last reconcile applied (from the baseline's status): the approval the retention in
/// force was applied under, against which a shortening is judged (when unknown, what AWS reports
/// is), and the trail key it reported.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LastApplied {
    /// The RetentionPolicy approval (its reference) the retention in force was applied under.
    pub approval_reference: Option<String>,
    /// The trail key's ARN as last reported (status): found again with one call when its alias
    /// is gone, instead of a scan of every key of the account.
    pub key_arn: Option<String>,
}

impl ComponentState {
    /// How bad a state is: a component made of several resources or regions keeps its worst.
    pub fn severity(&self) -> u8 {
        match self {
            ComponentState::NotManaged => 0,
            ComponentState::InSync => 1,
            ComponentState::Repaired => 2,
            ComponentState::Drifted => 3,
            ComponentState::Waiting(_) | ComponentState::WaitingForArchive(_) | ComponentState::NotEffective { .. } => {
                4
            }
            ComponentState::NotCompliant => 5,
            ComponentState::ApprovalRequired(_) | ComponentState::Refused { .. } => 6,
            ComponentState::Failed(_) => 7,
        }
    }
}
