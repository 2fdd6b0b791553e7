//! Writing a batch to PostgreSQL: the result rows, the rejected records and the new consumer
//! positions in one transaction, so a position never moves without the rows it covers.
//!
//! Each position update names the position it expects; if another consumer has moved it (the
//! partition was taken away from us), nothing of the batch is written. Rows go in with one
//! `INSERT … SELECT FROM unnest(…)`, and the unique (target, slot) key turns a repeat into a
//! counted conflict instead of a second row (the batch is inserted again from a savepoint with
//! `ON CONFLICT DO NOTHING`). After the rows, `pg_notify` announces their ids;
//! PostgreSQL delivers it at commit.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{ArrayType, Value};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, SqlErr, Statement, TransactionTrait,
};

/// The channel `pg_notify` announces new result ids on (comma-separated in the payload).
pub const NOTIFY_CHANNEL: &str = "pingpipe_results";
/// PostgreSQL's payload limit is 8000 bytes; stay below it.
const NOTIFY_PAYLOAD_MAX: usize = 7900;

/// One result to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub target_id: i32,
    pub http_status: Option<i32>,
    pub failure_class: Option<String>,
    pub start_time: DateTime<Utc>,
    pub duration_ms: i32,
    pub scheduled_at: DateTime<Utc>,
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
    }
}

/// What a written batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub inserted: u64,
    pub conflicts: u64,
    pub rejected: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another consumer moved this partition's position: it is no longer ours.
    #[error("partition {0} was taken over by another consumer; its records are not written")]
    PartitionLost(i32),
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

/// The database side of one consumer group on one topic.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
    group: String,
    topic: String,
}

fn array(ty: ArrayType, values: Vec<Value>) -> Value {
    Value::Array(ty, Some(Box::new(values)))
}

impl Store {
    pub fn new(db: DatabaseConnection, group: String, topic: String) -> Store {
        Store { db, group, topic }
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

    /// Writes `batch` in one transaction; nothing of it when any position moved meanwhile.
    pub async fn write(&self, batch: &Batch) -> Result<Written, StoreError> {
        let txn = self.db.begin().await?;
        let mut written = Written::default();

        // Targets that exist, locked against removal until we commit.
        let mut ids: Vec<i32> = batch.rows.iter().map(|(r, _)| r.target_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let existing: Vec<i32> = txn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT urltargets_pk FROM urltargets WHERE urltargets_pk = ANY($1) FOR KEY SHARE",
                [array(
                    ArrayType::Int,
                    ids.into_iter().map(|i| Value::Int(Some(i))).collect(),
                )],
            ))
            .await?
            .iter()
            .map(|row| row.try_get_by_index::<i32>(0))
            .collect::<Result<_, _>>()?;
        type Entries<'a> = Vec<&'a (Row, Reject)>;
        let (rows, orphans): (Entries<'_>, Entries<'_>) = batch
            .rows
            .iter()
            .partition(|(row, _)| existing.binary_search(&row.target_id).is_ok());
        let mut rejects: Vec<Reject> = batch.rejects.clone();
        rejects.extend(orphans.into_iter().map(|(row, record)| Reject {
            reason: format!("target {} does not exist (removed?)", row.target_id),
            ..record.clone()
        }));

        let mut new_ids: Vec<i64> = Vec::new();
        if !rows.is_empty() {
            let col =
                |f: &dyn Fn(&Row) -> Value| rows.iter().map(|(r, _)| f(r)).collect::<Vec<_>>();
            let columns = [
                array(ArrayType::Int, col(&|r| Value::Int(Some(r.target_id)))),
                // Arrays cannot carry NULLs through the binder: 0 and '' stand for "none" and
                // become NULL again in the statement.
                array(
                    ArrayType::Int,
                    col(&|r| Value::Int(Some(r.http_status.unwrap_or(0)))),
                ),
                array(
                    ArrayType::String,
                    col(&|r| Value::String(Some(r.failure_class.clone().unwrap_or_default()))),
                ),
                array(
                    ArrayType::ChronoDateTimeUtc,
                    col(&|r| Value::ChronoDateTimeUtc(Some(r.start_time))),
                ),
                array(ArrayType::Int, col(&|r| Value::Int(Some(r.duration_ms)))),
                array(
                    ArrayType::ChronoDateTimeUtc,
                    col(&|r| Value::ChronoDateTimeUtc(Some(r.scheduled_at))),
                ),
            ];
            // A repeated (target, slot) is rare (the monitor publishes each slot once), and
            // `ON CONFLICT` costs every row an extra index probe: insert plainly first, and only
            // when the unique key objects, again from the savepoint with `ON CONFLICT`.
            let attempt = txn.begin().await?;
            let inserted = match attempt.query_all_raw(insert_rows(&columns, false)).await {
                Ok(inserted) => {
                    attempt.commit().await?;
                    inserted
                }
                Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                    attempt.rollback().await?;
                    txn.query_all_raw(insert_rows(&columns, true)).await?
                }
                Err(e) => return Err(e.into()),
            };
            for row in &inserted {
                new_ids.push(row.try_get_by_index::<i64>(0)?);
            }
            written.inserted = new_ids.len() as u64;
            written.conflicts = rows.len() as u64 - written.inserted;
        }

        if !rejects.is_empty() {
            let col = |f: &dyn Fn(&Reject) -> Value| rejects.iter().map(f).collect::<Vec<_>>();
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
                        array(ArrayType::String, col(&|r| Value::String(Some(r.reason.clone())))),
                    ],
                ))
                .await?;
            written.rejected = result.rows_affected();
        }

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

        if !new_ids.is_empty() {
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_notify($1, chunk) FROM unnest($2::text[]) chunk",
                [
                    NOTIFY_CHANNEL.into(),
                    array(
                        ArrayType::String,
                        notify_payloads(&new_ids)
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

/// The statement inserting the rows given as six column arrays, returning the new keys; with
/// `skip_repeats`, a row whose (target, slot) is stored already is skipped instead of failing.
fn insert_rows(columns: &[Value; 6], skip_repeats: bool) -> Statement {
    let on_conflict = if skip_repeats {
        " ON CONFLICT (urltarget_fk, scheduled_at) DO NOTHING"
    } else {
        ""
    };
    Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "INSERT INTO monitor_results \
                 (urltarget_fk, http_status, failure_class, start_time, duration, scheduled_at) \
             SELECT t, NULLIF(s, 0), NULLIF(f, ''), st, d, sa \
             FROM unnest($1::int[], $2::int[], $3::text[], $4::timestamptz[], $5::int[], $6::timestamptz[]) \
                 AS v(t, s, f, st, d, sa){on_conflict} \
             RETURNING monitor_results_pk"
        ),
        columns.iter().cloned(),
    )
}

/// The ids as comma-separated payloads, each within PostgreSQL's NOTIFY limit.
pub fn notify_payloads(ids: &[i64]) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut current = String::new();
    for id in ids {
        let id = id.to_string();
        if !current.is_empty() && current.len() + 1 + id.len() > NOTIFY_PAYLOAD_MAX {
            payloads.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(',');
        }
        current.push_str(&id);
    }
    if !current.is_empty() {
        payloads.push(current);
    }
    payloads
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_payloads_stay_under_the_limit_and_keep_every_id() {
        let ids: Vec<i64> = (1_000_000_000..1_000_005_000).collect();
        let payloads = notify_payloads(&ids);
        assert!(payloads.len() > 1);
        assert!(payloads.iter().all(|p| p.len() <= NOTIFY_PAYLOAD_MAX));
        let back: Vec<i64> = payloads
            .iter()
            .flat_map(|p| p.split(',').map(|s| s.parse::<i64>().unwrap()))
            .collect();
        assert_eq!(back, ids);
        assert!(notify_payloads(&[]).is_empty());
    }
}
