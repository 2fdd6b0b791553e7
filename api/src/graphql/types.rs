//! GraphQL object types, wrapping the SeaORM models.

use std::sync::Arc;

use async_graphql::connection::CursorType;
use async_graphql::{Context, Enum, ErrorExtensions, ID, Object};
use chrono::{DateTime, Utc};
use entity::{monitor_results, urltargets};
use sea_orm::DatabaseConnection;

use super::check::{AssertionFailure, Check, FirstAttempt, Outcome, Phase, PhaseStats, TlsDetails};
use super::loaders::{PageShape, ResultBatch, TargetBatch};
use super::states::{Incident, TargetState, Thresholds};

use crate::error::{ApiError, ApiResult, IntoGql};
use crate::service;

/// Parses a target id given as a GraphQL `ID`.
pub fn parse_id(id: &ID) -> ApiResult<i32> {
    id.parse::<i32>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::BadInput(format!("{:?} is not a target id", id.as_str())))
}

/// A URL being watched.
pub struct Target {
    pub model: urltargets::Model,
    /// The targets of the same list, for what their nodes ask for.
    batch: Arc<TargetBatch>,
}

impl Target {
    /// The targets of one list, sharing a batch.
    pub fn list(db: &DatabaseConnection, models: Vec<urltargets::Model>) -> Vec<Target> {
        let batch = TargetBatch::new(db.clone(), models);
        batch
            .models()
            .iter()
            .map(|model| Target {
                model: model.clone(),
                batch: batch.clone(),
            })
            .collect()
    }

    /// One target alone.
    pub fn one(db: &DatabaseConnection, model: urltargets::Model) -> Target {
        let batch = TargetBatch::new(db.clone(), vec![model.clone()]);
        Target { model, batch }
    }

    /// A target of a batch loaded for another list (the targets of results or incidents).
    pub fn in_batch(model: urltargets::Model, batch: Arc<TargetBatch>) -> Target {
        Target { model, batch }
    }
}

#[Object]
impl Target {
    async fn id(&self) -> ID {
        ID(self.model.urltargets_pk.to_string())
    }

    async fn url(&self) -> &str {
        &self.model.urltarget
    }

    /// How often it is probed, in minutes (1, 2, 5, 10, 20 or 30).
    async fn frequency(&self) -> i32 {
        self.model.monitor_frequency.minutes()
    }

    /// Its labels (`team:payments`, `env:prod`), sorted.
    async fn tags(&self) -> &[String] {
        &self.model.tags.0
    }

    /// A paused target keeps its results but is not probed.
    async fn paused(&self) -> bool {
        self.model.paused
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }

    /// What its probe sends and what counts as up (header values are write-only).
    async fn check(&self) -> Check {
        Check(self.model.clone())
    }

    /// Its results, newest first, optionally within [since, until).
    async fn results(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<ResultConnection> {
        let (first, after) = page_args::<ResultCursor>(ctx, first, after)?;
        let shape = PageShape {
            limit: first as u64,
            after: after.as_ref().map(|c| c.0),
            filter: service::results::Filter::new(None, since, until).gql()?,
        };
        let rows = self
            .batch
            .page(self.model.urltargets_pk, shape)
            .await
            .map_err(|e| e.extend())?;
        Ok(result_page(
            rows,
            first,
            after.is_some(),
            &self.batch.results_batch(),
        ))
    }

    /// Checks, up, down, uptime and duration percentiles within [since, until).
    async fn stats(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Stats> {
        let filter = service::results::Filter::new(None, since, until).gql()?;
        let stats = self.batch.stats(self.model.urltargets_pk, filter).await;
        Ok(Stats(stats.map_err(|e| e.extend())?))
    }

    /// Its results over [since, until) (until: now) in at most `buckets` points (1 to 1000), for
    /// charts: per bucket the checks, failures and duration min/avg/max/p95. Buckets shorter
    /// than an hour are computed from raw results; longer ones — or any period reaching back
    /// past the raw results' retention — from hourly rollups, in buckets of whole hours from
    /// the hour holding `since`. Buckets without results have no point.
    async fn series(
        &self,
        since: DateTime<Utc>,
        until: Option<DateTime<Utc>>,
        #[graphql(default = 60)] buckets: i32,
    ) -> async_graphql::Result<Series> {
        let filter = service::results::Filter::new(None, Some(since), until).gql()?;
        if !(1..=MAX_SERIES_BUCKETS).contains(&buckets) {
            return Err(ApiError::BadInput(format!(
                "buckets must be 1 to {MAX_SERIES_BUCKETS}, not {buckets}"
            ))
            .extend());
        }
        if filter.until.is_some_and(|u| u <= since) {
            return Err(ApiError::BadInput("until must be after since".into()).extend());
        }
        let shape = service::history::SeriesShape {
            since,
            until: filter.until,
            buckets: buckets.into(),
        };
        let (source, width, series) = self
            .batch
            .series(self.model.urltargets_pk, shape)
            .await
            .map_err(|e| e.extend())?;
        Ok(Series {
            source: match source {
                service::history::Source::Raw => SeriesSource::Raw,
                service::history::Source::Rollups => SeriesSource::Rollups,
            },
            bucket_seconds: width.num_seconds(),
            points: series
                .points
                .into_iter()
                .map(|p| SeriesPoint {
                    at: p.at,
                    checks: p.checks,
                    failures: p.failures,
                    min_ms: p.min_ms,
                    avg_ms: p.avg_ms,
                    max_ms: p.max_ms,
                    p95_ms: p.p95_ms,
                })
                .collect(),
        })
    }

    /// What it is now, as decided from its results in slot order: PAUSED while paused, UNKNOWN
    /// before its first result and when none came for two periods.
    async fn state(&self) -> async_graphql::Result<TargetState> {
        if self.model.paused {
            return Ok(TargetState::Paused);
        }
        let stored = self.batch.state(self.model.urltargets_pk).await;
        Ok(stored
            .map_err(|e| e.extend())?
            .map_or(TargetState::Unknown, |s| s.state.into()))
    }

    /// Since when `state` holds (a slot; PENDING: the first failing one); null while paused or
    /// before the first result.
    async fn state_since(&self) -> async_graphql::Result<Option<DateTime<Utc>>> {
        if self.model.paused {
            return Ok(None);
        }
        let stored = self.batch.state(self.model.urltargets_pk).await;
        Ok(stored.map_err(|e| e.extend())?.and_then(|s| s.since))
    }

    /// Its latest incidents, newest first.
    async fn incidents(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 10)] first: i32,
    ) -> async_graphql::Result<Vec<Incident>> {
        let (first, _) = page_args::<ResultCursor>(ctx, Some(first), None)?;
        let rows = self
            .batch
            .incidents(self.model.urltargets_pk, first as u64)
            .await
            .map_err(|e| e.extend())?;
        let batch = self.batch.results_batch();
        Ok(rows
            .into_iter()
            .map(|row| Incident {
                row,
                batch: batch.clone(),
            })
            .collect())
    }

    /// How many consecutive results change its state.
    async fn thresholds(&self, ctx: &Context<'_>) -> async_graphql::Result<Thresholds> {
        Ok(Thresholds {
            own: service::states::OwnThresholds::of(&self.model),
            defaults: *ctx.data::<entity::state::Thresholds>()?,
        })
    }

    /// The result of its most recent slot, if it has been probed.
    async fn latest_result(&self) -> async_graphql::Result<Option<ProbeResult>> {
        let latest = self.batch.latest(self.model.urltargets_pk).await;
        let batch = self.batch.results_batch();
        Ok(latest
            .map_err(|e| e.extend())?
            .map(|model| ProbeResult { model, batch }))
    }
}

/// Why a probe failed: no HTTP response (DNS … OTHER), or a response that failed an assertion
/// (ASSERTION).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum FailureClass {
    Dns,
    Connect,
    Tls,
    Timeout,
    RedirectLimit,
    Denied,
    Body,
    /// A response (its status is set) that failed one or more assertions.
    Assertion,
    Other,
}

impl From<entity::FailureClass> for FailureClass {
    fn from(c: entity::FailureClass) -> Self {
        match c {
            entity::FailureClass::Dns => FailureClass::Dns,
            entity::FailureClass::Connect => FailureClass::Connect,
            entity::FailureClass::Tls => FailureClass::Tls,
            entity::FailureClass::Timeout => FailureClass::Timeout,
            entity::FailureClass::RedirectLimit => FailureClass::RedirectLimit,
            entity::FailureClass::Denied => FailureClass::Denied,
            entity::FailureClass::Body => FailureClass::Body,
            entity::FailureClass::Assertion => FailureClass::Assertion,
            entity::FailureClass::Other => FailureClass::Other,
        }
    }
}

/// One probe of one target in one slot.
pub struct ProbeResult {
    pub model: monitor_results::Model,
    /// The results of the same list, for their targets.
    batch: Arc<ResultBatch>,
}

impl ProbeResult {
    /// A live result, with its target.
    pub fn live(
        db: &DatabaseConnection,
        model: monitor_results::Model,
        target: urltargets::Model,
    ) -> ProbeResult {
        let batch = ResultBatch::known(db.clone(), vec![target]);
        ProbeResult { model, batch }
    }
}

#[Object(name = "Result")]
impl ProbeResult {
    async fn id(&self) -> ID {
        ID(self.model.monitor_results_pk.to_string())
    }

    async fn target(&self) -> async_graphql::Result<Target> {
        let id = self.model.urltarget_fk;
        match self.batch.target(id).await.map_err(|e| e.extend())? {
            Some((model, batch)) => Ok(Target { model, batch }),
            None => Err(service::targets::not_found(id).extend()),
        }
    }

    /// Status of the final response; null when there was none.
    async fn http_status(&self) -> Option<i32> {
        self.model.http_status
    }

    /// Whether this check counts as up: its outcome is UP or DEGRADED (not DOWN).
    async fn up(&self) -> bool {
        self.model.outcome != entity::Verdict::Down
    }

    /// UP, DEGRADED (passed, slower than the target's `degradedAfterMs`) or DOWN.
    async fn outcome(&self) -> Outcome {
        self.model.outcome.into()
    }

    /// Why the probe failed: why there was no response (then `httpStatus` is null), or
    /// ASSERTION (then `httpStatus` is set and `assertionFailures` says which); null when it
    /// did not fail.
    async fn failure_class(&self) -> Option<FailureClass> {
        self.model.failure_class.map(Into::into)
    }

    /// The assertions the response failed, with what was expected and found; non-empty
    /// exactly when `failureClass` is ASSERTION.
    async fn assertion_failures(&self) -> Vec<AssertionFailure> {
        self.model
            .assertion_failures
            .as_ref()
            .map(|f| f.0.iter().map(Into::into).collect())
            .unwrap_or_default()
    }

    /// Milliseconds resolving the host name; null when not reached or not needed (an IP).
    async fn dns_ms(&self) -> Option<i32> {
        self.model.dns_ms
    }

    /// Milliseconds opening the TCP connection; null when not reached.
    async fn connect_ms(&self) -> Option<i32> {
        self.model.connect_ms
    }

    /// Milliseconds of the TLS handshake; null when not reached, or plain HTTP.
    async fn tls_ms(&self) -> Option<i32> {
        self.model.tls_ms
    }

    /// Milliseconds from the request sent to the response's head; null when not reached.
    async fn ttfb_ms(&self) -> Option<i32> {
        self.model.ttfb_ms
    }

    /// Milliseconds reading the body; null when not reached.
    async fn transfer_ms(&self) -> Option<i32> {
        self.model.transfer_ms
    }

    /// The TLS version and the server's certificate (HTTPS only; null otherwise).
    async fn tls(&self) -> Option<TlsDetails> {
        self.model.tls().map(TlsDetails)
    }

    /// For a re-probed slot (the target's `check.reprobe`), its first attempt, which was DOWN;
    /// this result is the second. Null when the slot was probed once.
    async fn first_attempt(&self) -> Option<FirstAttempt> {
        self.model.first_attempt.clone().map(FirstAttempt)
    }

    async fn start_time(&self) -> DateTime<Utc> {
        self.model.start_time
    }

    /// The slot this probe belongs to.
    async fn scheduled_at(&self) -> DateTime<Utc> {
        self.model.scheduled_at
    }

    async fn duration_ms(&self) -> i32 {
        self.model.duration
    }
}

/// Where a page of the target list starts, for its order: after this target (and its sort key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetCursor {
    pub order: TargetOrder,
    pub id: i32,
    /// The sort key as the database printed it (the id itself in the id order).
    pub key: String,
}

impl TargetCursor {
    pub fn by_id(id: i32) -> TargetCursor {
        TargetCursor {
            order: TargetOrder::Id,
            id,
            key: id.to_string(),
        }
    }
}

/// How the target list is sorted (ties by id).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
pub enum TargetOrder {
    /// Oldest first.
    #[default]
    Id,
    Url,
    /// Worst first: DOWN, DEGRADED, PENDING, UNKNOWN, MAINTENANCE, UP, PAUSED.
    State,
    /// When the state last changed (when it was added, before its first result); oldest first.
    LastChange,
}

impl TargetOrder {
    fn code(self) -> char {
        match self {
            TargetOrder::Id => 'i',
            TargetOrder::Url => 'u',
            TargetOrder::State => 's',
            TargetOrder::LastChange => 'c',
        }
    }

    pub fn service(self) -> service::targets::Order {
        match self {
            TargetOrder::Id => service::targets::Order::Id,
            TargetOrder::Url => service::targets::Order::Url,
            TargetOrder::State => service::targets::Order::State,
            TargetOrder::LastChange => service::targets::Order::LastChange,
        }
    }
}

/// A cursor this API did not make.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a cursor from this API")]
pub struct BadCursor(String);

impl BadCursor {
    pub fn new(cursor: &str) -> BadCursor {
        BadCursor(cursor.to_owned())
    }
}

impl From<BadCursor> for ApiError {
    fn from(e: BadCursor) -> Self {
        ApiError::BadInput(e.to_string())
    }
}

impl CursorType for TargetCursor {
    type Error = BadCursor;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        let bad = || BadCursor(s.to_owned());
        if let Some(hex) = s.strip_prefix("tg") {
            let text = i64::from_str_radix(hex, 16).map_err(|_| bad())?;
            return i32::try_from(text ^ 0x5a5a_5a5a)
                .map(TargetCursor::by_id)
                .map_err(|_| bad());
        }
        let hex = s.strip_prefix("tl").ok_or_else(bad)?;
        if hex.len() % 2 != 0 || hex.len() > 4200 {
            return Err(bad());
        }
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let mut parts = text.splitn(3, '|');
        let order = match parts.next() {
            Some("u") => TargetOrder::Url,
            Some("s") => TargetOrder::State,
            Some("c") => TargetOrder::LastChange,
            _ => return Err(bad()),
        };
        let id = parts
            .next()
            .and_then(|id| id.parse::<i32>().ok())
            .ok_or_else(bad)?;
        let key = parts.next().ok_or_else(bad)?.to_owned();
        // Keys this API could have made: a state's rank, a time PostgreSQL holds (µs since
        // 1970, years 1 to 9999), a URL without NUL.
        let fits = match order {
            TargetOrder::State => key.parse::<i32>().is_ok_and(|r| (0..=6).contains(&r)),
            TargetOrder::LastChange => key
                .parse::<i64>()
                .is_ok_and(|us| (-62_135_596_800_000_000..253_402_300_800_000_000).contains(&us)),
            _ => !key.contains('\0'),
        };
        if !fits {
            return Err(bad());
        }
        Ok(TargetCursor { order, id, key })
    }

    fn encode_cursor(&self) -> String {
        if self.order == TargetOrder::Id {
            return format!("tg{:x}", i64::from(self.id) ^ 0x5a5a_5a5a);
        }
        let text = format!("{}|{}|{}", self.order.code(), self.id, self.key);
        let hex: String = text.bytes().map(|b| format!("{b:02x}")).collect();
        format!("tl{hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        for id in [1, 42, i32::MAX] {
            let c = TargetCursor::by_id(id).encode_cursor();
            assert_eq!(TargetCursor::decode_cursor(&c).unwrap().id, id);
            for (order, key) in [
                (TargetOrder::Url, "http://127.0.0.1/ä|x"),
                (TargetOrder::State, "3"),
                (TargetOrder::LastChange, "-1764500000000000"),
            ] {
                let c = TargetCursor {
                    order,
                    id,
                    key: key.into(),
                };
                assert_eq!(TargetCursor::decode_cursor(&c.encode_cursor()).unwrap(), c);
            }
        }
        assert!(TargetCursor::decode_cursor("nope").is_err());
        assert!(TargetCursor::decode_cursor("tl7a7a").is_err());
        assert!(
            TargetCursor::decode_cursor("tl737c317c78").is_err(),
            "a state key not a number"
        );
        assert!(parse_id(&ID("abc".into())).is_err());
        assert!(parse_id(&ID("-3".into())).is_err());
        assert_eq!(parse_id(&ID("7".into())).unwrap(), 7);
    }
}

/// An opaque keyset cursor over results: (slot, id).
pub struct ResultCursor(pub service::results::After);

impl CursorType for ResultCursor {
    type Error = BadCursor;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        let bad = || BadCursor(s.to_owned());
        let (millis, id) = s
            .strip_prefix("rs")
            .and_then(|rest| rest.split_once('.'))
            .ok_or_else(bad)?;
        let millis = i64::from_str_radix(millis, 16).map_err(|_| bad())?;
        let id = i64::from_str_radix(id, 16).map_err(|_| bad())?;
        let scheduled_at = DateTime::from_timestamp_millis(millis).ok_or_else(bad)?;
        Ok(ResultCursor(service::results::After { scheduled_at, id }))
    }

    fn encode_cursor(&self) -> String {
        format!(
            "rs{:x}.{:x}",
            self.0.scheduled_at.timestamp_millis(),
            self.0.id
        )
    }
}

/// A page of results, newest first.
pub type ResultConnection = async_graphql::connection::Connection<ResultCursor, ProbeResult>;

/// Turns `limit + 1` rows into a connection page whose results share `batch`.
pub fn result_page(
    rows: Vec<monitor_results::Model>,
    limit: usize,
    had_cursor: bool,
    batch: &Arc<ResultBatch>,
) -> ResultConnection {
    let mut page = async_graphql::connection::Connection::new(had_cursor, rows.len() > limit);
    page.edges.extend(rows.into_iter().take(limit).map(|m| {
        let cursor = ResultCursor(service::results::After {
            scheduled_at: m.scheduled_at,
            id: m.monitor_results_pk,
        });
        let node = ProbeResult {
            model: m,
            batch: batch.clone(),
        };
        async_graphql::connection::Edge::new(cursor, node)
    }));
    page
}

/// Most points a series may be asked for.
pub const MAX_SERIES_BUCKETS: i32 = 1000;

/// Where a series' points were computed from.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum SeriesSource {
    /// Raw results (exact percentiles).
    Raw,
    /// Hourly rollups (percentiles from the duration histogram).
    Rollups,
}

/// A target's results over a period, in buckets.
#[derive(async_graphql::SimpleObject)]
pub struct Series {
    pub source: SeriesSource,
    /// Each bucket's length.
    pub bucket_seconds: i64,
    /// The buckets that have results, oldest first.
    pub points: Vec<SeriesPoint>,
}

/// One bucket of a series.
#[derive(async_graphql::SimpleObject)]
pub struct SeriesPoint {
    /// The bucket's start.
    pub at: DateTime<Utc>,
    pub checks: i64,
    /// Results whose outcome is DOWN.
    pub failures: i64,
    pub min_ms: Option<i32>,
    pub avg_ms: Option<f64>,
    pub max_ms: Option<i32>,
    pub p95_ms: Option<f64>,
}

/// Availability and response times over a period, computed by PostgreSQL: from raw results up
/// to 48 hours (exact), from rollups beyond (percentiles from the duration histogram, no
/// phases).
pub struct Stats(pub service::results::Stats);

#[Object]
impl Stats {
    /// Probes in the period.
    async fn checks(&self) -> i64 {
        self.0.checks
    }

    /// Probes whose outcome is UP or DEGRADED.
    async fn up(&self) -> i64 {
        self.0.up
    }

    /// Probes whose outcome is DEGRADED (counted in `up` too).
    async fn degraded(&self) -> i64 {
        self.0.degraded
    }

    /// Probes whose outcome is DOWN.
    async fn down(&self) -> i64 {
        self.0.checks - self.0.up
    }

    /// up / checks; null without checks.
    async fn uptime_ratio(&self) -> Option<f64> {
        (self.0.checks > 0).then(|| self.0.up as f64 / self.0.checks as f64)
    }

    async fn p50_duration_ms(&self) -> Option<f64> {
        self.0.p50
    }

    async fn p95_duration_ms(&self) -> Option<f64> {
        self.0.p95
    }

    async fn p99_duration_ms(&self) -> Option<f64> {
        self.0.p99
    }

    /// The median and 95th percentile of each phase over the probes that reached it: always
    /// the five phases, in the order DNS, CONNECT, TLS, TTFB, TRANSFER.
    async fn phases(&self) -> Vec<PhaseStats> {
        Phase::ALL
            .into_iter()
            .zip(self.0.phases)
            .map(|(phase, (p50_ms, p95_ms))| PhaseStats {
                phase,
                p50_ms,
                p95_ms,
            })
            .collect()
    }
}

/// The page size when `first` is not given.
pub const DEFAULT_PAGE: i32 = 50;

/// Page size and cursor from connection arguments, checked against the configured maximum.
pub fn page_args<C: CursorType>(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
) -> async_graphql::Result<(usize, Option<C>)>
where
    ApiError: From<C::Error>,
{
    let max = ctx.data::<super::Limits>()?.max_page;
    let first = first.unwrap_or(DEFAULT_PAGE);
    let first = usize::try_from(first)
        .ok()
        .filter(|f| *f <= max)
        .ok_or_else(|| {
            ApiError::BadInput(format!("first must be between 0 and {max}, got {first}"))
        })
        .gql()?;
    let after = after
        .as_deref()
        .map(C::decode_cursor)
        .transpose()
        .map_err(ApiError::from)
        .gql()?;
    Ok((first, after))
}
