//! What the LoggingBaseline controller keeps between reconciles: its settings, its error type,
//! each baseline's AWS identity, the failure counts for backoff, and the forwarding of tampering
//! events once known.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_types::SdkConfig;
use kube::Client;
use kube::ResourceExt;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};

use super::shard::Writers;
use crate::api::{LoggingBaseline, RetentionPolicy, TrailPolicy};
use crate::aws::{AccountClients, AccountIdentity, CallCounts, CallRecorder, ErrorKind, StsByRegion, WriteFence};
use crate::engine::report::{AccountReport, ComponentState, EngineError};
use crate::fence::WriteGate;
use crate::runtime::http::Health;
use crate::runtime::leader::shards::Shards;

/// Who writes the controllers' Events: trailkeeper, this pod.
pub fn reporter() -> Reporter {
    Reporter {
        controller: MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    }
}

pub const FINALIZER: &str = "trailkeeper.io/cleanup";
/// The field manager of status patches and the reporting controller of events.
pub const MANAGER: &str = "trailkeeper";
/// What the keys of LogArchives start with among the clients and failure counts.
pub const ARCHIVE_KEY_PREFIX: &str = "logarchive/";

#[derive(thiserror::Error, Debug)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("cleanup of {baseline} failed: {message}")]
    Cleanup {
        baseline: String,
        message: String,
        reason: &'static str,
    },
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    #[error("the cache of {0} has not synced: can the operator list and watch them (RBAC)?")]
    CacheNotSynced(String),
}

impl Error {
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubernetesApi",
            Error::Cleanup { reason, .. } => reason,
            Error::CacheNotSynced(_) => "CacheNotSynced",
            Error::Finalizer(e) => match e.as_ref() {
                kube::runtime::finalizer::Error::ApplyFailed(inner)
                | kube::runtime::finalizer::Error::CleanupFailed(inner) => inner.metric_label(),
                kube::runtime::finalizer::Error::AddFinalizer(_)
                | kube::runtime::finalizer::Error::RemoveFinalizer(_) => "KubernetesApi",
                kube::runtime::finalizer::Error::UnnamedObject | kube::runtime::finalizer::Error::InvalidFinalizer => {
                    "InvalidObject"
                }
            },
        }
    }
}

/// Settings of a running controller.
#[derive(Clone, Debug)]
pub struct Settings {
    /// How often an account in line is observed again (jittered by up to 10%).
    pub resync: Duration,
    /// First retry delay after a failure; doubles per consecutive failure.
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub concurrency: u16,
    pub watch_namespace: Option<String>,
    pub selector: Option<String>,
    /// The bound of one account's reconcile as a whole (each AWS call has its own, shorter one).
    pub reconcile_timeout: Duration,
    /// Reconcile on tampering events from this queue (None: on resync and spec changes only).
    pub events: Option<crate::drift_events::queue::EventSettings>,
    /// The account-wide sweep (None: off; the controls then judge the kept regions only, and say
    /// the others are not swept).
    pub compliance_sweep: Option<super::sweep_schedule::SweepSettings>,
    /// How many baselines keep their SDK clients between reconciles.
    pub client_baselines: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(600),
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(600),
            concurrency: 8,
            watch_namespace: None,
            selector: None,
            reconcile_timeout: Duration::from_secs(300),
            events: None,
            compliance_sweep: Some(super::sweep_schedule::SweepSettings::default()),
            client_baselines: DEFAULT_CLIENT_BASELINES,
        }
    }
}

/// The AWS identity of each baseline (its credentials provider and identity cache, and its call
/// recorder), kept across reconciles so assumed-role credentials are reused for their lifetime;
/// rebuilt when the baseline's account, region or credentials change, and dropped with the
/// baseline. Its SDK clients (built per service on first use, about 16 KiB each) are kept for the
/// next reconcile too, for the `client_baselines` baselines reconciled last: keeping every
/// baseline's would cost about 160 KiB a baseline (docs/performance.md), so past that number
/// the least recently reconciled ones are rebuilt when next used.
pub struct AwsClients {
    pub(super) base: SdkConfig,
    /// The write gate of each account's shard: shut while this replica does not hold it, the
    /// account's clients then refuse AWS writes.
    pub(super) shards: Arc<Shards>,
    cache: Mutex<HashMap<String, CachedIdentity>>,
    /// One STS client per region, shared by every account's role assumption.
    sts: StsByRegion,
    /// How many baselines keep their SDK clients between reconciles.
    client_baselines: usize,
    /// Counts uses, for least-recently-used eviction.
    uses: std::sync::atomic::AtomicU64,
}

struct CachedIdentity {
    /// Account, region and credentials the identity was built for.
    key: String,
    account_identity: Arc<AccountIdentity>,
    calls: CallRecorder,
    /// The clients of the regions its reconciles use, kept while it is among the recently used.
    regions: crate::aws::RegionServices,
    last_used: u64,
}

/// How many baselines keep their SDK clients between reconciles by default: about 2.5 MiB of
/// clients when each keeps one region.
pub const DEFAULT_CLIENT_BASELINES: usize = 16;

impl AwsClients {
    pub fn new(base: SdkConfig, shards: Arc<Shards>) -> Self {
        Self::keeping(base, shards, DEFAULT_CLIENT_BASELINES)
    }

    /// `new`, keeping the SDK clients of `client_baselines` baselines between reconciles.
    pub fn keeping(base: SdkConfig, shards: Arc<Shards>, client_baselines: usize) -> Self {
        Self {
            base,
            shards,
            cache: Mutex::new(HashMap::new()),
            sts: StsByRegion::default(),
            client_baselines,
            uses: Default::default(),
        }
    }

    /// The clients of the baseline `key` (namespace/name), those of its regions kept from its
    /// last reconcile when it is among the recently used.
    pub fn for_baseline(&self, key: &str, spec: &crate::api::LoggingBaselineSpec) -> AccountClients {
        let (identity, calls, regions) = self.identity_of(key, spec);
        AccountClients::from_identity_reusing(
            identity,
            &spec.primary_region,
            calls,
            Some(WriteFence::new(self.gate_of(&spec.account_id).clone())),
            regions,
        )
    }

    /// The clients of the baseline `key` for its sweep: its identity, but clients of their own,
    /// built for the regions swept and dropped after (a sweep runs once per interval).
    pub fn for_sweep(&self, key: &str, spec: &crate::api::LoggingBaselineSpec) -> AccountClients {
        let (identity, calls, _) = self.identity_of(key, spec);
        AccountClients::from_identity_fenced(
            identity,
            &spec.primary_region,
            calls,
            Some(WriteFence::new(self.gate_of(&spec.account_id).clone())),
        )
    }

    /// SDK clients kept between reconciles, in all.
    pub fn clients_kept(&self) -> usize {
        self.lock()
            .values()
            .map(|c| {
                let regions = c.regions.lock().unwrap_or_else(|e| e.into_inner());
                regions.values().map(|s| s.built()).sum::<usize>()
            })
            .sum()
    }

    fn identity_of(
        &self,
        key: &str,
        spec: &crate::api::LoggingBaselineSpec,
    ) -> (Arc<AccountIdentity>, CallRecorder, crate::aws::RegionServices) {
        let identity = format!(
            "{}|{}|{:?}",
            spec.account_id,
            spec.primary_region,
            spec.credentials.as_ref().map(|c| (&c.assume_role_arn, &c.external_id))
        );
        let used = self.uses.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let cached = self.lock().get_mut(key).filter(|c| c.key == identity).map(|c| {
            c.last_used = used;
            (c.account_identity.clone(), c.calls.clone(), c.regions.clone())
        });
        let found = match cached {
            Some(found) => found,
            None => {
                let calls = CallRecorder::new();
                let account_identity =
                    AccountIdentity::in_region(&self.base, &spec.primary_region, spec.credentials.as_ref(), &self.sts);
                let regions = crate::aws::RegionServices::default();
                self.lock().insert(
                    key.to_string(),
                    CachedIdentity {
                        key: identity,
                        account_identity: account_identity.clone(),
                        calls: calls.clone(),
                        regions: regions.clone(),
                        last_used: used,
                    },
                );
                (account_identity, calls, regions)
            }
        };
        self.drop_clients_of_least_recently_used();
        found
    }

    /// Past `client_baselines` baselines with clients kept, the least recently used drop theirs
    /// (their identity stays: credentials are not assumed again).
    fn drop_clients_of_least_recently_used(&self) {
        let cache = self.lock();
        let mut holding: Vec<&CachedIdentity> = cache
            .values()
            .filter(|c| !c.regions.lock().unwrap_or_else(|e| e.into_inner()).is_empty())
            .collect();
        if holding.len() <= self.client_baselines {
            return;
        }
        holding.sort_by_key(|c| std::cmp::Reverse(c.last_used));
        for c in &holding[self.client_baselines..] {
            c.regions.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }

    /// The write gate of `account`'s shard.
    pub fn gate_of(&self, account: &str) -> &WriteGate {
        self.shards.gate(self.shards.of(account))
    }

    /// Drops the identity of a deleted baseline.
    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    /// Keeps the identities of these baselines only.
    /// Keeps the clients of `keys` (baselines) and of the archives (kept by their own controller,
    /// whose keys start with `logarchive/`).
    fn retain(&self, keys: &std::collections::HashSet<String>) {
        self.lock()
            .retain(|key, _| keys.contains(key) || key.starts_with(ARCHIVE_KEY_PREFIX));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedIdentity>> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// All calls made for the baselines known.
    pub fn total_calls(&self) -> CallCounts {
        self.lock().values().fold(CallCounts::default(), |mut total, c| {
            let s = c.calls.snapshot();
            total.reads += s.reads;
            total.writes += s.writes;
            for (action, (n, failed)) in s.by_action {
                let sum = total.by_action.entry(action).or_default();
                sum.0 += n;
                sum.1 += failed;
            }
            total
        })
    }
}

pub struct Context {
    /// Reads and watches; its writes are fenced on the single Lease, or, with sharding, always
    /// refused: an object's writes go through its shard's writer (`writers`).
    pub client: Client,
    pub recorder: Recorder,
    /// The shards (one, the single Lease's, without sharding) and their writers.
    pub shards: Arc<Shards>,
    pub writers: Arc<Writers>,
    pub aws: AwsClients,
    pub settings: Settings,
    /// What /readyz reports; the controller marks its caches synced here.
    pub health: Arc<Health>,
    /// Set by `run`: the policies as its watches see them.
    pub(super) policies: std::sync::OnceLock<PolicyStores>,
    /// Set by `run`: the baselines as its watch sees them (who else claims an account).
    pub(super) baselines: std::sync::OnceLock<Store<LoggingBaseline>>,
    /// Consecutive failures per baseline, for exponential backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// Where accounts forward tampering events, once the central bus is set up (with events on).
    pub(super) forwarding: crate::drift_events::queue::SharedForwarding,
    /// Baselines reconciled with events on before the forwarding was known: reconciled again
    /// once it is (their rules could not be set up).
    pub(super) unforwarded: Arc<Mutex<std::collections::HashSet<ObjectRef<LoggingBaseline>>>>,
    /// The baselines (keys) and accounts this controller has seen: only their series are its to
    /// forget (another controller of the process, a test's, keeps its own).
    seen: Mutex<Seen>,
    /// Account-wide sweeps done and not yet written into status by a reconcile.
    pub(super) sweeps: super::sweep_schedule::Sweeps,
    /// Baselines asked for by something other than their resync (a tamper event, a sweep, a
    /// policy's change, a shard newly held), until their reconcile begins: never deferred.
    urgent: Mutex<std::collections::HashSet<ObjectRef<LoggingBaseline>>>,
    /// Baselines whose reconcile this replica has begun, and whether they had the finalizer
    /// then (the first reconcile only adds it; the second applies) (`defers_resync`).
    attempted: Mutex<HashMap<ObjectRef<LoggingBaseline>, bool>>,
}

#[derive(Default)]
struct Seen {
    keys: std::collections::HashSet<String>,
    accounts: std::collections::HashSet<String>,
}

impl Context {
    /// A context whose AWS writes are always allowed (no leader election).
    pub fn new(client: Client, base: SdkConfig, settings: Settings) -> Self {
        Self::with_gate(client, base, settings, WriteGate::open(), Arc::new(Health::default()))
    }

    /// A context whose AWS writes go through only while `gate` is open (this replica leads).
    pub fn with_gate(
        client: Client,
        base: SdkConfig,
        settings: Settings,
        gate: WriteGate,
        health: Arc<Health>,
    ) -> Self {
        let identity = std::env::var("POD_NAME").unwrap_or_default();
        let shards = Shards::single(&identity, gate);
        let writers = Writers::single(client.clone(), reporter());
        Self::sharded(client, writers, shards, base, settings, health)
    }

    /// A context whose writes about an object go through the writer and AWS clients of its
    /// shard (`writers`, fenced on `shards`' gates); `client` reads.
    pub fn sharded(
        client: Client,
        writers: Writers,
        shards: Arc<Shards>,
        base: SdkConfig,
        settings: Settings,
        health: Arc<Health>,
    ) -> Self {
        Self {
            recorder: Recorder::new(client.clone(), reporter()),
            client,
            aws: AwsClients::keeping(base, shards.clone(), settings.client_baselines),
            shards,
            writers: Arc::new(writers),
            settings,
            health,
            policies: std::sync::OnceLock::new(),
            baselines: std::sync::OnceLock::new(),
            failures: Mutex::new(HashMap::new()),
            forwarding: Default::default(),
            unforwarded: Default::default(),
            urgent: Default::default(),
            attempted: Default::default(),
            seen: Mutex::default(),
            sweeps: Default::default(),
        }
    }

    /// Notes a baseline this controller reconciles (its series become this controller's).
    /// Marks `baselines` as asked for by something other than their resync.
    pub(super) fn mark_urgent(&self, baselines: impl IntoIterator<Item = ObjectRef<LoggingBaseline>>) {
        self.urgent.lock().unwrap_or_else(|e| e.into_inner()).extend(baselines);
    }

    /// Whether this reconcile of `baseline` is a resync that waits (one resync period) for the
    /// baselines of this replica's shards it has never reconciled. When every reconcile slot is
    /// busy, kube-runtime takes the next request from a set in hash order, not first come: with
    /// more in-sync baselines to resync than the slots keep up with, some new baselines were
    /// never reconciled at all (300 baselines on 3 replicas, a 30 s resync, 8 slots each: 78
    /// never reconciled). A resync that defers costs nothing, and leaves its slot to them.
    pub(super) fn defers_resync(&self, baseline: &LoggingBaseline) -> bool {
        let reference = ObjectRef::from_obj(baseline);
        if self.urgent.lock().unwrap_or_else(|e| e.into_inner()).remove(&reference) {
            return false;
        }
        let in_sync = baseline.metadata.deletion_timestamp.is_none()
            && baseline.status.as_ref().and_then(|s| s.observed_generation) == baseline.metadata.generation;
        let attempted = self.attempted.lock().unwrap_or_else(|e| e.into_inner());
        if !in_sync || attempted.get(&reference) != Some(&true) {
            return false;
        }
        let Some(store) = self.baselines.get() else {
            return false;
        };
        store.state().iter().any(|b| {
            b.metadata.deletion_timestamp.is_none()
                && self.shards.holds(self.shards.of(&b.spec.account_id))
                && match attempted.get(&ObjectRef::from_obj(b.as_ref())) {
                    None => true,
                    // Its finalizer added since: its first apply still waits.
                    Some(false) => has_finalizer(b),
                    Some(true) => false,
                }
        })
    }

    /// Records that the reconcile of `baseline` began (whatever comes of it: a baseline that
    /// always fails must not hold every resync back).
    pub(super) fn attempt(&self, baseline: &LoggingBaseline) {
        self.attempted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ObjectRef::from_obj(baseline), has_finalizer(baseline));
    }

    pub(super) fn saw(&self, baseline: &LoggingBaseline) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.keys.insert(key_of(baseline));
        seen.accounts.insert(baseline.spec.account_id.clone());
    }

    /// Forgets what is kept per baseline (clients, failure count, its series) once it is deleted.
    pub(super) fn forget(&self, baseline: &LoggingBaseline) {
        let key = key_of(baseline);
        self.aws.forget(&key);
        self.sweeps.forget(&key);
        self.succeeded(&key);
        crate::runtime::metrics::forget_baseline(&key);
        crate::runtime::metrics::forget_account(&baseline.spec.account_id);
        self.unforwarded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ObjectRef::from_obj(baseline));
    }

    /// Forgets what is kept for baselines gone from this controller's view without a deletion it
    /// handled: out of its shard's selector or namespace, or deleted while another replica led.
    /// The watch stops showing them; nothing else would drop their caches and series.
    pub(super) fn forget_departed(&self, present: &[Arc<LoggingBaseline>]) {
        let keys: std::collections::HashSet<String> = present.iter().map(|b| key_of(b)).collect();
        let accounts: std::collections::HashSet<&str> = present.iter().map(|b| b.spec.account_id.as_str()).collect();
        let refs: std::collections::HashSet<ObjectRef<LoggingBaseline>> =
            present.iter().map(|b| ObjectRef::from_obj(b.as_ref())).collect();
        self.aws.retain(&keys);
        self.sweeps.retain(|key| keys.contains(key));
        self.failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|key, _| keys.contains(key) || key.starts_with(ARCHIVE_KEY_PREFIX));
        self.unforwarded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|r| refs.contains(r));
        self.attempted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|r, _| refs.contains(r));
        // Marked by an event of another replica's shard and never consumed here: dropped too.
        self.urgent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|r| refs.contains(r));
        // Only what this controller saw and no longer sees: the registry is the process's.
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        for key in seen.keys.iter().filter(|k| !keys.contains(k.as_str())) {
            crate::runtime::metrics::forget_baseline(key);
        }
        for account in seen.accounts.iter().filter(|a| !accounts.contains(a.as_str())) {
            crate::runtime::metrics::forget_account(account);
        }
        seen.keys = keys;
        seen.accounts = accounts.into_iter().map(str::to_string).collect();
    }

    /// Records a failure and returns how long to wait: doubling from `retry_base`, longer for
    /// throttling, and the resync interval for failures that only a person can fix.
    pub(super) fn failure_delay(&self, key: &str, kind: FailureKind) -> Duration {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let n = failures.entry(key.to_string()).or_default();
        *n = n.saturating_add(1);
        let exponent = (*n - 1).min(16);
        let base = match kind {
            FailureKind::NeedsAPerson => return self.settings.resync,
            FailureKind::Throttled => self.settings.retry_base * 4,
            FailureKind::Transient => self.settings.retry_base,
        };
        (base * 2u32.pow(exponent)).min(self.settings.retry_max)
    }

    pub(super) fn succeeded(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    /// How long the watch's predicate filter remembers a baseline's spec: longer than the time
    /// between two of its status patches in line (a jittered resync, a reconcile and a
    /// verification at most), or the patch after each resync passes the filter as if the spec
    /// had changed and the account is observed twice (kube-runtime treats a remembered value
    /// older than the TTL as absent; its default is an hour, the default resync).
    pub(super) fn predicate_ttl(&self) -> Duration {
        self.settings.resync.mul_f64(2.0) + self.settings.reconcile_timeout * 2
    }

    /// The resync interval, jittered by up to 10% so that baselines do not resync in lockstep.
    pub(super) fn resync(&self) -> Duration {
        use std::hash::{BuildHasher, Hasher};
        // RandomState is randomly keyed: a cheap source of jitter without a random number crate.
        let random = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let jitter = (random % 1000) as f64 / 10_000.0;
        self.settings.resync.mul_f64(1.0 + jitter)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FailureKind {
    /// AccessDenied, wrong account, invalid request: retrying soon cannot help.
    NeedsAPerson,
    Throttled,
    Transient,
}

pub(super) fn failure_kind(report: &AccountReport) -> Option<FailureKind> {
    let kind_of = |e: &crate::aws::AwsError| match e.kind {
        ErrorKind::Throttled => FailureKind::Throttled,
        ErrorKind::AccessDenied
        | ErrorKind::Invalid
        | ErrorKind::Conflict
        | ErrorKind::NotFound
        | ErrorKind::Precondition => FailureKind::NeedsAPerson,
        ErrorKind::Transient => FailureKind::Transient,
    };
    match &report.error {
        Some(EngineError::WrongAccount { .. }) => return Some(FailureKind::NeedsAPerson),
        Some(EngineError::Aws(e)) => return Some(kind_of(e)),
        None => {}
    }
    report
        .components
        .values()
        .find_map(|s| match s {
            ComponentState::Failed(e) => Some(kind_of(e)),
            _ => None,
        })
        .or(report.retry_soon.then_some(FailureKind::Transient))
}

/// Whether trailkeeper's finalizer is on `baseline` (its reconciles apply from then on).
fn has_finalizer(baseline: &LoggingBaseline) -> bool {
    baseline.finalizers().iter().any(|f| f == FINALIZER)
}

pub(super) fn key_of(b: &LoggingBaseline) -> String {
    format!("{}/{}", b.namespace().unwrap_or_default(), b.name_any())
}

pub(super) fn now() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .unwrap_or_else(|_| jiff::Timestamp::now())
        .to_string()
}

/// The controller's caches of the policies (reflector stores of its policy watches).
pub struct PolicyStores {
    pub trail: Store<TrailPolicy>,
    pub retention: Store<RetentionPolicy>,
}

/// The baseline that keeps `baseline`'s account when another claims it too (in any namespace
/// this controller watches): the oldest (then the first by namespace and name). None when
/// `baseline` keeps it. Two writers of one account would flap between their settings and share
/// its quota with two pacers.
pub fn account_keeper(baseline: &LoggingBaseline, all: &[Arc<LoggingBaseline>]) -> Option<String> {
    let rank = |b: &LoggingBaseline| {
        (
            b.metadata.creation_timestamp.as_ref().map(|t| t.0),
            b.namespace().unwrap_or_default(),
            b.name_any(),
        )
    };
    let mine = rank(baseline);
    all.iter()
        .filter(|other| {
            other.spec.account_id == baseline.spec.account_id && other.metadata.deletion_timestamp.is_none()
        })
        .filter(|other| rank(other) != mine)
        .min_by_key(|other| rank(other))
        .filter(|oldest| rank(oldest) < mine)
        .map(|oldest| key_of(oldest))
}

/// The cache keeps no managedFields nor last-applied annotation: they are most of an object's
/// size and the controller never reads them. Of the status it keeps what a reconcile reads of
/// the previous one (conditions, names, key, retention applied, integrity): the compliance with
/// its evidence, the drift, the audit queries and duplicate trails are rewritten by each
/// reconcile, and were most of a Ready baseline's size (docs/performance.md, "Memory, issue 28").
/// What needs the whole status reads it from the API server (`status_of`).
pub fn slim(baseline: &mut LoggingBaseline) {
    baseline.managed_fields_mut().clear();
    baseline
        .annotations_mut()
        .remove("kubectl.kubernetes.io/last-applied-configuration");
    // The account-wide sweep's verdicts stay: the next reconcile folds them into the compliance
    // (a few hundred bytes: the failures of each region swept).
    if let Some(status) = baseline.status.as_mut() {
        status.compliance = None;
        status.drift = Vec::new();
        status.audit_queries = None;
        status.duplicate_trails = None;
        status.last_reconcile = None;
    }
}

/// The API of a namespaced kind in `namespace`, or in all namespaces.
pub(super) fn api_for<K>(client: &Client, namespace: Option<&str>) -> kube::Api<K>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(ns) => kube::Api::namespaced(client.clone(), ns),
        None => kube::Api::all(client.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A context whose kube client talks to nobody: the backoff and resync are pure bookkeeping.
    fn context(settings: Settings) -> Context {
        let (service, _handle) =
            tower_test::mock::pair::<http::Request<kube::client::Body>, http::Response<kube::client::Body>>();
        let client = Client::new(service, "default");
        Context::new(client, SdkConfig::builder().build(), settings)
    }

    fn baseline(name: &str, observed: Option<i64>) -> LoggingBaseline {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "trailkeeper.io/v1alpha1", "kind": "LoggingBaseline",
            "metadata": {"name": name, "namespace": "ns", "generation": 1, "finalizers": [FINALIZER]},
            "spec": {"accountId": "111122223333", "primaryRegion": "us-east-1",
                     "credentials": {"assumeRoleArn": "arn:aws:iam::111122223333:role/trailkeeper"}},
            "status": {"observedGeneration": observed},
        }))
        .unwrap()
    }

    /// A resync of an in-sync baseline waits while a baseline of this replica's shards was never
    /// reconciled; what something else asked for never does, nor one whose spec changed.
    #[tokio::test]
    async fn a_resync_waits_for_the_baselines_never_reconciled() {
        use kube::runtime::watcher::Event;
        let ctx = context(Settings::default());
        let (store, mut writer) = kube::runtime::reflector::store::<LoggingBaseline>();
        let (old, new) = (baseline("old", Some(1)), baseline("new", Some(0)));
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitApply(old.clone()));
        writer.apply_watcher_event(&Event::InitApply(new.clone()));
        writer.apply_watcher_event(&Event::InitDone);
        let _ = ctx.baselines.set(store);
        assert!(!ctx.defers_resync(&old), "never reconciled itself: not a resync");
        ctx.attempt(&old);
        assert!(ctx.defers_resync(&old), "\"new\" was never reconciled");
        assert!(!ctx.defers_resync(&new), "the new one itself");
        ctx.mark_urgent([ObjectRef::from_obj(&old)]);
        assert!(!ctx.defers_resync(&old), "asked for by an event");
        assert!(ctx.defers_resync(&old), "once");
        assert!(!ctx.defers_resync(&baseline("old", Some(0))), "its spec changed");
        // Its finalizer only added so far: its first apply still waits.
        let mut fresh = new.clone();
        fresh.metadata.finalizers = None;
        ctx.attempt(&fresh);
        assert!(ctx.defers_resync(&old), "\"new\" only has its finalizer");
        // Known to the replica (its caches kept) is not reconciled: it still waits.
        ctx.forget_departed(&[std::sync::Arc::new(old.clone()), std::sync::Arc::new(new.clone())]);
        assert!(ctx.defers_resync(&old), "\"new\" still never reconciled");
        ctx.attempt(&new);
        assert!(!ctx.defers_resync(&old), "nothing waits any more");
    }

    /// Which failures wait for a person (the resync) and which are retried with backoff: the
    /// README's "AccessDenied, a wrong account, PreconditionFailed wait for the resync interval".
    #[test]
    fn what_a_person_must_fix_waits_for_the_resync_and_the_rest_is_retried() {
        use crate::engine::report::{Component, ComponentState};
        let error = |kind| crate::aws::AwsError {
            kind,
            action: "s3:PutBucketPolicy".into(),
            resource: "s3://b".into(),
            code: "Code".into(),
            message: String::new(),
        };
        let report = AccountReport::new("111122223333", "us-east-1", crate::api::Mode::Enforce);
        assert_eq!(failure_kind(&report), None, "a clean report is no failure");
        for (kind, expected) in [
            (ErrorKind::AccessDenied, FailureKind::NeedsAPerson),
            (ErrorKind::Precondition, FailureKind::NeedsAPerson),
            (ErrorKind::Invalid, FailureKind::NeedsAPerson),
            (ErrorKind::Conflict, FailureKind::NeedsAPerson),
            (ErrorKind::NotFound, FailureKind::NeedsAPerson),
            (ErrorKind::Throttled, FailureKind::Throttled),
            (ErrorKind::Transient, FailureKind::Transient),
        ] {
            let mut whole = report.clone();
            let name = format!("{kind:?}");
            whole.error = Some(EngineError::Aws(error(kind.clone())));
            assert_eq!(failure_kind(&whole), Some(expected), "{name} of the account");
            let mut part = report.clone();
            part.components
                .insert(Component::Storage, ComponentState::Failed(error(kind)));
            assert_eq!(failure_kind(&part), Some(expected), "{name} of one component");
        }
        let mut wrong = report.clone();
        wrong.error = Some(EngineError::WrongAccount {
            expected: "111122223333".into(),
            actual: "444455556666".into(),
            arn: "arn:aws:sts::444455556666:assumed-role/r/s".into(),
        });
        assert_eq!(failure_kind(&wrong), Some(FailureKind::NeedsAPerson));
        // A part waiting for a key policy to take effect is retried soon, like a transient fault.
        let mut settling = report.clone();
        settling.retry_soon = true;
        assert_eq!(failure_kind(&settling), Some(FailureKind::Transient));
    }

    #[tokio::test]
    async fn failures_back_off_exponentially_longer_on_throttling_capped_and_reset_by_a_success() {
        let ctx = context(Settings {
            retry_base: Duration::from_secs(5),
            retry_max: Duration::from_secs(600),
            resync: Duration::from_secs(3600),
            ..Settings::default()
        });
        let delays: Vec<u64> = (0..4)
            .map(|_| ctx.failure_delay("a", FailureKind::Transient).as_secs())
            .collect();
        assert_eq!(delays, [5, 10, 20, 40], "doubles per consecutive failure");
        // Throttling starts four times longer; the count is per baseline.
        assert_eq!(ctx.failure_delay("b", FailureKind::Throttled).as_secs(), 20);
        // Capped at retry_max.
        let capped = (0..20).map(|_| ctx.failure_delay("c", FailureKind::Transient)).last();
        assert_eq!(capped, Some(Duration::from_secs(600)));
        // What needs a person waits for the resync, however often it failed.
        assert_eq!(
            ctx.failure_delay("d", FailureKind::NeedsAPerson),
            Duration::from_secs(3600)
        );
        // A success starts over.
        ctx.succeeded("a");
        assert_eq!(ctx.failure_delay("a", FailureKind::Transient).as_secs(), 5);
    }

    #[tokio::test]
    async fn the_predicate_filter_outlives_the_longest_gap_between_two_status_patches() {
        for resync in [60, 600, 3600, 86_400] {
            let ctx = context(Settings {
                resync: Duration::from_secs(resync),
                ..Settings::default()
            });
            let gap = ctx.settings.resync.mul_f64(1.1) + ctx.settings.reconcile_timeout * 2;
            assert!(
                ctx.predicate_ttl() > gap,
                "resync {resync} s: ttl {:?}",
                ctx.predicate_ttl()
            );
        }
    }

    #[test]
    fn the_oldest_baseline_of_an_account_keeps_it() {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
        let baseline = |ns: &str, name: &str, account: &str, created: i64| {
            let mut b = LoggingBaseline::new(
                name,
                serde_yaml::from_str(&format!("{{accountId: \"{account}\", primaryRegion: us-east-1}}")).unwrap(),
            );
            b.metadata.namespace = Some(ns.into());
            b.metadata.creation_timestamp = Some(Time(jiff::Timestamp::from_second(created).unwrap()));
            Arc::new(b)
        };
        let older = baseline("a", "first", "111122223333", 100);
        let younger = baseline("b", "second", "111122223333", 200);
        let twin = baseline("a", "twin", "111122223333", 200);
        let other = baseline("a", "other", "444455556666", 50);
        let all = [older.clone(), younger.clone(), twin.clone(), other.clone()];
        assert_eq!(account_keeper(&older, &all), None);
        assert_eq!(account_keeper(&younger, &all).as_deref(), Some("a/first"));
        assert_eq!(account_keeper(&other, &all), None);
        // Created in the same second: the first by namespace and name keeps it.
        let pair = [younger.clone(), twin.clone()];
        assert_eq!(account_keeper(&twin, &pair), None);
        assert_eq!(account_keeper(&younger, &pair).as_deref(), Some("a/twin"));
    }

    #[tokio::test]
    async fn the_resync_is_jittered_by_at_most_a_tenth() {
        let ctx = context(Settings {
            resync: Duration::from_secs(600),
            ..Settings::default()
        });
        for _ in 0..200 {
            let resync = ctx.resync();
            assert!(
                resync >= Duration::from_secs(600) && resync <= Duration::from_secs(660),
                "{resync:?}"
            );
        }
    }
}
