//! Target states and incidents, as the ingest worker decided them (see the `states` crate):
//! read in batches, paged newest first on (opened_at, id), and rebuilt on request.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::state::{State, Thresholds};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, FromQueryResult, Statement};

use crate::error::{ApiError, ApiResult};
use crate::service::results::id_array;

/// A target's stored state (what people see, apart from PAUSED, which is the target's flag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRow {
    pub state: State,
    pub since: Option<DateTime<Utc>>,
}

/// An incident as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct IncidentRow {
    pub incident_pk: i64,
    pub urltarget_fk: i32,
    pub state: String,
    pub cause: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub confirmed_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub opened_by: i64,
    pub closed_by: Option<i64>,
}

const INCIDENT_COLUMNS: &str = "incident_pk, urltarget_fk, state, cause, opened_at, confirmed_at, \
                                resolved_at, opened_by, closed_by";

/// The stored states of `targets` (one statement); a target without one has had no result.
pub async fn states_of(
    db: &DatabaseConnection,
    targets: &[i32],
) -> ApiResult<HashMap<i32, StateRow>> {
    #[derive(FromQueryResult)]
    struct Row {
        urltarget_fk: i32,
        state: String,
        state_since: Option<DateTime<Utc>>,
    }
    let rows = Row::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT urltarget_fk, state, state_since FROM target_states WHERE urltarget_fk = ANY($1)",
        [id_array(targets)],
    ))
    .all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let state = State::parse(&r.state).unwrap_or(State::Unknown);
            (
                r.urltarget_fk,
                StateRow {
                    state,
                    since: r.state_since,
                },
            )
        })
        .collect())
}

/// Where a page of incidents starts: strictly older than this (opened_at, id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct After {
    pub opened_at: DateTime<Utc>,
    pub id: i64,
}

/// Which incidents a list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentFilter {
    /// Only open (true) or only resolved (false) ones.
    pub open: Option<bool>,
    /// Incidents that overlap [since, until): open at some point of it.
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub target: Option<i32>,
    /// Only targets this tag filter selects.
    pub tag: Option<entity::maintenance::TagFilter>,
}

/// Up to `limit + 1` incidents newest first (by when they opened).
pub async fn incidents(
    db: &DatabaseConnection,
    limit: u64,
    after: Option<After>,
    filter: &IncidentFilter,
) -> ApiResult<Vec<IncidentRow>> {
    let sql = format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents \
         WHERE ($1::bool IS NULL OR (resolved_at IS NULL) = $1) \
           AND ($2::timestamptz IS NULL OR resolved_at IS NULL OR resolved_at > $2) \
           AND ($3::timestamptz IS NULL OR opened_at < $3) \
           AND ($4::int IS NULL OR urltarget_fk = $4) \
           AND ($5::text IS NULL OR urltarget_fk IN ( \
                SELECT urltargets_pk FROM urltargets WHERE tags @> jsonb_build_array($5::text))) \
           AND ($6::text IS NULL OR urltarget_fk IN ( \
                SELECT urltargets_pk FROM urltargets u, jsonb_array_elements_text(u.tags) AS tag(v) \
                WHERE starts_with(tag.v, $6::text))) \
           AND ($7::timestamptz IS NULL OR (opened_at, incident_pk) < ($7, $8)) \
         ORDER BY opened_at DESC, incident_pk DESC LIMIT $9"
    );
    let (tag, prefix) = crate::service::targets::tag_parameters(filter.tag.as_ref());
    let values = [
        filter.open.into(),
        filter.since.into(),
        filter.until.into(),
        filter.target.into(),
        tag.into(),
        prefix.into(),
        after.map(|a| a.opened_at).into(),
        after.map(|a| a.id).into(),
        ((limit + 1) as i64).into(),
    ];
    Ok(
        IncidentRow::find_by_statement(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .all(db)
        .await?,
    )
}

/// The latest `limit` incidents of each of `targets` (one statement).
pub async fn incidents_of(
    db: &DatabaseConnection,
    targets: &[i32],
    limit: u64,
) -> ApiResult<HashMap<i32, Vec<IncidentRow>>> {
    let sql = format!(
        "SELECT i.* FROM unnest($1::int[]) AS t(id) CROSS JOIN LATERAL ( \
           SELECT {INCIDENT_COLUMNS} FROM incidents WHERE urltarget_fk = t.id \
           ORDER BY opened_at DESC, incident_pk DESC LIMIT $2) AS i"
    );
    let rows = IncidentRow::find_by_statement(Statement::from_sql_and_values(
        DbBackend::Postgres,
        sql,
        [id_array(targets), (limit as i64).into()],
    ))
    .all(db)
    .await?;
    let mut by_target: HashMap<i32, Vec<IncidentRow>> = HashMap::new();
    for row in rows {
        by_target.entry(row.urltarget_fk).or_default().push(row);
    }
    Ok(by_target)
}

/// Most targets one `rebuildStates` may recompute: it runs within the request (and its time
/// limit); more is `pingpipe-ingest rebuild-states`' work.
pub const MAX_REBUILD_TARGETS: usize = 1_000;

/// Recomputes states and incidents (see `states::rebuild`) with the configured defaults.
pub async fn rebuild(
    db: &DatabaseConnection,
    since: Option<DateTime<Utc>>,
    targets: Option<Vec<i32>>,
    defaults: Thresholds,
) -> ApiResult<states::Rebuilt> {
    let count = match &targets {
        Some(t) => t.len(),
        None => {
            let row = db
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT count(*) FROM urltargets",
                ))
                .await?
                .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("count returned no row")))?;
            usize::try_from(row.try_get_by_index::<i64>(0)?).unwrap_or(usize::MAX)
        }
    };
    if count > MAX_REBUILD_TARGETS {
        return Err(ApiError::LimitExceeded(format!(
            "rebuildStates recomputes at most {MAX_REBUILD_TARGETS} targets in one call ({count} \
             asked); name them in targetIds, or run `pingpipe-ingest rebuild-states` for more"
        )));
    }
    Ok(states::rebuild(db, since, targets.as_deref(), defaults).await?)
}

/// A target's own thresholds (None: the configured default), as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OwnThresholds {
    pub failures_before_down: Option<i32>,
    pub successes_before_up: Option<i32>,
}

/// A change of them: a field left out stays, `Some(None)` goes back to the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThresholdsChange {
    pub failures_before_down: Option<Option<i32>>,
    pub successes_before_up: Option<Option<i32>>,
}

/// The largest threshold (the schema's CHECK says the same).
pub const MAX_THRESHOLD: i32 = 100;

impl OwnThresholds {
    pub fn of(model: &entity::urltargets::Model) -> OwnThresholds {
        OwnThresholds {
            failures_before_down: model.failures_before_down,
            successes_before_up: model.successes_before_up,
        }
    }

    /// These with `change` made, validated; the error names the field.
    pub fn changed(mut self, change: &ThresholdsChange) -> ApiResult<OwnThresholds> {
        for (name, value) in [
            ("failuresBeforeDown", change.failures_before_down),
            ("successesBeforeUp", change.successes_before_up),
        ] {
            if let Some(Some(n)) = value
                && !(1..=MAX_THRESHOLD).contains(&n)
            {
                return Err(ApiError::BadInput(format!(
                    "thresholds.{name}: must be between 1 and {MAX_THRESHOLD}, not {n}"
                )));
            }
        }
        if let Some(v) = change.failures_before_down {
            self.failures_before_down = v;
        }
        if let Some(v) = change.successes_before_up {
            self.successes_before_up = v;
        }
        Ok(self)
    }

    pub fn set_on(self, model: &mut entity::urltargets::ActiveModel) {
        model.failures_before_down = sea_orm::Set(self.failures_before_down);
        model.successes_before_up = sea_orm::Set(self.successes_before_up);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_below_one_or_above_the_bound_are_refused_naming_the_field() {
        let own = OwnThresholds::default();
        for (change, field) in [
            (
                ThresholdsChange {
                    failures_before_down: Some(Some(0)),
                    ..Default::default()
                },
                "thresholds.failuresBeforeDown",
            ),
            (
                ThresholdsChange {
                    successes_before_up: Some(Some(101)),
                    ..Default::default()
                },
                "thresholds.successesBeforeUp",
            ),
        ] {
            let err = own.changed(&change).unwrap_err();
            assert_eq!(err.code(), "BAD_USER_INPUT");
            assert!(err.message().starts_with(field), "{}", err.message());
        }
        let set = own
            .changed(&ThresholdsChange {
                failures_before_down: Some(Some(5)),
                successes_before_up: None,
            })
            .unwrap();
        assert_eq!(set.failures_before_down, Some(5));
        let reset = set
            .changed(&ThresholdsChange {
                failures_before_down: Some(None),
                successes_before_up: None,
            })
            .unwrap();
        assert_eq!(reset, OwnThresholds::default());
    }
}
