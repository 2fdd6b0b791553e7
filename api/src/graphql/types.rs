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
