//! GraphQL types of maintenance windows (#13).

use async_graphql::{ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::maintenance::{Schedule, Scope};
use states::StoredWindow;

use super::types::parse_id;
use crate::error::{ApiError, ApiResult};
use crate::service::windows::WindowSpec;

/// A maintenance window: while it is open, the targets it covers are MAINTENANCE, open no
/// incident, and their uptime leaves it out.
pub struct MaintenanceWindow(pub StoredWindow);

/// One time a window is open: [start, end).
#[derive(SimpleObject)]
pub struct Occurrence {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

#[Object]
impl MaintenanceWindow {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Unique; `applyMaintenanceWindows` keys by it.
    async fn name(&self) -> &str {
        &self.0.name
    }

    /// One-off: when it opens.
    async fn from(&self) -> Option<DateTime<Utc>> {
        match &self.0.window.schedule {
            Schedule::Once { from, .. } => Some(*from),
            Schedule::Recurring { .. } => None,
        }
    }

    /// One-off: when it closes.
    async fn until(&self) -> Option<DateTime<Utc>> {
        match &self.0.window.schedule {
            Schedule::Once { until, .. } => Some(*until),
            Schedule::Recurring { .. } => None,
        }
    }

    /// Recurring: a 5-field cron expression (minute hour day-of-month month day-of-week).
    async fn cron(&self) -> Option<&str> {
        match &self.0.window.schedule {
            Schedule::Recurring { cron, .. } => Some(cron.as_str()),
            Schedule::Once { .. } => None,
        }
    }

    /// Recurring: the IANA time zone the cron expression is read in.
    async fn time_zone(&self) -> Option<&str> {
        match &self.0.window.schedule {
            Schedule::Recurring { zone, .. } => Some(zone.name()),
            Schedule::Once { .. } => None,
        }
    }

    /// Recurring: how long each occurrence lasts.
    async fn duration_minutes(&self) -> Option<i64> {
        match &self.0.window.schedule {
            Schedule::Recurring { duration, .. } => Some(duration.num_minutes()),
            Schedule::Once { .. } => None,
        }
    }

    /// Covers every target.
    async fn all_targets(&self) -> bool {
        self.0.window.scope == Scope::All
    }

    /// Covers these targets.
    async fn target_ids(&self) -> Vec<ID> {
        match &self.0.window.scope {
            Scope::Targets(ids) => ids.iter().map(|id| ID(id.to_string())).collect(),
            _ => Vec::new(),
        }
    }

    /// Covers the targets whose tags match one of these filters.
    async fn tags(&self) -> Vec<String> {
        match &self.0.window.scope {
            Scope::Tags(filters) => filters.iter().map(ToString::to_string).collect(),
            _ => Vec::new(),
        }
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Whether it is open now.
    async fn open_now(&self) -> bool {
        let now = Utc::now();
        !self
            .0
            .window
            .occurrences(now, now + chrono::TimeDelta::milliseconds(1))
            .is_empty()
    }

    /// Its occurrences that overlap [since, until) (default: from now, for 30 days), earliest
    /// first, at most `first`.
    async fn occurrences(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        #[graphql(default = 20)] first: i32,
    ) -> async_graphql::Result<Vec<Occurrence>> {
        use crate::error::IntoGql;
        let since = since.unwrap_or_else(Utc::now);
        let until = until.unwrap_or(since + chrono::TimeDelta::days(30));
        crate::service::results::Filter::new(None, Some(since), Some(until)).gql()?;
        let first = usize::try_from(first)
            .ok()
            .filter(|f| *f <= 1000)
            .ok_or_else(|| {
                ApiError::BadInput(format!("first must be between 0 and 1000, got {first}"))
            })
            .gql()?;
        Ok(self
            .0
            .window
            .occurrences(since, until)
            .into_iter()
            .take(first)
            .map(|(start, end)| Occurrence { start, end })
            .collect())
    }
}

/// A maintenance window: one-off (`from`, `until`) or recurring (`cron`, `timeZone`,
/// `durationMinutes`); for exactly one of `allTargets`, `targetIds` and `tags` (tag filters:
/// `key`, `key:value`, `key:*`).
#[derive(InputObject)]
pub struct MaintenanceWindowInput {
    pub name: String,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Five fields: minute hour day-of-month month day-of-week (`30 2 * * SUN`).
    pub cron: Option<String>,
    /// An IANA name (`Europe/Berlin`, `UTC`).
    pub time_zone: Option<String>,
    /// 1 minute to 7 days.
    pub duration_minutes: Option<i32>,
    #[graphql(default)]
    pub all_targets: bool,
    #[graphql(default)]
    pub target_ids: Vec<ID>,
    #[graphql(default)]
    pub tags: Vec<String>,
}

impl MaintenanceWindowInput {
    pub fn spec(self) -> ApiResult<WindowSpec> {
        let target_ids = self
            .target_ids
            .iter()
            .map(parse_id)
            .collect::<ApiResult<Vec<i32>>>()
            .map_err(|e| ApiError::BadInput(format!("targetIds: {}", e.message())))?;
        Ok(WindowSpec {
            name: self.name,
            from: self.from,
            until: self.until,
            cron: self.cron,
            time_zone: self.time_zone,
            duration_minutes: self.duration_minutes,
            all_targets: self.all_targets,
            target_ids,
            tags: self.tags,
        })
    }
}

/// Parses a window id.
pub fn parse_window_id(id: &ID) -> ApiResult<i64> {
    id.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::BadInput(format!("{:?} is not a window id", id.as_str())))
}

/// What `applyMaintenanceWindows` did.
#[derive(SimpleObject)]
pub struct WindowApplyReport {
    pub added: Vec<MaintenanceWindow>,
    pub changed: Vec<MaintenanceWindow>,
    pub removed: Vec<MaintenanceWindow>,
    pub unchanged: Vec<MaintenanceWindow>,
}
