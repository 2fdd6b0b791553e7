//! GraphQL types of target states and incidents (#13).

use std::sync::Arc;

use async_graphql::connection::CursorType;
use async_graphql::{Enum, ErrorExtensions, ID, InputObject, MaybeUndefined, Object};
use chrono::{DateTime, Utc};
use entity::state::State;

use super::loaders::ResultBatch;
use super::types::{BadCursor, Target};
use crate::service;
use crate::service::states::{IncidentRow, OwnThresholds, ThresholdsChange};

/// What a target is, as people see it.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum TargetState {
    Up,
    /// Passing, but slow or failing a degraded-only assertion, for the threshold.
    Degraded,
    /// Failing, not yet for the threshold (no incident yet).
    Pending,
    /// Failing for the threshold: an incident is open.
    Down,
    /// Not probed until resumed.
    Paused,
    /// Inside a maintenance window: nothing counts, no incident opens.
    Maintenance,
    /// No result yet, or none for two periods (the monitor is missing or behind).
    Unknown,
}

impl TargetState {
    /// As the target list's filter names it (see `service::targets::state_rank`).
    pub fn as_stored(self) -> &'static str {
        match self {
            TargetState::Up => "up",
            TargetState::Degraded => "degraded",
            TargetState::Pending => "pending",
            TargetState::Down => "down",
            TargetState::Paused => "paused",
            TargetState::Maintenance => "maintenance",
            TargetState::Unknown => "unknown",
        }
    }
}

impl From<State> for TargetState {
    fn from(s: State) -> Self {
        match s {
            State::Up => TargetState::Up,
            State::Degraded => TargetState::Degraded,
            State::Pending => TargetState::Pending,
            State::Down => TargetState::Down,
            State::Paused => TargetState::Paused,
            State::Maintenance => TargetState::Maintenance,
            State::Unknown => TargetState::Unknown,
        }
    }
}

/// How many consecutive results change a target's state.
pub struct Thresholds {
    pub own: OwnThresholds,
    pub defaults: entity::state::Thresholds,
}

#[Object]
impl Thresholds {
    /// Consecutive failing results before DOWN (and consecutive results that are not up before
    /// DEGRADED): the target's own, or the configured default.
    async fn failures_before_down(&self) -> i32 {
        self.own
            .failures_before_down
            .unwrap_or(self.defaults.failures_before_down as i32)
    }

    /// Consecutive passing results before a DOWN or DEGRADED target is UP again.
    async fn successes_before_up(&self) -> i32 {
        self.own
            .successes_before_up
            .unwrap_or(self.defaults.successes_before_up as i32)
    }

    /// The target's own value; null: the configured default.
    async fn own_failures_before_down(&self) -> Option<i32> {
        self.own.failures_before_down
    }

    /// The target's own value; null: the configured default.
    async fn own_successes_before_up(&self) -> Option<i32> {
        self.own.successes_before_up
    }
}

/// A target's thresholds: a field left out stays as it is, null goes back to the configured
/// default; 1 to 100.
#[derive(InputObject, Default)]
pub struct ThresholdsInput {
    #[graphql(default)]
    pub failures_before_down: MaybeUndefined<i32>,
    #[graphql(default)]
    pub successes_before_up: MaybeUndefined<i32>,
}

impl From<ThresholdsInput> for ThresholdsChange {
    fn from(input: ThresholdsInput) -> Self {
        let field = |v: MaybeUndefined<i32>| match v {
            MaybeUndefined::Undefined => None,
            MaybeUndefined::Null => Some(None),
            MaybeUndefined::Value(n) => Some(Some(n)),
        };
        ThresholdsChange {
            failures_before_down: field(input.failures_before_down),
            successes_before_up: field(input.successes_before_up),
        }
    }
}

/// The change of an optional input (left out: no change).
pub fn thresholds_change(input: Option<ThresholdsInput>) -> ThresholdsChange {
    input.map(Into::into).unwrap_or_default()
}

/// A DOWN incident: from the first failing slot to the first passing one.
pub struct Incident {
    pub row: IncidentRow,
    /// The incidents of the same list, for their targets.
    pub batch: Arc<ResultBatch>,
}

impl Incident {
    pub fn list(db: &sea_orm::DatabaseConnection, rows: Vec<IncidentRow>) -> Vec<Incident> {
        let targets: Vec<i32> = rows.iter().map(|r| r.urltarget_fk).collect();
        let batch = ResultBatch::of_targets(db.clone(), targets);
        rows.into_iter()
            .map(|row| Incident {
                row,
                batch: batch.clone(),
            })
            .collect()
    }
}

#[Object]
impl Incident {
    async fn id(&self) -> ID {
        ID(self.row.incident_pk.to_string())
    }

    async fn target(&self) -> async_graphql::Result<Target> {
        let id = self.row.urltarget_fk;
        match self.batch.target(id).await.map_err(|e| e.extend())? {
            Some((model, batch)) => Ok(Target::in_batch(model, batch)),
            None => Err(service::targets::not_found(id).extend()),
        }
    }

    /// The state it is about (DOWN).
    async fn state(&self) -> TargetState {
        State::parse(&self.row.state).unwrap_or(State::Down).into()
    }

    /// Why: the first failing result's failure class (`timeout`), its status (`status 503`),
    /// or the assertion it failed (`assertion 1: BODY_TEXT NOT_CONTAINS Error`).
    async fn cause(&self) -> Option<&str> {
        self.row.cause.as_deref()
    }

    /// The first failing slot.
    async fn opened_at(&self) -> DateTime<Utc> {
        self.row.opened_at
    }

    /// The slot whose result reached the threshold.
    async fn confirmed_at(&self) -> DateTime<Utc> {
        self.row.confirmed_at
    }

    /// The first passing slot of the run that ended it; null while open.
    async fn resolved_at(&self) -> Option<DateTime<Utc>> {
        self.row.resolved_at
    }

    async fn open(&self) -> bool {
        self.row.resolved_at.is_none()
    }

    /// From opened to resolved (or to now while open), in seconds.
    async fn duration_seconds(&self) -> i64 {
        let end = self.row.resolved_at.unwrap_or_else(Utc::now);
        (end - self.row.opened_at).num_seconds().max(0)
    }

    /// The result that opened it (its first failing one).
    async fn opened_by_result_id(&self) -> ID {
        ID(self.row.opened_by.to_string())
    }

    /// The result that closed it (its first passing one); null while open.
    async fn closed_by_result_id(&self) -> Option<ID> {
        self.row.closed_by.map(|id| ID(id.to_string()))
    }
}

/// An opaque keyset cursor over incidents: (opened_at, id).
pub struct IncidentCursor(pub service::states::After);

impl CursorType for IncidentCursor {
    type Error = BadCursor;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        let bad = || BadCursor::new(s);
        let (millis, id) = s
            .strip_prefix("in")
            .and_then(|rest| rest.split_once('.'))
            .ok_or_else(bad)?;
        let millis = i64::from_str_radix(millis, 16).map_err(|_| bad())?;
        let id = i64::from_str_radix(id, 16).map_err(|_| bad())?;
        let opened_at = DateTime::from_timestamp_millis(millis).ok_or_else(bad)?;
        Ok(IncidentCursor(service::states::After { opened_at, id }))
    }

    fn encode_cursor(&self) -> String {
        format!(
            "in{:x}.{:x}",
            self.0.opened_at.timestamp_millis(),
            self.0.id
        )
    }
}

/// A page of incidents, newest first.
pub type IncidentConnection = async_graphql::connection::Connection<IncidentCursor, Incident>;

/// A change of what people see of a target, as it is decided.
pub struct StateChange {
    pub change: entity::state::StateChange,
    pub target: Target,
}

#[Object]
impl StateChange {
    async fn target(&self) -> &Target {
        &self.target
    }

    async fn from(&self) -> TargetState {
        self.change.from.into()
    }

    async fn to(&self) -> TargetState {
        self.change.to.into()
    }

    /// When the new state began (a slot).
    async fn since(&self) -> DateTime<Utc> {
        self.change.since
    }
}

/// What a rebuild did.
pub struct RebuildReport(pub states::Rebuilt);

#[Object]
impl RebuildReport {
    /// Targets recomputed.
    async fn targets(&self) -> u64 {
        self.0.targets
    }

    /// Stored results replayed.
    async fn results(&self) -> u64 {
        self.0.results
    }

    /// Incidents of the period, as recomputed.
    async fn incidents(&self) -> u64 {
        self.0.incidents
    }

    /// Incidents written (new, or different from what was stored).
    async fn written(&self) -> u64 {
        self.0.written
    }

    /// Incidents removed (no longer decided from the results).
    async fn removed(&self) -> u64 {
        self.0.removed
    }

    /// Targets whose state changed.
    async fn state_changes(&self) -> u64 {
        self.0.changes.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incident_cursors_round_trip_and_garbage_is_refused() {
        let after = service::states::After {
            opened_at: DateTime::from_timestamp_millis(1_764_000_000_123).unwrap(),
            id: 42,
        };
        let c = IncidentCursor(after).encode_cursor();
        assert_eq!(IncidentCursor::decode_cursor(&c).unwrap().0, after);
        for bad in ["", "in", "inzz.1", "rs1.2", "in1"] {
            assert!(IncidentCursor::decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
