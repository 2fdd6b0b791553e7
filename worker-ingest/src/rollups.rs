//! Rollups per target per hour and per UTC day (see `entity::rollup`), kept exactly as right as
//! the stored rows:
//!
//! - every batch adds the rows it stored (only those: a repeat skipped by the unique key adds
//!   nothing) to their hourly rollups, in the statement that inserts them ([`batch_ctes`]), and
//!   to their daily rollups when their day is closed already;
//! - a day is closed ([`close_days`]) once it has ended and an hour has passed: its daily rollups
//!   are made from its hourly ones, in one transaction;
//! - batches hold their days' advisory locks shared and read which days are closed under them;
//!   closing or rebuilding a day holds its lock exclusively. So a batch either ran wholly before
//!   the day was closed (its rows are in the hourly rollups the closing reads) or wholly after
//!   (it sees the day closed and updates the daily rollups too); never half.
//! - `pingpipe-ingest rebuild-rollups` ([`rebuild`]) recomputes a period's rollups from the raw
//!   rows, refusing a period whose raw rows retention has dropped.

use chrono::{DateTime, Duration as Span, DurationRound, TimeDelta, Utc};
use entity::rollup::{self, DAY_LOCK_CLASS};
use sea_orm::sea_query::{ArrayType, Value};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, Statement, TransactionTrait};

/// UTC midnight, the origin of every hour and day bucket (SQL).
pub const EPOCH_SQL: &str = "timestamptz '2000-01-01 00:00:00+00'";

/// How long after its end a day is closed: results for it still arriving by then (a monitor
/// catching up, a backlog) are counted by the batches directly.
pub const CLOSE_AFTER: Span = Span::hours(1);

const ONE_DAY: TimeDelta = TimeDelta::days(1);

/// The UTC day holding `at`, as its number since 1970-01-01 (the second key of its lock).
pub fn day_number(at: DateTime<Utc>) -> i32 {
    at.timestamp().div_euclid(86_400) as i32
}

/// The start of the UTC day holding `at`.
pub fn day_of(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(ONE_DAY)
        .expect("a day is a valid truncation of any stored time")
}

fn upsert_set(table: &str) -> String {
    let mut sets = vec![
        format!("up = {table}.up + EXCLUDED.up"),
        format!("degraded = {table}.degraded + EXCLUDED.degraded"),
        format!("down = {table}.down + EXCLUDED.down"),
        format!("duration_min = least({table}.duration_min, EXCLUDED.duration_min)"),
        format!("duration_sum = {table}.duration_sum + EXCLUDED.duration_sum"),
        format!("duration_max = greatest({table}.duration_max, EXCLUDED.duration_max)"),
    ];
    sets.extend(
        rollup::column_names()
            .iter()
            .map(|c| format!("{c} = {table}.{c} + EXCLUDED.{c}")),
    );
    sets.join(", ")
}

/// `INSERT INTO <table> … SELECT` the rollups of `source` (columns `urltarget_fk`,
/// `scheduled_at`, `outcome`, `duration`) per target and `unit`, restricted by `filter`, adding
/// to what is stored.
fn add_sql(table: &str, unit: &str, source: &str, filter: &str) -> String {
    format!(
        "INSERT INTO {table} AS t (urltarget_fk, bucket_at, up, degraded, down, duration_min, \
             duration_sum, duration_max, {names}) \
         SELECT urltarget_fk, date_bin('1 {unit}', scheduled_at, {EPOCH_SQL}), \
             count(*) FILTER (WHERE outcome = 'up'), count(*) FILTER (WHERE outcome = 'degraded'), \
             count(*) FILTER (WHERE outcome = 'down'), min(duration), sum(duration), \
             max(duration), {counts} \
         FROM {source} WHERE {filter} GROUP BY 1, 2 \
         ON CONFLICT (urltarget_fk, bucket_at) DO UPDATE SET {sets}",
        names = rollup::bucket_columns(),
        counts = rollup::bucket_counts_sql("duration"),
        sets = upsert_set("t"),
    )
}

/// SQL: the number of the UTC day of a time expression (see [`day_number`]).
fn day_number_sql(at: &str) -> String {
    format!("floor(extract(epoch FROM {at}) / 86400)::int")
}

/// The common table expressions a batch's insert adds after its `ins` (the inserted rows,
/// returning `urltarget_fk`, `scheduled_at`, `outcome`, `duration`): their hourly rollups, and
/// the daily rollups of those whose day is among the closed days in parameter `closed_param`
/// (an `int[]` of day numbers).
pub fn batch_ctes(closed_param: usize) -> String {
    format!(
        ", hourly AS ({hourly}), daily AS ({daily})",
        hourly = add_sql("result_rollups_hourly", "hour", "ins", "true"),
        daily = add_sql(
            "result_rollups_daily",
            "day",
            "ins",
            &format!(
                "{} = ANY(${closed_param}::int[])",
                day_number_sql("scheduled_at")
            ),
        ),
    )
}

/// For a batch's transaction: takes the locks of the days of `slots` shared and returns which of
/// those days are closed, as day numbers (read after the locks, so as of the last closing that
/// finished). Days go as numbers, not times: a slot PostgreSQL cannot hold must not fail the
/// batch here (its row is parked by the insert).
pub async fn lock_days(
    txn: &impl ConnectionTrait,
    slots: impl IntoIterator<Item = DateTime<Utc>>,
) -> Result<Vec<i32>, DbErr> {
    let mut days: Vec<i32> = slots.into_iter().map(day_number).collect();
    days.sort_unstable();
    days.dedup();
    if days.is_empty() {
        return Ok(days);
    }
    let numbers = || {
        array(
            ArrayType::Int,
            days.iter().map(|d| Value::Int(Some(*d))).collect(),
        )
    };
    // In ascending order, as closing and rebuilding take them: no deadlock between them.
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock_shared($1, d) FROM unnest($2::int[]) AS d",
        [DAY_LOCK_CLASS.into(), numbers()],
    ))
    .await?;
    txn.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "SELECT {} FROM rollup_days WHERE {} = ANY($1::int[])",
            day_number_sql("day"),
            day_number_sql("day")
        ),
        [numbers()],
    ))
    .await?
    .iter()
    .map(|row| row.try_get_by_index(0))
    .collect()
}

async fn closed_among(
    txn: &impl ConnectionTrait,
    days: &[DateTime<Utc>],
) -> Result<Vec<DateTime<Utc>>, DbErr> {
    txn.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT day FROM rollup_days WHERE day = ANY($1::timestamptz[]) ORDER BY day",
        [times(days)],
    ))
    .await?
    .iter()
    .map(|row| row.try_get_by_index(0))
    .collect()
}

fn array(ty: ArrayType, values: Vec<Value>) -> Value {
    Value::Array(ty, Some(Box::new(values)))
}

/// `days` as a `timestamptz[]` value.
pub fn times(days: &[DateTime<Utc>]) -> Value {
    array(
        ArrayType::ChronoDateTimeUtc,
        days.iter()
            .map(|d| Value::ChronoDateTimeUtc(Some(*d)))
            .collect(),
    )
}

async fn lock_day_exclusive(txn: &impl ConnectionTrait, day: DateTime<Utc>) -> Result<(), DbErr> {
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1, $2)",
        [DAY_LOCK_CLASS.into(), day_number(day).into()],
    ))
    .await?;
    Ok(())
}

/// Replaces the daily rollups of `day` by the sum of its hourly ones.
async fn make_daily(txn: &impl ConnectionTrait, day: DateTime<Utc>) -> Result<u64, DbErr> {
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "DELETE FROM result_rollups_daily WHERE bucket_at = $1",
        [day.into()],
    ))
    .await?;
    let made = txn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "INSERT INTO result_rollups_daily (urltarget_fk, bucket_at, up, degraded, down, \
                     duration_min, duration_sum, duration_max, {names}) \
                 SELECT urltarget_fk, $1, sum(up), sum(degraded), sum(down), min(duration_min), \
                     sum(duration_sum), max(duration_max), {sums} \
                 FROM result_rollups_hourly \
                 WHERE bucket_at >= $1 AND bucket_at < $1 + interval '1 day' \
                 GROUP BY urltarget_fk",
                names = rollup::bucket_columns(),
                sums = rollup::column_names()
                    .iter()
                    .map(|c| format!("sum({c})"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            [day.into()],
        ))
        .await?;
    Ok(made.rows_affected())
}

/// Closes every day that ended at least [`CLOSE_AFTER`] before `now` and is not closed yet,
/// from the first day with hourly rollups after the last closed one. Returns the days closed.
pub async fn close_days(
    db: &DatabaseConnection,
    now: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, DbErr> {
    let start: Option<DateTime<Utc>> = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT coalesce( \
                 (SELECT min(bucket_at) FROM result_rollups_hourly \
                   WHERE bucket_at >= (SELECT max(day) + interval '1 day' FROM rollup_days)), \
                 (SELECT min(bucket_at) FROM result_rollups_hourly \
                   WHERE NOT EXISTS (SELECT 1 FROM rollup_days)))",
        ))
        .await?
        .and_then(|row| row.try_get_by_index(0).ok().flatten());
    let Some(start) = start else {
        return Ok(Vec::new());
    };
    let mut closed = Vec::new();
    let mut day = day_of(start);
    while day + ONE_DAY + CLOSE_AFTER <= now {
        let txn = db.begin().await?;
        lock_day_exclusive(&txn, day).await?;
        let fresh = txn
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO rollup_days (day) VALUES ($1) ON CONFLICT (day) DO NOTHING",
                [day.into()],
            ))
            .await?
            .rows_affected()
            == 1;
        if fresh {
            let rows = make_daily(&txn, day).await?;
            txn.commit().await?;
            tracing::info!(%day, targets = rows, "Closed a day: its daily rollups are made.");
            closed.push(day);
        } else {
            txn.rollback().await?;
        }
        day += ONE_DAY;
    }
    Ok(closed)
}

/// What a rebuild did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rebuilt {
    pub hours: u64,
    pub days: u64,
    pub results: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error(
        "raw results before {dropped_before} were dropped by retention; their rollups are all \
         that is left of them. Rebuild from {dropped_before} or later"
    )]
    Dropped { dropped_before: DateTime<Utc> },
    #[error("the period is empty: --until must be after --since")]
    Empty,
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

/// Recomputes the rollups of [since, until) (widened to whole hours) from the raw rows, in one
/// transaction holding the days' locks: hourly rollups replaced, and the daily rollups of the
/// closed days touched made again from their hourly ones.
pub async fn rebuild(
    db: &DatabaseConnection,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<Rebuilt, RebuildError> {
    let hour = TimeDelta::hours(1);
    let since = since
        .duration_trunc(hour)
        .expect("an hour is a valid truncation");
    let until = match until.duration_trunc(hour) {
        Ok(t) if t == until => t,
        Ok(t) => t + hour,
        Err(_) => until,
    };
    if until <= since {
        return Err(RebuildError::Empty);
    }
    let dropped_before: Option<DateTime<Utc>> = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT dropped_before FROM result_retention",
        ))
        .await?
        .map(|row| row.try_get_by_index(0))
        .transpose()?;
    if let Some(dropped_before) = dropped_before.filter(|d| since < *d) {
        return Err(RebuildError::Dropped { dropped_before });
    }
    let txn = db.begin().await?;
    let mut day = day_of(since);
    let mut days = Vec::new();
    while day < until {
        lock_day_exclusive(&txn, day).await?;
        days.push(day);
        day += ONE_DAY;
    }
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "DELETE FROM result_rollups_hourly WHERE bucket_at >= $1 AND bucket_at < $2",
        [since.into(), until.into()],
    ))
    .await?;
    let source = "(SELECT urltarget_fk, scheduled_at, outcome, duration FROM monitor_results \
                  WHERE scheduled_at >= $1 AND scheduled_at < $2) AS raw";
    let hours = txn
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            add_sql("result_rollups_hourly", "hour", source, "true"),
            [since.into(), until.into()],
        ))
        .await?
        .rows_affected();
    let results: i64 = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT coalesce(sum(up + degraded + down), 0)::bigint FROM result_rollups_hourly \
             WHERE bucket_at >= $1 AND bucket_at < $2",
            [since.into(), until.into()],
        ))
        .await?
        .map(|row| row.try_get_by_index(0))
        .transpose()?
        .unwrap_or(0);
    let closed = closed_among(&txn, &days).await?;
    for day in &closed {
        make_daily(&txn, *day).await?;
    }
    txn.commit().await?;
    Ok(Rebuilt {
        hours,
        days: closed.len() as u64,
        results: results as u64,
    })
}
