//! `monitor_results`' time partitions as the ingest worker sees them: which slot ranges have a
//! partition (read from `result_partitions`, cached), making the missing ones before a batch
//! needs them, and dropping the expired ones.
//!
//! A batch never waits on a missing partition and none of its rows is parked for one: before its
//! transaction every slot of the batch is looked up in the cache, and a slot no partition covers
//! gets one (`monitor_results_cover`, in a transaction of its own, so the batch's transaction
//! never holds the table-wide lock that creating a partition takes). Should a partition go
//! missing anyway (dropped meanwhile by retention, made by a person, or the cache stale), the
//! insert fails with "no partition of relation" and the batch is tried again after the cache is
//! read anew — see [`is_missing_partition`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, RuntimeErr, Statement, TransactionTrait,
    sqlx,
};

/// A partition's slots: [from, until).
type Range = (DateTime<Utc>, DateTime<Utc>);

/// The partitions known to exist, as [from, until) ranges sorted by start.
#[derive(Debug, Clone)]
pub struct Partitions {
    /// `None` until read (or after [`forget`](Self::forget)).
    known: Arc<Mutex<Option<Vec<Range>>>>,
    step: Duration,
}

/// PostgreSQL's lock timeout for making or dropping a partition: either takes the table's
/// exclusive lock behind any running statement, and every later statement queues behind it;
/// better to give up (and try at the next batch or round) than to stall reads and writes behind
/// a long query.
const LOCK_TIMEOUT: &str = "5s";

impl Default for Partitions {
    /// Daily partitions, the configuration's default.
    fn default() -> Partitions {
        Partitions::new(Duration::from_secs(86_400))
    }
}

impl Partitions {
    /// With `step` the length of partitions to make (at least an hour).
    pub fn new(step: Duration) -> Partitions {
        Partitions {
            known: Arc::default(),
            step,
        }
    }

    pub fn step(&self) -> Duration {
        self.step
    }

    /// Forgets what is cached: the next [`ensure`](Self::ensure) reads the list again.
    pub fn forget(&self) {
        *self.known.lock().expect("partition cache lock poisoned") = None;
    }

    fn covered(&self, at: DateTime<Utc>) -> Option<bool> {
        let known = self.known.lock().expect("partition cache lock poisoned");
        let ranges = known.as_ref()?;
        let i = ranges.partition_point(|(from, _)| *from <= at);
        Some(i > 0 && at < ranges[i - 1].1)
    }

    async fn load(&self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        let ranges = db
            .query_all_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT from_at, until_at FROM result_partitions ORDER BY from_at",
            ))
            .await?
            .iter()
            .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
            .collect::<Result<Vec<_>, DbErr>>()?;
        *self.known.lock().expect("partition cache lock poisoned") = Some(ranges);
        Ok(())
    }

    /// Makes sure a partition covers each of `slots`, making those missing. Returns how many
    /// it made.
    pub async fn ensure(
        &self,
        db: &DatabaseConnection,
        slots: impl IntoIterator<Item = DateTime<Utc>>,
    ) -> Result<usize, DbErr> {
        let mut made = 0;
        for slot in slots {
            if self.covered(slot).is_none() {
                self.load(db).await?;
            }
            if self.covered(slot) == Some(true) {
                continue;
            }
            let name = match cover(db, slot, self.step).await {
                Ok(name) => name,
                // PostgreSQL refused (a slot it cannot hold, a partition made by hand in the
                // way, the table's lock not had in time): the insert decides — stored if a
                // partition holds the row after all, tried again if none, parked after that.
                Err(e) if sqlstate(&e).is_some() => {
                    tracing::warn!(%slot, error = %e, "Could not make a partition for this slot.");
                    continue;
                }
                Err(e) => return Err(e),
            };
            tracing::info!(%slot, partition = name, "Made a partition of monitor_results.");
            metrics::counter!(crate::metric_names::PARTITIONS_CREATED).increment(1);
            made += 1;
            self.load(db).await?;
        }
        Ok(made)
    }

    /// Drops the partitions that end at or before `cutoff` (each whole: nothing of a partition
    /// reaching past it). Returns the names dropped; a partition whose lock was not had in time
    /// is left for the next round (logged).
    pub async fn drop_before(
        &self,
        db: &DatabaseConnection,
        cutoff: DateTime<Utc>,
    ) -> Result<Vec<String>, DbErr> {
        let expired: Vec<String> = db
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT name FROM result_partitions WHERE until_at <= $1 ORDER BY from_at",
                [cutoff.into()],
            ))
            .await?
            .iter()
            .map(|row| row.try_get_by_index(0))
            .collect::<Result<_, _>>()?;
        let mut dropped = Vec::new();
        for name in expired {
            let txn = db.begin().await?;
            txn.execute_unprepared(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                .await?;
            let outcome = txn
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT monitor_results_drop_partition($1)",
                    [name.clone().into()],
                ))
                .await;
            match outcome {
                Ok(row) => {
                    txn.commit().await?;
                    let was_there = row
                        .map(|r| r.try_get_by_index::<bool>(0))
                        .transpose()?
                        .unwrap_or(false);
                    if was_there {
                        tracing::info!(partition = name, %cutoff, "Dropped an expired partition of monitor_results.");
                        metrics::counter!(crate::metric_names::PARTITIONS_DROPPED).increment(1);
                        dropped.push(name);
                    }
                }
                Err(e) if sqlstate(&e).as_deref() == Some("55P03") => {
                    txn.rollback().await?;
                    tracing::warn!(
                        partition = name,
                        "Could not lock monitor_results in time to drop an expired partition; trying at the next round."
                    );
                }
                // Not a reason to keep the other partitions: say it (a person must look) and
                // go on.
                Err(e) if sqlstate(&e).is_some() => {
                    txn.rollback().await?;
                    tracing::error!(partition = name, error = %e, "Could not drop an expired partition; the others go on.");
                }
                Err(e) => return Err(e),
            }
        }
        if !dropped.is_empty() {
            self.forget();
        }
        Ok(dropped)
    }
}

/// The partition covering `at`, made (with ranges of `step`) when there is none — in a
/// transaction of its own with a lock timeout: making a partition takes the table's exclusive
/// lock behind any running statement, and every later one would queue behind it.
pub async fn cover(
    db: &DatabaseConnection,
    at: DateTime<Utc>,
    step: Duration,
) -> Result<String, DbErr> {
    let txn = db.begin().await?;
    txn.execute_unprepared(&format!("SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        .await?;
    let name = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT monitor_results_cover($1, make_interval(secs => $2))",
            [at.into(), (step.as_secs() as f64).into()],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("monitor_results_cover returned nothing".into()))?
        .try_get_by_index(0)?;
    txn.commit().await?;
    Ok(name)
}

/// PostgreSQL's SQLSTATE of a failed statement, if it got that far.
pub fn sqlstate(e: &DbErr) -> Option<String> {
    database_error(e).and_then(|db| db.code().map(|c| c.into_owned()))
}

fn database_error(e: &DbErr) -> Option<&dyn sqlx::error::DatabaseError> {
    match e {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                sqlx::Error::Database(e) => Some(e.as_ref()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether PostgreSQL refused a row because no partition covers its slot: SQLSTATE 23514 like a
/// failed check, but naming no constraint ("no partition of relation … found for row"). Not the
/// row's fault: its partition is made and the batch tried again.
pub fn is_missing_partition(e: &DbErr) -> bool {
    database_error(e)
        .is_some_and(|db| db.code().as_deref() == Some("23514") && db.constraint().is_none())
}
