//! Results: keyset pages newest first on (slot, id), from the table for one target and from the
//! original design's per-frequency views across targets; statistics computed in SQL.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{Frequency, monitor_results};
use sea_orm::sea_query::ArrayType;
use sea_orm::{DatabaseConnection, DbBackend, FromQueryResult, Statement, Value};

use crate::error::ApiResult;

/// Where a page starts: strictly older than this (slot, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct After {
    pub scheduled_at: DateTime<Utc>,
    pub id: i64,
}

/// Which results a page covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
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

/// The columns of a result, in the model's order.
const COLUMNS: &str = "monitor_results_pk, http_status, failure_class, start_time, duration, \
                       urltarget_fk, scheduled_at, outcome, assertion_failures, dns_ms, \
                       connect_ms, tls_ms, ttfb_ms, transfer_ms, tls_version, cert_not_after, \
                       cert_issuer, cert_subject, first_attempt";

/// The conditions of a page on `$2` (since), `$3` (until), `$4`/`$5` (cursor); NULL parameters
/// switch their condition off, so the statement's text never varies.
const PAGE_CONDITIONS: &str = "($2::timestamptz IS NULL OR scheduled_at >= $2) \
       AND ($3::timestamptz IS NULL OR scheduled_at < $3) \
       AND ($4::timestamptz IS NULL OR (scheduled_at, monitor_results_pk) < ($4, $5)) \
     ORDER BY scheduled_at DESC, monitor_results_pk DESC \
     LIMIT $6";

/// The parameters of a page; `$1` is the target(s).
fn page_values(first: Value, limit: u64, after: Option<After>, filter: &Filter) -> [Value; 6] {
    [
        first,
        filter.since.into(),
        filter.until.into(),
        after.map(|a| a.scheduled_at).into(),
        after.map(|a| a.id).into(),
        ((limit + 1) as i64).into(),
    ]
}

/// Times as one `timestamptz[]` parameter.
pub(crate) fn time_array(times: impl Iterator<Item = DateTime<Utc>>) -> Value {
    Value::Array(
        ArrayType::ChronoDateTimeUtc,
        Some(Box::new(
            times.map(|t| Value::ChronoDateTimeUtc(Some(t))).collect(),
        )),
    )
}

/// A list of ids as one `int[]` parameter (as `live.rs` passes result ids).
pub(crate) fn id_array(ids: &[i32]) -> Value {
    let ids = ids.iter().map(|id| Value::Int(Some(*id))).collect();
    Value::Array(ArrayType::Int, Some(Box::new(ids)))
}

/// The results a statement selects (its columns: [`COLUMNS`]).
async fn rows<I>(
    db: &DatabaseConnection,
    sql: String,
    values: I,
) -> ApiResult<Vec<monitor_results::Model>>
where
    I: IntoIterator<Item = Value>,
{
    let statement = Statement::from_sql_and_values(DbBackend::Postgres, sql, values);
    Ok(monitor_results::Model::find_by_statement(statement)
        .all(db)
        .await?)
}

/// Up to `limit + 1` results of each of `targets`, newest first, in one statement (a lateral
/// join walks each target's (urltarget_fk, scheduled_at) index), grouped by target.
pub async fn pages_of(
    db: &DatabaseConnection,
    targets: &[i32],
    limit: u64,
    after: Option<After>,
    filter: &Filter,
) -> ApiResult<Vec<monitor_results::Model>> {
    let sql = format!(
        "SELECT r.* FROM unnest($1::int[]) AS t(id) CROSS JOIN LATERAL ( \
           SELECT {COLUMNS} FROM monitor_results \
           WHERE urltarget_fk = t.id AND {PAGE_CONDITIONS}) AS r \
         ORDER BY r.urltarget_fk, r.scheduled_at DESC, r.monitor_results_pk DESC"
    );
    let values = page_values(id_array(targets), limit, after, filter);
    rows(db, sql, values).await
}

/// The most recent result (by slot) of each of `targets` that has one, in one statement.
/// By slot alone (a target has one result per slot): PostgreSQL then reads the partitions
/// newest first and stops at the first that has one (an ordered append), instead of opening
/// every partition's index to merge them.
pub async fn latest_of(
    db: &DatabaseConnection,
    targets: &[i32],
) -> ApiResult<Vec<monitor_results::Model>> {
    let sql = format!(
        "SELECT r.* FROM unnest($1::int[]) AS t(id) CROSS JOIN LATERAL ( \
           SELECT {COLUMNS} FROM monitor_results WHERE urltarget_fk = t.id \
           ORDER BY scheduled_at DESC LIMIT 1) AS r"
    );
    rows(db, sql, [id_array(targets)]).await
}

/// Up to `limit + 1` results of every target at `frequency`, newest first, from its view
/// (`view_1m` … `view_30m`), optionally of one target.
pub async fn of_frequency(
    db: &DatabaseConnection,
    frequency: Frequency,
    limit: u64,
    after: Option<After>,
    filter: &Filter,
) -> ApiResult<Vec<monitor_results::Model>> {
    let sql = format!(
        "SELECT {COLUMNS} FROM {} \
         WHERE ($1::int IS NULL OR urltarget_fk = $1) AND {PAGE_CONDITIONS}",
        frequency.view_name()
    );
    let values = page_values(filter.target.into(), limit, after, filter);
    rows(db, sql, values).await
}

/// Availability and response times of one target over a period.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub checks: i64,
    /// Outcome up or degraded.
    pub up: i64,
    pub degraded: i64,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    /// (p50, p95) of each phase over the results that reached it, in the order of
    /// [`PHASES`].
    pub phases: [(Option<f64>, Option<f64>); 5],
}

/// The phase columns, in the order the API shows them.
pub const PHASES: [&str; 5] = ["dns_ms", "connect_ms", "tls_ms", "ttfb_ms", "transfer_ms"];

#[derive(FromQueryResult)]
struct StatsRow {
    target: i32,
    checks: i64,
    up: i64,
    degraded: i64,
    p50: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
    dns_ms_p50: Option<f64>,
    dns_ms_p95: Option<f64>,
    connect_ms_p50: Option<f64>,
    connect_ms_p95: Option<f64>,
    tls_ms_p50: Option<f64>,
    tls_ms_p95: Option<f64>,
    ttfb_ms_p50: Option<f64>,
    ttfb_ms_p95: Option<f64>,
    transfer_ms_p50: Option<f64>,
    transfer_ms_p95: Option<f64>,
}

/// Computed by PostgreSQL, for each of `targets` with results in the period (one statement): a
/// check is up when its stored outcome is up or degraded. A phase's percentiles are over the
/// results that reached it (`percentile_cont` skips NULLs), NULL when none did. Results in
/// `excluded` (target, from, until: maintenance windows) count for nothing.
pub async fn stats_of(
    db: &DatabaseConnection,
    targets: &[i32],
    filter: &Filter,
    excluded: &[(i32, DateTime<Utc>, DateTime<Utc>)],
) -> ApiResult<HashMap<i32, Stats>> {
    let phases: String = PHASES
        .iter()
        .map(|p| {
            format!(
                ", percentile_cont(0.50) WITHIN GROUP (ORDER BY {p}) AS {p}_p50, \
                   percentile_cont(0.95) WITHIN GROUP (ORDER BY {p}) AS {p}_p95"
            )
        })
        .collect();
    let stmt = Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!(
            "WITH w AS ( \
                SELECT t, range_agg(tstzrange(s, e)) AS m \
                FROM unnest($4::int[], $5::timestamptz[], $6::timestamptz[]) AS u(t, s, e) \
                GROUP BY t) \
             SELECT urltarget_fk AS target, count(*) AS checks, \
                count(*) FILTER (WHERE outcome IN ('up', 'degraded')) AS up, \
                count(*) FILTER (WHERE outcome = 'degraded') AS degraded, \
                percentile_cont(0.50) WITHIN GROUP (ORDER BY duration) AS p50, \
                percentile_cont(0.95) WITHIN GROUP (ORDER BY duration) AS p95, \
                percentile_cont(0.99) WITHIN GROUP (ORDER BY duration) AS p99{phases} \
         FROM monitor_results LEFT JOIN w ON w.t = urltarget_fk \
         WHERE urltarget_fk = ANY($1::int[]) \
           AND ($2::timestamptz IS NULL OR scheduled_at >= $2) \
           AND ($3::timestamptz IS NULL OR scheduled_at < $3) \
           AND NOT coalesce(w.m @> scheduled_at, false) \
         GROUP BY urltarget_fk"
        ),
        [
            id_array(targets),
            filter.since.into(),
            filter.until.into(),
            id_array(&excluded.iter().map(|(t, _, _)| *t).collect::<Vec<_>>()),
            time_array(excluded.iter().map(|(_, from, _)| *from)),
            time_array(excluded.iter().map(|(_, _, until)| *until)),
        ],
    );
    Ok(StatsRow::find_by_statement(stmt)
        .all(db)
        .await?
        .into_iter()
        .map(|r| {
            let stats = Stats {
                checks: r.checks,
                up: r.up,
                degraded: r.degraded,
                p50: r.p50,
                p95: r.p95,
                p99: r.p99,
                phases: [
                    (r.dns_ms_p50, r.dns_ms_p95),
                    (r.connect_ms_p50, r.connect_ms_p95),
                    (r.tls_ms_p50, r.tls_ms_p95),
                    (r.ttfb_ms_p50, r.ttfb_ms_p95),
                    (r.transfer_ms_p50, r.transfer_ms_p95),
                ],
            };
            (r.target, stats)
        })
        .collect())
}
