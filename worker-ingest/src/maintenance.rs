//! The ingest worker's housekeeping, once at start and then every `PINGPIPE_MAINTENANCE_EVERY`:
//! partitions of `monitor_results` made ahead of time, expired ones dropped whole (never a
//! row-by-row `DELETE`), ended hours' and days' rollups closed, and parked records and finished
//! notification deliveries past their own retention removed (in chunks, so no statement holds
//! many row locks for long).
//!
//! Every step is safe to run from several workers at once (partition creation and dropping
//! serialise in PostgreSQL, closing a day holds its lock). A failing round is logged and counted,
//! and tried again at the next one: housekeeping never stops ingestion.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement};
use tokio_util::sync::CancellationToken;

use crate::metric_names as m;
use crate::partitions::Partitions;
use crate::rollups;

/// What maintenance keeps.
#[derive(Debug, Clone)]
pub struct Policy {
    /// How far ahead partitions are made.
    pub ahead: Duration,
    /// Raw results' age at which their partition goes (`None`: kept forever).
    pub results: Option<Duration>,
    pub rejected: Option<Duration>,
    pub deliveries: Option<Duration>,
    pub every: Duration,
}

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    pub partitions_made: usize,
    pub partitions_dropped: Vec<String>,
    pub hours_closed: u64,
    pub days_closed: usize,
    pub rejected_removed: u64,
    pub deliveries_removed: u64,
}

/// Rows removed per statement.
const CHUNK: i64 = 10_000;

fn span(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

/// One round, as of `now`.
pub async fn run_once(
    db: &DatabaseConnection,
    partitions: &Partitions,
    policy: &Policy,
    now: DateTime<Utc>,
) -> Result<Round, DbErr> {
    let mut round = Round::default();
    let step = span(partitions.step());
    let mut slot = now;
    let last = now + span(policy.ahead);
    let mut slots = vec![];
    while slot <= last {
        slots.push(slot);
        slot += step;
    }
    slots.push(last);
    round.partitions_made = partitions.ensure(db, slots).await?;
    // Rollups before retention, and retention never past the closed hours: raw results are
    // dropped only once their hours are rolled up.
    round.hours_closed = rollups::close_hours(db, now).await?;
    metrics::counter!(m::HOURS_CLOSED).increment(round.hours_closed);
    let closed = rollups::close_days(db).await?;
    metrics::counter!(m::DAYS_CLOSED).increment(closed.len() as u64);
    round.days_closed = closed.len();
    if let Some(age) = policy.results {
        let closed_until = rollups::watermark(db).await?;
        let cutoff = closed_until.map_or(now - span(age), |w| w.min(now - span(age)));
        round.partitions_dropped = partitions.drop_before(db, cutoff).await?;
    }
    if let Some(age) = policy.rejected {
        round.rejected_removed = remove_chunks(
            db,
            "rejected_records",
            "DELETE FROM rejected_records WHERE rejected_records_pk IN ( \
                 SELECT rejected_records_pk FROM rejected_records \
                 WHERE received_at < $1 LIMIT $2)",
            now - span(age),
        )
        .await?;
    }
    if let Some(age) = policy.deliveries {
        round.deliveries_removed = remove_chunks(
            db,
            "notification_deliveries",
            "DELETE FROM notification_deliveries WHERE delivery_pk IN ( \
                 SELECT delivery_pk FROM notification_deliveries \
                 WHERE status <> 'pending' AND coalesce(finished_at, created_at) < $1 LIMIT $2)",
            now - span(age),
        )
        .await?;
    }
    Ok(round)
}

async fn remove_chunks(
    db: &DatabaseConnection,
    table: &'static str,
    sql: &str,
    cutoff: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut removed = 0;
    loop {
        let n = db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                sql,
                [cutoff.into(), CHUNK.into()],
            ))
            .await?
            .rows_affected();
        removed += n;
        metrics::counter!(m::ROWS_EXPIRED, "table" => table).increment(n);
        if n < CHUNK as u64 {
            if removed > 0 {
                tracing::info!(table, removed, %cutoff, "Removed rows past their retention.");
            }
            return Ok(removed);
        }
    }
}

/// Runs rounds until `stop`; a failed round is retried at the next one.
pub async fn run(
    db: DatabaseConnection,
    partitions: Partitions,
    policy: Policy,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    loop {
        match run_once(&db, &partitions, &policy, Utc::now()).await {
            Ok(round) => {
                metrics::gauge!(m::MAINTENANCE_LAST_SUCCESS).set(Utc::now().timestamp() as f64);
                tracing::debug!(?round, "Maintenance round done.");
            }
            Err(e) => {
                metrics::counter!(m::MAINTENANCE_FAILURES).increment(1);
                tracing::warn!(error = %e, "Maintenance round failed; trying again at the next one.");
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep(policy.every) => {}
        }
    }
}
