//! The notification outbox (#14): for each state change, one row per channel whose routes hear
//! it, written in the transaction that decided the change (so a change is queued exactly when
//! it is stored, never before, never lost). `notifications_once` (channel, target, event, since,
//! reminder) keeps a change to one row per channel however many routes match and however often a
//! batch is retried. `pingpipe-notify` groups the rows into messages and delivers them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeDelta, Utc};
use entity::notify::{Event, Facts, Route, parse_events};
use entity::state::StateChange;
use sea_orm::{ConnectionTrait, DbErr};

use crate::{CAUSE_SQL, Coverage, bigints, ints, load_windows, scope_of, stmt, tags_of, texts};

/// The enabled routes, by id (a disabled channel's routes too: its changes wait for it to be
/// enabled again). A route that does not read back (changed by hand in SQL) is skipped and
/// logged.
pub async fn load_routes(conn: &impl ConnectionTrait) -> Result<Vec<Route>, DbErr> {
    let rows = conn
        .query_all_raw(stmt(
            "SELECT r.route_pk, r.channel_fk, r.all_targets, r.target_ids::text, \
                    r.tag_filters::text, r.events::text, r.remind_every_minutes, \
                    r.silence_in_maintenance \
             FROM notification_routes r WHERE r.enabled ORDER BY r.route_pk",
            vec![],
        ))
        .await?;
    let mut routes = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: i64 = row.try_get_by_index(0)?;
        let all: bool = row.try_get_by_index(2)?;
        let ids: String = row.try_get_by_index(3)?;
        let filters: String = row.try_get_by_index(4)?;
        let events: String = row.try_get_by_index(5)?;
        let remind: Option<i32> = row.try_get_by_index(6)?;
        match scope_of(all, &ids, &filters) {
            Ok(scope) => routes.push(Route {
                id,
                channel: row.try_get_by_index(1)?,
                scope,
                events: parse_events(&events),
                remind_every_minutes: remind.and_then(|m| u32::try_from(m).ok()),
                silence_in_maintenance: row.try_get_by_index(7)?,
            }),
            Err(e) => tracing::error!(
                route_id = id,
                error = %e,
                "Notification route {id} is not valid as stored; it hears nothing."
            ),
        }
    }
    Ok(routes)
}

/// One notification to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub channel: i64,
    pub route: i64,
    pub target: i32,
    pub url: String,
    pub event: Event,
    pub change: StateChange,
    pub cause: Option<String>,
    pub incident: Option<i64>,
    pub reminder: i32,
}

/// What a changed target is, for its notifications.
struct Changed {
    url: String,
    tags: Vec<String>,
    cause: Option<String>,
    incident: Option<i64>,
    /// The change resolved that incident.
    resolved: bool,
    /// The change came with the target's first result.
    first: bool,
}

/// Queues the notifications of `changes` (decided in `txn`): for each change and each route
/// that covers its target and hears it, one row for the route's channel — unless the route is
/// silent in maintenance and a window covers the target when the new state began. Returns how
/// many rows were written.
pub async fn enqueue(txn: &impl ConnectionTrait, changes: &[StateChange]) -> Result<u64, DbErr> {
    if changes.is_empty() {
        return Ok(0);
    }
    let routes = load_routes(txn).await?;
    if routes.is_empty() {
        return Ok(0);
    }
    // The target's URL and tags, why the new state's first result failed, the incident the
    // change opened or resolved (for PagerDuty's dedup_key) and whether it resolved it, and
    // whether the target has results before (a first result is no recovery).
    let rows = txn
        .query_all_raw(stmt(
            &format!(
                "SELECT c.i, u.urltarget, u.tags::text, \
                    (SELECT {CAUSE_SQL} FROM monitor_results r \
                     WHERE r.urltarget_fk = c.t AND r.scheduled_at = c.s::timestamptz \
                       AND r.outcome <> 'up' LIMIT 1), \
                    i.incident_pk, coalesce(i.resolved_at = c.s::timestamptz, false), \
                    NOT EXISTS (SELECT 1 FROM monitor_results r \
                                WHERE r.urltarget_fk = c.t AND r.scheduled_at < c.s::timestamptz) \
                 FROM unnest($1::int[], $2::int[], $3::text[]) AS c(i, t, s) \
                 JOIN urltargets u ON u.urltargets_pk = c.t \
                 LEFT JOIN LATERAL (SELECT i.incident_pk, i.resolved_at FROM incidents i \
                     WHERE i.urltarget_fk = c.t \
                       AND (i.opened_at = c.s::timestamptz OR i.resolved_at = c.s::timestamptz) \
                     ORDER BY i.opened_at DESC LIMIT 1) i ON true"
            ),
            vec![
                ints(0..changes.len() as i32),
                ints(changes.iter().map(|c| c.target)),
                texts(changes.iter().map(|c| c.since.to_rfc3339())),
            ],
        ))
        .await?;
    let mut changed: BTreeMap<usize, Changed> = BTreeMap::new();
    for row in &rows {
        let index: i32 = row.try_get_by_index(0)?;
        let tags: String = row.try_get_by_index(2)?;
        changed.insert(
            index as usize,
            Changed {
                url: row.try_get_by_index(1)?,
                tags: tags_of(&tags),
                cause: row.try_get_by_index(3)?,
                incident: row.try_get_by_index(4)?,
                resolved: row.try_get_by_index(5)?,
                first: row.try_get_by_index(6)?,
            },
        );
    }
    let coverage = if routes.iter().any(|r| r.silence_in_maintenance) {
        let from = changes.iter().map(|c| c.since).min();
        let until = changes.iter().map(|c| c.since).max();
        match (from, until) {
            (Some(from), Some(until)) => Coverage::new(
                &load_windows(txn).await?,
                from,
                until + TimeDelta::milliseconds(1),
            ),
            _ => Coverage::default(),
        }
    } else {
        Coverage::default()
    };
    let mut queued = Vec::new();
    let mut seen = BTreeSet::new();
    for (index, change) in changes.iter().enumerate() {
        // A target removed meanwhile has no row: nobody to tell about it.
        let Some(target) = changed.get(&index) else {
            continue;
        };
        let silenced = coverage.covers(change.target, &target.tags, change.since);
        for route in &routes {
            if !route.covers(change.target, &target.tags)
                || (silenced && route.silence_in_maintenance)
            {
                continue;
            }
            let facts = Facts {
                cause: target.cause.as_deref(),
                resolved_incident: target.resolved,
                first_result: target.first,
            };
            let Some(event) = Event::for_route(change.from, change.to, &facts, &route.events)
            else {
                continue;
            };
            if !seen.insert((route.channel, change.target, event, change.since)) {
                continue;
            }
            queued.push(Queued {
                channel: route.channel,
                route: route.id,
                target: change.target,
                url: target.url.clone(),
                event,
                change: change.clone(),
                cause: target.cause.clone(),
                incident: target.incident,
                reminder: 0,
            });
        }
    }
    write(txn, &queued).await
}

/// Writes `queued` (a notification already stored is skipped); how many rows were written.
pub async fn write(txn: &impl ConnectionTrait, queued: &[Queued]) -> Result<u64, DbErr> {
    if queued.is_empty() {
        return Ok(0);
    }
    let q = queued;
    let written = txn
        .execute_raw(stmt(
            "INSERT INTO notifications (channel_fk, route_fk, urltarget_fk, url, event, \
                 from_state, to_state, since, cause, incident_fk, reminder) \
             SELECT ch, ro, t, u, e, f, st, s::timestamptz, NULLIF(c, ''), NULLIF(i, -1), rm \
             FROM unnest($1::bigint[], $2::bigint[], $3::int[], $4::text[], $5::text[], \
                         $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[], \
                         $11::int[]) AS n(ch, ro, t, u, e, f, st, s, c, i, rm) \
             ON CONFLICT ON CONSTRAINT notifications_once DO NOTHING",
            vec![
                bigints(q.iter().map(|n| n.channel)),
                bigints(q.iter().map(|n| n.route)),
                ints(q.iter().map(|n| n.target)),
                texts(q.iter().map(|n| n.url.clone())),
                texts(q.iter().map(|n| n.event.as_str().to_owned())),
                texts(q.iter().map(|n| n.change.from.as_str().to_owned())),
                texts(q.iter().map(|n| n.change.to.as_str().to_owned())),
                texts(q.iter().map(|n| n.change.since.to_rfc3339())),
                texts(q.iter().map(|n| n.cause.clone().unwrap_or_default())),
                bigints(q.iter().map(|n| n.incident.unwrap_or(-1))),
                ints(q.iter().map(|n| n.reminder)),
            ],
        ))
        .await?
        .rows_affected();
    Ok(written)
}

/// Queues the reminders due at `now`: for every route with `remind_every_minutes`, each DOWN
/// target it covers (not paused, not in maintenance when the route is silent then) gets the
/// n-th reminder once n periods have passed since it went down (only the latest n: missed ones
/// are not made up). `minute` is the length of a minute (shorter in tests). Safe to run from
/// any number of workers at once: a reminder is unique like any notification.
pub async fn remind(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    minute: std::time::Duration,
) -> Result<u64, DbErr> {
    let routes: Vec<Route> = load_routes(conn)
        .await?
        .into_iter()
        .filter(|r| r.remind_every_minutes.is_some() && r.events.contains(&Event::Down))
        .collect();
    if routes.is_empty() {
        return Ok(0);
    }
    let rows = conn
        .query_all_raw(stmt(
            "SELECT s.urltarget_fk, u.urltarget, u.tags::text, s.state_since, i.cause, \
                    i.incident_pk \
             FROM target_states s \
             JOIN urltargets u ON u.urltargets_pk = s.urltarget_fk \
             LEFT JOIN incidents i ON i.urltarget_fk = s.urltarget_fk AND i.resolved_at IS NULL \
             WHERE s.state = 'down' AND NOT u.paused AND s.state_since IS NOT NULL \
             ORDER BY s.urltarget_fk",
            vec![],
        ))
        .await?;
    let minute = TimeDelta::from_std(minute).unwrap_or(TimeDelta::minutes(1));
    let mut down = Vec::with_capacity(rows.len());
    for row in &rows {
        let tags: String = row.try_get_by_index(2)?;
        let since: DateTime<Utc> = row.try_get_by_index(3)?;
        down.push((
            row.try_get_by_index::<i32>(0)?,
            row.try_get_by_index::<String>(1)?,
            tags_of(&tags),
            since,
            row.try_get_by_index::<Option<String>>(4)?,
            row.try_get_by_index::<Option<i64>>(5)?,
        ));
    }
    let coverage = if !down.is_empty() && routes.iter().any(|r| r.silence_in_maintenance) {
        Coverage::new(
            &load_windows(conn).await?,
            now,
            now + TimeDelta::milliseconds(1),
        )
    } else {
        Coverage::default()
    };
    let mut queued = Vec::new();
    for (target, url, tags, since, cause, incident) in &down {
        let silenced = coverage.covers(*target, tags, now);
        for route in &routes {
            let every = minute * route.remind_every_minutes.unwrap_or(1) as i32;
            let Some(n) = (now - *since)
                .num_milliseconds()
                .checked_div(every.num_milliseconds())
            else {
                continue;
            };
            if n < 1 || !route.covers(*target, tags) || (silenced && route.silence_in_maintenance) {
                continue;
            }
            queued.push(Queued {
                channel: route.channel,
                route: route.id,
                target: *target,
                url: url.clone(),
                event: Event::Reminder,
                change: StateChange {
                    target: *target,
                    from: entity::state::State::Down,
                    to: entity::state::State::Down,
                    since: *since,
                },
                cause: cause.clone(),
                incident: *incident,
                reminder: i32::try_from(n).unwrap_or(i32::MAX),
            });
        }
    }
    write(conn, &queued).await
}
