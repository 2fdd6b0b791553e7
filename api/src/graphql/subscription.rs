//! Subscriptions: new results as soon as the ingest worker commits them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_graphql::{Context, ID, Subscription};
use futures_util::{Stream, StreamExt};
use tokio::sync::broadcast;

use super::states::StateChange;
use super::types::{ProbeResult, Target, parse_id};
use crate::error::{ApiError, IntoGql};
use crate::live::{Live, LiveResult, LiveState};
use crate::service::targets::validate_frequency;
use async_graphql::ErrorExtensions;

pub struct SubscriptionRoot;

/// Most targets one `results` subscription may name.
pub const MAX_LIVE_TARGETS: usize = 500;

/// At most one result per target in this period, when a subscription names its targets.
pub const COALESCE_PERIOD: Duration = Duration::from_secs(1);

/// `inner`'s results, at most one per target per `period`: a result arriving sooner after the
/// last one sent for its target is held until the period has passed; of the results held for a
/// target only the newest (by slot) is kept, and a result sent makes an older one held for its
/// target moot (so a row never goes back to an older result). When `inner` ends, what is held
/// is sent at once.
fn coalesced<S>(inner: S, period: Duration) -> impl Stream<Item = Arc<LiveResult>> + Send
where
    S: Stream<Item = Arc<LiveResult>> + Send + Unpin,
{
    struct State<S> {
        inner: S,
        sent: HashMap<i32, Instant>,
        held: HashMap<i32, Arc<LiveResult>>,
        ended: bool,
    }
    let state = State {
        inner,
        sent: HashMap::new(),
        held: HashMap::new(),
        ended: false,
    };
    futures_util::stream::unfold(state, move |mut st| async move {
        loop {
            // The held result whose period ends first.
            let due = st
                .held
                .keys()
                .map(|t| {
                    (
                        st.sent.get(t).map_or_else(Instant::now, |at| *at + period),
                        *t,
                    )
                })
                .min();
            if st.ended {
                let (_, target) = due?;
                let live = st.held.remove(&target)?;
                return Some((live, st));
            }
            let wait = async {
                match due {
                    Some((at, _)) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                // The timer first: a held result due now goes before a newer one arriving.
                biased;
                () = wait => {
                    let (_, target) = due.expect("waited for a held result");
                    if let Some(live) = st.held.remove(&target) {
                        st.sent.insert(target, Instant::now());
                        return Some((live, st));
                    }
                }
                next = st.inner.next() => match next {
                    None => st.ended = true,
                    Some(live) => {
                        let target = live.result.urltarget_fk;
                        let slot = live.result.scheduled_at;
                        let recent = st.sent.get(&target).is_some_and(|at| at.elapsed() < period);
                        let held_newer = st
                            .held
                            .get(&target)
                            .is_some_and(|h| h.result.scheduled_at > slot);
                        if held_newer {
                            // A late result of an earlier slot: the newer one held stays.
                        } else if recent {
                            st.held.insert(target, live);
                        } else {
                            st.held.remove(&target);
                            st.sent.insert(target, Instant::now());
                            return Some((live, st));
                        }
                    }
                },
            }
        }
    })
}

/// The operations one WebSocket connection may still run at once (its session data):
/// subscriptions, for as long as they last, and queries while they run.
pub struct Slots {
    free: Arc<tokio::sync::Semaphore>,
    max: u32,
}

impl Slots {
    pub fn new(max: u32) -> Self {
        Slots {
            free: Arc::new(tokio::sync::Semaphore::new(max as usize)),
            max,
        }
    }

    /// A slot held as long as the permit lives, or an error saying the limit.
    pub fn take(&self) -> async_graphql::Result<tokio::sync::OwnedSemaphorePermit> {
        self.free.clone().try_acquire_owned().map_err(|_| {
            ApiError::LimitExceeded(format!(
                "this connection already runs {} subscriptions (or queries), the most allowed; \
                 close one (or open another connection)",
                self.max
            ))
            .extend()
        })
    }
}

#[Subscription]
impl SubscriptionRoot {
    /// Each new result as soon as it is committed, optionally only of one target, one
    /// frequency, or the targets of `targetIds` (at most 500: the rows on a screen). With
    /// `targetIds`, a target's results are coalesced to what a person can read: at most one a
    /// second per target, the latest (a result arriving within the second waits for its end and
    /// is replaced by a newer one).
    async fn results(
        &self,
        ctx: &Context<'_>,
        target_id: Option<ID>,
        frequency: Option<i32>,
        target_ids: Option<Vec<ID>>,
    ) -> async_graphql::Result<impl Stream<Item = ProbeResult> + use<>> {
        // Over the WebSocket (the only transport for subscriptions) each counts against its
        // connection until it ends.
        let slot = ctx.data_opt::<Slots>().map(Slots::take).transpose()?;
        let target = target_id.as_ref().map(parse_id).transpose().gql()?;
        let ids: Option<HashSet<i32>> = match target_ids {
            None => None,
            Some(ids) if ids.len() > MAX_LIVE_TARGETS => {
                return Err(ApiError::BadInput(format!(
                    "targetIds lists {} targets; at most {MAX_LIVE_TARGETS}",
                    ids.len()
                ))
                .extend());
            }
            Some(ids) => Some(ids.iter().map(parse_id).collect::<Result<_, _>>().gql()?),
        };
        let coalesce = ids.is_some();
        let frequency = frequency
            .map(validate_frequency)
            .transpose()
            .gql()?
            .map(|f| f.minutes());
        let db = ctx.data::<sea_orm::DatabaseConnection>()?.clone();
        let receiver = ctx.data::<Live>()?.results.subscribe();
        let live = futures_util::stream::unfold(receiver, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(live) => return Some((live, rx)),
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        tracing::warn!(skipped, "A slow subscriber skipped results.");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        let wanted = live.filter(move |live: &Arc<LiveResult>| {
            let wanted = target.is_none_or(|t| t == live.result.urltarget_fk)
                && frequency.is_none_or(|f| f == live.frequency)
                && ids
                    .as_ref()
                    .is_none_or(|ids| ids.contains(&live.result.urltarget_fk));
            std::future::ready(wanted)
        });
        let wanted = if coalesce {
            coalesced(Box::pin(wanted), COALESCE_PERIOD).boxed()
        } else {
            wanted.boxed()
        };
        Ok(wanted.map(move |live: Arc<LiveResult>| {
            let _held = &slot;
            ProbeResult::live(&db, live.result.clone(), live.target.clone())
        }))
    }

    /// Each change of a target's state as soon as it is decided (in the transaction that
    /// stores the result deciding it), optionally only of one target or of the targets a tag
    /// filter selects (`key`, `key:value`, `key:*`).
    async fn state_changes(
        &self,
        ctx: &Context<'_>,
        target_id: Option<ID>,
        tag: Option<String>,
    ) -> async_graphql::Result<impl Stream<Item = StateChange> + use<>> {
        let slot = ctx.data_opt::<Slots>().map(Slots::take).transpose()?;
        let target = target_id.as_ref().map(parse_id).transpose().gql()?;
        let tag = tag
            .as_deref()
            .map(crate::service::targets::parse_tag_filter)
            .transpose()
            .gql()?;
        let db = ctx.data::<sea_orm::DatabaseConnection>()?.clone();
        let receiver = ctx.data::<Live>()?.states.subscribe();
        let live = futures_util::stream::unfold(receiver, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(live) => return Some((live, rx)),
                    Err(broadcast::error::RecvError::Lagged(skipped)) => {
                        tracing::warn!(skipped, "A slow subscriber skipped state changes.");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(live.filter_map(move |live: Arc<LiveState>| {
            let _held = &slot;
            let wanted = target.is_none_or(|t| t == live.change.target)
                && tag.as_ref().is_none_or(|f| f.matches(&live.target.tags.0));
            std::future::ready(wanted.then(|| StateChange {
                change: live.change.clone(),
                target: Target::one(&db, live.target.clone()),
            }))
        }))
    }
}
