//! Writing a batch to PostgreSQL: the result rows, the rejected records and the new consumer
//! positions in one transaction, so a position never moves without the rows it covers.
//!
//! Each position update names the position it expects; if another consumer has moved it (the
//! partition was taken away from us), nothing of the batch is written. Rows go in with one
//! `INSERT … SELECT FROM unnest(…)`, and the unique (target, slot) key turns a repeat into a
//! counted conflict instead of a second row (the batch is inserted again from a savepoint with
//! `ON CONFLICT DO NOTHING`). The positions are guarded first, so a consumer that lost a
//! partition stops there, before it writes or decides anything. After the rows, the targets'
//! states are decided from the rows as stored (see the `states` crate), and the partitions due a
//! sweep are watched for targets without results; `pg_notify` announces the new rows and the
//! state changes, which PostgreSQL delivers at commit.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::channels;
use entity::state::Thresholds;
use sea_orm::sea_query::{ArrayType, Value};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, RuntimeErr, SqlErr,
    Statement, TransactionTrait, sqlx,
};
use states::{Silence, Stored};

use crate::partitions::{Partitions, is_missing_partition, sqlstate};
use crate::rollups;

/// One result to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub target_id: i32,
    pub http_status: Option<i32>,
    pub failure_class: Option<String>,
    pub start_time: DateTime<Utc>,
    pub duration_ms: i32,
    pub scheduled_at: DateTime<Utc>,
    /// `up`, `degraded` or `down` (version 1 events: derived from the status).
    pub outcome: &'static str,
    /// The failed assertions as JSON text.
    pub assertion_failures: Option<String>,
    pub timings: entity::Timings,
    pub tls_version: Option<String>,
    pub cert_not_after: Option<DateTime<Utc>>,
    pub cert_issuer: Option<String>,
    pub cert_subject: Option<String>,
    /// A re-probe's first attempt as JSON text.
    pub first_attempt: Option<String>,
}

impl From<&entity::ResultEvent> for Row {
    fn from(event: &entity::ResultEvent) -> Row {
        let failures = (!event.assertion_failures.is_empty()).then(|| {
            serde_json::to_string(&event.assertion_failures)
                .expect("assertion failures are plain strings and numbers")
        });
        Row {
            target_id: event.target_id,
            http_status: event.http_status,
            failure_class: event.failure_class.map(|c| c.as_str().to_owned()),
            start_time: event.start_time,
            duration_ms: event.duration_ms,
            scheduled_at: event.scheduled_at,
            outcome: event.verdict().as_str(),
            assertion_failures: failures,
            timings: event.timings(),
            tls_version: event.tls_version.clone(),
            cert_not_after: event.cert_not_after,
            cert_issuer: event.cert_issuer.clone(),
            cert_subject: event.cert_subject.clone(),
            first_attempt: event.first_attempt.as_ref().map(|f| {
                serde_json::to_string(f).expect("a first attempt is plain strings and numbers")
            }),
        }
    }
}

/// One record to park in `rejected_records`.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub reason: String,
}

/// What one transaction writes.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// Rows with the record (partition, offset, key, payload) each came from, so a row whose
    /// target is gone can be parked as it was received.
    pub rows: Vec<(Row, Reject)>,
    pub rejects: Vec<Reject>,
    /// Per partition: the position the database holds now, and the one to store.
    pub positions: BTreeMap<i32, (i64, i64)>,
    /// Partitions (among `positions`) whose targets to watch for missing results.
    pub sweep: Vec<i32>,
    /// When the watch was asked for: results read by then are in this batch or an earlier one,
    /// so "no result for two periods" is judged as of then (the batch may wait in a queue).
    pub sweep_at: Option<chrono::DateTime<Utc>>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.rows.len() + self.rejects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.rejects.is_empty() && self.positions.is_empty()
    }

    /// Forgets everything read from `partition` (it was taken away from us).
    pub fn drop_partition(&mut self, partition: i32) {
        self.rows.retain(|(_, r)| r.partition != partition);
        self.rejects.retain(|r| r.partition != partition);
        self.positions.remove(&partition);
        self.sweep.retain(|p| *p != partition);
        if self.sweep.is_empty() {
            self.sweep_at = None;
        }
    }
}

/// What a written batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub inserted: u64,
    pub conflicts: u64,
    pub rejected: u64,
    /// Changes of the state people see (UNKNOWN marks included).
    pub state_changes: u64,
    pub incidents_opened: u64,
    pub incidents_resolved: u64,
    /// Incidents found stored already, or not open when resolved (should stay 0).
    pub incidents_repeated: u64,
    /// Batches whose decisions were refused by PostgreSQL and left out (logged as ERROR).
    pub decisions_failed: u64,
    /// Notifications written to the outbox (one per change and channel that hears it).
    pub notifications_queued: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another consumer moved this partition's position: it is no longer ours.
    #[error("partition {0} was taken over by another consumer; its records are not written")]
    PartitionLost(i32),
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

/// How states are decided.
#[derive(Debug, Clone, Copy)]
pub struct StatePolicy {
    /// Off only in the benchmark, to measure what deciding costs.
    pub enabled: bool,
    pub defaults: Thresholds,
    pub silence: Silence,
}

impl Default for StatePolicy {
    /// The configuration's defaults.
    fn default() -> Self {
        StatePolicy {
            enabled: true,
            defaults: Thresholds::default(),
            silence: Silence {
                minute: std::time::Duration::from_secs(60),
                grace: std::time::Duration::from_secs(30),
            },
        }
    }
}

/// The database side of one consumer group on one topic.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    group: String,
    topic: String,
    policy: StatePolicy,
    partitions: Partitions,
    /// Off only in the benchmark, to measure what rollups cost.
    rollups: bool,
}

/// `values` as one array parameter of element type `ty`.
pub(crate) fn array(ty: ArrayType, values: Vec<Value>) -> Value {
    Value::Array(ty, Some(Box::new(values)))
}

impl Store {
    pub fn new(
        db: DatabaseConnection,
        group: String,
        topic: String,
        policy: StatePolicy,
        partitions: Partitions,
    ) -> Store {
        Store {
            db,
            group,
            topic,
            policy,
            partitions,
            rollups: true,
        }
    }

    /// Without rollups (the benchmark's run measuring what they cost).
    pub fn without_rollups(mut self) -> Store {
        self.rollups = false;
        self
    }

    /// The stored position of `partition` (0 when it has none yet, which is recorded).
    pub async fn position(&self, partition: i32) -> Result<i64, DbErr> {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO consumer_positions (group_id, topic, partition, next_offset) \
                 VALUES ($1, $2, $3, 0) \
                 ON CONFLICT (group_id, topic, partition) DO UPDATE SET group_id = EXCLUDED.group_id \
                 RETURNING next_offset",
                [self.group.clone().into(), self.topic.clone().into(), partition.into()],
            ))
            .await?
            .ok_or_else(|| DbErr::RecordNotFound("consumer position".into()))?;
        row.try_get_by_index::<i64>(0)
    }

    /// Writes `batch` in one transaction; nothing of it when any position moved meanwhile. The
    /// partitions its rows need are made first (in transactions of their own); a partition
    /// found missing by the insert anyway is made and the batch tried again.
    pub async fn write(&self, batch: &Batch) -> Result<Written, StoreError> {
        let mut tries = 0;
        loop {
            let slots: BTreeSet<DateTime<Utc>> =
                batch.rows.iter().map(|(r, _)| r.scheduled_at).collect();
            self.partitions.ensure(&self.db, slots).await?;
            // The last try parks a row still without a partition (one PostgreSQL cannot make).
            match self
                .write_once(batch, tries == MISSING_PARTITION_TRIES)
                .await
            {
                Err(StoreError::Db(e))
                    if is_missing_partition(&e) && tries < MISSING_PARTITION_TRIES =>
                {
                    tracing::info!(error = %e, "A partition the batch needs is missing; making it and trying again.");
                    self.partitions.forget();
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    async fn write_once(
        &self,
        batch: &Batch,
        missing_partition_is_poison: bool,
    ) -> Result<Written, StoreError> {
        let txn = self.db.begin().await?;
        let mut written = Written::default();

        // Positions first: a consumer that lost a partition stops here, before it writes or
        // decides anything, and the owner's batches for a partition run one after the other.
        for (partition, (expected, next)) in &batch.positions {
            let moved = txn
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "UPDATE consumer_positions SET next_offset = $1, updated_at = now() \
                     WHERE group_id = $2 AND topic = $3 AND partition = $4 AND next_offset = $5",
                    [
                        (*next).into(),
                        self.group.clone().into(),
                        self.topic.clone().into(),
                        (*partition).into(),
                        (*expected).into(),
                    ],
                ))
                .await?;
            if moved.rows_affected() != 1 {
                txn.rollback().await?;
                return Err(StoreError::PartitionLost(*partition));
            }
        }

        // Targets that exist, locked against removal until we commit. The answer comes back in
        // heap order, not key order (an updated target moves in the heap), hence a set.
        let mut ids: Vec<i32> = batch.rows.iter().map(|(r, _)| r.target_id).collect();
        ids.sort_unstable();
        ids.dedup();
        // With states, the same statement reads what deciding needs (after the lock that keeps
        // a rebuild's work out of this transaction's view until it is whole).
        let ids = array(
            ArrayType::Int,
            ids.into_iter().map(|i| Value::Int(Some(i))).collect(),
        );
        let known: HashMap<i32, states::TargetRow> =
            if self.policy.enabled {
                states::lock_shared(&txn).await?;
                txn.query_all_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    states::TARGETS_SQL,
                    [ids],
                ))
                .await?
                .iter()
                .map(states::TargetRow::from_row)
                .collect::<Result<_, _>>()?
            } else {
                txn.query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT urltargets_pk FROM urltargets WHERE urltargets_pk = ANY($1) FOR KEY SHARE",
                [ids],
            ))
            .await?
            .iter()
            .map(|row| Ok((row.try_get_by_index::<i32>(0)?, states::TargetRow::default())))
            .collect::<Result<_, DbErr>>()?
            };
        let existing: HashSet<i32> = known.keys().copied().collect();
        // Every row inserted below names a target locked above: the results' own target check
        // (a trigger locking the same targets again, migration 19) is skipped for this
        // transaction, named by its id. Nothing else this transaction writes to the results
        // names a target that is not in `existing`.
        txn.execute_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT set_config('pingpipe.targets_locked', pg_current_xact_id()::text, true)",
        ))
        .await?;
        // The hours and days of the rows: their locks against closing or rebuilding them, and
        // which are closed already (rows of a closed hour are added to its rollups here).
        let closed = if self.rollups {
            let slots = || batch.rows.iter().map(|(r, _)| r.scheduled_at);
            Some(rollups::lock_batch(&txn, slots()).await?).filter(|c| c.any(slots()))
        } else {
            None
        };
        let poison = |e: &DbErr| {
            is_data_error(e) || (missing_partition_is_poison && is_missing_partition(e))
        };
        let (rows, orphans): (Entries<'_>, Entries<'_>) = batch
            .rows
            .iter()
            .partition(|(row, _)| existing.contains(&row.target_id));
        let mut rejects: Vec<Reject> = batch.rejects.clone();
        rejects.extend(orphans.into_iter().map(|(row, record)| Reject {
            reason: format!("target {} does not exist (removed?)", row.target_id),
            ..record.clone()
        }));

        // Rows in parts: a part PostgreSQL refuses for its data is split until the records
        // responsible are found; they are parked with PostgreSQL's reason, the rest is stored.
        let mut new_rows: Vec<Stored> = Vec::new();
        let mut parts: Vec<Entries<'_>> = vec![rows];
        while let Some(part) = parts.pop() {
            if part.is_empty() {
                continue;
            }
            match insert_part(&txn, &part, closed.as_ref()).await {
                Ok(stored) => {
                    written.conflicts += (part.len() - stored.len()) as u64;
                    new_rows.extend(stored);
                }
                Err(e) if poison(&e) && part.len() > 1 => {
                    let (left, right) = part.split_at(part.len() / 2);
                    parts.push(right.to_vec());
                    parts.push(left.to_vec());
                }
                Err(e) if poison(&e) => {
                    let (_, record) = part[0];
                    tracing::warn!(
                        partition = record.partition,
                        offset = record.offset,
                        error = %e,
                        "Parking a record PostgreSQL refuses."
                    );
                    rejects.push(Reject {
                        reason: format!("refused by PostgreSQL: {}", database_message(&e)),
                        ..record.clone()
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
        written.inserted = new_rows.len() as u64;
        let new_ids: Vec<i64> = new_rows.iter().map(|r| r.id).collect();

        if !rejects.is_empty() {
            let col = |f: &dyn Fn(&Reject) -> Value| rejects.iter().map(f).collect::<Vec<_>>();
            let reason = |r: &Reject| Value::String(Some(storable(&r.reason)));
            let result = txn
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "INSERT INTO rejected_records (topic, partition, kafka_offset, record_key, payload, reason) \
                     SELECT $1, p, o, NULLIF(k, ''::bytea), NULLIF(v, ''::bytea), r \
                     FROM unnest($2::int[], $3::bigint[], $4::bytea[], $5::bytea[], $6::text[]) AS u(p, o, k, v, r) \
                     ON CONFLICT (topic, partition, kafka_offset) DO NOTHING",
                    [
                        self.topic.clone().into(),
                        array(ArrayType::Int, col(&|r| Value::Int(Some(r.partition)))),
                        array(ArrayType::BigInt, col(&|r| Value::BigInt(Some(r.offset)))),
                        array(ArrayType::Bytes, col(&|r| Value::Bytes(Some(r.key.clone().unwrap_or_default())))),
                        array(ArrayType::Bytes, col(&|r| Value::Bytes(Some(r.payload.clone().unwrap_or_default())))),
                        array(ArrayType::String, col(&reason)),
                    ],
                ))
                .await?;
            written.rejected = result.rows_affected();
        }

        self.decide(&txn, batch, new_rows, &known, &mut written)
            .await?;

        if !new_ids.is_empty() {
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, chunk) FROM unnest($2::text[]) chunk",
                [
                    channels::RESULTS.into(),
                    array(
                        ArrayType::String,
                        channels::result_payloads(&new_ids)
                            .into_iter()
                            .map(|p| Value::String(Some(p)))
                            .collect(),
                    ),
                ],
            ))
            .await?;
        }
        txn.commit().await?;
        Ok(written)
    }
}

impl Store {
    /// Decides the states of the stored rows' targets and sweeps the partitions due, in a
    /// savepoint: decisions PostgreSQL refuses for their data are left out (ERROR: a rebuild
    /// recomputes them) rather than holding back the results; any other error fails the batch
    /// (retried whole).
    async fn decide(
        &self,
        txn: &DatabaseTransaction,
        batch: &Batch,
        rows: Vec<Stored>,
        known: &HashMap<i32, states::TargetRow>,
        written: &mut Written,
    ) -> Result<(), DbErr> {
        if !self.policy.enabled || (rows.is_empty() && batch.sweep.is_empty()) {
            return Ok(());
        }
        let partition_of: HashMap<i32, i32> = batch
            .rows
            .iter()
            .map(|(row, record)| (row.target_id, record.partition))
            .collect();
        let stored: Vec<(Stored, i32)> = rows
            .into_iter()
            .map(|s| {
                let partition = partition_of.get(&s.target_id).copied().unwrap_or_default();
                (s, partition)
            })
            .collect();
        let savepoint = txn.begin().await?;
        let attempt = async {
            let decided = states::decide(&savepoint, &stored, self.policy.defaults, known).await?;
            let swept = states::sweep(
                &savepoint,
                &batch.sweep,
                batch.sweep_at.unwrap_or_else(Utc::now),
                self.policy.silence,
            )
            .await?;
            let changes: Vec<_> = decided.changes.iter().chain(&swept).cloned().collect();
            let queued = states::outbox::enqueue(&savepoint, &changes).await?;
            Ok::<_, DbErr>((decided, swept, queued))
        }
        .await;
        match attempt {
            Ok((decided, swept, queued)) => {
                savepoint.commit().await?;
                written.state_changes += (decided.changes.len() + swept.len()) as u64;
                written.notifications_queued += queued;
                written.incidents_opened += decided.opened;
                written.incidents_resolved += decided.resolved;
                written.incidents_repeated += decided.repeated;
                if decided.repeated > 0 {
                    tracing::warn!(
                        repeated = decided.repeated,
                        "Incidents decided again were found stored already; kept once."
                    );
                }
                Ok(())
            }
            Err(e) if is_data_error(&e) || matches!(e, DbErr::Custom(_) | DbErr::Type(_)) => {
                savepoint.rollback().await?;
                written.decisions_failed += 1;
                tracing::error!(
                    results = stored.len(),
                    error = %e,
                    "PostgreSQL refused the state decisions of a batch; its results are stored \
                     without them. Recompute the states with `pingpipe-ingest rebuild-states`."
                );
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

type Entries<'a> = Vec<&'a (Row, Reject)>;

/// Batches tried again after a partition was found missing; the last try parks a row that still
/// has none.
const MISSING_PARTITION_TRIES: usize = 3;

/// Inserts `part` in a savepoint, returning the new rows as stored; nothing of it when it fails. A
/// repeated (target, slot) is rare (the monitor publishes each slot once), and `ON CONFLICT`
/// costs every row an extra index probe: insert plainly first, and only when the unique key
/// objects, again from the savepoint with `ON CONFLICT` (repeats are then skipped).
async fn insert_part(
    txn: &DatabaseTransaction,
    part: &[&(Row, Reject)],
    closed: Option<&rollups::Closed>,
) -> Result<Vec<Stored>, DbErr> {
    let col = |f: &dyn Fn(&Row) -> Value| part.iter().map(|(r, _)| f(r)).collect::<Vec<_>>();
    // Arrays cannot carry NULLs through the binder: 0, -1 and '' stand for "none" and become
    // NULL again in the statement.
    let int = |f: &dyn Fn(&Row) -> Option<i32>, none: i32| {
        array(
            ArrayType::Int,
            col(&|r| Value::Int(Some(f(r).unwrap_or(none)))),
        )
    };
    let text = |f: &dyn Fn(&Row) -> Option<String>| {
        array(
            ArrayType::String,
            col(&|r| Value::String(Some(f(r).unwrap_or_default()))),
        )
    };
    let time = |f: &dyn Fn(&Row) -> DateTime<Utc>| {
        array(
            ArrayType::ChronoDateTimeUtc,
            col(&|r| Value::ChronoDateTimeUtc(Some(f(r)))),
        )
    };
    // Built for each attempt (moved into its statement; a second attempt is rare).
    let columns = || {
        [
            int(&|r| Some(r.target_id), 0),
            int(&|r| r.http_status, 0),
            text(&|r| r.failure_class.clone()),
            time(&|r| r.start_time),
            int(&|r| Some(r.duration_ms), 0),
            time(&|r| r.scheduled_at),
            text(&|r| Some(r.outcome.to_owned())),
            text(&|r| r.assertion_failures.clone()),
            int(&|r| r.timings.dns_ms, -1),
            int(&|r| r.timings.connect_ms, -1),
            int(&|r| r.timings.tls_ms, -1),
            int(&|r| r.timings.ttfb_ms, -1),
            int(&|r| r.timings.transfer_ms, -1),
            text(&|r| r.tls_version.clone()),
            // As RFC 3339 text: '' for none, like the other texts.
            text(&|r| r.cert_not_after.map(|t| t.to_rfc3339())),
            text(&|r| r.cert_issuer.clone()),
            text(&|r| r.cert_subject.clone()),
            text(&|r| r.first_attempt.clone()),
        ]
    };
    let mut skip_repeats = false;
    loop {
        let attempt = txn.begin().await?;
        match attempt
            .query_all_raw(insert_rows(columns(), skip_repeats, closed))
            .await
        {
            Ok(inserted) => {
                attempt.commit().await?;
                return inserted.iter().map(Stored::from_row).collect();
            }
            Err(e) => {
                attempt.rollback().await?;
                let repeat = matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)));
                if skip_repeats || !repeat {
                    return Err(e);
                }
                skip_repeats = true;
            }
        }
    }
}

/// Whether PostgreSQL refused the statement for the values in it, so the same rows would fail
/// again: SQLSTATE classes 22 (data exception: invalid text, a value out of range) and 23
/// (integrity constraint: check, not null, a target removed meanwhile), and 54000 (a value too
/// large for an index). Not a missing partition (23514 naming no constraint: see
/// [`is_missing_partition`]), which is made and the batch tried again. Not 23505 (unique violation): a repeated (target, slot) is skipped by
/// `ON CONFLICT` before it could get here, so a unique violation is about the table (a key
/// sequence behind its rows, say) and would park every good row. Everything else (a lost
/// connection, a shutdown, a deadlock, a full disk, a missing table or privilege) is not the
/// data's fault either: the batch is retried, never parked. (PostgreSQL manual, Appendix A
/// "PostgreSQL Error Codes".)
pub fn is_data_error(e: &DbErr) -> bool {
    !is_missing_partition(e)
        && sqlstate(e).is_some_and(|code| {
            (code.starts_with("22") || code.starts_with("23") || code == "54000") && code != "23505"
        })
}

/// The database's own message for `e`, without the driver's wrapping.
fn database_message(e: &DbErr) -> String {
    match e {
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
            match inner.as_ref() {
                sqlx::Error::Database(db) => match db.code() {
                    Some(code) => format!("{} (SQLSTATE {code})", db.message()),
                    None => db.message().to_owned(),
                },
                other => other.to_string(),
            }
        }
        other => other.to_string(),
    }
}

/// Longest reason kept in `rejected_records`, in characters.
const REASON_MAX_CHARS: usize = 2000;

/// `text` as PostgreSQL can always store it: a NUL (which a text column refuses) is written
/// as `\0`, and the text is cut at [`REASON_MAX_CHARS`] characters (marked by `...`).
pub fn storable(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(REASON_MAX_CHARS)
        .collect::<String>()
        .replace('\0', "\\0");
    if text.chars().nth(REASON_MAX_CHARS).is_some() {
        out.push_str("...");
    }
    out
}

/// The statement inserting the rows given as column arrays, returning the new rows as the
/// states need them (see [`Stored::from_row`]); with
/// `skip_repeats`, a row whose (target, slot) is stored already is skipped instead of failing.
/// With `closed` (the watermark and the closed days among the rows'), the same statement adds
/// the rows it stored in closed hours to their rollups (see [`rollups::batch_ctes`]).
fn insert_rows(
    columns: [Value; 18],
    skip_repeats: bool,
    closed: Option<&rollups::Closed>,
) -> Statement {
    let on_conflict = if skip_repeats {
        " ON CONFLICT (urltarget_fk, scheduled_at) DO NOTHING"
    } else {
        ""
    };
    let insert = format!(
        "INSERT INTO monitor_results AS r \
                 (urltarget_fk, http_status, failure_class, start_time, duration, scheduled_at, \
                  outcome, assertion_failures, dns_ms, connect_ms, tls_ms, ttfb_ms, transfer_ms, \
                  tls_version, cert_not_after, cert_issuer, cert_subject, first_attempt) \
             SELECT t, NULLIF(s, 0), NULLIF(f, ''), st, d, sa, \
                    o, NULLIF(af, '')::jsonb, NULLIF(dn, -1), NULLIF(cn, -1), NULLIF(tl, -1), \
                    NULLIF(tt, -1), NULLIF(tr, -1), \
                    NULLIF(tv, ''), NULLIF(na, '')::timestamptz, NULLIF(ci, ''), NULLIF(cs, ''), \
                    NULLIF(fa, '')::jsonb \
             FROM unnest($1::int[], $2::int[], $3::text[], $4::timestamptz[], $5::int[], \
                         $6::timestamptz[], $7::text[], $8::text[], $9::int[], $10::int[], \
                         $11::int[], $12::int[], $13::int[], $14::text[], $15::text[], \
                         $16::text[], $17::text[], $18::text[]) \
                 AS v(t, s, f, st, d, sa, o, af, dn, cn, tl, tt, tr, tv, na, ci, cs, fa){on_conflict} \
             RETURNING r.monitor_results_pk, r.urltarget_fk, r.scheduled_at, r.outcome, \
                       {cause} AS cause, {late} AS late, r.duration",
        cause = states::CAUSE_SQL,
        late = states::LATE_SQL,
    );
    match closed {
        None => Statement::from_sql_and_values(DbBackend::Postgres, insert, columns),
        Some(closed) => Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "WITH ins AS ({insert}){ctes} \
                 SELECT monitor_results_pk, urltarget_fk, scheduled_at, outcome, cause, late \
                 FROM ins",
                ctes = rollups::batch_ctes(columns.len() + 1),
            ),
            columns.into_iter().chain([
                Value::Array(
                    ArrayType::Int,
                    Some(Box::new(
                        closed.days.iter().map(|d| Value::Int(Some(*d))).collect(),
                    )),
                ),
                Value::ChronoDateTimeUtc(Some(closed.until)),
            ]),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_storable_whatever_they_quote() {
        assert_eq!(storable("unknown variant `\0`"), "unknown variant `\\0`");
        let long = "é".repeat(REASON_MAX_CHARS + 5);
        let kept = storable(&long);
        assert_eq!(kept.chars().count(), REASON_MAX_CHARS + 3);
        assert!(kept.ends_with("..."));
        assert_eq!(storable("fine"), "fine");
    }
}
