//! Rollups: per target, per hour and per UTC day, the counts of each outcome and the durations
//! (min, sum, max and a fixed histogram), kept in `result_rollups_hourly` and
//! `result_rollups_daily`.
//!
//! The histogram is the percentile sketch: a count per duration bucket, so two rollups merge by
//! adding their counts, an hour's or a day's or ninety days' exactly. A percentile read from it
//! is interpolated inside the bucket holding it ([`Histogram::percentile`]): it lies in the same
//! bucket as the exact percentile of the raw durations, so its error is at most the bucket's
//! width (≤ 5 ms up to 50 ms, then at most half the bucket's lower bound).

use chrono::{DateTime, TimeDelta, Utc};

/// UTC midnight, the origin of every hour and day bucket (SQL).
pub const EPOCH_SQL: &str = "timestamptz '2000-01-01 00:00:00+00'";

/// Where raw results start: every slot before was dropped by retention (no row: none was).
pub const DROPPED_BEFORE_SQL: &str = "SELECT dropped_before FROM result_retention";

/// The UTC day holding `at`, as its number since 1970-01-01 (the second key of its lock).
pub fn day_number(at: DateTime<Utc>) -> i32 {
    at.timestamp().div_euclid(86_400) as i32
}

/// The hour holding `at`, as its number since 1970-01-01 00:00 UTC.
pub fn hour_number(at: DateTime<Utc>) -> i32 {
    at.timestamp().div_euclid(3_600) as i32
}

/// The start of the UTC day holding `at` (from its number, valid for any time chrono holds).
pub fn day_of(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp().div_euclid(86_400) * 86_400, 0).unwrap_or(at)
}

/// The start of the hour holding `at`.
pub fn hour_of(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(at.timestamp().div_euclid(3_600) * 3_600, 0).unwrap_or(at)
}

/// The end of the hour holding `at` (`at` itself when on the hour).
pub fn hour_ceil(at: DateTime<Utc>) -> DateTime<Utc> {
    match hour_of(at) {
        floor if floor == at => at,
        floor => floor + TimeDelta::hours(1),
    }
}

/// The buckets' upper bounds in milliseconds (a duration `d` falls in the first bucket whose
/// bound is ≥ `d`; above the last, in the overflow bucket). The columns are `le_<bound>` and
/// `le_inf`, in this order.
pub const BOUNDS_MS: [i32; 28] = [
    5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 250, 300, 400, 500, 750, 1000, 1500, 2000, 2500,
    3000, 4000, 5000, 7500, 10000, 15000, 20000, 30000,
];

/// Buckets, the overflow included.
pub const BUCKETS: usize = BOUNDS_MS.len() + 1;

/// The first keys of the rollups' advisory locks (PostgreSQL's two-key advisory locks; the
/// second is the hour's or the day's number since 1970-01-01): a batch takes those of its rows'
/// hours and days shared, closing or rebuilding an hour or a day takes its lock exclusively.
pub const HOUR_LOCK_CLASS: i32 = 0x726f_6c68; // "rolh"
pub const DAY_LOCK_CLASS: i32 = 0x726f_6c6c; // "roll"

/// The histogram columns, comma-separated, in bucket order.
pub fn bucket_columns() -> String {
    column_names().join(", ")
}

/// The histogram columns' names, in bucket order.
pub fn column_names() -> Vec<String> {
    BOUNDS_MS
        .iter()
        .map(|b| format!("le_{b}"))
        .chain(std::iter::once("le_inf".to_owned()))
        .collect()
}

/// The bucket of a duration.
pub fn bucket_of(duration_ms: i32) -> usize {
    BOUNDS_MS.partition_point(|bound| *bound < duration_ms)
}

/// SQL: the bucket number (0-based) of the duration expression `duration`.
pub fn bucket_sql(duration: &str) -> String {
    // width_bucket counts the thresholds ≤ the operand; bound + 1 makes "≤ bound" of integers.
    let thresholds: Vec<String> = BOUNDS_MS.iter().map(|b| (b + 1).to_string()).collect();
    format!("width_bucket({duration}, ARRAY[{}])", thresholds.join(","))
}

/// SQL: for each bucket, `count(*) FILTER (WHERE <bucket of duration> = i) AS le_…`, over rows
/// that have `duration`, comma-separated.
pub fn bucket_counts_sql(duration: &str) -> String {
    let bucket = bucket_sql(duration);
    column_names()
        .iter()
        .enumerate()
        .map(|(i, name)| format!("count(*) FILTER (WHERE {bucket} = {i})::int AS {name}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// SQL: `sum(le_…)::bigint AS le_…` for each bucket, comma-separated (merging rollups).
pub fn bucket_sums_sql() -> String {
    column_names()
        .iter()
        .map(|name| format!("sum({name})::bigint AS {name}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Counts per bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Histogram(pub [i64; BUCKETS]);

impl Histogram {
    pub fn of(durations_ms: impl IntoIterator<Item = i32>) -> Histogram {
        let mut h = Histogram::default();
        for d in durations_ms {
            h.0[bucket_of(d)] += 1;
        }
        h
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a += b;
        }
    }

    pub fn count(&self) -> i64 {
        self.0.iter().sum()
    }

    /// The `q` quantile (0 < q ≤ 1), interpolated linearly inside its bucket, clamped to
    /// [`min`, `max`] (the durations' known extremes); `None` when empty. The overflow bucket
    /// reaches to `max`.
    pub fn percentile(&self, q: f64, min: i32, max: i32) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        // The rank of the wanted duration among the sorted durations (1-based, like
        // percentile_disc), then its place inside its bucket.
        let rank = (q * total as f64).ceil().max(1.0);
        let mut below = 0i64;
        for (i, n) in self.0.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            if (below + n) as f64 >= rank {
                let lower = if i == 0 { 0.0 } else { BOUNDS_MS[i - 1] as f64 };
                let upper = BOUNDS_MS.get(i).map_or(max as f64, |b| *b as f64);
                let within = (rank - below as f64) / *n as f64;
                let value = lower + (upper - lower) * within;
                return Some(value.clamp(min as f64, max as f64));
            }
            below += n;
        }
        Some(max as f64)
    }
}

/// The rollup of some results: what the tables hold per (target, hour or day).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rollup {
    pub up: i64,
    pub degraded: i64,
    pub down: i64,
    pub duration_min: Option<i32>,
    pub duration_sum: i64,
    pub duration_max: Option<i32>,
    pub histogram: Histogram,
}

impl Rollup {
    pub fn checks(&self) -> i64 {
        self.up + self.degraded + self.down
    }

    pub fn merge(&mut self, other: &Rollup) {
        self.up += other.up;
        self.degraded += other.degraded;
        self.down += other.down;
        self.duration_min = match (self.duration_min, other.duration_min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.duration_max = self.duration_max.max(other.duration_max);
        self.duration_sum += other.duration_sum;
        self.histogram.merge(&other.histogram);
    }

    pub fn percentile(&self, q: f64) -> Option<f64> {
        self.histogram
            .percentile(q, self.duration_min?, self.duration_max?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_fall_in_the_first_bucket_whose_bound_holds_them() {
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(5), 0);
        assert_eq!(bucket_of(6), 1);
        assert_eq!(bucket_of(30000), BUCKETS - 2);
        assert_eq!(bucket_of(30001), BUCKETS - 1);
        assert_eq!(bucket_of(i32::MAX), BUCKETS - 1);
        assert_eq!(column_names().len(), BUCKETS);
        assert!(BOUNDS_MS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_percentile_lies_in_the_bucket_of_the_exact_one() {
        // Spread-out durations: the exact p95 (nearest rank) and the sketch's share a bucket.
        let durations: Vec<i32> = (0..1000).map(|i| (i * i) % 7919 + 3).collect();
        let mut sorted = durations.clone();
        sorted.sort_unstable();
        let h = Histogram::of(durations.iter().copied());
        for q in [0.5, 0.95, 0.99] {
            let exact = sorted[((q * 1000.0) as usize).saturating_sub(1)];
            let sketch = h.percentile(q, sorted[0], sorted[999]).unwrap();
            assert_eq!(
                bucket_of(exact),
                bucket_of(sketch.ceil() as i32),
                "q {q}: exact {exact}, sketch {sketch}"
            );
        }
    }

    #[test]
    fn merged_rollups_equal_the_rollup_of_all() {
        let a = [12, 40, 7000, 3];
        let b = [45000, 100];
        let rollup = |ds: &[i32]| Rollup {
            up: ds.len() as i64,
            duration_min: ds.iter().copied().min(),
            duration_max: ds.iter().copied().max(),
            duration_sum: ds.iter().map(|d| *d as i64).sum(),
            histogram: Histogram::of(ds.iter().copied()),
            ..Rollup::default()
        };
        let mut merged = rollup(&a);
        merged.merge(&rollup(&b));
        let all: Vec<i32> = a.iter().chain(&b).copied().collect();
        assert_eq!(merged, rollup(&all));
        assert_eq!(merged.percentile(1.0), Some(45000.0));
        assert_eq!(Rollup::default().percentile(0.5), None);
    }
}
