//! Live results and state changes: LISTEN on the ingest worker's `pingpipe_results` and
//! `pingpipe_states` channels (PostgreSQL delivers its NOTIFY at commit), load the announced rows
//! with their target, and broadcast them to every subscription. No polling. sqlx's listener reconnects by itself; a slow
//! subscriber that falls behind the broadcast buffer skips what it missed.

use std::sync::Arc;
use std::time::Duration;

use entity::{channels, monitor_results};
use plumbing::Backoff;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::cache::ReadCache;

/// A new result, its target's frequency (minutes) and its target (loaded once for every
/// subscriber: a subscription that selects `target` sends no statement per event).
#[derive(Debug, Clone)]
pub struct LiveResult {
    pub result: monitor_results::Model,
    pub frequency: i32,
    pub target: entity::urltargets::Model,
}

/// A change of a target's state, with its target (loaded once for every subscriber).
#[derive(Debug, Clone)]
pub struct LiveState {
    pub change: entity::state::StateChange,
    pub target: entity::urltargets::Model,
}

/// What the listener broadcasts, to the subscriptions.
#[derive(Clone)]
pub struct Live {
    pub results: broadcast::Sender<Arc<LiveResult>>,
    pub states: broadcast::Sender<Arc<LiveState>>,
}

impl Live {
    /// Channels that keep `capacity` messages for a slow subscriber.
    pub fn new(capacity: usize) -> Live {
        Live {
            results: broadcast::channel(capacity).0,
            states: broadcast::channel(capacity).0,
        }
    }
}

/// The announced changes with their targets (one statement for the whole announcement; a
/// target removed meanwhile is skipped).
async fn load_states(
    db: &DatabaseConnection,
    changes: Vec<entity::state::StateChange>,
) -> Result<Vec<LiveState>, sea_orm::DbErr> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i32> = changes.iter().map(|c| c.target).collect();
    let targets: std::collections::HashMap<i32, entity::urltargets::Model> =
        entity::urltargets::Entity::find()
            .filter(entity::urltargets::Column::UrltargetsPk.is_in(ids))
            .all(db)
            .await?
            .into_iter()
            .map(|t| (t.urltargets_pk, t))
            .collect();
    Ok(changes
        .into_iter()
        .filter_map(|change| {
            let target = targets.get(&change.target)?.clone();
            // Paused meanwhile: people see PAUSED (announced by the pause itself).
            let stale = target.paused && change.to != entity::state::State::Paused;
            (!stale).then_some(LiveState { change, target })
        })
        .collect())
}

async fn load(db: &DatabaseConnection, ids: Vec<i64>) -> Result<Vec<LiveResult>, sea_orm::DbErr> {
    let rows = monitor_results::Entity::find()
        .filter(monitor_results::Column::MonitorResultsPk.is_in(ids))
        .order_by_asc(monitor_results::Column::ScheduledAt)
        .order_by_asc(monitor_results::Column::MonitorResultsPk)
        .all(db)
        .await?;
    let mut target_ids: Vec<i32> = rows.iter().map(|r| r.urltarget_fk).collect();
    target_ids.sort_unstable();
    target_ids.dedup();
    let targets: std::collections::HashMap<i32, entity::urltargets::Model> =
        entity::urltargets::Entity::find()
            .filter(entity::urltargets::Column::UrltargetsPk.is_in(target_ids))
            .all(db)
            .await?
            .into_iter()
            .map(|t| (t.urltargets_pk, t))
            .collect();
    Ok(rows
        .into_iter()
        .filter_map(|result| {
            // A target removed between the two statements: its result is gone too.
            let target = targets.get(&result.urltarget_fk)?.clone();
            Some(LiveResult {
                result,
                frequency: target.monitor_frequency.minutes(),
                target,
            })
        })
        .collect())
}

/// Listens until `stop`, broadcasting every announced result and state change; every
/// announcement (a result, a state change or a mutation) also tells the read cache that its
/// answers are outdated.
pub async fn run(
    database_url: String,
    db: DatabaseConnection,
    live: Live,
    cache: Option<Arc<ReadCache>>,
    pages: Arc<crate::status::PageCache>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_millis(6400));
    while !stop.is_cancelled() {
        let connected = tokio::select! {
            connected = sqlx::postgres::PgListener::connect(&database_url) => connected,
            () = stop.cancelled() => return Ok(()),
        };
        let mut listener = match connected {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(attempt = backoff.attempt() + 1, error = %e, "Cannot LISTEN for new results; retrying.");
                backoff.wait(&stop).await;
                continue;
            }
        };
        if let Err(e) = listener
            .listen_all([channels::RESULTS, channels::CHANGES, channels::STATES])
            .await
        {
            tracing::warn!(attempt = backoff.attempt() + 1, error = %e, "LISTEN failed; retrying.");
            backoff.wait(&stop).await;
            continue;
        }
        backoff.reset();
        if let Some(cache) = &cache {
            cache.set_listening(true);
        }
        pages.set_listening(true);
        loop {
            let note = tokio::select! {
                note = listener.try_recv() => note,
                () = stop.cancelled() => return Ok(()),
            };
            // Ok(None): the connection was lost, and with it what was announced meanwhile
            // (sqlx `PgListener::try_recv`; `recv` would reconnect silently, which the read
            // cache must not miss).
            let note = match note {
                Ok(Some(note)) => note,
                Ok(None) | Err(_) => {
                    tracing::warn!("Lost the LISTEN connection; reconnecting.");
                    break;
                }
            };
            if let Some(cache) = &cache {
                cache.changed();
            }
            // Status pages show states and pages, not each result: kept until one of those
            // changes (or their time-to-live ends).
            if note.channel() != channels::RESULTS {
                pages.changed();
            }
            if note.channel() == channels::STATES {
                if live.states.receiver_count() == 0 {
                    continue;
                }
                let Some(changes) = channels::parse_states(note.payload()) else {
                    tracing::warn!(
                        payload = note.payload(),
                        "Unreadable state changes announced."
                    );
                    continue;
                };
                match load_states(&db, changes).await {
                    Ok(states) => {
                        for state in states {
                            let _ = live.states.send(Arc::new(state));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "Cannot load announced state changes."),
                }
                continue;
            }
            if note.channel() != channels::RESULTS {
                continue;
            }
            let ids = channels::parse_ids(note.payload());
            if ids.is_empty() || live.results.receiver_count() == 0 {
                continue;
            }
            match load(&db, ids).await {
                Ok(results) => {
                    for r in results {
                        let _ = live.results.send(Arc::new(r));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "Cannot load announced results."),
            }
        }
        if let Some(cache) = &cache {
            cache.set_listening(false);
        }
        pages.set_listening(false);
    }
    Ok(())
}
