//! Subscriptions: new results as soon as the ingest worker commits them.

use std::sync::Arc;

use async_graphql::{Context, ID, Subscription};
use futures_util::{Stream, StreamExt};
use tokio::sync::broadcast;

use super::types::{ProbeResult, parse_id};
use crate::error::IntoGql;
use crate::live::LiveResult;
use crate::service::targets::validate_frequency;

pub struct SubscriptionRoot;

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
        let target = target_id.as_ref().map(parse_id).transpose().gql()?;
        let frequency = frequency
            .map(validate_frequency)
            .transpose()
            .gql()?
            .map(|f| f.minutes());
        let receiver = ctx
            .data::<broadcast::Sender<Arc<LiveResult>>>()?
            .subscribe();
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
            let wanted = target.is_none_or(|t| t == live.result.urltarget_fk)
                && frequency.is_none_or(|f| f == live.frequency);
            std::future::ready(wanted.then(|| ProbeResult(live.result.clone())))
        }))
    }
}
