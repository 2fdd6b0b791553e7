//! Rollups of the results per target per hour and per UTC day (#16): the counts of each outcome,
//! duration min/sum/max and a duration histogram (a column per bucket, so merging two rollups is
//! adding columns).
//!
//! The ingest worker closes each hour after its end: hours before `rollup_watermark.closed_until`
//! have hourly rollups of every stored row, rows arriving later for them are added by the batch
//! that stores them. A day's rollup is made from its 24 hourly rows once they are all closed
//! ("closing" the day, recorded in `rollup_days`); rows arriving later for a closed day update
//! its daily row too. Rollups outlive the raw results (kept forever) and go with their target.

use sea_orm_migration::prelude::*;

use crate::sql;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The bucket bounds as this migration made them (never edited: a change is a new migration).
const BOUNDS_MS: [i32; 28] = [
    5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 1500, 2000, 2500,
    3000, 4000, 5000, 7500, 10000, 15000, 20000, 30000,
];

fn table(name: &str, unit: &str) -> String {
    let buckets: String = columns()
        .iter()
        .map(|c| format!("    {c} integer NOT NULL DEFAULT 0,\n"))
        .collect();
    format!(
        "CREATE TABLE {name} (
    urltarget_fk integer NOT NULL
        CONSTRAINT {name}_urltarget_fk_fkey REFERENCES urltargets (urltargets_pk) ON DELETE CASCADE,
    -- The start of the {unit} (UTC).
    bucket_at timestamptz NOT NULL,
    up integer NOT NULL DEFAULT 0,
    degraded integer NOT NULL DEFAULT 0,
    down integer NOT NULL DEFAULT 0,
    duration_min integer NOT NULL,
    duration_sum bigint NOT NULL,
    duration_max integer NOT NULL,
{buckets}    CONSTRAINT {name}_pkey PRIMARY KEY (urltarget_fk, bucket_at)
);
"
    )
}

fn columns() -> Vec<String> {
    BOUNDS_MS
        .iter()
        .map(|b| format!("le_{b}"))
        .chain(std::iter::once("le_inf".to_owned()))
        .collect()
}

/// The results stored before this migration, rolled up: hourly for the hours before the current
/// one (closed: the watermark is the current hour), and daily for the days those cover.
fn backfill_sql() -> String {
    let names = columns().join(", ");
    let thresholds: Vec<String> = BOUNDS_MS.iter().map(|b| (b + 1).to_string()).collect();
    let counts: Vec<String> = columns()
        .iter()
        .enumerate()
        .map(|(i, _)| {
            format!(
                "count(*) FILTER (WHERE width_bucket(duration, ARRAY[{}]) = {i})",
                thresholds.join(",")
            )
        })
        .collect();
    let sums: Vec<String> = columns().iter().map(|c| format!("sum({c})")).collect();
    format!(
        "INSERT INTO result_rollups_hourly (urltarget_fk, bucket_at, up, degraded, down, \
             duration_min, duration_sum, duration_max, {names})
SELECT urltarget_fk, date_bin('1 hour', scheduled_at, {EPOCH}),
       count(*) FILTER (WHERE outcome = 'up'), count(*) FILTER (WHERE outcome = 'degraded'),
       count(*) FILTER (WHERE outcome = 'down'), min(duration), sum(duration), max(duration),
       {counts}
  FROM monitor_results WHERE scheduled_at < date_bin('1 hour', now(), {EPOCH}) GROUP BY 1, 2;
INSERT INTO rollup_watermark (closed_until) VALUES (date_bin('1 hour', now(), {EPOCH}));
INSERT INTO rollup_days (day)
SELECT DISTINCT date_bin('1 day', bucket_at, {EPOCH}) FROM result_rollups_hourly
 WHERE date_bin('1 day', bucket_at, {EPOCH}) + interval '1 day' <= date_bin('1 hour', now(), {EPOCH});
INSERT INTO result_rollups_daily (urltarget_fk, bucket_at, up, degraded, down, \
             duration_min, duration_sum, duration_max, {names})
SELECT h.urltarget_fk, d.day, sum(up), sum(degraded), sum(down), min(duration_min),
       sum(duration_sum), max(duration_max), {sums}
  FROM result_rollups_hourly h
  JOIN rollup_days d ON h.bucket_at >= d.day AND h.bucket_at < d.day + interval '1 day'
 GROUP BY 1, 2;
",
        counts = counts.join(",\n       "),
        sums = sums.join(", "),
    )
}

/// UTC midnight, the origin of every hour and day bucket.
const EPOCH: &str = "timestamptz '2000-01-01 00:00:00+00'";

fn up_sql() -> String {
    format!(
        "{}{}
CREATE INDEX result_rollups_hourly_time_idx ON result_rollups_hourly (bucket_at);
-- The days whose daily rollups are made (from their hourly ones): a batch with results of a
-- closed day updates its daily rollup too.
CREATE TABLE rollup_days (
    day timestamptz PRIMARY KEY,
    closed_at timestamptz NOT NULL DEFAULT now()
);
-- Hours before this are closed: their hourly rollups hold every stored row.
CREATE TABLE rollup_watermark (
    only_row boolean PRIMARY KEY DEFAULT true CONSTRAINT rollup_watermark_one_row CHECK (only_row),
    closed_until timestamptz NOT NULL
);
{}",
        table("result_rollups_hourly", "hour"),
        table("result_rollups_daily", "day"),
        backfill_sql(),
    )
}

const DOWN: &str = "
DROP TABLE rollup_watermark;
DROP TABLE rollup_days;
DROP TABLE result_rollups_daily;
DROP TABLE result_rollups_hourly;
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(manager, &up_sql()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        sql::run(manager, DOWN).await
    }
}
