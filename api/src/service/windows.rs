//! Maintenance windows: validated, stored, listed, applied as a declarative list (by name).
//! What a window means is `entity::maintenance`; reading them back is `states::load_windows`.

use chrono::{DateTime, TimeDelta, Utc};
use entity::maintenance::{Schedule, Scope, Window, WindowError};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, SqlErr, Statement, TransactionTrait, Value,
};
use states::StoredWindow;

use crate::error::{ApiError, ApiResult};

/// A window as given: one-off (`from`, `until`) or recurring (`cron`, `time_zone`,
/// `duration_minutes`), for all targets, a list, or tag filters (exactly one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowSpec {
    pub name: String,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub cron: Option<String>,
    pub time_zone: Option<String>,
    pub duration_minutes: Option<i32>,
    pub all_targets: bool,
    pub target_ids: Vec<i32>,
    pub tags: Vec<String>,
}

/// Longest window name.
pub const MAX_NAME_CHARS: usize = 200;

fn bad(e: WindowError) -> ApiError {
    ApiError::BadInput(e.to_string())
}

fn refuse(field: &str, message: &str) -> ApiError {
    ApiError::BadInput(format!("{field}: {message}"))
}

impl WindowSpec {
    /// The window this describes, validated; the error names the field.
    pub fn window(&self) -> ApiResult<Window> {
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS || name != self.name {
            return Err(refuse(
                "name",
                &format!("must be 1 to {MAX_NAME_CHARS} characters, without surrounding spaces"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(refuse("name", "must not contain control characters"));
        }
        let recurring =
            self.cron.is_some() || self.time_zone.is_some() || self.duration_minutes.is_some();
        let once = self.from.is_some() || self.until.is_some();
        let schedule = match (once, recurring) {
            (true, false) => {
                let from = self
                    .from
                    .ok_or_else(|| refuse("from", "a one-off window needs from and until"))?;
                let until = self
                    .until
                    .ok_or_else(|| refuse("until", "a one-off window needs from and until"))?;
                for (field, at) in [("from", from), ("until", until)] {
                    crate::service::results::Filter::new(None, Some(at), None).map_err(|_| {
                        refuse(
                            field,
                            &format!("{} is outside the years 1 to 9999", at.to_rfc3339()),
                        )
                    })?;
                }
                Schedule::once(from, until).map_err(bad)?
            }
            (false, true) => {
                let cron = self.cron.as_deref().ok_or_else(|| {
                    refuse(
                        "cron",
                        "a recurring window needs cron, timeZone and durationMinutes",
                    )
                })?;
                let zone = self.time_zone.as_deref().ok_or_else(|| {
                    refuse(
                        "timeZone",
                        "a recurring window needs cron, timeZone and durationMinutes",
                    )
                })?;
                let minutes = self.duration_minutes.ok_or_else(|| {
                    refuse(
                        "durationMinutes",
                        "a recurring window needs cron, timeZone and durationMinutes",
                    )
                })?;
                if minutes < 1 {
                    return Err(refuse(
                        "durationMinutes",
                        &format!("must be at least 1, not {minutes}"),
                    ));
                }
                Schedule::recurring(cron, zone, TimeDelta::minutes(i64::from(minutes))).map_err(
                    |e| {
                        // The module says `duration`; the API's field is durationMinutes.
                        if e.field == "duration" {
                            refuse("durationMinutes", &e.message)
                        } else {
                            bad(e)
                        }
                    },
                )?
            }
            (true, true) => {
                return Err(refuse(
                    "cron",
                    "give either from and until (one-off) or cron, timeZone and durationMinutes \
                     (recurring), not both",
                ));
            }
            (false, false) => {
                return Err(refuse(
                    "from",
                    "give either from and until (one-off) or cron, timeZone and durationMinutes \
                     (recurring)",
                ));
            }
        };
        let chosen = [
            self.all_targets,
            !self.target_ids.is_empty(),
            !self.tags.is_empty(),
        ]
        .into_iter()
        .filter(|c| *c)
        .count();
        if chosen != 1 {
            return Err(refuse(
                "targetIds",
                "choose exactly one of allTargets, targetIds and tags",
            ));
        }
        let scope = if self.all_targets {
            Scope::All
        } else if !self.target_ids.is_empty() {
            Scope::targets(self.target_ids.clone()).map_err(bad)?
        } else {
            Scope::tags(&self.tags).map_err(bad)?
        };
        Window::new(schedule, scope).map_err(bad)
    }

    /// What the table stores of it (the same shape `states::load_windows` reads).
    fn values(&self, window: &Window) -> Vec<Value> {
        let (from, until, cron, zone, seconds) = match &window.schedule {
            Schedule::Once { from, until } => (Some(*from), Some(*until), None, None, None),
            Schedule::Recurring {
                cron,
                zone,
                duration,
            } => (
                None,
                None,
                Some(cron.as_str().to_owned()),
                Some(zone.name().to_owned()),
                Some(duration.num_seconds() as i32),
            ),
        };
        let (all, ids, tags) = match &window.scope {
            Scope::All => (true, Vec::new(), Vec::new()),
            Scope::Targets(ids) => (false, ids.clone(), Vec::new()),
            Scope::Tags(filters) => (
                false,
                Vec::new(),
                filters.iter().map(ToString::to_string).collect(),
            ),
        };
        vec![
            self.name.clone().into(),
            from.into(),
            until.into(),
            cron.into(),
            zone.into(),
            seconds.into(),
            all.into(),
            serde_json::to_string(&ids).expect("ids are numbers").into(),
            serde_json::to_string(&tags)
                .expect("tags are strings")
                .into(),
        ]
    }
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("no maintenance window with id {id}"))
}

fn name_taken(e: sea_orm::DbErr, name: &str) -> ApiError {
    match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => refuse(
            "name",
            &format!("a maintenance window named {name:?} exists already"),
        ),
        _ => e.into(),
    }
}

const COLUMNS: &str = "name, starts_at, ends_at, cron, time_zone, duration_seconds, all_targets, \
                       target_ids, tag_filters";

/// Every window, by id.
pub async fn list(db: &impl ConnectionTrait) -> ApiResult<Vec<StoredWindow>> {
    Ok(states::load_windows(db).await?)
}

async fn get(db: &impl ConnectionTrait, id: i64) -> ApiResult<StoredWindow> {
    list(db)
        .await?
        .into_iter()
        .find(|w| w.id == id)
        .ok_or_else(|| not_found(id))
}

async fn count(db: &impl ConnectionTrait) -> ApiResult<u64> {
    let row = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT count(*) FROM maintenance_windows",
        ))
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("count returned no row")))?;
    Ok(row.try_get_by_index::<i64>(0)? as u64)
}

async fn insert(db: &impl ConnectionTrait, spec: &WindowSpec, window: &Window) -> ApiResult<i64> {
    if count(db).await? >= states::MAX_WINDOWS {
        return Err(ApiError::LimitExceeded(format!(
            "there are {} maintenance windows, the most allowed; remove one first",
            states::MAX_WINDOWS
        )));
    }
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "INSERT INTO maintenance_windows ({COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb) RETURNING window_pk"
            ),
            spec.values(window),
        ))
        .await
        .map_err(|e| name_taken(e, &spec.name))?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("insert returned no row")))?;
    Ok(row.try_get_by_index(0)?)
}

async fn replace(
    db: &impl ConnectionTrait,
    id: i64,
    spec: &WindowSpec,
    window: &Window,
) -> ApiResult<()> {
    let mut values = spec.values(window);
    values.push(id.into());
    let done = db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE maintenance_windows SET name = $1, starts_at = $2, ends_at = $3, cron = $4, \
                 time_zone = $5, duration_seconds = $6, all_targets = $7, \
                 target_ids = $8::jsonb, tag_filters = $9::jsonb \
             WHERE window_pk = $10",
            values,
        ))
        .await
        .map_err(|e| name_taken(e, &spec.name))?;
    if done.rows_affected() == 0 {
        return Err(not_found(id));
    }
    Ok(())
}

pub async fn add(db: &DatabaseConnection, spec: &WindowSpec) -> ApiResult<StoredWindow> {
    let window = spec.window()?;
    let id = insert(db, spec, &window).await?;
    get(db, id).await
}

/// Replaces window `id` with `spec` (the whole window).
pub async fn update(
    db: &DatabaseConnection,
    id: i64,
    spec: &WindowSpec,
) -> ApiResult<StoredWindow> {
    let window = spec.window()?;
    replace(db, id, spec, &window).await?;
    get(db, id).await
}

pub async fn remove(db: &DatabaseConnection, id: i64) -> ApiResult<StoredWindow> {
    let current = get(db, id).await?;
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "DELETE FROM maintenance_windows WHERE window_pk = $1",
        [id.into()],
    ))
    .await?;
    Ok(current)
}

/// What `apply` did, window by window.
#[derive(Debug, Default)]
pub struct Applied {
    pub added: Vec<StoredWindow>,
    pub changed: Vec<StoredWindow>,
    pub removed: Vec<StoredWindow>,
    pub unchanged: Vec<StoredWindow>,
}

/// Makes the stored windows equal `specs` (keyed by name) in one transaction; with `prune`,
/// removes the windows the list does not name. Every entry is validated first; a refusal names
/// the entry.
pub async fn apply(
    db: &DatabaseConnection,
    specs: &[WindowSpec],
    prune: bool,
) -> ApiResult<Applied> {
    if specs.len() as u64 > states::MAX_WINDOWS {
        return Err(ApiError::BadInput(format!(
            "windows lists {} entries; at most {} are allowed",
            specs.len(),
            states::MAX_WINDOWS
        )));
    }
    let mut planned = Vec::with_capacity(specs.len());
    let mut names = std::collections::HashSet::new();
    for (i, spec) in specs.iter().enumerate() {
        let window = spec
            .window()
            .map_err(|e| ApiError::BadInput(format!("windows[{i}]: {}", e.message())))?;
        if !names.insert(spec.name.clone()) {
            return Err(ApiError::BadInput(format!(
                "windows[{i}]: the name {:?} is listed twice",
                spec.name
            )));
        }
        planned.push((spec, window));
    }
    let txn = db.begin().await?;
    let existing = list(&txn).await?;
    let mut touched = Vec::new();
    let mut unchanged_ids = Vec::new();
    for (spec, window) in &planned {
        match existing.iter().find(|w| w.name == spec.name) {
            Some(stored) if stored.window == *window => unchanged_ids.push(stored.id),
            Some(stored) => {
                replace(&txn, stored.id, spec, window).await?;
                touched.push((false, stored.id));
            }
            None => touched.push((true, insert(&txn, spec, window).await?)),
        }
    }
    let mut applied = Applied::default();
    if prune {
        for stored in &existing {
            if !names.contains(&stored.name) {
                txn.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "DELETE FROM maintenance_windows WHERE window_pk = $1",
                    [stored.id.into()],
                ))
                .await?;
                applied.removed.push(stored.clone());
            }
        }
    }
    let after = list(&txn).await?;
    txn.commit().await?;
    for w in after {
        if unchanged_ids.contains(&w.id) {
            applied.unchanged.push(w);
        } else if let Some((added, _)) = touched.iter().find(|(_, id)| *id == w.id) {
            if *added {
                applied.added.push(w);
            } else {
                applied.changed.push(w);
            }
        }
    }
    Ok(applied)
}

/// The time maintenance windows cover for each of `targets` (id, tags) within
/// [since, until), merged: what their uptime leaves out. Without `since`, the last 366 days.
pub async fn covered(
    db: &DatabaseConnection,
    targets: &[(i32, Vec<String>)],
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> ApiResult<Vec<(i32, DateTime<Utc>, DateTime<Utc>)>> {
    let windows = list(db).await?;
    if windows.is_empty() {
        return Ok(Vec::new());
    }
    let until = until.unwrap_or_else(Utc::now);
    let since = since.unwrap_or(until - TimeDelta::days(366));
    if until <= since {
        return Ok(Vec::new());
    }
    let coverage = states::Coverage::new(&windows, since, until);
    let mut out = Vec::new();
    for (target, tags) in targets {
        for (start, end) in coverage.intervals(*target, tags) {
            out.push((*target, start, end));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> WindowSpec {
        WindowSpec {
            name: "nightly".into(),
            cron: Some("30 2 * * *".into()),
            time_zone: Some("Europe/Berlin".into()),
            duration_minutes: Some(60),
            all_targets: true,
            ..Default::default()
        }
    }

    #[test]
    fn bad_windows_are_refused_naming_the_field() {
        assert!(spec().window().is_ok());
        let at = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        for (changed, field) in [
            (
                WindowSpec {
                    cron: Some("61 * * * *".into()),
                    ..spec()
                },
                "cron: ",
            ),
            (
                WindowSpec {
                    time_zone: Some("Mars/Olympus".into()),
                    ..spec()
                },
                "timeZone: ",
            ),
            (
                WindowSpec {
                    duration_minutes: Some(0),
                    ..spec()
                },
                "durationMinutes: ",
            ),
            (
                WindowSpec {
                    duration_minutes: Some(20_000),
                    ..spec()
                },
                "durationMinutes: ",
            ),
            (
                WindowSpec {
                    time_zone: None,
                    ..spec()
                },
                "timeZone: ",
            ),
            (
                WindowSpec {
                    cron: None,
                    time_zone: None,
                    duration_minutes: None,
                    from: Some(at("2026-12-01T10:00:00Z")),
                    until: Some(at("2026-12-01T09:00:00Z")),
                    ..spec()
                },
                "until: ",
            ),
            (
                WindowSpec {
                    from: Some(at("2026-12-01T10:00:00Z")),
                    ..spec()
                },
                "cron: ",
            ),
            (
                WindowSpec {
                    tags: vec!["team:*x".into()],
                    all_targets: false,
                    ..spec()
                },
                "tags: ",
            ),
            (
                WindowSpec {
                    target_ids: vec![1],
                    ..spec()
                },
                "targetIds: ",
            ),
            (
                WindowSpec {
                    name: " padded".into(),
                    ..spec()
                },
                "name: ",
            ),
        ] {
            let err = changed.window().unwrap_err();
            assert_eq!(err.code(), "BAD_USER_INPUT");
            assert!(
                err.message().starts_with(field),
                "{field}: {}",
                err.message()
            );
        }
    }
}
