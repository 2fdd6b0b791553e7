//! Long periods from rollups: `Target.stats` over more than [`RAW_SPAN`] (or all history) and
//! `Target.series` with buckets of an hour or more read the hourly and daily rollups the ingest
//! worker keeps (see `entity::rollup`), so their cost grows with the number of hours, not of
//! results.
//!
//! Rollups cover the closed hours (before the ingest worker's watermark, `rollup_watermark`,
//! about ten minutes after each hour's end); later hours are read from the raw results.
//!
//! Stats over a long period [since, until) add up, per target:
//! - the daily rollups of closed days wholly inside the period,
//! - the hourly rollups of the other closed whole hours inside it,
//! - and the raw results of what is left: the partial hour at the period's start, the hours not
//!   closed yet, and the hours a maintenance window of the target touches (its results inside
//!   the window count for nothing, as for short periods) — where raw results are still kept.
//!   Before the retention boundary only rollups are left: the period's first hour counts whole,
//!   and a window there no longer takes its results out.
//!
//! Counts, min, max and the mean are exact; percentiles come from the merged duration histogram
//! (they lie in the same bucket as the exact ones). Phases are not rolled up: long-period stats
//! have none.

use std::collections::HashMap;

use chrono::{DateTime, TimeDelta, Utc};
use entity::rollup::{
    self, BUCKETS, DROPPED_BEFORE_SQL, EPOCH_SQL, Histogram, Rollup, hour_ceil, hour_of,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, QueryResult, Statement};

use super::results::{Stats, id_array, time_array};
use crate::error::ApiResult;

/// Periods up to this long are computed from raw results (exact percentiles, phases); longer
/// ones from rollups.
pub const RAW_SPAN: TimeDelta = TimeDelta::hours(48);

/// Whether stats over [since, until) come from rollups.
pub fn long_period(since: Option<DateTime<Utc>>, until: Option<DateTime<Utc>>) -> bool {
    match since {
        None => true,
        Some(since) => until.unwrap_or_else(Utc::now) - since > RAW_SPAN,
    }
}

/// The sums a statement returns after the target (in this order): up, degraded, down,
/// duration min, sum, max, then the histogram's buckets.
fn rollup_of(row: &QueryResult, first: usize) -> Result<Rollup, sea_orm::DbErr> {
    let get = |i: usize| row.try_get_by_index::<Option<i64>>(first + i);
    let mut histogram = Histogram::default();
    for (i, bucket) in histogram.0.iter_mut().enumerate() {
        *bucket = get(6 + i)?.unwrap_or(0);
    }
    Ok(Rollup {
        up: get(0)?.unwrap_or(0),
        degraded: get(1)?.unwrap_or(0),
        down: get(2)?.unwrap_or(0),
        duration_min: get(3)?.map(|v| v as i32),
        duration_sum: get(4)?.unwrap_or(0),
        duration_max: get(5)?.map(|v| v as i32),
        histogram,
    })
}

/// `sum(x)::bigint` of the rollup columns, in [`rollup_of`]'s order.
fn sum_columns() -> String {
    let mut columns = vec![
        "sum(up)::bigint".to_owned(),
        "sum(degraded)::bigint".to_owned(),
        "sum(down)::bigint".to_owned(),
        "min(duration_min)::bigint".to_owned(),
        "sum(duration_sum)::bigint".to_owned(),
        "max(duration_max)::bigint".to_owned(),
    ];
    columns.extend(
        rollup::column_names()
            .iter()
            .map(|c| format!("sum({c})::bigint")),
    );
    columns.join(", ")
}

/// A raw result as a rollup row of one (alias `r`).
fn raw_as_rollup() -> String {
    let bucket = rollup::bucket_sql("r.duration");
    let mut columns = vec![
        "(r.outcome = 'up')::int AS up".to_owned(),
        "(r.outcome = 'degraded')::int AS degraded".to_owned(),
        "(r.outcome = 'down')::int AS down".to_owned(),
        "r.duration AS duration_min".to_owned(),
        "r.duration::bigint AS duration_sum".to_owned(),
        "r.duration AS duration_max".to_owned(),
    ];
    columns.extend(
        rollup::column_names()
            .iter()
            .enumerate()
            .map(|(i, c)| format!("({bucket} = {i})::int AS {c}")),
    );
    columns.join(", ")
}

fn stored_columns() -> String {
    format!(
        "up, degraded, down, duration_min, duration_sum, duration_max, {}",
        rollup::bucket_columns()
    )
}

/// Stats of `targets` over [since, until) (since `None`: all history; until `None`: now) from
/// rollups and the raw results around them (see the module's text), in one statement.
/// `excluded` are the maintenance windows (target, from, until), as for raw stats.
pub async fn stats_from_rollups(
    db: &DatabaseConnection,
    targets: &[i32],
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    excluded: &[(i32, DateTime<Utc>, DateTime<Utc>)],
) -> ApiResult<HashMap<i32, Stats>> {
    let mut out = HashMap::new();
    for (target, _, r) in sums(db, targets, since, until, excluded, Grouping::Whole).await? {
        if r.checks() == 0 {
            continue;
        }
        out.insert(
            target,
            Stats {
                checks: r.checks(),
                up: r.up + r.degraded,
                degraded: r.degraded,
                p50: r.percentile(0.50),
                p95: r.percentile(0.95),
                p99: r.percentile(0.99),
                phases: Default::default(),
            },
        );
    }
    Ok(out)
}

/// How [`sums`] groups a target's results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grouping {
    /// One sum over the whole period.
    Whole,
    /// One sum per UTC day (the day's start beside it), of the counts only (up, degraded,
    /// down; no durations).
    Daily,
}

/// What `targets`' results over [since, until) add up to, per target (and per UTC day when
/// asked): daily rollups of closed days, hourly rollups of the other closed hours, raw results
/// for the rest, maintenance windows (`excluded`) left out — see the module's text. One
/// statement; each source is read by index ranges per target (a lateral subquery kept from
/// being flattened, so the range is in the index condition: flattened, PostgreSQL read every
/// hourly rollup and raw result of each target and filtered them, 1.1 s for 100 targets over
/// 90 days against 44 ms), and the hourly rollups read are only those no closed day covers.
pub async fn sums(
    db: &DatabaseConnection,
    targets: &[i32],
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
    excluded: &[(i32, DateTime<Utc>, DateTime<Utc>)],
    grouping: Grouping,
) -> ApiResult<Vec<(i32, Option<DateTime<Utc>>, Rollup)>> {
    // Each target once (the statement joins per target: a repeat would count its hours again).
    let mut targets = targets.to_vec();
    targets.sort_unstable();
    targets.dedup();
    // Per day only the counts (what a status page's bars need): summing the 35 columns of
    // 9,000 days × targets took 82 ms against 28 ms for the three.
    let (day, stored, raw, sums) = match grouping {
        Grouping::Whole => (
            "NULL::timestamptz".to_owned(),
            stored_columns(),
            raw_as_rollup(),
            sum_columns(),
        ),
        Grouping::Daily => (
            format!("date_bin('1 day', at, {EPOCH_SQL})"),
            "up, degraded, down".to_owned(),
            "(r.outcome = 'up')::int AS up, (r.outcome = 'degraded')::int AS degraded, \
             (r.outcome = 'down')::int AS down"
                .to_owned(),
            "sum(up)::bigint, sum(degraded)::bigint, sum(down)::bigint".to_owned(),
        ),
    };
    let sql = format!(
        "WITH p AS ( \
            SELECT s, u, r0, \
                   CASE WHEN s < r0 OR date_bin('1 hour', s, {EPOCH_SQL}) = s \
                        THEN date_bin('1 hour', s, {EPOCH_SQL}) \
                        ELSE date_bin('1 hour', s, {EPOCH_SQL}) + interval '1 hour' END AS hs, \
                   least(date_bin('1 hour', u, {EPOCH_SQL}), w0) AS he \
            FROM (SELECT coalesce($2::timestamptz, timestamptz '1970-01-01 00:00:00+00') AS s, \
                         coalesce($3::timestamptz, now()) AS u, \
                         coalesce(({DROPPED_BEFORE_SQL}), '-infinity') AS r0, \
                         coalesce((SELECT closed_until FROM rollup_watermark), '-infinity') AS w0) x), \
         w AS ( \
            SELECT t, range_agg(tstzrange(f, e)) AS exact, \
                   range_agg(tstzrange(least(greatest(date_bin('1 hour', f, {EPOCH_SQL}), p.r0), \
                                             date_bin('1 hour', e - interval '1 microsecond', {EPOCH_SQL}) + interval '1 hour'), \
                                       date_bin('1 hour', e - interval '1 microsecond', {EPOCH_SQL}) + interval '1 hour')) AS hours \
            FROM unnest($4::int[], $5::timestamptz[], $6::timestamptz[]) AS x(t, f, e), p \
            GROUP BY t), \
         tg AS ( \
            SELECT ids.t, \
                   (CASE WHEN p.hs < p.he THEN tstzmultirange(tstzrange(p.hs, p.he)) \
                         ELSE '{{}}'::tstzmultirange END) \
                   - coalesce(w.hours, '{{}}'::tstzmultirange) AS roll, \
                   w.exact \
            FROM unnest($1::int[]) AS ids(t) LEFT JOIN w ON w.t = ids.t, p), \
         closed AS ( \
            SELECT coalesce(range_agg(tstzrange(d.day, d.day + interval '1 day')), '{{}}'::tstzmultirange) AS days \
            FROM rollup_days d, p WHERE d.day >= p.hs AND d.day + interval '1 day' <= p.he), \
         touched AS ( \
            SELECT tg.t, range_agg(tstzrange(date_bin('1 day', lower(h), {EPOCH_SQL}), \
                                             date_bin('1 day', upper(h) - interval '1 microsecond', {EPOCH_SQL}) \
                                                 + interval '1 day')) AS days \
            FROM tg, p, \
                 unnest((CASE WHEN p.hs < p.he THEN tstzmultirange(tstzrange(p.hs, p.he)) \
                              ELSE '{{}}'::tstzmultirange END) - tg.roll) AS h \
            GROUP BY tg.t), \
         covered AS ( \
            SELECT tg.t, closed.days - coalesce(touched.days, '{{}}'::tstzmultirange) AS by_days \
            FROM tg CROSS JOIN closed LEFT JOIN touched ON touched.t = tg.t), \
         hours AS ( \
            SELECT tg.t, tg.roll - coalesce(covered.by_days, '{{}}'::tstzmultirange) AS left_over \
            FROM tg LEFT JOIN covered ON covered.t = tg.t), \
         parts AS ( \
            SELECT r.urltarget_fk AS t, r.bucket_at AS at, {stored} \
              FROM covered CROSS JOIN LATERAL unnest(covered.by_days) AS dr \
              CROSS JOIN LATERAL (SELECT * FROM result_rollups_daily r \
                                   WHERE r.urltarget_fk = covered.t \
                                     AND r.bucket_at >= lower(dr) AND r.bucket_at < upper(dr) \
                                  OFFSET 0) r \
            UNION ALL \
            SELECT h.urltarget_fk, h.bucket_at, {stored} \
              FROM hours CROSS JOIN LATERAL unnest(hours.left_over) AS hr \
              CROSS JOIN LATERAL (SELECT * FROM result_rollups_hourly h \
                                   WHERE h.urltarget_fk = hours.t \
                                     AND h.bucket_at >= lower(hr) AND h.bucket_at < upper(hr) \
                                  OFFSET 0) h \
            UNION ALL \
            SELECT r.urltarget_fk, r.scheduled_at, {raw} \
              FROM tg CROSS JOIN p \
              CROSS JOIN LATERAL unnest(tstzmultirange(tstzrange(p.s, greatest(p.s, p.u))) - tg.roll) AS rr \
              CROSS JOIN LATERAL (SELECT * FROM monitor_results r \
                                   WHERE r.urltarget_fk = tg.t \
                                     AND r.scheduled_at >= lower(rr) AND r.scheduled_at < upper(rr) \
                                  OFFSET 0) r \
             WHERE NOT coalesce(tg.exact @> r.scheduled_at, false)) \
         SELECT t, {day} AS day, {sums} FROM parts GROUP BY 1, 2"
    );
    let stmt = Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        [
            id_array(&targets),
            since.into(),
            until.into(),
            id_array(&excluded.iter().map(|(t, _, _)| *t).collect::<Vec<_>>()),
            time_array(excluded.iter().map(|(_, from, _)| *from)),
            time_array(excluded.iter().map(|(_, _, until)| *until)),
        ],
    );
    let mut out = Vec::new();
    for row in db.query_all_raw(stmt).await? {
        let target: i32 = row.try_get_by_index(0)?;
        let day: Option<DateTime<Utc>> = row.try_get_by_index(1)?;
        let rollup = match grouping {
            Grouping::Whole => rollup_of(&row, 2)?,
            Grouping::Daily => Rollup {
                up: row.try_get_by_index::<Option<i64>>(2)?.unwrap_or(0),
                degraded: row.try_get_by_index::<Option<i64>>(3)?.unwrap_or(0),
                down: row.try_get_by_index::<Option<i64>>(4)?.unwrap_or(0),
                ..Rollup::default()
            },
        };
        out.push((target, day, rollup));
    }
    Ok(out)
}

/// Where a series' points come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Raw,
    Rollups,
}

/// The buckets of a series over [since, until) in at most `buckets` points: raw results when a
/// bucket is shorter than an hour and they are all still kept, otherwise hourly rollups, with
/// buckets of whole hours from the hour holding `since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeriesShape {
    pub since: DateTime<Utc>,
    /// `None`: now (read once for the whole batch).
    pub until: Option<DateTime<Utc>>,
    pub buckets: i64,
}

/// One point of a series: a bucket's start and what its results say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Point {
    pub at: DateTime<Utc>,
    pub checks: i64,
    /// Results whose outcome is down.
    pub failures: i64,
    pub min_ms: Option<i32>,
    pub avg_ms: Option<f64>,
    pub max_ms: Option<i32>,
    pub p95_ms: Option<f64>,
}

/// A target's series.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub points: Vec<Point>,
}

/// The source, first bucket's start and bucket width of a series of `buckets` over
/// [since, until), with raw results kept from `raw_from` on.
pub fn plan(
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    buckets: i64,
    raw_from: Option<DateTime<Utc>>,
) -> (Source, DateTime<Utc>, TimeDelta) {
    let buckets = buckets.max(1);
    let micros = (until - since)
        .num_microseconds()
        .unwrap_or(i64::MAX)
        .max(1);
    let width =
        TimeDelta::microseconds((micros + buckets - 1) / buckets).max(TimeDelta::seconds(1));
    let raw_kept = raw_from.is_none_or(|r| since >= r);
    // Raw results only for short periods (at most RAW_SPAN: a page of series stays bounded).
    if width < TimeDelta::hours(1) && raw_kept && until - since <= RAW_SPAN {
        // Whole seconds, so a bucket's start prints cleanly; never more buckets than asked.
        let secs = (width.num_milliseconds() + 999) / 1000;
        return (Source::Raw, since, TimeDelta::seconds(secs));
    }
    // Whole hours, as many as the period needs per bucket; the buckets end with the hour holding
    // `until`, and start no earlier than the hour holding `since` (a partial first hour that
    // would need one bucket more is left out, rather than doubling every bucket's width).
    let seconds = (until - since).num_seconds().max(1);
    let width = TimeDelta::hours(((seconds + 3600 * buckets - 1) / (3600 * buckets)).max(1));
    let end = hour_ceil(until);
    let origin = hour_of(since).max(end - width * buckets as i32);
    (Source::Rollups, origin, width)
}

/// Series of `targets` over `shape`, in one statement; also the source and bucket width used.
pub async fn series_of(
    db: &DatabaseConnection,
    targets: &[i32],
    shape: &SeriesShape,
) -> ApiResult<(Source, TimeDelta, HashMap<i32, Series>)> {
    let raw_from: Option<DateTime<Utc>> = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            DROPPED_BEFORE_SQL,
        ))
        .await?
        .map(|row| row.try_get_by_index(0))
        .transpose()?;
    let until = shape.until.unwrap_or_else(Utc::now);
    let (source, origin, width) = plan(shape.since, until, shape.buckets, raw_from);
    let values = [
        id_array(targets),
        origin.into(),
        until.into(),
        (width.num_seconds() as f64).into(),
        shape.since.into(),
    ];
    let sql = match source {
        Source::Raw => "SELECT urltarget_fk, date_bin(make_interval(secs => $4), scheduled_at, $2) AS at, \
                count(*), count(*) FILTER (WHERE outcome = 'down'), min(duration), avg(duration)::float8, \
                max(duration), percentile_cont(0.95) WITHIN GROUP (ORDER BY duration) \
             FROM monitor_results \
             WHERE urltarget_fk = ANY($1::int[]) AND scheduled_at >= $5 AND scheduled_at < $3 \
             GROUP BY 1, 2 ORDER BY 1, 2"
            .to_owned(),
        // Closed hours from their rollups, the others from their raw results.
        Source::Rollups => format!(
            "WITH p AS (SELECT coalesce((SELECT closed_until FROM rollup_watermark), \
                                        '-infinity') AS w), \
             parts AS ( \
                SELECT h.urltarget_fk AS t, \
                       date_bin(make_interval(secs => $4), h.bucket_at, $2) AS at, {stored} \
                FROM result_rollups_hourly h, p \
                WHERE h.urltarget_fk = ANY($1::int[]) AND h.bucket_at >= $2 \
                  AND h.bucket_at < least($3, p.w) \
                UNION ALL \
                SELECT r.urltarget_fk, \
                       date_bin(make_interval(secs => $4), r.scheduled_at, $2), {raw} \
                FROM monitor_results r, p \
                WHERE r.urltarget_fk = ANY($1::int[]) AND r.scheduled_at >= greatest($2, p.w) \
                  AND r.scheduled_at < $3 AND $5::timestamptz IS NOT NULL) \
             SELECT t, at, {sums} FROM parts GROUP BY 1, 2 ORDER BY 1, 2",
            stored = stored_columns(),
            raw = raw_as_rollup(),
            sums = sum_columns()
        ),
    };
    let mut out: HashMap<i32, Series> = HashMap::new();
    for row in db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?
    {
        let target: i32 = row.try_get_by_index(0)?;
        let at = row.try_get_by_index(1)?;
        let point = match source {
            Source::Raw => Point {
                at,
                checks: row.try_get_by_index(2)?,
                failures: row.try_get_by_index(3)?,
                min_ms: row.try_get_by_index(4)?,
                avg_ms: row.try_get_by_index(5)?,
                max_ms: row.try_get_by_index(6)?,
                p95_ms: row.try_get_by_index(7)?,
            },
            Source::Rollups => {
                let r = rollup_of(&row, 2)?;
                let checks = r.checks();
                Point {
                    at,
                    checks,
                    failures: r.down,
                    min_ms: r.duration_min,
                    avg_ms: (checks > 0).then(|| r.duration_sum as f64 / checks as f64),
                    max_ms: r.duration_max,
                    p95_ms: r.percentile(0.95),
                }
            }
        };
        out.entry(target).or_default().points.push(point);
    }
    debug_assert!(BUCKETS == rollup::column_names().len());
    Ok((source, width, out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    struct Shape {
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        buckets: i64,
    }

    fn shape(hours: i64, minutes_past: i64, buckets: i64) -> Shape {
        let since =
            Utc.with_ymd_and_hms(2026, 11, 1, 10, 0, 0).unwrap() + TimeDelta::minutes(minutes_past);
        Shape {
            since,
            until: since + TimeDelta::hours(hours),
            buckets,
        }
    }

    fn plan_of(s: &Shape, raw_from: Option<DateTime<Utc>>) -> (Source, DateTime<Utc>, TimeDelta) {
        plan(s.since, s.until, s.buckets, raw_from)
    }

    #[test]
    fn a_series_never_has_more_points_than_asked() {
        for (hours, past, buckets) in [
            (1, 0, 60),
            (24, 30, 24),
            (24 * 90, 17, 100),
            (24, 0, 1),
            (2, 7, 1000),
        ] {
            let s = shape(hours, past, buckets);
            let (_, origin, width) = plan_of(&s, None);
            let points =
                ((s.until - origin).num_seconds() + width.num_seconds() - 1) / width.num_seconds();
            assert!(
                points <= buckets,
                "{hours} h from +{past} min in {buckets}: {points}"
            );
            // At most the partial hour at `since` is left out.
            assert!(origin >= hour_of(s.since) && origin < s.since + TimeDelta::hours(1));
        }
    }

    #[test]
    fn short_buckets_read_raw_results_unless_they_are_gone() {
        let s = shape(24, 0, 96);
        assert_eq!(plan_of(&s, None).0, Source::Raw);
        assert_eq!(plan_of(&s, None).2, TimeDelta::minutes(15));
        assert_eq!(
            plan_of(&s, Some(s.since + TimeDelta::hours(1))).0,
            Source::Rollups
        );
        let long = shape(24 * 90, 0, 90);
        assert_eq!(
            plan_of(&long, None),
            (Source::Rollups, long.since, TimeDelta::hours(24))
        );
        // Not on the hour: still buckets of the width asked (an hour each), not two.
        let sparkline = shape(24, 30, 24);
        let (source, origin, width) = plan_of(&sparkline, None);
        assert_eq!((source, width), (Source::Rollups, TimeDelta::hours(1)));
        assert_eq!(origin, sparkline.since + TimeDelta::minutes(30));
        // A long period of short buckets reads rollups, not raw results.
        assert_eq!(plan_of(&shape(24 * 7, 0, 1000), None).0, Source::Rollups);
    }
}
