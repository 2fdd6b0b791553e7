//! Results: keyset pages newest first on (slot, id), from the table for one target and from the
//! original design's per-frequency views across targets; statistics computed in SQL.

use chrono::{DateTime, Utc};
use entity::{Frequency, monitor_results};
use sea_orm::{DatabaseConnection, DbBackend, FromQueryResult, Statement, Value};

use crate::error::ApiResult;

/// Where a page starts: strictly older than this (slot, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct After {
    pub scheduled_at: DateTime<Utc>,
    pub id: i64,
}

/// Which results a page covers.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub target: Option<i32>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
}

impl Filter {
    /// A filter whose times PostgreSQL can compare: years 1 to 9999 (it stores 4713 BC to
    /// 294276 AD, and GraphQL's DateTime parses far more); otherwise a user error naming the
    /// argument.
    pub fn new(
        target: Option<i32>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> ApiResult<Filter> {
        use chrono::Datelike;
        for (name, time) in [("since", since), ("until", until)] {
            if let Some(time) = time.filter(|t| !(1..=9999).contains(&t.year())) {
                return Err(crate::error::ApiError::BadInput(format!(
                    "{name} {} is outside the years 1 to 9999",
                    time.to_rfc3339()
                )));
            }
        }
        Ok(Filter {
            target,
            since,
            until,
        })
    }
}

/// Up to `limit + 1` results, newest first, from `relation` (the table or a view).
async fn page(
    db: &DatabaseConnection,
    relation: &str,
    limit: u64,
    after: Option<After>,
    filter: &Filter,
) -> ApiResult<Vec<monitor_results::Model>> {
    // NULL parameters switch their condition off, so the statement's text never varies.
    let sql = format!(
        "SELECT monitor_results_pk, http_status, failure_class, start_time, duration, \
                urltarget_fk, scheduled_at \
         FROM {relation} \
         WHERE ($1::int IS NULL OR urltarget_fk = $1) \
           AND ($2::timestamptz IS NULL OR scheduled_at >= $2) \
           AND ($3::timestamptz IS NULL OR scheduled_at < $3) \
           AND ($4::timestamptz IS NULL OR (scheduled_at, monitor_results_pk) < ($4, $5)) \
         ORDER BY scheduled_at DESC, monitor_results_pk DESC \
         LIMIT $6"
    );
    let values: [Value; 6] = [
        filter.target.into(),
        filter.since.into(),
        filter.until.into(),
        after.map(|a| a.scheduled_at).into(),
        after.map(|a| a.id).into(),
        ((limit + 1) as i64).into(),
    ];
    Ok(
        monitor_results::Model::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .all(db)
        .await?,
    )
}

/// Results of one target.
pub async fn of_target(
    db: &DatabaseConnection,
    limit: u64,
    after: Option<After>,
    filter: &Filter,
) -> ApiResult<Vec<monitor_results::Model>> {
    page(db, "monitor_results", limit, after, filter).await
}

/// Results of every target at `frequency`, from its view (`view_1m` … `view_30m`).
pub async fn of_frequency(
    db: &DatabaseConnection,
    frequency: Frequency,
    limit: u64,
    after: Option<After>,
    filter: &Filter,
) -> ApiResult<Vec<monitor_results::Model>> {
    page(db, frequency.view_name(), limit, after, filter).await
}

/// Availability and response times of one target over a period.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct Stats {
    pub checks: i64,
    pub up: i64,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
}

/// Computed by PostgreSQL: a check is up when its status is in [`entity::UP_STATUSES`].
pub async fn stats(db: &DatabaseConnection, target: i32, filter: &Filter) -> ApiResult<Stats> {
    let stmt = Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "SELECT count(*) AS checks, \
                count(*) FILTER (WHERE http_status BETWEEN {} AND {}) AS up, \
                percentile_cont(0.50) WITHIN GROUP (ORDER BY duration) AS p50, \
                percentile_cont(0.95) WITHIN GROUP (ORDER BY duration) AS p95, \
                percentile_cont(0.99) WITHIN GROUP (ORDER BY duration) AS p99 \
         FROM monitor_results \
         WHERE urltarget_fk = $1 \
           AND ($2::timestamptz IS NULL OR scheduled_at >= $2) \
           AND ($3::timestamptz IS NULL OR scheduled_at < $3)",
            entity::UP_STATUSES.start(),
            entity::UP_STATUSES.end()
        ),
        [target.into(), filter.since.into(), filter.until.into()],
    );
    Ok(Stats::find_by_statement(stmt)
        .one(db)
        .await?
        .unwrap_or(Stats {
            checks: 0,
            up: 0,
            p50: None,
            p95: None,
            p99: None,
        }))
}
