//! A term of leadership, owned from start to end: campaign until elected, open the write gate,
//! run the work, and end in one of three ways.
//! - Lease lost (its deadline passed without a renewal, or another replica holds it): the gate is
//!   shut at once, the campaign stopped (it must not win again while old work unwinds), the work
//!   cancelled and awaited (bounded by `grace`), and the lease is left as it is: it is no longer
//!   this replica's to release. The caller exits.
//! - Termination (SIGTERM): the work is asked to stop and finishes in-flight reconciles while the
//!   lease is held (if the lease is lost meanwhile, as above), for `drain` at most: what still
//!   runs then is cut off behind the shut gate (every write is idempotent: the next leader
//!   resumes it), so that the lease is released before the pod's grace period ends in SIGKILL.
//! - The work ends by itself: as termination.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;

use super::election::{Elector, LeaseStore, campaign, lease_lost, release};
use crate::fence::WriteGate;

/// How a term ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TermEnd {
    /// Terminated before it was elected: nothing ran.
    NeverLed,
    /// Its work finished while it held the lease; the lease was released.
    Finished,
    /// The lease was lost: the work was cancelled and the lease left as it was.
    LeaseLost,
}

/// How long a term's end may take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TermBounds {
    /// On termination: how long in-flight work may finish under the lease.
    pub drain: Duration,
    /// After a cancellation: how long the cancelled work may take to unwind.
    pub cancel: Duration,
}

/// The future a term's work is given: it resolves when the work should finish what it is doing
/// and stop (termination).
pub type StopSignal = std::pin::Pin<Box<dyn Future<Output = ()> + Send + Sync>>;

/// Keeps `gate` on the published deadline of the lease, telling `on_leading` each change. The
/// gate also shuts on its own once the deadline passes (the clock is read at each check), even
/// if this task or the process stalled.
async fn follow_leadership(
    gate: WriteGate,
    mut leading: watch::Receiver<Option<i64>>,
    on_leading: impl Fn(bool) + Send + 'static,
) {
    loop {
        let until = *leading.borrow_and_update();
        gate.lead_until(until);
        on_leading(until.is_some());
        if leading.changed().await.is_err() {
            gate.lead_until(None);
            on_leading(false);
            return;
        }
    }
}

/// Campaigns on `elector` and, once elected, runs `work` under `gate` until termination or the
/// lease's loss. `on_leading` hears each change of leadership (health, metrics).
pub async fn serve<S, W, F>(
    elector: Elector<S>,
    gate: WriteGate,
    on_leading: impl Fn(bool) + Send + 'static,
    termination: impl Future<Output = ()>,
    bounds: TermBounds,
    work: W,
) -> TermEnd
where
    S: LeaseStore + Send + 'static,
    W: FnOnce(StopSignal) -> F,
    F: Future<Output = ()> + Send + 'static,
{
    tokio::pin!(termination);
    let (leading_tx, mut leading) = watch::channel(None);
    let (stop_campaign, campaign_stopped) = tokio::sync::oneshot::channel::<()>();
    let campaign = tokio::spawn(campaign(elector, leading_tx, async move {
        let _ = campaign_stopped.await;
    }));
    let follower = tokio::spawn(follow_leadership(gate.clone(), leading.clone(), on_leading));
    let stop_campaign = move |campaign: tokio::task::JoinHandle<Elector<S>>| {
        let _ = stop_campaign.send(());
        async move { campaign.await.ok() }
    };

    tokio::select! {
        _ = &mut termination => {
            gate.lead_until(None);
            follower.abort();
            if let Some(elector) = stop_campaign(campaign).await {
                // Elected in the last round, perhaps: a lease that names this replica is freed.
                release(elector).await;
            }
            return TermEnd::NeverLed;
        }
        _ = async { leading.wait_for(Option::is_some).await.is_ok() } => {}
    }
    tracing::info!("leading: starting the controller");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let mut work = tokio::spawn(work(Box::pin(async move {
        let _ = stop_rx.await;
    })));
    let finished = tokio::select! {
        _ = &mut work => true,
        _ = lease_lost(leading.clone()) => false,
        _ = &mut termination => {
            // In-flight reconciles finish while the lease is still ours, and no longer.
            let _ = stop_tx.send(());
            tokio::select! {
                _ = &mut work => true,
                _ = lease_lost(leading.clone()) => false,
                _ = tokio::time::sleep(bounds.drain) => {
                    // Past the drain: no write from now on, the rest cut off, then released.
                    gate.lead_until(None);
                    work.abort();
                    if tokio::time::timeout(bounds.cancel, &mut work).await.is_err() {
                        tracing::warn!(cancel = ?bounds.cancel, "the cut-off work did not stop in time (its writes are refused)");
                    }
                    tracing::warn!(drain = ?bounds.drain, "terminating: in-flight reconciles cut off after the drain; the next leader resumes them");
                    follower.abort();
                    if let Some(elector) = stop_campaign(campaign).await {
                        release(elector).await;
                    }
                    return TermEnd::Finished;
                }
            }
        }
    };
    if finished && gate.is_open() {
        gate.lead_until(None);
        follower.abort();
        if let Some(elector) = stop_campaign(campaign).await {
            release(elector).await;
        }
        return TermEnd::Finished;
    }
    // Lost: no write from now on, no new term while the old work unwinds, and the old work
    // cancelled and awaited.
    gate.lead_until(None);
    follower.abort();
    let _ = stop_campaign(campaign).await;
    work.abort();
    if tokio::time::timeout(bounds.cancel, &mut work).await.is_err() {
        tracing::warn!(cancel = ?bounds.cancel, "the cancelled work did not stop in time");
    }
    TermEnd::LeaseLost
}
