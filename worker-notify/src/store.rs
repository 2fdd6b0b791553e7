//! The notification worker's statements: grouping waiting notifications into deliveries,
//! claiming due deliveries, and recording each attempt.
//!
//! Guarantees, with any number of workers:
//! - **grouped once**: a channel's waiting notifications are grouped by whoever holds the
//!   channel's row lock (`FOR NO KEY UPDATE SKIP LOCKED`); a notification joins exactly one
//!   delivery. A channel is grouped again only `window` after its last group (storm control):
//!   the first change of a quiet channel goes out at once, a storm's changes wait for the
//!   window and leave as one message.
//! - **claimed once at a time**: a due delivery is claimed with `FOR UPDATE SKIP LOCKED`; the
//!   claim is a lease (`due_at` moves to the end of the attempt's time): a worker that dies
//!   mid-send leaves it due again when the lease ends, and the next attempt carries the same
//!   message id. An outcome is written only by the claim that made the attempt.
//! - **disabled channels wait**: their notifications are neither grouped nor sent until the
//!   channel is enabled again.
//! - **in order**: a delivery is claimed only when no earlier one of its sequence key is still
//!   pending (a channel's messages, or PagerDuty's events of one target, one after the other);
//!   a channel's message that failed [`ORDER_ATTEMPTS`] times stops holding back the later ones.
//! - **every attempt logged**: the attempt's row is written with the claim; one whose worker
//!   died is marked `interrupted` by the next claim.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::notify::{ChannelKind, Event};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, TransactionTrait};
use states::{bigints, ints, stmt, texts};

use crate::channel::{Channel, Secrets, Settings};
use crate::message::{Change, Message};
use crate::send::{Sent, Verdict};

/// Most changes in one message; a bigger storm leaves in several.
pub const MAX_PER_MESSAGE: usize = 1_000;
/// Most channels grouped per round.
const CHANNELS_PER_ROUND: i64 = 100;

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// What a grouping round made.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Grouped {
    pub deliveries: u64,
    pub notifications: u64,
}

/// Most messages made for one grouping channel per round: a storm of up to 50,000 changes
/// leaves in one round. PagerDuty's events (one per change) are made up to
/// [`MAX_PER_MESSAGE`] per round, rounds following each other while any are made.
const MESSAGES_PER_CHANNEL: usize = 50;

/// Removes waiting notifications whose channel is gone (removed while the ingest worker queued
/// for it: the outbox has no foreign key, see the table); how many.
pub async fn drop_orphans(db: &DatabaseConnection) -> Result<u64, DbErr> {
    Ok(db
        .execute_raw(stmt(
            "DELETE FROM notifications n WHERE n.delivery_fk IS NULL \
               AND NOT EXISTS (SELECT 1 FROM notification_channels c \
                               WHERE c.channel_pk = n.channel_fk)",
            vec![],
        ))
        .await?
        .rows_affected())
}

/// Groups the waiting notifications of the channels due — never grouped, last grouped at least
/// `window` ago, or not grouping at all (PagerDuty) — into deliveries.
pub async fn group(
    db: &DatabaseConnection,
    window: Duration,
    retry_for: Duration,
) -> Result<Grouped, DbErr> {
    let txn = db.begin().await?;
    let channels = txn
        .query_all_raw(stmt(
            "SELECT c.channel_pk, c.kind FROM notification_channels c \
             WHERE c.enabled \
               AND (c.last_grouped_at IS NULL OR c.kind = 'pagerduty' \
                    OR c.last_grouped_at <= now() - $1 * interval '1 millisecond') \
               AND EXISTS (SELECT 1 FROM notifications n \
                           WHERE n.channel_fk = c.channel_pk AND n.delivery_fk IS NULL) \
             ORDER BY c.channel_pk LIMIT $2 \
             FOR NO KEY UPDATE SKIP LOCKED",
            vec![millis(window).into(), CHANNELS_PER_ROUND.into()],
        ))
        .await?;
    let mut grouped = Grouped::default();
    let mut grouped_channels = Vec::new();
    for row in &channels {
        let channel: i64 = row.try_get_by_index(0)?;
        let kind: String = row.try_get_by_index(1)?;
        let groups = ChannelKind::parse(&kind).is_none_or(ChannelKind::groups);
        let per_message = if groups { MAX_PER_MESSAGE } else { 1 };
        let waiting = txn
            .query_all_raw(stmt(
                "SELECT notification_pk, urltarget_fk FROM notifications \
                 WHERE channel_fk = $1 AND delivery_fk IS NULL \
                 ORDER BY notification_pk LIMIT $2 FOR UPDATE",
                vec![
                    channel.into(),
                    ((MAX_PER_MESSAGE * if groups { MESSAGES_PER_CHANNEL } else { 1 }) as i64)
                        .into(),
                ],
            ))
            .await?;
        let mut ids: Vec<i64> = Vec::with_capacity(waiting.len());
        let mut keys: Vec<String> = Vec::new();
        for (i, row) in waiting.iter().enumerate() {
            ids.push(row.try_get_by_index(0)?);
            let target: i32 = row.try_get_by_index(1)?;
            // One delivery per `per_message` notifications, in their order; its key orders it
            // after the channel's earlier ones (PagerDuty: after the target's earlier events).
            if i % per_message == 0 {
                keys.push(if groups {
                    channel.to_string()
                } else {
                    format!("{channel}:{target}")
                });
            }
        }
        if ids.is_empty() {
            continue;
        }
        let made = txn
            .query_all_raw(stmt(
                "INSERT INTO notification_deliveries (channel_fk, sequence_key, give_up_at) \
                 SELECT $1, k, now() + $2 * interval '1 millisecond' \
                 FROM unnest($3::text[]) WITH ORDINALITY AS u(k, i) ORDER BY i \
                 RETURNING delivery_pk",
                vec![channel.into(), millis(retry_for).into(), texts(keys)],
            ))
            .await?;
        let mut deliveries: Vec<i64> = made
            .iter()
            .map(|r| r.try_get_by_index(0))
            .collect::<Result<_, _>>()?;
        deliveries.sort_unstable();
        let assigned: Vec<i64> = (0..ids.len())
            .map(|i| deliveries[i / per_message])
            .collect();
        txn.execute_raw(stmt(
            "UPDATE notifications n SET delivery_fk = u.d \
             FROM unnest($1::bigint[], $2::bigint[]) AS u(n, d) \
             WHERE n.notification_pk = u.n",
            vec![bigints(ids.iter().copied()), bigints(assigned)],
        ))
        .await?;
        grouped.deliveries += deliveries.len() as u64;
        grouped.notifications += ids.len() as u64;
        grouped_channels.push(channel);
    }
    if !grouped_channels.is_empty() {
        txn.execute_raw(stmt(
            "UPDATE notification_channels SET last_grouped_at = now() \
             WHERE channel_pk = ANY($1)",
            vec![bigints(grouped_channels)],
        ))
        .await?;
    }
    txn.commit().await?;
    Ok(grouped)
}

/// A claimed delivery, ready to send.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery: i64,
    pub claim: String,
    pub attempt: i32,
    pub give_up_at: DateTime<Utc>,
    pub channel: Channel,
    pub message: Message,
}

/// Attempts after which a channel's failing message stops holding back its later ones (they
/// then go out beside it). PagerDuty's events of one target always wait for each other: a
/// resolve must not overtake its trigger.
const ORDER_ATTEMPTS: i32 = 5;

/// Claims up to `limit` due deliveries for an attempt each, leased for `lease`; with their
/// channels and messages. A delivery's first attempt starts its `retry_for` (one that waited
/// behind another gets its full time). A delivery whose notifications are gone (its channel's history
/// removed by hand) is closed as failed at once.
pub async fn claim(
    db: &DatabaseConnection,
    limit: usize,
    lease: Duration,
    retry_for: Duration,
) -> Result<Vec<Claimed>, DbErr> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    let rows = db
        .query_all_raw(stmt(
            "WITH due AS ( \
                 SELECT d.delivery_pk FROM notification_deliveries d \
                 WHERE d.status = 'pending' AND d.due_at <= now() \
                   AND EXISTS (SELECT 1 FROM notification_channels c \
                       WHERE c.channel_pk = d.channel_fk AND c.enabled) \
                   AND NOT EXISTS (SELECT 1 FROM notification_deliveries e \
                       WHERE e.sequence_key = d.sequence_key AND e.status = 'pending' \
                         AND e.delivery_pk < d.delivery_pk \
                         AND (e.attempts < $3 OR strpos(e.sequence_key, ':') > 0)) \
                 ORDER BY d.due_at LIMIT $1 FOR UPDATE SKIP LOCKED), \
             claimed AS ( \
                 UPDATE notification_deliveries d SET attempts = d.attempts + 1, \
                     claim = gen_random_uuid(), due_at = now() + $2 * interval '1 millisecond', \
                     give_up_at = CASE WHEN d.attempts = 0 \
                         THEN greatest(d.give_up_at, now() + $4 * interval '1 millisecond') \
                         ELSE d.give_up_at END \
                 FROM due WHERE d.delivery_pk = due.delivery_pk \
                 RETURNING d.delivery_pk, d.message_id, d.channel_fk, d.kind, d.attempts, \
                           d.claim, d.created_at, d.give_up_at), \
             interrupted AS ( \
                 UPDATE notification_attempts a SET outcome = 'interrupted', finished_at = now() \
                 FROM claimed c WHERE a.delivery_fk = c.delivery_pk AND a.outcome IS NULL), \
             started AS ( \
                 INSERT INTO notification_attempts (delivery_fk, number) \
                 SELECT delivery_pk, attempts FROM claimed) \
             SELECT c.delivery_pk, c.message_id::text, c.kind, c.attempts, c.claim::text, \
                    c.created_at, c.give_up_at, ch.channel_pk, ch.name, ch.kind, \
                    ch.settings::text, ch.secrets::text, ch.template \
             FROM claimed c JOIN notification_channels ch ON ch.channel_pk = c.channel_fk",
            vec![
                (limit as i64).into(),
                millis(lease).into(),
                ORDER_ATTEMPTS.into(),
                millis(retry_for).into(),
            ],
        ))
        .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in &rows {
        let delivery: i64 = row.try_get_by_index(0)?;
        let kind: String = row.try_get_by_index(2)?;
        let channel_kind: String = row.try_get_by_index(9)?;
        let settings: String = row.try_get_by_index(10)?;
        let secrets: String = row.try_get_by_index(11)?;
        let channel = Channel {
            id: row.try_get_by_index(7)?,
            name: row.try_get_by_index(8)?,
            kind: ChannelKind::parse(&channel_kind).unwrap_or(ChannelKind::Webhook),
            settings: serde_json::from_str::<Settings>(&settings).unwrap_or_default(),
            secrets: serde_json::from_str::<Secrets>(&secrets).unwrap_or_default(),
            template: row.try_get_by_index(12)?,
        };
        claimed.push(Claimed {
            delivery,
            claim: row.try_get_by_index(4)?,
            attempt: row.try_get_by_index(3)?,
            give_up_at: row.try_get_by_index(6)?,
            channel,
            message: Message {
                id: row.try_get_by_index(1)?,
                created_at: row.try_get_by_index(5)?,
                changes: Vec::new(),
                test: kind == "test",
            },
        });
    }
    if claimed.is_empty() {
        return Ok(claimed);
    }
    let changes = load_changes(db, &claimed.iter().map(|c| c.delivery).collect::<Vec<_>>()).await?;
    let mut changes = changes;
    for c in &mut claimed {
        c.message.changes = changes.remove(&c.delivery).unwrap_or_default();
    }
    Ok(claimed)
}

/// The changes each delivery carries, in the order they were queued.
pub async fn load_changes(
    conn: &impl ConnectionTrait,
    deliveries: &[i64],
) -> Result<HashMap<i64, Vec<Change>>, DbErr> {
    let rows = conn
        .query_all_raw(stmt(
            "SELECT delivery_fk, urltarget_fk, url, event, from_state, to_state, since, cause, \
                    incident_fk, reminder \
             FROM notifications WHERE delivery_fk = ANY($1) \
             ORDER BY delivery_fk, notification_pk",
            vec![bigints(deliveries.iter().copied())],
        ))
        .await?;
    let mut changes: HashMap<i64, Vec<Change>> = HashMap::new();
    for row in &rows {
        let event: String = row.try_get_by_index(3)?;
        changes
            .entry(row.try_get_by_index(0)?)
            .or_default()
            .push(Change {
                target_id: row.try_get_by_index(1)?,
                url: row.try_get_by_index(2)?,
                event: Event::parse(&event).unwrap_or(Event::Down),
                from: row.try_get_by_index(4)?,
                to: row.try_get_by_index(5)?,
                since: row.try_get_by_index(6)?,
                cause: row.try_get_by_index(7)?,
                incident_id: row.try_get_by_index(8)?,
                reminder: row.try_get_by_index(9)?,
            });
    }
    Ok(changes)
}

/// An attempt's outcome, to record.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub delivery: i64,
    pub claim: String,
    pub attempt: i32,
    pub sent: Sent,
    /// `delivered`, `failed`, or `pending` again.
    pub status: &'static str,
    /// For `pending`: when to try again.
    pub retry_in: Duration,
}

/// Records `outcomes`: each delivery's new status (only where the claim is still the one that
/// made the attempt) and each attempt's row (kept even when the claim was lost: the log says
/// what happened).
pub async fn record(db: &DatabaseConnection, outcomes: &[Outcome]) -> Result<(), DbErr> {
    if outcomes.is_empty() {
        return Ok(());
    }
    let o = outcomes;
    // Answers and errors come from `Sender::send`, which leaves no NUL in them.
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    db.execute_raw(stmt(
        "WITH o AS ( \
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], \
                                  $5::bigint[], $6::int[], $7::text[], $8::text[], $9::text[], \
                                  $10::bigint[]) \
                 AS o(d, cl, n, st, wait, code, ans, err, oc, ra)), \
         delivery AS ( \
             UPDATE notification_deliveries d SET status = o.st, claim = NULL, \
                 due_at = CASE WHEN o.st = 'pending' \
                              THEN now() + o.wait * interval '1 millisecond' ELSE d.due_at END, \
                 finished_at = CASE WHEN o.st <> 'pending' THEN now() END, \
                 last_status = NULLIF(o.code, -1), last_answer = NULLIF(o.ans, ''), \
                 last_error = NULLIF(o.err, '') \
             FROM o WHERE d.delivery_pk = o.d AND d.claim = o.cl::uuid) \
         UPDATE notification_attempts a SET finished_at = now(), outcome = o.oc, \
             http_status = NULLIF(o.code, -1), answer = NULLIF(o.ans, ''), \
             error = NULLIF(o.err, ''), retry_after_ms = NULLIF(o.ra, -1) \
         FROM o WHERE a.delivery_fk = o.d AND a.number = o.n \
           AND (a.outcome IS NULL OR a.outcome = 'interrupted')",
        vec![
            bigints(o.iter().map(|o| o.delivery)),
            texts(o.iter().map(|o| o.claim.clone())),
            ints(o.iter().map(|o| o.attempt)),
            texts(o.iter().map(|o| o.status.to_owned())),
            bigints(o.iter().map(|o| millis(o.retry_in))),
            ints(o.iter().map(|o| o.sent.status.unwrap_or(-1))),
            texts(o.iter().map(|o| opt(&o.sent.answer))),
            texts(o.iter().map(|o| opt(&o.sent.error))),
            texts(o.iter().map(|o| o.sent.verdict.as_str().to_owned())),
            bigints(o.iter().map(|o| o.sent.retry_after.map_or(-1, millis))),
        ],
    ))
    .await?;
    Ok(())
}

/// What becomes of a delivery after an attempt: its status and, when it is tried again, in how
/// long — the backoff (`backoff`, for this attempt) or the wait the receiver asked for, the
/// longer; failed when that would be after `give_up_at`.
pub fn next_step(
    sent: &Sent,
    backoff: Duration,
    give_up_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (&'static str, Duration) {
    match sent.verdict {
        Verdict::Delivered => ("delivered", Duration::ZERO),
        Verdict::Failed => ("failed", Duration::ZERO),
        Verdict::Retry => {
            let wait = sent.retry_after.map_or(backoff, |asked| asked.max(backoff));
            let next = now + chrono::TimeDelta::from_std(wait).unwrap_or(chrono::TimeDelta::MAX);
            if next > give_up_at {
                ("failed", Duration::ZERO)
            } else {
                ("pending", wait)
            }
        }
    }
}

/// The backoff before attempt `attempt + 1`: `first` doubling per attempt up to `max`, with
/// "equal jitter" (half fixed, half random) so that workers retrying together spread out while
/// the waits still grow from one attempt to the next.
pub fn backoff(first: Duration, max: Duration, attempt: i32, random: u32) -> Duration {
    let exp = u32::try_from(attempt.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    let full = first.saturating_mul(1u32 << exp).min(max);
    let half = full / 2;
    half + half.mul_f64(f64::from(random) / f64::from(u32::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(verdict: Verdict, retry_after: Option<Duration>) -> Sent {
        Sent {
            verdict,
            status: None,
            answer: None,
            error: None,
            retry_after,
        }
    }

    #[test]
    fn backoff_grows_with_jitter_up_to_its_cap() {
        let (first, max) = (Duration::from_secs(1), Duration::from_secs(60));
        let mut previous_most = Duration::ZERO;
        for attempt in 1..=6 {
            let least = backoff(first, max, attempt, 0);
            let most = backoff(first, max, attempt, u32::MAX);
            assert!(least >= previous_most, "attempt {attempt}: {least:?}");
            assert_eq!(most, least * 2);
            previous_most = most;
        }
        assert_eq!(backoff(first, max, 30, u32::MAX), max);
    }

    #[test]
    fn a_retry_waits_what_the_receiver_asked_and_gives_up_in_time() {
        let now = Utc::now();
        let later = now + chrono::TimeDelta::hours(24);
        let second = Duration::from_secs(1);
        assert_eq!(
            next_step(
                &sent(Verdict::Retry, Some(Duration::from_secs(5))),
                second,
                later,
                now
            ),
            ("pending", Duration::from_secs(5))
        );
        assert_eq!(
            next_step(&sent(Verdict::Retry, None), second, later, now),
            ("pending", second)
        );
        assert_eq!(
            next_step(&sent(Verdict::Retry, None), second, now, now).0,
            "failed"
        );
        assert_eq!(
            next_step(&sent(Verdict::Failed, None), second, later, now).0,
            "failed"
        );
        assert_eq!(
            next_step(&sent(Verdict::Delivered, None), second, later, now).0,
            "delivered"
        );
    }
}
