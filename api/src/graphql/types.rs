//! GraphQL object types, wrapping the SeaORM models.

use async_graphql::connection::CursorType;
use async_graphql::{Context, Enum, ID, Object};
use chrono::{DateTime, Utc};
use entity::{monitor_results, urltargets};
use sea_orm::DatabaseConnection;

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
pub struct Target(pub urltargets::Model);

#[Object]
impl Target {
    async fn id(&self) -> ID {
        ID(self.0.urltargets_pk.to_string())
    }

    async fn url(&self) -> &str {
        &self.0.urltarget
    }

    /// How often it is probed, in minutes (1, 2, 5, 10, 20 or 30).
    async fn frequency(&self) -> i32 {
        self.0.monitor_frequency.minutes()
    }

    /// A paused target keeps its results but is not probed.
    async fn paused(&self) -> bool {
        self.0.paused
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
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
        let db = ctx.data::<DatabaseConnection>()?;
        let (first, after) = page_args::<ResultCursor>(ctx, first, after)?;
        let filter =
            service::results::Filter::new(Some(self.0.urltargets_pk), since, until).gql()?;
        let rows =
            service::results::of_target(db, first as u64, after.as_ref().map(|c| c.0), &filter)
                .await
                .gql()?;
        Ok(result_page(rows, first, after.is_some()))
    }

    /// Checks, up, down, uptime and duration percentiles within [since, until).
    async fn stats(
        &self,
        ctx: &Context<'_>,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<Stats> {
        let db = ctx.data::<DatabaseConnection>()?;
        let filter = service::results::Filter::new(None, since, until).gql()?;
        Ok(Stats(
            service::results::stats(db, self.0.urltargets_pk, &filter)
                .await
                .gql()?,
        ))
    }

    /// The result of its most recent slot, if it has been probed.
    async fn latest_result(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ProbeResult>> {
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(service::targets::latest_result(db, self.0.urltargets_pk)
            .await
            .gql()?
            .map(ProbeResult))
    }
}

/// Why a probe got no HTTP response.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum FailureClass {
    Dns,
    Connect,
    Tls,
    Timeout,
    RedirectLimit,
    Denied,
    Body,
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
            entity::FailureClass::Other => FailureClass::Other,
        }
    }
}

/// One probe of one target in one slot.
pub struct ProbeResult(pub monitor_results::Model);

#[Object(name = "Result")]
impl ProbeResult {
    async fn id(&self) -> ID {
        ID(self.0.monitor_results_pk.to_string())
    }

    async fn target(&self, ctx: &Context<'_>) -> async_graphql::Result<Target> {
        let db = ctx.data::<DatabaseConnection>()?;
        Ok(Target(
            service::targets::get(db, self.0.urltarget_fk).await.gql()?,
        ))
    }

    /// Status of the final response; null when there was none.
    async fn http_status(&self) -> Option<i32> {
        self.0.http_status
    }

    /// Whether this check counts as up: a final response with a 2xx or 3xx status.
    async fn up(&self) -> bool {
        entity::is_up(self.0.http_status)
    }

    /// Why there was no response; null when there was one.
    async fn failure_class(&self) -> Option<FailureClass> {
        self.0.failure_class.map(Into::into)
    }

    async fn start_time(&self) -> DateTime<Utc> {
        self.0.start_time
    }

    /// The slot this probe belongs to.
    async fn scheduled_at(&self) -> DateTime<Utc> {
        self.0.scheduled_at
    }

    async fn duration_ms(&self) -> i32 {
        self.0.duration
    }
}

/// An opaque keyset cursor over target ids.
pub struct TargetCursor(pub i32);

/// A cursor this API did not make.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a cursor from this API")]
pub struct BadCursor(String);

impl From<BadCursor> for ApiError {
    fn from(e: BadCursor) -> Self {
        ApiError::BadInput(e.to_string())
    }
}

impl CursorType for TargetCursor {
    type Error = BadCursor;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        let bad = || BadCursor(s.to_owned());
        let text = s
            .strip_prefix("tg")
            .and_then(|hex| i64::from_str_radix(hex, 16).ok())
            .ok_or_else(bad)?;
        i32::try_from(text ^ 0x5a5a_5a5a)
            .map(TargetCursor)
            .map_err(|_| bad())
    }

    fn encode_cursor(&self) -> String {
        format!("tg{:x}", i64::from(self.0) ^ 0x5a5a_5a5a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        for id in [1, 42, i32::MAX] {
            let c = TargetCursor(id).encode_cursor();
            assert_eq!(TargetCursor::decode_cursor(&c).unwrap().0, id);
        }
        assert!(TargetCursor::decode_cursor("nope").is_err());
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

/// Turns `limit + 1` rows into a connection page.
pub fn result_page(
    rows: Vec<monitor_results::Model>,
    limit: usize,
    had_cursor: bool,
) -> ResultConnection {
    let mut page = async_graphql::connection::Connection::new(had_cursor, rows.len() > limit);
    page.edges.extend(rows.into_iter().take(limit).map(|m| {
        let cursor = ResultCursor(service::results::After {
            scheduled_at: m.scheduled_at,
            id: m.monitor_results_pk,
        });
        async_graphql::connection::Edge::new(cursor, ProbeResult(m))
    }));
    page
}

/// Availability and response times over a period, computed by PostgreSQL.
pub struct Stats(pub service::results::Stats);

#[Object]
impl Stats {
    /// Probes in the period.
    async fn checks(&self) -> i64 {
        self.0.checks
    }

    /// Probes that got a 2xx or 3xx response.
    async fn up(&self) -> i64 {
        self.0.up
    }

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
}

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
    let first = first.unwrap_or(50);
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
