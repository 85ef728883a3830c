//! The account-wide sweep's schedule (`--compliance-sweep-hours`): each baseline whose controls
//! judge regions it does not keep has those regions read by `engine::sweep` once per interval, at
//! its own moment of the interval (a stable hash of its name: 1,000 accounts never sweep at once,
//! and a restart does not move them), the first sweep at once, a few at a time. A region is read
//! again as soon as an event concerns it there (`drift_events` routes it here). The result waits
//! in `Sweeps` for the baseline's reconcile, which is woken at once, folds it into the compliance
//! and writes it in status: one writer of the status, as for everything else. Runs with the
//! controller, so only on the replica that leads.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures::channel::mpsc::{Receiver, Sender};
use futures::stream::FuturesUnordered;
use futures::{SinkExt, StreamExt};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{ObjectRef, Store};

use super::context::{Context, key_of, now};
use crate::api::{LoggingBaseline, Mode};
use crate::desired::AccountSpecs;
use crate::drift_events::queue::SweepRequest;
use crate::engine::sweep::{Scope, SweepOptions, sweep_account};

use super::sweep_schedule::RETRY_AFTER;
pub use super::sweep_schedule::{DEFAULT_INTERVAL_HOURS, SweepSettings, Sweeps, due, needs_sweep};

/// How often the schedule is looked at.
const TICK: Duration = Duration::from_secs(15);

fn seconds(rfc3339: &str) -> Option<i64> {
    rfc3339.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// The schedule: sweeps due baselines and the regions events ask for, waking each baseline's
/// reconcile once its sweep is done. Never returns: it stops with the controller, whose future
/// holds it. Without a sweep interval, an event's region wakes the reconcile alone.
pub async fn run(
    ctx: Arc<Context>,
    store: Store<LoggingBaseline>,
    mut requests: Receiver<SweepRequest>,
    wake: Sender<ObjectRef<LoggingBaseline>>,
) {
    let Some(settings) = ctx.settings.compliance_sweep.clone() else {
        return wake_on_events_only(requests, wake).await;
    };
    if !crate::runtime::cache::cache_synced(&store).await {
        return std::future::pending().await;
    }
    let mut requests_open = true;
    let concurrency = settings.concurrency.max(1);
    // Regions asked for by events, by baseline.
    let mut asked: BTreeMap<String, (ObjectRef<LoggingBaseline>, BTreeSet<String>)> = BTreeMap::new();
    let mut busy: BTreeSet<String> = BTreeSet::new();
    // Sweeps whose forwarding rules could not all be kept: tried again after `RETRY_AFTER`.
    let mut retry_at: HashMap<String, i64> = HashMap::new();
    let mut sweeping: FuturesUnordered<futures::future::BoxFuture<'static, Swept>> = FuturesUnordered::new();
    let (mut full, mut refreshes) = (0usize, 0usize);
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            request = requests.next(), if requests_open => match request {
                Some(r) => {
                    let key = format!("{}/{}", r.baseline.namespace.clone().unwrap_or_default(), r.baseline.name);
                    asked.entry(key).or_insert_with(|| (r.baseline.clone(), BTreeSet::new())).1.insert(r.region);
                }
                // The events loop ended: the schedule goes on.
                None => requests_open = false,
            },
            Some(done) = sweeping.next(), if !sweeping.is_empty() => {
                busy.remove(&done.key);
                if done.full { full -= 1 } else { refreshes -= 1 }
                if done.rules_failed {
                    retry_at.insert(done.key, jiff::Timestamp::now().as_second() + RETRY_AFTER.as_secs() as i64);
                } else if done.full {
                    retry_at.remove(&done.key);
                }
            }
            _ = tick.tick() => {}
        }
        // Regions events asked for first: they are what "within seconds" is about.
        let ready: Vec<String> = asked.keys().filter(|k| !busy.contains(*k)).cloned().collect();
        for key in ready {
            if refreshes >= concurrency {
                break;
            }
            let Some((reference, regions)) = asked.remove(&key) else {
                continue;
            };
            let Some(baseline) = store.get(&reference) else {
                continue;
            };
            busy.insert(key.clone());
            refreshes += 1;
            let scope = Scope::Regions(regions.into_iter().collect());
            sweeping.push(Box::pin(sweep_one(ctx.clone(), baseline, scope, wake.clone(), false)));
        }
        // With events on, the first sweeps wait for the central bus: they keep the forwarding
        // rules of the regions they read, which need to know where to forward.
        if full >= concurrency || (ctx.settings.events.is_some() && ctx.forwarding.get().is_none()) {
            continue;
        }
        let due_now = due_baselines(&ctx, &store, &busy, &retry_at, settings.interval);
        for (_, baseline) in due_now.into_iter().take(concurrency - full) {
            busy.insert(key_of(&baseline));
            full += 1;
            sweeping.push(Box::pin(sweep_one(
                ctx.clone(),
                baseline,
                Scope::Account,
                wake.clone(),
                true,
            )));
        }
    }
}

/// Without a sweep interval: each event's baseline has its reconcile woken, nothing swept.
async fn wake_on_events_only(mut requests: Receiver<SweepRequest>, mut wake: Sender<ObjectRef<LoggingBaseline>>) {
    while let Some(request) = requests.next().await {
        if wake.send(request.baseline).await.is_err() {
            break;
        }
    }
    std::future::pending().await
}

/// The baselines whose whole-account sweep is due now (or to be retried, or whose spec changed
/// since), never swept first, then the longest unswept; with the time of their last sweep.
fn due_baselines(
    ctx: &Context,
    store: &Store<LoggingBaseline>,
    busy: &BTreeSet<String>,
    retry_at: &HashMap<String, i64>,
    interval: Duration,
) -> Vec<(Option<i64>, Arc<LoggingBaseline>)> {
    let now_secs = jiff::Timestamp::now().as_second();
    let mut due_now: Vec<(Option<i64>, Arc<LoggingBaseline>)> = store
        .state()
        .into_iter()
        .filter(|b| {
            // With sharding, the holder of the account's shard sweeps it.
            ctx.shards.holds(ctx.shards.of(&b.spec.account_id))
                && b.metadata.deletion_timestamp.is_none()
                && b.status.as_ref().is_some_and(|s| s.observed_generation.is_some())
                && needs_sweep(&b.spec)
                && !busy.contains(&key_of(b))
        })
        .filter_map(|b| {
            let key = key_of(&b);
            let in_status = b.status.as_ref().and_then(|s| s.compliance_sweep.as_ref());
            let latest = ctx.sweeps.latest(&key, in_status);
            // The spec changed since (its regions, say): the sweep's choice of regions is old.
            let respec = latest
                .as_ref()
                .is_some_and(|s| s.observed_generation != b.metadata.generation);
            let last = latest.and_then(|s| Some((seconds(&s.time)?, s.error.is_some())));
            let retry = retry_at.get(&key).is_some_and(|at| *at <= now_secs);
            (respec || retry || due(&key, last, interval, now_secs)).then(|| (last.map(|(t, _)| t), b))
        })
        .collect();
    // Never swept first, then the longest unswept.
    due_now.sort_by_key(|(last, _)| last.unwrap_or(i64::MIN));
    due_now
}

/// What became of one sweep.
struct Swept {
    key: String,
    /// Every region (not one on an event).
    full: bool,
    /// Some forwarding rule could not be kept.
    rules_failed: bool,
}

/// One sweep of one baseline; its result is pending for the reconcile, which it wakes.
async fn sweep_one(
    ctx: Arc<Context>,
    baseline: Arc<LoggingBaseline>,
    scope: Scope,
    mut wake: Sender<ObjectRef<LoggingBaseline>>,
    full: bool,
) -> Swept {
    let key = key_of(&baseline);
    // With sharding, the holder of the account's shard sweeps it (its rules, its Events); the
    // shard is not handed back while the sweep runs.
    let shard = ctx.shards.of(&baseline.spec.account_id);
    let Some(_turn) = ctx.shards.begin(shard) else {
        return Swept {
            key,
            full,
            rules_failed: false,
        };
    };
    let policies = super::policies::policies(&ctx.client, ctx.policies.get(), &baseline).await;
    let Ok(Ok((trail_policy, retention, _))) = policies else {
        // The reconcile says why the policies are not usable; the sweep waits for them.
        return Swept {
            key,
            full,
            rules_failed: true,
        };
    };
    let specs = AccountSpecs {
        baseline: &baseline.spec,
        trail_policy: &trail_policy,
        retention: &retention,
    };
    let clients = ctx.aws.for_sweep(&key, &baseline.spec);
    let in_status = baseline.status.as_ref().and_then(|s| s.compliance_sweep.as_ref());
    let options = SweepOptions {
        scope,
        forwarding: ctx.settings.events.as_ref().and(ctx.forwarding.get().cloned()),
        write: baseline.spec.mode == Mode::Enforce,
        previous: ctx.sweeps.latest(&key, in_status),
        now: now(),
    };
    let started = std::time::Instant::now();
    let bounded = tokio::time::timeout(ctx.settings.reconcile_timeout, sweep_account(&clients, &specs, options)).await;
    let outcome = bounded.unwrap_or_else(|_| timed_out(&ctx, &key, in_status));
    crate::runtime::metrics::record_sweep(
        if outcome.sweep.error.is_some() {
            "failed"
        } else if outcome.whole {
            "account"
        } else {
            "region"
        },
        outcome.sweep.reads,
        started.elapsed(),
    );
    publish_repairs(&ctx, shard, &baseline, &outcome.applied).await;
    tracing::info!(
        baseline = %key,
        regions = outcome.sweep.regions.len(),
        reads = outcome.sweep.reads,
        error = ?outcome.sweep.error,
        "account-wide sweep"
    );
    let rules_failed = outcome.rules_failed;
    let mut sweep = outcome.sweep;
    sweep.observed_generation = baseline.metadata.generation;
    ctx.sweeps.put(&key, sweep);
    let _ = wake.send(ObjectRef::from_obj(baseline.as_ref())).await;
    Swept {
        key,
        full,
        rules_failed,
    }
}

/// A sweep that did not finish in time: the last one's findings stand, with the error and time.
fn timed_out(
    ctx: &Context,
    key: &str,
    in_status: Option<&crate::api::ComplianceSweep>,
) -> crate::engine::sweep::SweepOutcome {
    let mut failed = ctx.sweeps.latest(key, in_status).unwrap_or_default();
    failed.time = now();
    failed.error = Some(format!(
        "the sweep did not finish within {} s: AWS did not answer in time; trailkeeper tries again in {} minutes",
        ctx.settings.reconcile_timeout.as_secs(),
        RETRY_AFTER.as_secs() / 60
    ));
    crate::engine::sweep::SweepOutcome {
        sweep: failed,
        ..Default::default()
    }
}

/// A Normal Event naming what the sweep repaired, when it repaired anything.
async fn publish_repairs(
    ctx: &Context,
    shard: u32,
    baseline: &LoggingBaseline,
    applied: &[crate::engine::report::Change],
) {
    if applied.is_empty() {
        return;
    }
    let changes: Vec<String> = applied
        .iter()
        .map(|c| format!("{}: {}", c.resource, c.action))
        .collect();
    super::writer::publish_event(
        ctx.writers.recorder(shard),
        baseline,
        EventType::Normal,
        "DriftRepaired",
        "Sweep",
        changes.join("; "),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::sweep_schedule::stable_hash;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn a_baseline_never_swept_is_due_at_once_then_once_a_day_at_its_own_moment() {
        let key = "accounts/payments";
        let moment = (stable_hash(key) % 86_400) as i64;
        let day = 20_000 * 86_400;
        assert!(due(key, None, DAY, day));
        // Swept just before its moment: not again at the moment (half a day has not passed)...
        let before = day + moment - 60;
        assert!(!due(key, Some((before, false)), DAY, day + moment + 60));
        // ...nor half a day later, but at the next day's moment, and not a minute before it.
        assert!(!due(key, Some((before, false)), DAY, before + 43_300));
        assert!(!due(key, Some((before, false)), DAY, day + 86_400 + moment - 60));
        assert!(due(key, Some((before, false)), DAY, day + 86_400 + moment + 1));
        // Swept at its moment: due at the next one only.
        let at = day + moment;
        assert!(!due(key, Some((at, false)), DAY, at + 86_399));
        assert!(due(key, Some((at, false)), DAY, at + 86_400));
        // A failed sweep is tried again after a quarter of an hour.
        assert!(!due(key, Some((at, true)), DAY, at + 60));
        assert!(due(key, Some((at, true)), DAY, at + 15 * 60));
    }

    #[test]
    fn a_thousand_accounts_sweep_spread_over_the_day() {
        let mut per_hour = [0u32; 24];
        for i in 0..1000 {
            let key = format!("accounts/acct-{:012}", 100_000_000_000u64 + i);
            per_hour[((stable_hash(&key) % 86_400) / 3600) as usize] += 1;
        }
        // About 42 an hour; none near a thundering herd.
        assert!(per_hour.iter().all(|n| (15..=75).contains(n)), "{per_hour:?}");
    }

    #[test]
    fn only_a_baseline_whose_controls_judge_regions_it_does_not_keep_is_swept() {
        let spec = |yaml: &str| -> crate::api::LoggingBaselineSpec {
            serde_yaml::from_str(&format!(
                "{{accountId: \"111122223333\", primaryRegion: us-east-1, {yaml}}}"
            ))
            .unwrap()
        };
        assert!(needs_sweep(&spec("regions: [us-east-1]")));
        assert!(!needs_sweep(&spec("regions: [\"*\"]")));
        assert!(!needs_sweep(&spec("complianceRegions: [us-east-1]")));
        assert!(needs_sweep(&spec("complianceRegions: [us-east-1, eu-west-1]")));
        assert!(!needs_sweep(&spec(
            "regions: [us-east-1, eu-west-1], complianceRegions: [eu-west-1]"
        )));
    }
}
