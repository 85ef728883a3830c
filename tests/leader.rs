//! Leader election: two replicas campaigning on one lease never both lead, a replica that stops
//! renewing is replaced once its lease has not changed for the lease duration (as the other
//! replica observes it, whatever the holder's clock says), and a released lease is taken at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use trailkeeper::runtime::leader::{Elector, LeaseRecord, LeaseStore, Timing};

/// An in-memory lease with the API server's optimistic concurrency: a write must carry the
/// current version.
#[derive(Clone, Default)]
struct MemoryLease(Arc<Mutex<Option<(LeaseRecord, u64)>>>);

impl LeaseStore for MemoryLease {
    async fn get(&self) -> Result<Option<LeaseRecord>, kube::Error> {
        Ok(self.0.lock().unwrap().as_ref().map(|(r, v)| LeaseRecord {
            version: Some(v.to_string()),
            ..r.clone()
        }))
    }

    async fn create(&self, record: &LeaseRecord) -> Result<bool, kube::Error> {
        let mut slot = self.0.lock().unwrap();
        if slot.is_some() {
            return Ok(false);
        }
        *slot = Some((record.clone(), 1));
        Ok(true)
    }

    async fn replace(&self, record: &LeaseRecord) -> Result<bool, kube::Error> {
        let mut slot = self.0.lock().unwrap();
        match slot.as_mut() {
            Some((current, version)) if record.version.as_deref() == Some(version.to_string().as_str()) => {
                *current = record.clone();
                *version += 1;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

fn timing() -> Timing {
    Timing {
        duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry: Duration::from_secs(2),
    }
}

#[tokio::test]
async fn two_replicas_never_lead_at_once_and_a_silent_leader_is_replaced() {
    let lease = MemoryLease::default();
    let mut a = Elector::new(lease.clone(), "a", timing());
    let mut b = Elector::new(lease.clone(), "b", timing());
    // Deterministic pseudo-random schedule: each tick of 500 ms, each replica may run a round
    // (replica a stops renewing between 40 s and 70 s, as if paused or partitioned).
    let mut seed: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let (mut a_led, mut b_led, mut handovers) = (false, false, 0);
    let mut previous_leader = None;
    assert!(a.round(0, 0).await.unwrap(), "a takes the free lease first");
    for tick in 1..400i64 {
        let now = tick * 500;
        let a_paused = (40_000..70_000).contains(&now);
        if !a_paused && next() % 4 == 0 {
            a.round(now, now).await.unwrap();
        }
        if next() % 4 == 0 {
            b.round(now, now).await.unwrap();
        }
        let (a_leads, b_leads) = (a.is_leader(now), b.is_leader(now));
        assert!(!(a_leads && b_leads), "both replicas lead at {now} ms");
        a_led |= a_leads;
        b_led |= b_leads;
        let leader = if a_leads {
            Some("a")
        } else if b_leads {
            Some("b")
        } else {
            None
        };
        if leader.is_some() && previous_leader.is_some() && leader != previous_leader {
            handovers += 1;
        }
        if leader.is_some() {
            previous_leader = leader;
        }
    }
    assert!(
        a_led && b_led,
        "both replicas should lead at some point (a: {a_led}, b: {b_led})"
    );
    // a is paused from 40 s to 70 s: b takes over once, and a, back, never takes a lease b renews.
    assert_eq!(handovers, 1);
}

#[tokio::test]
async fn a_racing_replica_loses_when_the_lease_changed_under_it() {
    let lease = MemoryLease::default();
    let mut a = Elector::new(lease.clone(), "a", timing());
    assert!(a.round(0, 0).await.unwrap());
    // b sees the lease expired only after the duration has passed.
    let mut b = Elector::new(lease.clone(), "b", timing());
    assert!(!b.round(14_000, 14_000).await.unwrap());
    assert!(a.round(14_500, 14_500).await.unwrap(), "a renews in time");
    assert!(!b.round(20_000, 20_000).await.unwrap(), "a's renewal keeps the lease");
    // b saw a's renewal first at 20 s: the lease expires for b 15 s after that.
    assert!(!b.round(34_000, 34_000).await.unwrap(), "not yet unchanged for 15 s");
    assert!(b.round(36_000, 36_000).await.unwrap(), "expired: b takes over");
    assert!(!a.round(36_500, 36_500).await.unwrap(), "a must not take it back");
    assert!(!a.is_leader(36_500));
}

/// The holder's wall clock is an hour behind or ahead: the other replica judges expiry by what it
/// observes (the lease not changing for `duration`), so it neither takes a lease that is being
/// renewed (clock behind) nor waits an hour for a dead holder (clock ahead).
#[tokio::test]
async fn a_skewed_renew_time_neither_makes_two_leaders_nor_blocks_a_takeover() {
    for skew_ms in [-3_600_000i64, 3_600_000] {
        let lease = MemoryLease::default();
        let mut a = Elector::new(lease.clone(), "a", timing());
        let mut b = Elector::new(lease.clone(), "b", timing());
        assert!(a.round(0, skew_ms).await.unwrap());
        let mut now = 0;
        // a renews every 2 s for a minute, b campaigns every 500 ms.
        while now < 60_000 {
            now += 500;
            if now % 2_000 == 0 {
                assert!(
                    a.round(now, now + skew_ms).await.unwrap(),
                    "a keeps its lease (skew {skew_ms})"
                );
            }
            assert!(
                !b.round(now, now).await.unwrap(),
                "b must not take a renewed lease (skew {skew_ms})"
            );
            assert!(!(a.is_leader(now) && b.is_leader(now)));
        }
        // a dies: b takes over once the lease has not changed for 15 s as b sees it.
        let died = now;
        while !b.round(now, now).await.unwrap() {
            now += 500;
            assert!(
                now - died < 20_000,
                "b waits too long for a dead holder (skew {skew_ms})"
            );
        }
        assert!(
            now - died > 15_000,
            "b took over after {} ms (skew {skew_ms})",
            now - died
        );
        assert!(!a.is_leader(now), "a's own deadline has passed");
    }
}

#[tokio::test]
async fn a_released_lease_is_taken_at_once_and_acquire_time_survives_renewals() {
    let lease = MemoryLease::default();
    let mut a = Elector::new(lease.clone(), "a", timing());
    let mut b = Elector::new(lease.clone(), "b", timing());
    assert!(a.round(0, 1_000).await.unwrap());
    assert!(a.round(2_000, 3_000).await.unwrap());
    let record = lease.get().await.unwrap().unwrap();
    assert_eq!(record.acquired_at_ms, 1_000, "a renewal keeps acquireTime");
    assert_eq!(record.renewed_at_ms, 3_000);
    assert!(!b.round(2_500, 2_500).await.unwrap());
    a.release().await.unwrap();
    assert!(!a.is_leader(2_600));
    assert!(b.round(3_000, 3_000).await.unwrap(), "a released lease is free");
    let record = lease.get().await.unwrap().unwrap();
    assert_eq!(record.holder.as_deref(), Some("b"));
    assert_eq!(record.transitions, 1);
}
