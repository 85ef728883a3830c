//! The fleet split into a fixed number of shards, shared by the replicas of one Deployment, each
//! shard with a Lease and a write gate of its own (issue 46).
//!
//! - Which shard: an account's is `fnv1a64(account id) % shards`; an object without an account
//!   (a LoggingBaselineSet, a policy's status) hashes a key of its own the same way
//!   (`controller::shard`). FNV-1a 64 is specified by its two constants, so the mapping never
//!   changes between versions (std's `DefaultHasher` may).
//! - Who is there: each replica renews a membership Lease of its own (`<lease>-member-<identity>`);
//!   another replica's counts as alive until it has not changed for the lease duration as
//!   observed here (the elector's rule, on this replica's monotonic clock), then it is deleted.
//! - Who holds what: shard `i` has the Lease `<lease>-shard-<i>`, judged and renewed by an
//!   `Elector` exactly as the single Lease is. Members sorted by identity, the replica of rank `r`
//!   among `m` has the share `shards / m`, plus one when `r < shards % m`: shares differ by one
//!   at most. A replica under its share claims free or expired shards (starting at a place of its
//!   own, so that replicas starting together do not race for the same); one over it hands the
//!   extras back: no new work for the shard, the work in flight finishes (for `drain` at most),
//!   then its gate shuts and its Lease is released (no holder), for another replica to take at
//!   once.
//! - A shard whose renewals stop (a partition, a frozen process) is lost at its renew deadline,
//!   on this replica's own clock, exactly as the single Lease: its gate shuts by itself, and the
//!   work in flight for it has every write refused. It is not claimed again by this replica
//!   while that work has not ended (it would write under the new term what the old one read).
//!
//! One LIST of the group's Leases a round (every `retry`), and one write per Lease renewed: the
//! cost does not grow with the replicas that only observe.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, DeleteParams, ListParams, ObjectMeta, PostParams, Preconditions};
use tokio::sync::{Notify, watch};

use super::election::{Elector, LeaseRecord, LeaseStore, Seen, Timing, monotonic_ms, wall_ms};
use super::term::{StopSignal, TermBounds, TermEnd};
use crate::fence::WriteGate;

/// The most shards a fleet may be split into (a Lease each, renewed every two seconds).
pub const MAX_SHARDS: u32 = 256;

/// The label that names the group of a replica's Leases (the `--lease-name`).
pub const GROUP_LABEL: &str = "trailkeeper.io/lease-group";

/// FNV-1a, 64 bits (offset basis 0xcbf29ce484222325, prime 0x100000001b3): a stable hash, the
/// same in every version and on every platform.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The shard of `key` (an account id, or an object's key) among `count`.
pub fn shard_of(key: &str, count: u32) -> u32 {
    (fnv1a64(key.as_bytes()) % u64::from(count.max(1))) as u32
}

/// How many shards the replica `me` should hold among `members` (itself included).
pub fn fair_share(members: &[String], me: &str, count: u32) -> u32 {
    let mut sorted: Vec<&str> = members.iter().map(String::as_str).chain([me]).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let m = sorted.len() as u32;
    let rank = sorted.iter().position(|s| *s == me).unwrap_or(0) as u32;
    count / m + u32::from(rank < count % m)
}

/// The Lease of shard `shard` of the group `group`.
pub fn shard_lease(group: &str, shard: u32) -> String {
    format!("{group}-shard-{shard}")
}

/// The membership Lease of `identity` in `group` (a DNS subdomain: other characters become '-').
pub fn member_lease(group: &str, identity: &str) -> String {
    let clean: String = identity
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{group}-member-{clean}")
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    /// This replica holds the shard's Lease (its gate may still shut first, at the deadline).
    held: bool,
    /// Being handed back: no new work.
    leaving: bool,
    /// Reconciles of the shard running now.
    in_flight: u32,
}

/// The shards as this replica holds them: their gates, the work in flight, and the terms.
/// With one shard and no election of its own (`single`) it is today's one Lease: every object is
/// in shard 0, whose gate is the leader's.
pub struct Shards {
    count: u32,
    identity: String,
    sharded: bool,
    gates: Vec<WriteGate>,
    /// Open while this replica's membership Lease is renewed (the queue's messages).
    member: WriteGate,
    slots: Mutex<Vec<Slot>>,
    /// Woken when a shard's work in flight ends.
    drained: Notify,
    /// Per shard, the number of the term this replica holds it in (0: not held); a new number
    /// is a new term, for the controllers to reconcile the shard's objects.
    terms: watch::Sender<Vec<u64>>,
}

impl std::fmt::Debug for Shards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shards")
            .field("count", &self.count)
            .field("identity", &self.identity)
            .field("held", &self.held())
            .finish()
    }
}

/// A reconcile of a held shard, counted until dropped.
pub struct Turn {
    shards: Arc<Shards>,
    shard: u32,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut slots = self.shards.lock();
        if let Some(slot) = slots.get_mut(self.shard as usize) {
            slot.in_flight = slot.in_flight.saturating_sub(1);
        }
        drop(slots);
        self.shards.drained.notify_waiters();
    }
}

impl Shards {
    /// One shard, held by whoever holds `gate` (the single Lease, or no election): today's
    /// behaviour, every object in shard 0.
    pub fn single(identity: &str, gate: WriteGate) -> Arc<Self> {
        let (terms, _) = watch::channel(vec![1]);
        Arc::new(Self {
            count: 1,
            identity: identity.to_string(),
            sharded: false,
            gates: vec![gate.clone()],
            member: gate,
            slots: Mutex::new(vec![Slot {
                held: true,
                ..Slot::default()
            }]),
            drained: Notify::new(),
            terms,
        })
    }

    /// `count` shards, none held, every gate shut.
    pub fn sharded(identity: &str, count: u32) -> Arc<Self> {
        let count = count.clamp(1, MAX_SHARDS);
        let (terms, _) = watch::channel(vec![0; count as usize]);
        Arc::new(Self {
            count,
            identity: identity.to_string(),
            sharded: true,
            gates: (0..count).map(|_| WriteGate::shut()).collect(),
            member: WriteGate::shut(),
            slots: Mutex::new(vec![Slot::default(); count as usize]),
            drained: Notify::new(),
            terms,
        })
    }

    pub fn count(&self) -> u32 {
        self.count
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Whether the fleet is split among replicas (else one Lease holds it all).
    pub fn is_sharded(&self) -> bool {
        self.sharded
    }

    /// The shard of `key`.
    pub fn of(&self, key: &str) -> u32 {
        shard_of(key, self.count)
    }

    /// The write gate of `shard`.
    pub fn gate(&self, shard: u32) -> &WriteGate {
        &self.gates[(shard % self.count) as usize]
    }

    /// The gate of this replica's membership (the queue's messages are its own).
    pub fn member_gate(&self) -> &WriteGate {
        &self.member
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts a reconcile of an object of `shard`: None when this replica does not hold it (or
    /// is handing it back, or its gate has shut): the object is its holder's.
    pub fn begin(self: &Arc<Self>, shard: u32) -> Option<Turn> {
        let shard = shard % self.count;
        let mut slots = self.lock();
        let slot = &mut slots[shard as usize];
        if !slot.held || slot.leaving || (self.sharded && !self.gates[shard as usize].is_open()) {
            return None;
        }
        slot.in_flight += 1;
        Some(Turn {
            shards: self.clone(),
            shard,
        })
    }

    /// Whether this replica holds `shard` now (and takes new work for it).
    pub fn holds(&self, shard: u32) -> bool {
        let shard = shard % self.count;
        let slot = self.lock()[shard as usize];
        slot.held && !slot.leaving && (!self.sharded || self.gates[shard as usize].is_open())
    }

    /// The shards this replica holds now.
    pub fn held(&self) -> Vec<u32> {
        (0..self.count).filter(|s| self.holds(*s)).collect()
    }

    /// The terms of the shards (0: not held), for the controllers to follow new terms.
    pub fn terms(&self) -> watch::Receiver<Vec<u64>> {
        self.terms.subscribe()
    }

    fn in_flight(&self, shard: u32) -> u32 {
        self.lock()[shard as usize].in_flight
    }

    /// No new work for any shard, every gate shut (termination, after the drain).
    pub fn shut_all(&self) {
        let mut slots = self.lock();
        for (slot, gate) in slots.iter_mut().zip(&self.gates) {
            slot.leaving = slot.held;
            gate.lead_until(None);
        }
        drop(slots);
        self.terms.send_modify(|t| t.iter_mut().for_each(|t| *t = 0));
    }
}

/// Where the group's Leases live: one LIST a round, and writes with the API server's optimistic
/// concurrency (`create`/`replace` return the new version, None when another writer got there
/// first).
pub trait LeaseDirectory: Send + Sync + 'static {
    fn list(&self) -> impl Future<Output = Result<Vec<(String, LeaseRecord)>, kube::Error>> + Send;
    fn create(
        &self,
        name: &str,
        record: &LeaseRecord,
    ) -> impl Future<Output = Result<Option<String>, kube::Error>> + Send;
    fn replace(
        &self,
        name: &str,
        record: &LeaseRecord,
    ) -> impl Future<Output = Result<Option<String>, kube::Error>> + Send;
    /// Deletes `name` if still at `version` (false: changed or gone).
    fn delete(&self, name: &str, version: &str) -> impl Future<Output = Result<bool, kube::Error>> + Send;
}

/// One Lease of a directory as an elector sees it: read from the round's LIST, written through.
pub struct Listed<D> {
    directory: Arc<D>,
    name: String,
    snapshot: Mutex<Option<LeaseRecord>>,
}

impl<D: LeaseDirectory> Listed<D> {
    fn new(directory: Arc<D>, name: String) -> Self {
        Self {
            directory,
            name,
            snapshot: Mutex::new(None),
        }
    }

    fn set(&self, record: Option<LeaseRecord>) {
        *self.snapshot.lock().unwrap_or_else(|e| e.into_inner()) = record;
    }

    fn written(&self, record: &LeaseRecord, version: Option<String>) -> bool {
        let won = version.is_some();
        if won {
            self.set(Some(LeaseRecord {
                version,
                ..record.clone()
            }));
        }
        won
    }
}

impl<D: LeaseDirectory> LeaseStore for Listed<D> {
    async fn get(&self) -> Result<Option<LeaseRecord>, kube::Error> {
        Ok(self.snapshot.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }

    async fn create(&self, record: &LeaseRecord) -> Result<bool, kube::Error> {
        let version = self.directory.create(&self.name, record).await?;
        Ok(self.written(record, version))
    }

    async fn replace(&self, record: &LeaseRecord) -> Result<bool, kube::Error> {
        let version = self.directory.replace(&self.name, record).await?;
        Ok(self.written(record, version))
    }
}

/// Claims, renews and hands back this replica's shards, one round every `retry`.
pub struct ShardManager<D: LeaseDirectory> {
    directory: Arc<D>,
    group: String,
    shards: Arc<Shards>,
    timing: Timing,
    /// How long a shard handed back waits for its work in flight.
    drain: Duration,
    electors: Vec<Elector<Listed<D>>>,
    member: Elector<Listed<D>>,
    /// The other replicas' membership Leases, observed (never taken).
    others: HashMap<String, Elector<Listed<D>>>,
    /// Local time each shard being handed back started its drain.
    leaving_since: Vec<Option<i64>>,
    next_term: u64,
    /// Alive replicas at the last round, this one included.
    members: usize,
}

impl<D: LeaseDirectory> ShardManager<D> {
    pub fn new(directory: D, group: &str, shards: Arc<Shards>, timing: Timing, drain: Duration) -> Self {
        let directory = Arc::new(directory);
        let identity = shards.identity().to_string();
        let elector =
            |name: String| Elector::new(Listed::new(directory.clone(), name), identity.clone(), timing.clone());
        let electors = (0..shards.count()).map(|s| elector(shard_lease(group, s))).collect();
        let member = elector(member_lease(group, &identity));
        Self {
            group: group.to_string(),
            leaving_since: vec![None; shards.count() as usize],
            directory,
            shards,
            timing,
            drain,
            electors,
            member,
            others: HashMap::new(),
            next_term: 1,
            members: 1,
        }
    }

    pub fn shards(&self) -> &Arc<Shards> {
        &self.shards
    }

    /// Alive replicas at the last round, this one included.
    pub fn members(&self) -> usize {
        self.members
    }

    /// Whether this replica leads `shard` at local time `now_ms` (its Lease's renew deadline
    /// not passed).
    pub fn leads(&self, shard: u32, now_ms: i64) -> bool {
        self.electors[(shard % self.shards.count()) as usize].is_leader(now_ms)
    }

    /// One round at local time `now_ms`: renew this replica's membership, count the alive
    /// replicas, renew the shards held, claim up to the share, hand extras back, and release
    /// those whose drain is over.
    pub async fn round(&mut self, now_ms: i64, wall: i64) -> Result<(), kube::Error> {
        let mut listed: HashMap<String, LeaseRecord> = self.directory.list().await?.into_iter().collect();
        let me = member_lease(&self.group, self.shards.identity());
        self.member.store().set(listed.remove(&me));
        if let Err(e) = self.member.round(now_ms, wall).await {
            tracing::warn!(error = %e, "cannot renew this replica's membership Lease");
        }
        self.shards.member.lead_until(self.member.leading_until());

        let alive = self.alive_members(&mut listed, now_ms, wall).await;
        self.members = alive.len() + 1;
        let share = fair_share(&alive, self.shards.identity(), self.shards.count());
        let count = self.shards.count();
        let mut holding = self.shards.lock().iter().filter(|s| s.held && !s.leaving).count() as u32;
        let start = shard_of(self.shards.identity(), count);
        let mut failed = None;
        for shard in (0..count).map(|i| (start + i) % count) {
            let i = shard as usize;
            self.electors[i]
                .store()
                .set(listed.remove(&shard_lease(&self.group, shard)));
            let mut slot = self.shards.lock()[i];
            if slot.held && self.electors[i].leading_until().is_none_or(|until| until <= now_ms) {
                // Lapsed since the last round (renewals failed past the deadline): that term is
                // over, and a new one starts only once its work has ended.
                if !slot.leaving {
                    holding = holding.saturating_sub(1);
                }
                self.lost(shard);
                slot = self.shards.lock()[i];
            }
            let take = slot.held || (holding < share && slot.in_flight == 0);
            if let Err(e) = self.electors[i].round_taking(now_ms, wall, take).await {
                failed = Some(e);
            }
            let until = self.electors[i].leading_until().filter(|until| *until > now_ms);
            self.shards.gates[i].lead_until(until);
            let leads = until.is_some();
            if leads && !slot.held {
                holding += 1;
                self.began(shard);
            } else if !leads && slot.held {
                if !slot.leaving {
                    holding = holding.saturating_sub(1);
                }
                self.lost(shard);
            }
        }
        self.hand_back_extras(holding, share, now_ms);
        self.release_drained(now_ms).await;
        crate::runtime::metrics::set_shards(count, &self.shards.held(), self.members);
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The other replicas whose membership Lease is alive as observed here; expired ones are
    /// deleted (their replica died without leaving).
    async fn alive_members(
        &mut self,
        listed: &mut HashMap<String, LeaseRecord>,
        now_ms: i64,
        wall: i64,
    ) -> Vec<String> {
        let prefix = format!("{}-member-", self.group);
        let members: Vec<(String, LeaseRecord)> = listed
            .iter()
            .filter(|(name, _)| name.starts_with(&prefix))
            .map(|(n, r)| (n.clone(), r.clone()))
            .collect();
        self.others.retain(|name, _| members.iter().any(|(n, _)| n == name));
        let mut alive = Vec::new();
        for (name, record) in members {
            listed.remove(&name);
            let observer = self.others.entry(name.clone()).or_insert_with(|| {
                Elector::new(
                    Listed::new(self.directory.clone(), name.clone()),
                    self.shards.identity().to_string(),
                    self.timing.clone(),
                )
            });
            let version = record.version.clone();
            observer.store().set(Some(record));
            // Never writes: it only judges whether the Lease still changes.
            let _ = observer.round_taking(now_ms, wall, false).await;
            match observer.seen().clone() {
                Seen::Held(holder) if holder != self.shards.identity() => alive.push(holder),
                Seen::Free => {
                    if let Some(version) = version
                        && let Ok(true) = self.directory.delete(&name, &version).await
                    {
                        tracing::info!(member = %name, "a replica's membership expired: its Lease deleted");
                    }
                    self.others.remove(&name);
                }
                _ => {}
            }
        }
        alive
    }

    fn began(&mut self, shard: u32) {
        let term = self.next_term;
        self.next_term += 1;
        {
            let mut slots = self.shards.lock();
            slots[shard as usize].held = true;
            slots[shard as usize].leaving = false;
        }
        self.leaving_since[shard as usize] = None;
        self.shards.terms.send_modify(|t| t[shard as usize] = term);
        tracing::info!(shard, shards = self.shards.count(), "holding a shard");
    }

    fn lost(&mut self, shard: u32) {
        self.shards.gates[shard as usize].lead_until(None);
        {
            let mut slots = self.shards.lock();
            slots[shard as usize].held = false;
            slots[shard as usize].leaving = false;
        }
        self.leaving_since[shard as usize] = None;
        self.shards.terms.send_modify(|t| t[shard as usize] = 0);
        tracing::warn!(
            shard,
            "lost a shard's Lease: its writes are refused from its renew deadline on"
        );
    }

    /// Over the share: the extras (highest first) take no new work from now on.
    fn hand_back_extras(&mut self, holding: u32, share: u32, now_ms: i64) {
        let mut extras = holding.saturating_sub(share);
        if extras == 0 {
            return;
        }
        let mut slots = self.shards.lock();
        for shard in (0..self.shards.count()).rev() {
            let slot = &mut slots[shard as usize];
            if extras == 0 {
                break;
            }
            if slot.held && !slot.leaving {
                slot.leaving = true;
                self.leaving_since[shard as usize] = Some(now_ms);
                extras -= 1;
                tracing::info!(shard, share, "handing a shard back: finishing its work in flight");
            }
        }
    }

    /// Shards handed back whose work in flight has ended (or whose drain is over): gate shut,
    /// Lease released.
    async fn release_drained(&mut self, now_ms: i64) {
        let drain_ms = self.drain.as_millis() as i64;
        for shard in 0..self.shards.count() {
            let Some(since) = self.leaving_since[shard as usize] else {
                continue;
            };
            let in_flight = self.shards.in_flight(shard);
            if in_flight > 0 && now_ms - since < drain_ms {
                continue;
            }
            if in_flight > 0 {
                tracing::warn!(
                    shard,
                    in_flight,
                    "handing a shard back: its drain is over, what still runs is cut off behind its shut gate"
                );
            }
            self.release(shard).await;
        }
    }

    async fn release(&mut self, shard: u32) {
        let i = shard as usize;
        self.shards.gates[i].lead_until(None);
        {
            let mut slots = self.shards.lock();
            slots[i].held = false;
            slots[i].leaving = false;
        }
        self.leaving_since[i] = None;
        self.shards.terms.send_modify(|t| t[i] = 0);
        match tokio::time::timeout(round_timeout(&self.timing), self.electors[i].release()).await {
            Ok(Ok(())) => tracing::info!(shard, "released a shard's Lease"),
            Ok(Err(e)) => tracing::warn!(shard, error = %e, "cannot release a shard's Lease: it expires by itself"),
            Err(_) => tracing::warn!(shard, "releasing a shard's Lease timed out: it expires by itself"),
        }
    }

    /// Leaves the group: every gate shut, every shard's Lease released and the membership Lease
    /// deleted, so that the others take over at once.
    pub async fn leave(&mut self) {
        self.shards.shut_all();
        if let Ok(Ok(listed)) = tokio::time::timeout(round_timeout(&self.timing), self.directory.list()).await {
            let listed: HashMap<String, LeaseRecord> = listed.into_iter().collect();
            for shard in 0..self.shards.count() {
                let name = shard_lease(&self.group, shard);
                self.electors[shard as usize].store().set(listed.get(&name).cloned());
            }
            let me = member_lease(&self.group, self.shards.identity());
            if let Some(version) = listed.get(&me).and_then(|r| r.version.clone()) {
                let _ = tokio::time::timeout(round_timeout(&self.timing), self.directory.delete(&me, &version)).await;
            }
        }
        for shard in 0..self.shards.count() {
            let held = self.electors[shard as usize].store().get().await.ok().flatten();
            if held.is_some_and(|r| r.holder.as_deref() == Some(self.shards.identity())) {
                self.release(shard).await;
            }
        }
        self.shards.member.lead_until(None);
        crate::runtime::metrics::set_shards(self.shards.count(), &[], 0);
    }

    /// Rounds every `retry` (sooner when a shard being handed back drains) until `stop`.
    pub async fn run(&mut self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let started = monotonic_ms();
            match tokio::time::timeout(round_timeout(&self.timing), self.round(started, wall_ms())).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "shard round failed"),
                Err(_) => tracing::warn!("shard round timed out: the API server did not answer"),
            }
            let draining = self.leaving_since.iter().any(Option::is_some);
            let drained = self.shards.drained.notified();
            tokio::select! {
                _ = tokio::time::sleep(self.timing.retry) => {}
                _ = drained, if draining => {}
                _ = &mut stop => return,
            }
        }
    }
}

fn round_timeout(timing: &Timing) -> Duration {
    (timing.renew_deadline / 2).max(Duration::from_millis(500))
}

/// Runs `work` from the start (its reconciles take only the shards held) beside the shard
/// rounds, until termination: then the work finishes what it is doing while the shards are still
/// held (for `bounds.drain` at most, then it is cut off behind shut gates), and the replica
/// leaves the group (its Leases released).
pub async fn serve_shards<D, W, F>(
    mut manager: ShardManager<D>,
    termination: impl Future<Output = ()>,
    bounds: TermBounds,
    work: W,
) -> TermEnd
where
    D: LeaseDirectory,
    W: FnOnce(StopSignal) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    tokio::pin!(termination);
    let shards = manager.shards().clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut work = tokio::spawn(work(Box::pin(async move {
        let _ = stop_rx.await;
    })));
    let (end_tx, mut end_rx) = watch::channel(false);
    let rounds = tokio::spawn(async move {
        manager
            .run(async move {
                let _ = end_rx.wait_for(|end| *end).await;
            })
            .await;
        manager.leave().await;
    });
    tokio::select! {
        _ = &mut work => {}
        _ = &mut termination => {
            let _ = stop_tx.send(());
            tokio::select! {
                _ = &mut work => {}
                _ = tokio::time::sleep(bounds.drain) => {
                    shards.shut_all();
                    work.abort();
                    if tokio::time::timeout(bounds.cancel, &mut work).await.is_err() {
                        tracing::warn!(cancel = ?bounds.cancel, "the cut-off work did not stop in time (its writes are refused)");
                    }
                    tracing::warn!(drain = ?bounds.drain, "terminating: in-flight reconciles cut off after the drain; the shards' next holders resume them");
                }
            }
        }
    }
    shards.shut_all();
    let _ = end_tx.send(true);
    let _ = rounds.await;
    TermEnd::Finished
}

/// The group's Leases in a namespace of the cluster, labelled with the group.
pub struct KubeLeases {
    api: Api<Lease>,
    group: String,
}

impl KubeLeases {
    pub fn new(client: kube::Client, namespace: &str, group: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            group: group.to_string(),
        }
    }

    fn to_lease(&self, name: &str, r: &LeaseRecord) -> Lease {
        let time = |ms: i64| jiff::Timestamp::from_millisecond(ms).ok().map(MicroTime);
        Lease {
            metadata: ObjectMeta {
                name: Some(name.to_string()),
                resource_version: r.version.clone(),
                labels: Some([(GROUP_LABEL.to_string(), self.group.clone())].into()),
                ..Default::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: r.holder.clone(),
                lease_duration_seconds: Some(r.duration_secs),
                renew_time: time(r.renewed_at_ms),
                acquire_time: time(r.acquired_at_ms),
                lease_transitions: Some(r.transitions),
                ..Default::default()
            }),
        }
    }
}

fn conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 || s.code == 404)
}

impl LeaseDirectory for KubeLeases {
    async fn list(&self) -> Result<Vec<(String, LeaseRecord)>, kube::Error> {
        let params = ListParams::default().labels(&format!("{GROUP_LABEL}={}", self.group));
        let leases = self.api.list(&params).await?;
        Ok(leases
            .items
            .into_iter()
            .filter_map(|lease| {
                let name = lease.metadata.name?;
                let spec = lease.spec.unwrap_or_default();
                Some((
                    name,
                    LeaseRecord {
                        holder: spec.holder_identity,
                        renewed_at_ms: spec.renew_time.map(|t| t.0.as_millisecond()).unwrap_or(0),
                        acquired_at_ms: spec.acquire_time.map(|t| t.0.as_millisecond()).unwrap_or(0),
                        duration_secs: spec.lease_duration_seconds.unwrap_or(0),
                        transitions: spec.lease_transitions.unwrap_or(0),
                        version: lease.metadata.resource_version,
                    },
                ))
            })
            .collect())
    }

    async fn create(&self, name: &str, record: &LeaseRecord) -> Result<Option<String>, kube::Error> {
        match self
            .api
            .create(&PostParams::default(), &self.to_lease(name, record))
            .await
        {
            Ok(lease) => Ok(lease.metadata.resource_version.or(Some(String::new()))),
            Err(e) if conflict(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn replace(&self, name: &str, record: &LeaseRecord) -> Result<Option<String>, kube::Error> {
        match self
            .api
            .replace(name, &PostParams::default(), &self.to_lease(name, record))
            .await
        {
            Ok(lease) => Ok(lease.metadata.resource_version.or(Some(String::new()))),
            Err(e) if conflict(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, name: &str, version: &str) -> Result<bool, kube::Error> {
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: Some(version.to_string()),
                uid: None,
            }),
            ..Default::default()
        };
        match self.api.delete(name, &params).await {
            Ok(_) => Ok(true),
            Err(e) if conflict(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// An in-memory directory with the API server's optimistic concurrency, which can be cut off
/// (a partition: every request then hangs). For tests.
#[derive(Clone, Default)]
pub struct MemoryLeases {
    leases: Arc<Mutex<HashMap<String, (LeaseRecord, u64)>>>,
    partitioned: Arc<std::sync::atomic::AtomicBool>,
}

impl MemoryLeases {
    /// The same Leases, reached by a path of its own (partitioned apart from the others').
    pub fn path(&self) -> Self {
        Self {
            leases: self.leases.clone(),
            partitioned: Arc::default(),
        }
    }

    /// Every request hangs from now on (or answers again).
    pub fn partition(&self, cut: bool) {
        self.partitioned.store(cut, std::sync::atomic::Ordering::SeqCst);
    }

    /// The holder of `name` now.
    pub fn holder(&self, name: &str) -> Option<String> {
        self.lock().get(name).and_then(|(r, _)| r.holder.clone())
    }

    /// The names of the Leases there now.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.lock().keys().cloned().collect();
        names.sort();
        names
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (LeaseRecord, u64)>> {
        self.leases.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn reachable(&self) {
        if self.partitioned.load(std::sync::atomic::Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
    }
}

impl LeaseDirectory for MemoryLeases {
    async fn list(&self) -> Result<Vec<(String, LeaseRecord)>, kube::Error> {
        self.reachable().await;
        Ok(self
            .lock()
            .iter()
            .map(|(name, (r, v))| {
                (
                    name.clone(),
                    LeaseRecord {
                        version: Some(v.to_string()),
                        ..r.clone()
                    },
                )
            })
            .collect())
    }

    async fn create(&self, name: &str, record: &LeaseRecord) -> Result<Option<String>, kube::Error> {
        self.reachable().await;
        let mut leases = self.lock();
        if leases.contains_key(name) {
            return Ok(None);
        }
        leases.insert(name.to_string(), (record.clone(), 1));
        Ok(Some("1".into()))
    }

    async fn replace(&self, name: &str, record: &LeaseRecord) -> Result<Option<String>, kube::Error> {
        self.reachable().await;
        let mut leases = self.lock();
        match leases.get_mut(name) {
            Some((current, version)) if record.version.as_deref() == Some(version.to_string().as_str()) => {
                *current = record.clone();
                *version += 1;
                Ok(Some(version.to_string()))
            }
            _ => Ok(None),
        }
    }

    async fn delete(&self, name: &str, version: &str) -> Result<bool, kube::Error> {
        self.reachable().await;
        let mut leases = self.lock();
        match leases.get(name) {
            Some((_, v)) if v.to_string() == version => {
                leases.remove(name);
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The simulated clock's zero, an hour ahead of this process's monotonic clock: the gates,
    /// which read the real clock, stay open while the simulated Leases are held.
    const T: i64 = 3_600_000;

    fn timing() -> Timing {
        Timing {
            duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        }
    }

    fn replica(leases: &MemoryLeases, name: &str, count: u32) -> ShardManager<MemoryLeases> {
        ShardManager::new(
            leases.path(),
            "tk",
            Shards::sharded(name, count),
            timing(),
            Duration::from_secs(20),
        )
    }

    /// The shards each replica leads at `now` (on the simulated clock every replica shares).
    fn led(replicas: &[&ShardManager<MemoryLeases>], count: u32, now: i64) -> Vec<Vec<u32>> {
        replicas
            .iter()
            .map(|r| (0..count).filter(|s| r.leads(*s, T + now)).collect())
            .collect()
    }

    fn assert_one_leader_at_most(replicas: &[&ShardManager<MemoryLeases>], count: u32, now: i64) {
        for shard in 0..count {
            let leaders = replicas.iter().filter(|r| r.leads(shard, T + now)).count();
            assert!(leaders <= 1, "shard {shard} led by {leaders} replicas at {now} ms");
        }
    }

    #[test]
    fn the_shard_of_a_key_is_fnv1a_64_and_never_changes() {
        // The published test vectors of FNV-1a 64.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
        // Pinned: docs/performance.md ("Several replicas: sharding") gives these, and a version that moved an account would have
        // two replicas write it during an upgrade.
        assert_eq!(shard_of("111122223333", 12), (fnv1a64(b"111122223333") % 12) as u32);
        assert_eq!(
            ["111122223333", "444455556666", "123456789012"].map(|a| shard_of(a, 12)),
            [5, 9, 11]
        );
        assert_eq!(shard_of("111122223333", 1), 0);
        assert_eq!(shard_of("111122223333", 0), 0, "no shards counts as one");
    }

    #[test]
    fn fair_shares_sum_to_the_shards_and_differ_by_one_at_most() {
        for count in [1u32, 2, 7, 12, 16, 64] {
            for replicas in 1..=9usize {
                let members: Vec<String> = (0..replicas).map(|i| format!("replica-{i}")).collect();
                let shares: Vec<u32> = members.iter().map(|m| fair_share(&members, m, count)).collect();
                assert_eq!(shares.iter().sum::<u32>(), count, "{count} shards, {replicas} replicas");
                let (min, max) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
                assert!(max - min <= 1, "{shares:?}");
            }
        }
        assert_eq!(fair_share(&[], "alone", 12), 12, "a replica alone holds them all");
    }

    #[test]
    fn member_leases_are_dns_names() {
        assert_eq!(member_lease("tk", "Pod_A:1"), "tk-member-pod-a-1");
        assert_eq!(shard_lease("tk", 3), "tk-shard-3");
    }

    #[tokio::test]
    async fn a_replica_alone_holds_every_shard_and_each_shard_has_its_own_lease() {
        let leases = MemoryLeases::default();
        let mut a = replica(&leases, "a", 4);
        a.round(T, 0).await.unwrap();
        assert_eq!(led(&[&a], 4, 1), [vec![0, 1, 2, 3]]);
        assert_eq!(a.shards().held(), [0, 1, 2, 3]);
        assert_eq!(
            leases.names(),
            ["tk-member-a", "tk-shard-0", "tk-shard-1", "tk-shard-2", "tk-shard-3"]
        );
        assert!(a.shards().gate(2).is_open());
        assert_eq!(a.members(), 1);
    }

    #[tokio::test]
    async fn a_joining_replica_gets_its_share_after_the_holder_hands_the_extras_back() {
        let leases = MemoryLeases::default();
        let (mut a, mut b) = (replica(&leases, "a", 12), replica(&leases, "b", 12));
        a.round(T, 0).await.unwrap();
        assert_eq!(a.shards().held().len(), 12);
        let mut now = 0;
        while now < 10_000 {
            now += 500;
            b.round(T + now, now).await.unwrap();
            assert_one_leader_at_most(&[&a, &b], 12, now);
            a.round(T + now + 250, now + 250).await.unwrap();
            assert_one_leader_at_most(&[&a, &b], 12, now + 250);
        }
        let held = led(&[&a, &b], 12, now + 300);
        assert_eq!((held[0].len(), held[1].len()), (6, 6), "{held:?}");
        assert_eq!((a.members(), b.members()), (2, 2));
    }

    #[tokio::test]
    async fn a_shard_handed_back_waits_for_its_reconcile_in_flight_before_its_lease_is_released() {
        let leases = MemoryLeases::default();
        let (mut a, mut b) = (replica(&leases, "a", 2), replica(&leases, "b", 2));
        a.round(T, 0).await.unwrap();
        // A reconcile of each shard in flight on a when b joins.
        let turns = [a.shards().begin(0).unwrap(), a.shards().begin(1).unwrap()];
        b.round(T + 100, 100).await.unwrap();
        a.round(T + 200, 200).await.unwrap();
        // a is over its share: one shard takes no new work, its Lease still a's (renewed).
        let leaving: Vec<u32> = (0..2).filter(|s| !a.shards().holds(*s)).collect();
        assert_eq!(leaving.len(), 1);
        let shard = leaving[0];
        assert!(a.shards().begin(shard).is_none(), "no new work for a shard handed back");
        assert!(a.shards().gate(shard).is_open(), "its work in flight may still write");
        for now in [2_000, 4_000, 6_000] {
            b.round(T + now, now).await.unwrap();
            a.round(T + now + 100, now + 100).await.unwrap();
            assert!(!b.leads(shard, T + now + 200), "taken while its work was in flight");
            assert_eq!(leases.holder(&shard_lease("tk", shard)).as_deref(), Some("a"));
        }
        drop(turns);
        a.round(T + 6_500, 6_500).await.unwrap();
        assert!(
            !a.shards().gate(shard).is_open(),
            "its gate shut before its Lease was released"
        );
        assert_eq!(leases.holder(&shard_lease("tk", shard)), None, "released");
        b.round(T + 7_000, 7_000).await.unwrap();
        assert!(b.leads(shard, T + 7_001), "taken at once once released");
        assert!(a.leads(1 - shard, T + 7_001));
    }

    #[tokio::test]
    async fn a_handed_back_shard_is_released_after_the_drain_even_if_its_work_hangs() {
        let leases = MemoryLeases::default();
        let (mut a, mut b) = (replica(&leases, "a", 2), replica(&leases, "b", 2));
        a.round(T, 0).await.unwrap();
        let _hung = [a.shards().begin(0).unwrap(), a.shards().begin(1).unwrap()];
        b.round(T + 100, 100).await.unwrap();
        a.round(T + 200, 200).await.unwrap();
        let mut now = 200;
        while now < 19_000 {
            now += 1_000;
            b.round(T + now, now).await.unwrap();
            a.round(T + now + 100, now + 100).await.unwrap();
            assert_eq!(a.shards().held().len(), 1, "one shard draining at {now} ms");
            assert!(
                (0..2).all(|s| a.leads(s, T + now + 101)),
                "both Leases still a's at {now} ms"
            );
        }
        a.round(T + 20_300, 20_300).await.unwrap();
        let released: Vec<u32> = (0..2).filter(|s| !a.leads(*s, T + 20_301)).collect();
        assert_eq!(released.len(), 1, "released after the 20 s drain");
        assert!(!a.shards().gate(released[0]).is_open(), "what still runs is refused");
    }

    #[tokio::test]
    async fn a_dead_replicas_shards_are_taken_once_its_leases_expire_and_its_membership_is_deleted() {
        let leases = MemoryLeases::default();
        let (mut a, mut b, mut c) = (
            replica(&leases, "a", 12),
            replica(&leases, "b", 12),
            replica(&leases, "c", 12),
        );
        let mut now = 0;
        while now < 20_000 {
            now += 1_000;
            for r in [&mut a, &mut b, &mut c] {
                r.round(T + now, now).await.unwrap();
            }
        }
        let held = led(&[&a, &b, &c], 12, now);
        assert_eq!(held.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 4], "{held:?}");
        // c dies (kill -9): it renews nothing from now on.
        let died = now;
        let c_shards = held[2].clone();
        let mut taken_at = None;
        while now < died + 40_000 {
            now += 1_000;
            a.round(T + now, now).await.unwrap();
            b.round(T + now, now).await.unwrap();
            assert!(!c.leads(c_shards[0], T + now) || now < died + 10_000);
            assert_one_leader_at_most(&[&a, &b, &c], 12, now);
            if taken_at.is_none() && c_shards.iter().all(|s| a.leads(*s, T + now) || b.leads(*s, T + now)) {
                taken_at = Some(now);
            }
        }
        let taken_at = taken_at.expect("c's shards taken over");
        assert!(
            taken_at - died <= 15_000 + 2 * 1_000,
            "taken {} ms after the death: more than the lease duration and a round",
            taken_at - died
        );
        assert!(taken_at - died > 15_000, "taken before the lease duration passed");
        let held = led(&[&a, &b], 12, now);
        assert_eq!((held[0].len(), held[1].len()), (6, 6));
        assert!(
            !leases.names().contains(&"tk-member-c".to_string()),
            "the dead replica's membership deleted: {:?}",
            leases.names()
        );
    }

    /// Replicas join, pause (a frozen process: no rounds), come back and leave at random on one
    /// simulated clock: no shard is ever led by two, and once they settle every shard is held
    /// and every replica holds its share.
    #[tokio::test]
    async fn replicas_joining_freezing_and_leaving_never_lead_one_shard_together() {
        let leases = MemoryLeases::default();
        let count = 12;
        let mut replicas: Vec<ShardManager<MemoryLeases>> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| replica(&leases, n, count))
            .collect();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        // Per replica: joins at, paused from-to.
        let joins = [0, 5_000, 30_000, 60_000];
        let paused = [(80_000, 110_000), (0, 0), (120_000, 125_000), (0, 0)];
        let mut now = 0i64;
        while now < 200_000 {
            now += 250;
            for (i, r) in replicas.iter_mut().enumerate() {
                let (from, to) = paused[i];
                if now < joins[i] || (from..to).contains(&now) || next() % 3 != 0 {
                    continue;
                }
                r.round(T + now, now).await.unwrap();
            }
            let refs: Vec<&ShardManager<MemoryLeases>> = replicas.iter().collect();
            assert_one_leader_at_most(&refs, count, now);
        }
        let refs: Vec<&ShardManager<MemoryLeases>> = replicas.iter().collect();
        let held: Vec<usize> = led(&refs, count, now).iter().map(Vec::len).collect();
        assert_eq!(held.iter().sum::<usize>(), 12, "{held:?}");
        assert!(held.iter().all(|n| *n == 3), "each within one of its share: {held:?}");
    }

    /// Real time, short Leases: a replica whose API server stops answering shuts each shard's
    /// gate at its renew deadline by its own clock, and the other takes the shards once they have
    /// not changed for the lease duration.
    #[tokio::test]
    async fn a_partitioned_replica_shuts_its_gates_at_the_renew_deadline_and_the_other_takes_over() {
        let timing = Timing {
            duration: Duration::from_millis(1_500),
            renew_deadline: Duration::from_millis(1_000),
            retry: Duration::from_millis(100),
        };
        let leases = MemoryLeases::default();
        let a_path = leases.path();
        let a_shards = Shards::sharded("a", 2);
        let b_shards = Shards::sharded("b", 2);
        let mut a = ShardManager::new(
            a_path.clone(),
            "tk",
            a_shards.clone(),
            timing.clone(),
            Duration::from_secs(5),
        );
        let mut b = ShardManager::new(leases.path(), "tk", b_shards.clone(), timing, Duration::from_secs(5));
        a.round(monotonic_ms(), wall_ms()).await.unwrap();
        let (stop_a, a_stopped) = tokio::sync::oneshot::channel::<()>();
        let (stop_b, b_stopped) = tokio::sync::oneshot::channel::<()>();
        let a_task = tokio::spawn(async move {
            a.run(async move {
                let _ = a_stopped.await;
            })
            .await
        });
        let b_task = tokio::spawn(async move {
            b.run(async move {
                let _ = b_stopped.await;
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(a_shards.held().len() + b_shards.held().len(), 2);
        let a_had = a_shards.held();
        assert!(!a_had.is_empty());
        a_path.partition(true);
        let cut = std::time::Instant::now();
        while a_had.iter().any(|s| a_shards.gate(*s).is_open()) {
            assert!(
                cut.elapsed() < Duration::from_millis(1_100),
                "a's gate open past its deadline"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        while b_shards.held().len() < 2 {
            assert!(cut.elapsed() < Duration::from_secs(4), "b did not take over");
            assert!(
                !a_had
                    .iter()
                    .any(|s| a_shards.gate(*s).is_open() && b_shards.gate(*s).is_open()),
                "two open gates for one shard"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            cut.elapsed() >= Duration::from_millis(1_000),
            "taken before the lease could expire"
        );
        let _ = (stop_a.send(()), stop_b.send(()));
        a_task.abort();
        let _ = b_task.await;
    }

    #[tokio::test]
    async fn termination_finishes_the_work_then_releases_every_lease_and_leaves() {
        let leases = MemoryLeases::default();
        let manager = replica(&leases, "a", 3);
        let shards = manager.shards().clone();
        let (terminate, terminated) = tokio::sync::oneshot::channel::<()>();
        let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let work = {
            let (shards, finished) = (shards.clone(), finished.clone());
            move |stop: StopSignal| async move {
                stop.await;
                assert!(shards.gate(0).is_open(), "the shards are held while the work finishes");
                finished.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        };
        let serving = tokio::spawn(serve_shards(
            manager,
            async move {
                let _ = terminated.await;
            },
            TermBounds {
                drain: Duration::from_secs(5),
                cancel: Duration::from_secs(1),
            },
            work,
        ));
        let started = std::time::Instant::now();
        while shards.held().len() < 3 {
            assert!(started.elapsed() < Duration::from_secs(5));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        terminate.send(()).unwrap();
        assert_eq!(serving.await.unwrap(), TermEnd::Finished);
        assert!(finished.load(std::sync::atomic::Ordering::SeqCst));
        assert!((0..3).all(|s| !shards.gate(s).is_open()));
        assert_eq!(
            leases.names(),
            ["tk-shard-0", "tk-shard-1", "tk-shard-2"],
            "membership deleted"
        );
        assert!(
            (0..3).all(|s| leases.holder(&shard_lease("tk", s)).is_none()),
            "released"
        );
    }
}
