//! Subscriptions: new results as soon as the ingest worker commits them.

use std::sync::Arc;

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
    /// Each new result as soon as it is committed, optionally only of one target or one
    /// frequency. Open to readers, like the queries.
    async fn results(
        &self,
        ctx: &Context<'_>,
        target_id: Option<ID>,
        frequency: Option<i32>,
    ) -> async_graphql::Result<impl Stream<Item = ProbeResult> + use<>> {
        // Over the WebSocket (the only transport for subscriptions) each counts against its
        // connection until it ends.
        let slot = ctx.data_opt::<Slots>().map(Slots::take).transpose()?;
        let target = target_id.as_ref().map(parse_id).transpose().gql()?;
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
        Ok(live.filter_map(move |live: Arc<LiveResult>| {
            let _held = &slot;
            let wanted = target.is_none_or(|t| t == live.result.urltarget_fk)
                && frequency.is_none_or(|f| f == live.frequency);
            std::future::ready(
                wanted.then(|| ProbeResult::live(&db, live.result.clone(), live.target.clone())),
            )
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
