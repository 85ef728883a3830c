//! When each baseline's account-wide sweep is due, and the sweeps done but not yet in status:
//! plain data the controller's context holds (`sweep.rs` runs the schedule).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::api::ComplianceSweep;

/// The sweep's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepSettings {
    /// Each account's regions are read once per interval.
    pub interval: Duration,
    /// Accounts swept at once (and regions read again on events at once).
    pub concurrency: usize,
}

impl Default for SweepSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(DEFAULT_INTERVAL_HOURS * 3600),
            concurrency: 2,
        }
    }
}

/// Hours between two sweeps of an account by default: what the sweep judges (a region's Config
/// recorder, its keys' rotation, its VPCs' flow logs) changes rarely, and its events refresh it.
pub const DEFAULT_INTERVAL_HOURS: u64 = 24;

/// A sweep that failed (the regions could not be listed, the credentials refused) is tried again
/// after this, not after a whole interval.
pub(super) const RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// What the controller holds of the sweeps: results not yet in status, by baseline.
#[derive(Default)]
pub struct Sweeps {
    pending: Mutex<HashMap<String, ComplianceSweep>>,
}

impl Sweeps {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ComplianceSweep>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The baseline's latest sweep: one not written yet, else the one in status.
    pub fn latest(&self, key: &str, in_status: Option<&ComplianceSweep>) -> Option<ComplianceSweep> {
        self.lock().get(key).cloned().or_else(|| in_status.cloned())
    }

    /// `sweep` is in status now (a newer one stays pending).
    pub fn written(&self, key: &str, sweep: &ComplianceSweep) {
        let mut pending = self.lock();
        if pending.get(key) == Some(sweep) {
            pending.remove(key);
        }
    }

    pub(super) fn put(&self, key: &str, sweep: ComplianceSweep) {
        self.lock().insert(key.to_string(), sweep);
    }

    pub fn forget(&self, key: &str) {
        self.lock().remove(key);
    }

    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.lock().retain(|key, _| keep(key));
    }
}

/// FNV-1a: a hash that no Rust release changes, so a baseline keeps its moment across restarts.
pub(super) fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Whether the baseline `key`, last swept at `last` (Unix seconds, and whether it failed; None:
/// never), is due at `now`: never swept; or its moment of the interval (`stable_hash(key) %
/// interval`) has passed, at least half an interval after its last sweep (the first sweep, made
/// at once, is not followed by another soon after: sweeps are between half an interval and one
/// and a half apart, then one apart); or its last sweep failed `RETRY_AFTER` ago.
pub fn due(key: &str, last: Option<(i64, bool)>, interval: Duration, now: i64) -> bool {
    let Some((last, failed)) = last else {
        return true;
    };
    let interval = interval.as_secs().max(1) as i64;
    if failed {
        return now - last >= RETRY_AFTER.as_secs() as i64;
    }
    let moment = (stable_hash(key) % interval as u64) as i64;
    let latest_moment = now - (now - moment).rem_euclid(interval);
    last < latest_moment && latest_moment - last >= interval / 2
}

/// Whether the controls of `baseline` judge regions it does not keep (it does not keep them all,
/// nor list complianceRegions it keeps).
pub fn needs_sweep(spec: &crate::api::LoggingBaselineSpec) -> bool {
    use crate::desired::regional;
    if regional::keeps_every_region(spec) {
        return false;
    }
    let kept = if spec.regions.is_empty() {
        vec![spec.primary_region.clone()]
    } else {
        spec.regions.clone()
    };
    spec.compliance_regions.is_empty() || !spec.compliance_regions.iter().all(|r| kept.contains(r))
}
