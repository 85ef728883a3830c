//! Process-wide Prometheus metrics, rendered in the text exposition format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Upper bounds of the reconcile duration histogram, in seconds.
const DURATION_BUCKETS: [f64; 10] = [0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0];

#[derive(Default)]
struct Registry {
    aws_calls: BTreeMap<(String, String, &'static str), u64>,
    reconciles: BTreeMap<&'static str, u64>,
    reconcile_errors: BTreeMap<String, u64>,
    duration_buckets: [u64; DURATION_BUCKETS.len()],
    duration_count: u64,
    duration_sum: f64,
    drift_repairs: u64,
    /// Resyncs deferred while baselines never reconciled waited (`Context::defers_resync`).
    resyncs_deferred: u64,
    /// Ready state per baseline (`namespace/name`): "true", "false" or "unknown".
    baselines: BTreeMap<String, &'static str>,
    /// Per account and delivering component: seconds since its last delivery (when it delivered),
    /// and whether it reports an error or is late.
    delivery: BTreeMap<(String, String), (Option<i64>, bool)>,
    /// Per account: whether the last integrity verification found every file valid.
    integrity: BTreeMap<String, bool>,
    /// Per account, each CIS control that applies: whether it passed at the last reconcile (the
    /// control ids interned: 24 controls of 1,000 accounts as pairs of strings were 3 MiB).
    cis_controls: BTreeMap<String, Vec<(&'static str, bool)>>,
    /// Per account: the estimated monthly cost of duplicate management event copies (US dollars).
    duplicate_trail_cost: BTreeMap<String, f64>,
    /// Per LoggingBaselineSet (`namespace/name`): the selected accounts it leaves alone.
    set_conflicts: BTreeMap<String, i32>,
    leader: bool,
    /// Tampering events taken from the queue, by what became of them.
    drift_events: BTreeMap<&'static str, u64>,
    /// Seconds from a tampering call (the event's time) to the reconcile it triggered starting.
    event_lag_sum: f64,
    event_lag_count: u64,
    /// With sharding: the shards, those this replica holds, and the replicas alive.
    shards: Option<(u32, Vec<u32>, usize)>,
    /// With sharding: reconciles started per shard.
    shard_reconciles: BTreeMap<u32, u64>,
    /// Account-wide sweeps by outcome (`account`, `region`, `failed`), their reads and seconds.
    sweeps: BTreeMap<&'static str, u64>,
    sweep_reads: u64,
    sweep_seconds: f64,
    /// Per account: when its last sweep ran (Unix seconds).
    sweep_time: BTreeMap<String, i64>,
}

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

fn with(f: impl FnOnce(&mut Registry)) {
    if let Ok(mut r) = registry().lock() {
        f(&mut r);
    }
}

/// One AWS call, by IAM action (`s3:GetBucketPolicy`) and outcome.
pub fn record_aws_call(action: &str, failed: bool) {
    let (service, operation) = action.split_once(':').unwrap_or(("unknown", action));
    let outcome = if failed { "error" } else { "ok" };
    with(|r| {
        *r.aws_calls
            .entry((service.to_string(), operation.to_string(), outcome))
            .or_default() += 1
    });
}

/// One reconcile: its duration, and the reason of its failure if it failed.
pub fn record_reconcile(duration: Duration, error_reason: Option<&str>) {
    with(|r| {
        *r.reconciles
            .entry(if error_reason.is_some() { "error" } else { "success" })
            .or_default() += 1;
        if let Some(reason) = error_reason {
            *r.reconcile_errors.entry(reason.to_string()).or_default() += 1;
        }
        let secs = duration.as_secs_f64();
        for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                r.duration_buckets[i] += 1;
            }
        }
        r.duration_count += 1;
        r.duration_sum += secs;
    });
}

/// A resync deferred: baselines never reconciled by this replica waited for a slot.
pub fn record_deferred_resync() {
    with(|r| r.resyncs_deferred += 1);
}

pub fn record_drift_repairs(changes: usize) {
    with(|r| r.drift_repairs += changes as u64);
}

pub fn set_baseline_ready(baseline: &str, ready: Option<bool>) {
    let state = match ready {
        Some(true) => "true",
        Some(false) => "false",
        None => "unknown",
    };
    with(|r| {
        r.baselines.insert(baseline.to_string(), state);
    });
}

/// A reconcile cut off by its bound (counted with the errors, reason Timeout).
pub fn record_reconcile_timeout() {
    with(|r| *r.reconcile_errors.entry("Timeout".to_string()).or_default() += 1);
}

pub fn forget_baseline(baseline: &str) {
    with(|r| {
        r.baselines.remove(baseline);
    });
}

/// Drops an account's delivery and integrity series (its baseline is gone).
pub fn forget_account(account: &str) {
    retain_accounts(|a| a != account);
}

/// Keeps the delivery and integrity series of these accounts only.
fn retain_accounts(keep: impl Fn(&str) -> bool) {
    with(|r| {
        r.delivery.retain(|(account, _), _| keep(account));
        r.integrity.retain(|account, _| keep(account));
        r.cis_controls.retain(|account, _| keep(account));
        r.duplicate_trail_cost.retain(|account, _| keep(account));
        r.sweep_time.retain(|account, _| keep(account));
    });
}

/// The estimated monthly cost of an account's duplicate trails (no series without duplicates, or
/// when their events were not counted).
pub fn set_duplicate_trail_cost(account: &str, duplicates: Option<&crate::api::DuplicateTrails>) {
    with(|r| match duplicates.and_then(|d| d.estimated_monthly_cost_usd) {
        Some(cost) => {
            r.duplicate_trail_cost.insert(account.to_string(), cost);
        }
        None => {
            r.duplicate_trail_cost.remove(account);
        }
    });
}

/// SDK clients built so far, by every `Lazy` of the process (`trailkeeper_aws_clients_built_total`):
/// what a reuse of clients saves shows here.
static CLIENTS_BUILT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// One more SDK client built (`aws`'s client builders call it).
pub fn record_client_built() {
    CLIENTS_BUILT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// The result of an account's last integrity verification.
pub fn set_integrity(account: &str, valid: bool) {
    with(|r| {
        r.integrity.insert(account.to_string(), valid);
    });
}

/// One component's delivery in an account's last reconcile: the age of its newest delivery, and
/// whether delivery is failing.
pub struct Delivery<'a> {
    pub component: &'a str,
    pub age_seconds: Option<i64>,
    pub failing: bool,
}

/// The delivery of one account's components in its last reconcile (replacing the account's
/// previous ones).
pub fn set_delivery<'a>(account: &str, deliveries: impl IntoIterator<Item = Delivery<'a>>) {
    with(|r| {
        r.delivery.retain(|(a, _), _| a != account);
        for d in deliveries {
            r.delivery.insert(
                (account.to_string(), d.component.to_string()),
                (d.age_seconds, d.failing),
            );
        }
    });
}

/// The CIS controls of one account's last judgement (replacing its previous ones); a control that
/// does not apply has no series.
pub fn set_cis_controls(account: &str, compliance: &crate::api::ComplianceStatus) {
    let mut controls: Vec<(&'static str, bool)> = compliance
        .controls
        .iter()
        .filter_map(|c| match c.result {
            crate::api::ControlResult::Pass => Some((crate::runtime::intern::intern(&c.id), true)),
            crate::api::ControlResult::Fail => Some((crate::runtime::intern::intern(&c.id), false)),
            crate::api::ControlResult::NotApplicable => None,
        })
        .collect();
    controls.sort_unstable();
    controls.dedup_by_key(|(id, _)| *id);
    controls.shrink_to_fit();
    with(|r| {
        if controls.is_empty() {
            r.cis_controls.remove(account);
        } else {
            r.cis_controls.insert(account.to_string(), controls);
        }
    });
}

/// How many selected accounts a set leaves alone (conflicts), at its last reconcile.
pub fn set_set_conflicts(set: &str, conflicts: i32) {
    with(|r| {
        r.set_conflicts.insert(set.to_string(), conflicts);
    });
}

/// Keeps the series of these sets only.
pub fn retain_sets(keep: impl Fn(&str) -> bool) {
    with(|r| r.set_conflicts.retain(|set, _| keep(set)));
}

/// One message of the events queue, by outcome: `reconcile`, `duplicate`, `unknown_account`,
/// `own_write`, `ignored`, `malformed`, or `receive_error` (a failed ReceiveMessage).
pub fn record_drift_event(outcome: &'static str) {
    with(|r| *r.drift_events.entry(outcome).or_default() += 1);
}

/// How long after its call a tampering event reached the operator.
pub fn record_event_lag(seconds: f64) {
    with(|r| {
        r.event_lag_sum += seconds.max(0.0);
        r.event_lag_count += 1;
    });
}

pub fn set_leader(leader: bool) {
    with(|r| r.leader = leader);
}

/// The shards (`count` > 1), those this replica holds and the replicas alive; `leader` is then
/// whether it holds any.
pub fn set_shards(count: u32, held: &[u32], replicas: usize) {
    with(|r| {
        r.leader = !held.is_empty();
        r.shards = Some((count, held.to_vec(), replicas));
    });
}

/// A reconcile started on a shard this replica holds.
pub fn record_shard_reconcile(shard: u32) {
    with(|r| *r.shard_reconciles.entry(shard).or_default() += 1);
}

/// One account-wide sweep: `account` (every region), `region` (one, on an event) or `failed`.
pub fn record_sweep(outcome: &'static str, reads: u32, took: Duration) {
    with(|r| {
        *r.sweeps.entry(outcome).or_default() += 1;
        r.sweep_reads += u64::from(reads);
        r.sweep_seconds += took.as_secs_f64();
    });
}

/// When an account's sweep in status ran (RFC 3339).
pub fn set_sweep_time(account: &str, time: &str) {
    if let Ok(at) = time.parse::<jiff::Timestamp>() {
        with(|r| {
            r.sweep_time.insert(account.to_string(), at.as_second());
        });
    }
}

/// The metrics in the Prometheus text format.
pub fn render() -> String {
    let mut out = String::new();
    let Ok(r) = registry().lock() else { return out };
    let _ = writeln!(
        out,
        "# HELP trailkeeper_reconciles_total Reconciles by result.\n# TYPE trailkeeper_reconciles_total counter"
    );
    for result in ["success", "error"] {
        let n = r.reconciles.get(result).copied().unwrap_or(0);
        let _ = writeln!(out, "trailkeeper_reconciles_total{{result=\"{result}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP trailkeeper_reconcile_errors_total Failed reconciles by reason.\n# TYPE trailkeeper_reconcile_errors_total counter"
    );
    for (reason, n) in &r.reconcile_errors {
        let _ = writeln!(out, "trailkeeper_reconcile_errors_total{{reason=\"{reason}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP trailkeeper_reconcile_duration_seconds Duration of reconciles.\n# TYPE trailkeeper_reconcile_duration_seconds histogram"
    );
    for (bound, n) in DURATION_BUCKETS.iter().zip(r.duration_buckets) {
        let _ = writeln!(
            out,
            "trailkeeper_reconcile_duration_seconds_bucket{{le=\"{bound}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "trailkeeper_reconcile_duration_seconds_bucket{{le=\"+Inf\"}} {}",
        r.duration_count
    );
    let _ = writeln!(out, "trailkeeper_reconcile_duration_seconds_sum {}", r.duration_sum);
    let _ = writeln!(out, "trailkeeper_reconcile_duration_seconds_count {}", r.duration_count);
    let _ = writeln!(
        out,
        "# HELP trailkeeper_aws_calls_total AWS API calls by service, operation and outcome.\n# TYPE trailkeeper_aws_calls_total counter"
    );
    for ((service, operation, outcome), n) in &r.aws_calls {
        let _ = writeln!(
            out,
            "trailkeeper_aws_calls_total{{service=\"{service}\",operation=\"{operation}\",outcome=\"{outcome}\"}} {n}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP trailkeeper_drift_repairs_total Changes written to bring accounts back to the baseline.\n# TYPE trailkeeper_drift_repairs_total counter\ntrailkeeper_drift_repairs_total {}",
        r.drift_repairs
    );
    let _ = writeln!(
        out,
        "# HELP trailkeeper_resyncs_deferred_total Resyncs of in-sync baselines put off for a resync period while baselines never reconciled waited for a slot.\n# TYPE trailkeeper_resyncs_deferred_total counter\ntrailkeeper_resyncs_deferred_total {}",
        r.resyncs_deferred
    );
    let _ = writeln!(
        out,
        "# HELP trailkeeper_baselines LoggingBaselines by Ready state.\n# TYPE trailkeeper_baselines gauge"
    );
    for state in ["true", "false", "unknown"] {
        let n = r.baselines.values().filter(|s| **s == state).count();
        let _ = writeln!(out, "trailkeeper_baselines{{ready=\"{state}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP trailkeeper_delivery_age_seconds Seconds since the component's last delivery.\n# TYPE trailkeeper_delivery_age_seconds gauge"
    );
    for ((account, component), (age, _)) in &r.delivery {
        if let Some(age) = age {
            let _ = writeln!(
                out,
                "trailkeeper_delivery_age_seconds{{account=\"{account}\",component=\"{component}\"}} {age}"
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP trailkeeper_delivery_errors Whether the component's delivery fails (an error, or late past the alarm).\n# TYPE trailkeeper_delivery_errors gauge"
    );
    for ((account, component), (_, failing)) in &r.delivery {
        let _ = writeln!(
            out,
            "trailkeeper_delivery_errors{{account=\"{account}\",component=\"{component}\"}} {}",
            u8::from(*failing)
        );
    }
    let _ = writeln!(
        out,
        "# HELP trailkeeper_integrity_valid Whether the last integrity verification found every digest and log file valid.\n# TYPE trailkeeper_integrity_valid gauge"
    );
    for (account, valid) in &r.integrity {
        let _ = writeln!(
            out,
            "trailkeeper_integrity_valid{{account=\"{account}\"}} {}",
            u8::from(*valid)
        );
    }
    render_compliance(&mut out, &r);
    let _ = writeln!(
        out,
        "# HELP trailkeeper_drift_events_total Messages of the events queue by outcome.\n# TYPE trailkeeper_drift_events_total counter"
    );
    for (outcome, n) in &r.drift_events {
        let _ = writeln!(out, "trailkeeper_drift_events_total{{outcome=\"{outcome}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP trailkeeper_drift_event_lag_seconds Seconds from a tampering call to the operator receiving its event.\n# TYPE trailkeeper_drift_event_lag_seconds summary\ntrailkeeper_drift_event_lag_seconds_sum {}\ntrailkeeper_drift_event_lag_seconds_count {}",
        r.event_lag_sum, r.event_lag_count
    );
    let _ = writeln!(
        out,
        "# HELP trailkeeper_compliance_sweeps_total Account-wide sweeps (CIS 3.3, 3.6, 3.7 in the regions not kept) by outcome: account (every region), region (one, on an event), failed.\n# TYPE trailkeeper_compliance_sweeps_total counter"
    );
    for outcome in ["account", "region", "failed"] {
        let n = r.sweeps.get(outcome).copied().unwrap_or(0);
        let _ = writeln!(out, "trailkeeper_compliance_sweeps_total{{outcome=\"{outcome}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP trailkeeper_compliance_sweep_reads_total AWS reads of the account-wide sweeps.\n# TYPE trailkeeper_compliance_sweep_reads_total counter\ntrailkeeper_compliance_sweep_reads_total {}\n# HELP trailkeeper_compliance_sweep_seconds Duration of the account-wide sweeps.\n# TYPE trailkeeper_compliance_sweep_seconds summary\ntrailkeeper_compliance_sweep_seconds_sum {}\ntrailkeeper_compliance_sweep_seconds_count {}",
        r.sweep_reads,
        r.sweep_seconds,
        r.sweeps.values().sum::<u64>()
    );
    let _ = writeln!(
        out,
        "# HELP trailkeeper_compliance_sweep_timestamp_seconds When the account's last account-wide sweep in status ran.\n# TYPE trailkeeper_compliance_sweep_timestamp_seconds gauge"
    );
    for (account, at) in &r.sweep_time {
        let _ = writeln!(
            out,
            "trailkeeper_compliance_sweep_timestamp_seconds{{account=\"{account}\"}} {at}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP trailkeeper_aws_clients_built_total AWS SDK clients built (each about 16 KiB; kept ones are reused).\n# TYPE trailkeeper_aws_clients_built_total counter\ntrailkeeper_aws_clients_built_total {}",
        CLIENTS_BUILT.load(std::sync::atomic::Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP trailkeeper_leader Whether this replica holds the leader lease.\n# TYPE trailkeeper_leader gauge\ntrailkeeper_leader {}",
        u8::from(r.leader)
    );
    render_shards(&mut out, &r);
    if let Some(heap) = crate::runtime::allocator::heap_usage() {
        let _ = writeln!(
            out,
            "# HELP trailkeeper_heap_allocated_bytes Bytes of the heap the controller holds allocated (glibc mallinfo2: in use plus mapped blocks).\n# TYPE trailkeeper_heap_allocated_bytes gauge\ntrailkeeper_heap_allocated_bytes {}",
            heap.allocated
        );
        let _ = writeln!(
            out,
            "# HELP trailkeeper_heap_free_bytes Bytes free inside the allocator's arenas (glibc mallinfo2; resident or already given back to the kernel by the periodic trim).\n# TYPE trailkeeper_heap_free_bytes gauge\ntrailkeeper_heap_free_bytes {}",
            heap.free
        );
    }
    out
}

/// With sharding: the shards held, the replicas, reconciles per shard.
fn render_shards(out: &mut String, r: &Registry) {
    let Some((count, held, replicas)) = &r.shards else {
        return;
    };
    let _ = writeln!(
        out,
        "# HELP trailkeeper_shards Shards the fleet is split into.\n# TYPE trailkeeper_shards gauge\ntrailkeeper_shards {count}"
    );
    let _ = writeln!(
        out,
        "# HELP trailkeeper_shards_held Shards whose Lease this replica holds.\n# TYPE trailkeeper_shards_held gauge\ntrailkeeper_shards_held {}",
        held.len()
    );
    let _ = writeln!(
        out,
        "# HELP trailkeeper_shard_held Each shard this replica holds.\n# TYPE trailkeeper_shard_held gauge"
    );
    for shard in held {
        let _ = writeln!(out, "trailkeeper_shard_held{{shard=\"{shard}\"}} 1");
    }
    let _ = writeln!(
        out,
        "# HELP trailkeeper_replicas Replicas alive, as this one sees their membership Leases.\n# TYPE trailkeeper_replicas gauge\ntrailkeeper_replicas {replicas}"
    );
    let _ = writeln!(
        out,
        "# HELP trailkeeper_shard_reconciles_total Reconciles started by this replica, per shard.\n# TYPE trailkeeper_shard_reconciles_total counter"
    );
    for (shard, n) in &r.shard_reconciles {
        let _ = writeln!(out, "trailkeeper_shard_reconciles_total{{shard=\"{shard}\"}} {n}");
    }
}

/// The CIS controls per account and the sets' conflicts.
fn render_compliance(out: &mut String, r: &Registry) {
    let _ = writeln!(
        out,
        "# HELP trailkeeper_cis_control_passed Whether a CIS AWS Foundations Benchmark v3.0.0 logging or monitoring control (section 3 or 4) passed for the account at its last reconcile (controls that do not apply have no series).\n# TYPE trailkeeper_cis_control_passed gauge"
    );
    for (account, control, passed) in r
        .cis_controls
        .iter()
        .flat_map(|(account, controls)| controls.iter().map(move |(control, passed)| (account, control, passed)))
    {
        let _ = writeln!(
            out,
            "trailkeeper_cis_control_passed{{account=\"{account}\",control=\"{control}\"}} {}",
            u8::from(*passed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP trailkeeper_set_conflicts Selected accounts a LoggingBaselineSet leaves alone (another baseline manages them).\n# TYPE trailkeeper_set_conflicts gauge"
    );
    for (set, n) in &r.set_conflicts {
        let _ = writeln!(out, "trailkeeper_set_conflicts{{set=\"{set}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP trailkeeper_duplicate_trail_monthly_cost_dollars Estimated monthly cost of the account's management events recorded by more than one trail, in its primary region only (copies after the first, at CloudTrail's published price; other regions of a multi-region trail are copied the same way and not counted).\n# TYPE trailkeeper_duplicate_trail_monthly_cost_dollars gauge"
    );
    for (account, cost) in &r.duplicate_trail_cost {
        let _ = writeln!(
            out,
            "trailkeeper_duplicate_trail_monthly_cost_dollars{{account=\"{account}\"}} {cost}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The registry is the process's: other tests record too, so each line is looked up by the
    /// labels this test gave it.
    fn line_of(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find(|l| l.rsplit_once(' ').is_some_and(|(name, _)| name == series))
            .map(str::to_string)
    }

    fn value_of(text: &str, series: &str) -> f64 {
        let line = line_of(text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    }

    #[test]
    fn every_series_of_the_readme_is_rendered_with_its_labels_and_value() {
        let account = "000000000991";
        record_aws_call("s3:GetBucketPolicy", false);
        record_aws_call("s3:GetBucketPolicy", true);
        record_reconcile(Duration::from_millis(300), Some("AccessDenied"));
        record_reconcile_timeout();
        set_baseline_ready("metrics-test/a", Some(false));
        set_delivery(
            account,
            [Delivery {
                component: "cloudtrail",
                age_seconds: Some(42),
                failing: true,
            }],
        );
        set_integrity(account, false);
        let control = |id: &str, result| crate::api::Control {
            id: id.into(),
            title: String::new(),
            result,
            evidence: String::new(),
        };
        set_cis_controls(
            account,
            &crate::api::ComplianceStatus {
                benchmark: "CIS".into(),
                summary: "1/2".into(),
                controls: vec![
                    control("3.1", crate::api::ControlResult::Pass),
                    control("3.2", crate::api::ControlResult::Fail),
                    control("3.9", crate::api::ControlResult::NotApplicable),
                ],
            },
        );
        set_duplicate_trail_cost(
            account,
            Some(&crate::api::DuplicateTrails {
                region: "us-east-1".into(),
                trails: vec!["a".into(), "b".into()],
                paid_copies: 1,
                events_per_month: Some(1_000_000),
                copied_events_per_month: Some(1_000_000),
                network_activity_events_per_month: None,
                estimated_monthly_cost_usd: Some(20.0),
                note: String::new(),
            }),
        );
        set_set_conflicts("metrics-test/set", 3);
        // Every outcome the README lists for the drift events.
        let outcomes = [
            "reconcile",
            "duplicate",
            "own_write",
            "unknown_account",
            "ignored",
            "malformed",
            "not_routed",
            "receive_error",
            "setup_error",
        ];
        for outcome in outcomes {
            record_drift_event(outcome);
        }
        record_event_lag(1.5);
        let text = render();
        for outcome in outcomes {
            assert!(
                value_of(
                    &text,
                    &format!("trailkeeper_drift_events_total{{outcome=\"{outcome}\"}}")
                ) >= 1.0
            );
        }

        let errors = "trailkeeper_aws_calls_total{service=\"s3\",operation=\"GetBucketPolicy\",outcome=\"error\"}";
        assert!(value_of(&text, errors) >= 1.0);
        assert!(value_of(&text, "trailkeeper_reconcile_errors_total{reason=\"AccessDenied\"}") >= 1.0);
        assert!(value_of(&text, "trailkeeper_reconcile_errors_total{reason=\"Timeout\"}") >= 1.0);
        assert!(value_of(&text, "trailkeeper_reconcile_duration_seconds_bucket{le=\"0.5\"}") >= 1.0);
        assert!(value_of(&text, "trailkeeper_baselines{ready=\"false\"}") >= 1.0);
        let delivery = format!("{{account=\"{account}\",component=\"cloudtrail\"}}");
        assert_eq!(
            value_of(&text, &format!("trailkeeper_delivery_age_seconds{delivery}")),
            42.0
        );
        assert_eq!(value_of(&text, &format!("trailkeeper_delivery_errors{delivery}")), 1.0);
        assert_eq!(
            value_of(&text, &format!("trailkeeper_integrity_valid{{account=\"{account}\"}}")),
            0.0
        );
        let cis = |c: &str| format!("trailkeeper_cis_control_passed{{account=\"{account}\",control=\"{c}\"}}");
        assert_eq!(value_of(&text, &cis("3.1")), 1.0);
        assert_eq!(value_of(&text, &cis("3.2")), 0.0);
        assert_eq!(
            line_of(&text, &cis("3.9")),
            None,
            "a control that does not apply has no series"
        );
        let cost = format!("trailkeeper_duplicate_trail_monthly_cost_dollars{{account=\"{account}\"}}");
        assert_eq!(value_of(&text, &cost), 20.0);
        assert_eq!(
            value_of(&text, "trailkeeper_set_conflicts{set=\"metrics-test/set\"}"),
            3.0
        );
        assert!(value_of(&text, "trailkeeper_drift_events_total{outcome=\"setup_error\"}") >= 1.0);
        assert!(value_of(&text, "trailkeeper_drift_event_lag_seconds_count") >= 1.0);
        for name in [
            "trailkeeper_drift_repairs_total",
            "trailkeeper_resyncs_deferred_total",
            "trailkeeper_leader",
        ] {
            assert!(line_of(&text, name).is_some(), "{name} missing");
        }
        // glibc's heap: what this test process holds is more than the metrics' own strings.
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            assert!(value_of(&text, "trailkeeper_heap_allocated_bytes") > text.len() as f64);
            assert!(value_of(&text, "trailkeeper_heap_free_bytes") >= 0.0);
        }

        // Every sample belongs to a family declared by a TYPE line before it (the exposition
        // format's rule; a histogram's and summary's samples carry suffixes).
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                declared.push(rest.split(' ').next().unwrap().to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|f| declared.iter().any(|d| d == f)))
                    .unwrap_or(name);
                assert!(declared.iter().any(|d| d == family), "{line}: no TYPE before it");
            }
        }

        // No duplicates (or their events not counted): no cost series.
        set_duplicate_trail_cost(account, None);
        assert_eq!(line_of(&render(), &cost), None, "a cost series without duplicates");

        // An account whose baseline is gone keeps no series.
        forget_account(account);
        let text = render();
        assert!(!text.contains(account), "{text}");
    }
}
