//! States and incidents (#13), decided in the batch's transaction: the batch's new results are
//! applied, in slot order per target, to each target's stored tracker (`entity::state`), and
//! the trackers, the incidents they opened or resolved, and a `pg_notify` per state change are
//! written before the commit that also stores the rows and the consumer positions. A crash
//! before the commit loses nothing (the batch is read again and decided again); after it, the
//! rows are stored and their results decide nothing twice (a repeated slot is not inserted, and
//! a tracker ignores slots at or before its last one).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use entity::state::{Decision, Observation, Thresholds, Tracker};
use entity::{Verdict, channels};
use sea_orm::sea_query::{ArrayType, Value};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, Statement};

use crate::store::Row;

fn array(ty: ArrayType, values: Vec<Value>) -> Value {
    Value::Array(ty, Some(Box::new(values)))
}

/// A newly stored result: its key and the row it came from.
pub struct Stored<'a> {
    pub id: i64,
    pub row: &'a Row,
}

/// Applies `stored` to the trackers of their targets; returns how many state changes it made.
pub async fn decide(txn: &DatabaseTransaction, stored: &[Stored<'_>]) -> Result<u64, DbErr> {
    if stored.is_empty() {
        return Ok(0);
    }
    let mut by_target: BTreeMap<i32, Vec<&Stored<'_>>> = BTreeMap::new();
    for s in stored {
        by_target.entry(s.row.target_id).or_default().push(s);
    }
    let ids: Vec<Value> = by_target.keys().map(|id| Value::Int(Some(*id))).collect();
    // The targets' trackers (locked: one writer per target, whoever owns its partition) and
    // thresholds.
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT t.urltargets_pk, s.tracker::text, t.failures_before_down, t.successes_before_up \
             FROM urltargets t LEFT JOIN target_states s ON s.urltarget_fk = t.urltargets_pk \
             WHERE t.urltargets_pk = ANY($1) \
             ORDER BY t.urltargets_pk FOR NO KEY UPDATE OF t",
            [array(ArrayType::Int, ids)],
        ))
        .await?;
    let defaults = Thresholds::default();
    let mut known: HashMap<i32, (Tracker, Thresholds)> = HashMap::new();
    for row in rows {
        let id: i32 = row.try_get_by_index(0)?;
        let tracker: Option<String> = row.try_get_by_index(1)?;
        let failures: Option<i32> = row.try_get_by_index(2)?;
        let successes: Option<i32> = row.try_get_by_index(3)?;
        let tracker = match tracker {
            Some(json) => serde_json::from_str(&json)
                .map_err(|e| DbErr::Custom(format!("target {id}'s stored tracker: {e}")))?,
            None => Tracker::default(),
        };
        let thresholds = Thresholds {
            failures_before_down: failures
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(defaults.failures_before_down),
            successes_before_up: successes
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(defaults.successes_before_up),
        };
        known.insert(id, (tracker, thresholds));
    }

    let mut changed_targets: Vec<(i32, Tracker)> = Vec::new();
    let mut opened = Vec::new();
    let mut resolved = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    for (target, mut results) in by_target {
        let Some((mut tracker, thresholds)) = known.remove(&target) else {
            continue; // removed meanwhile: its rows were refused too
        };
        results.sort_by_key(|s| (s.row.scheduled_at, s.id));
        let before = tracker.clone();
        for s in results {
            let verdict = match s.row.outcome {
                "up" => Verdict::Up,
                "degraded" => Verdict::Degraded,
                _ => Verdict::Down,
            };
            let observation = Observation {
                slot: s.row.scheduled_at,
                verdict,
                cause: s.row.failure_class.clone(),
                result_id: s.id,
            };
            for decision in tracker.apply(thresholds, &observation) {
                match decision {
                    Decision::Changed { from, to, since } => notes.push(format!(
                        "{target},{},{},{}",
                        from.as_str(),
                        to.as_str(),
                        since.to_rfc3339()
                    )),
                    Decision::Opened(incident) => opened.push((target, incident)),
                    Decision::Resolved(incident) => resolved.push((target, incident)),
                }
            }
        }
        if tracker != before {
            changed_targets.push((target, tracker));
        }
    }

    if !changed_targets.is_empty() {
        let col = |f: &dyn Fn(&(i32, Tracker)) -> Value| {
            changed_targets.iter().map(f).collect::<Vec<_>>()
        };
        let time = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO target_states (urltarget_fk, state, since, last_slot, tracker) \
             SELECT t, s, NULLIF(si, '')::timestamptz, NULLIF(l, '')::timestamptz, j::jsonb \
             FROM unnest($1::int[], $2::text[], $3::text[], $4::text[], $5::text[]) AS u(t, s, si, l, j) \
             ON CONFLICT (urltarget_fk) DO UPDATE SET state = EXCLUDED.state, since = EXCLUDED.since, \
                 last_slot = EXCLUDED.last_slot, tracker = EXCLUDED.tracker, updated_at = now()",
            [
                array(ArrayType::Int, col(&|(t, _)| Value::Int(Some(*t)))),
                array(
                    ArrayType::String,
                    col(&|(_, k)| Value::String(Some(k.shown().as_str().to_owned()))),
                ),
                array(ArrayType::String, col(&|(_, k)| Value::String(Some(time(k.since))))),
                array(
                    ArrayType::String,
                    col(&|(_, k)| Value::String(Some(time(k.last_slot)))),
                ),
                array(
                    ArrayType::String,
                    col(&|(_, k)| {
                        Value::String(Some(
                            serde_json::to_string(k).expect("a tracker is plain data"),
                        ))
                    }),
                ),
            ],
        ))
        .await?;
    }
    for (target, incident) in &opened {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "INSERT INTO incidents (urltarget_fk, cause, opened_at, confirmed_at, opened_by) \
             VALUES ($1, $2, $3, $4, $5)",
            [
                (*target).into(),
                incident.cause.clone().into(),
                incident.opened_at.into(),
                incident.confirmed_at.into(),
                incident.opened_by.into(),
            ],
        ))
        .await?;
    }
    for (target, incident) in &resolved {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "UPDATE incidents SET resolved_at = $3, closed_by = $4 \
             WHERE urltarget_fk = $1 AND opened_at = $2 AND resolved_at IS NULL",
            [
                (*target).into(),
                incident.opened_at.into(),
                incident.resolved_at.into(),
                incident.closed_by.into(),
            ],
        ))
        .await?;
    }
    if !notes.is_empty() {
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_notify($1, n) FROM unnest($2::text[]) n",
            [
                channels::STATES.into(),
                array(
                    ArrayType::String,
                    notes
                        .iter()
                        .map(|n| Value::String(Some(n.clone())))
                        .collect(),
                ),
            ],
        ))
        .await?;
    }
    Ok(notes.len() as u64)
}
