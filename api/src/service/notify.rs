//! Notifications (#14): channels (validated by `worker_notify::channel`, secrets write-only),
//! routes (which targets' changes, which events, to which channel), the delivery log (paged
//! newest first on (created_at, id)), test messages and redeliveries. What a channel sends is
//! `worker_notify`; who queues what is `states::outbox`.
//!
//! Secrets never leave this module except to `worker_notify::send` (a test message): rows hold
//! them in [`Secrets`], whose `Debug` says only which are set, and no error message repeats one.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::maintenance::Scope;
use entity::notify::{ChannelKind, Event};
use sea_orm::sea_query::{ArrayType, Value};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, FromQueryResult, SqlErr, Statement,
    TransactionTrait,
};
use worker_notify::channel::{Channel, Secrets, Settings};
use worker_notify::message::{Change, Message};
use worker_notify::send::{Sender, Sent, Verdict};

use crate::error::{ApiError, ApiResult};

/// Longest channel or route name (the tables' limit).
pub const MAX_NAME_CHARS: usize = 200;
/// Most channels stored.
pub const MAX_CHANNELS: u64 = 500;
/// Most routes stored.
pub const MAX_ROUTES: u64 = 2_000;
/// Longest reminder interval: a week, in minutes (the table's limit).
pub const MAX_REMIND_MINUTES: i32 = 10_080;
/// How long `redeliver` gives a delivery at least.
pub const REDELIVER_FOR: chrono::TimeDelta = chrono::TimeDelta::hours(24);

fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

fn refuse(field: &str, message: &str) -> ApiError {
    ApiError::BadInput(format!("{field}: {message}"))
}

fn no_row(what: &str) -> ApiError {
    ApiError::Internal(anyhow::anyhow!("{what} returned no row"))
}

fn bigints(values: impl IntoIterator<Item = i64>) -> Value {
    Value::Array(
        ArrayType::BigInt,
        Some(Box::new(
            values.into_iter().map(|v| Value::BigInt(Some(v))).collect(),
        )),
    )
}

/// A name as the tables take it: 1 to 200 characters, no surrounding spaces, no control
/// characters (the same rule as maintenance windows').
pub fn check_name(name: &str) -> ApiResult<()> {
    let trimmed = name.trim();
    if trimmed.is_empty() || trimmed.chars().count() > MAX_NAME_CHARS || trimmed != name {
        return Err(refuse(
            "name",
            &format!("must be 1 to {MAX_NAME_CHARS} characters, without surrounding spaces"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(refuse("name", "must not contain control characters"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Channels

/// A channel as given: its settings (shown) and the secrets given (write-only; those not given
/// keep their stored values on an update of the same kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelSpec {
    pub name: String,
    pub kind: ChannelKind,
    pub enabled: bool,
    pub settings: Settings,
    pub secrets: Secrets,
    pub template: Option<String>,
}

/// A channel as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelRow {
    pub id: i64,
    pub name: String,
    pub kind: ChannelKind,
    pub enabled: bool,
    pub settings: Settings,
    pub secrets: Secrets,
    pub template: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl ChannelRow {
    /// The channel as the sender takes it.
    pub fn channel(&self) -> Channel {
        Channel {
            id: self.id,
            name: self.name.clone(),
            kind: self.kind,
            settings: self.settings.clone(),
            secrets: self.secrets.clone(),
            template: self.template.clone(),
        }
    }

    /// What a spec would store over this row: the secrets it gives over the stored ones, or only
    /// its own when the kind changes (another kind's secrets mean nothing to it). When the spec
    /// sends elsewhere (another URL, SMTP server, port, security or user), every stored secret
    /// must be given again: otherwise anyone with a token could have a stored token, password,
    /// routing key or signing key sent to a server of theirs.
    fn secrets_for(&self, spec: &ChannelSpec) -> ApiResult<Secrets> {
        if spec.kind != self.kind {
            return Ok(spec.secrets.clone());
        }
        let destination = |s: &Settings| {
            (
                s.url.clone(),
                s.smtp_host.clone(),
                s.smtp_port,
                s.smtp_security,
                s.username.clone(),
            )
        };
        if destination(&self.settings) != destination(&spec.settings) {
            let given = spec.secrets.names();
            if let Some(missing) = self
                .secrets
                .names()
                .into_iter()
                .find(|n| !given.contains(n))
            {
                return Err(refuse(
                    missing,
                    "give it again: the channel now sends elsewhere, and a stored secret only \
                     goes where it went before",
                ));
            }
        }
        Ok(self.secrets.merged(&spec.secrets))
    }

    fn same_as(&self, spec: &ChannelSpec, secrets: &Secrets) -> bool {
        self.name == spec.name
            && self.kind == spec.kind
            && self.enabled == spec.enabled
            && self.settings == spec.settings
            && self.secrets == *secrets
            && self.template == spec.template
    }
}

impl ChannelSpec {
    /// Checks the spec with `secrets` (the ones it would store); every refusal names the input
    /// field.
    pub fn validate(&self, secrets: &Secrets) -> ApiResult<()> {
        check_name(&self.name)?;
        worker_notify::channel::validate(self.kind, &self.settings, secrets)
            .map_err(|e| refuse(e.field, &e.message))?;
        if let Some(template) = &self.template {
            worker_notify::message::validate_template(template)
                .map_err(|e| refuse("template", &e.0))?;
        }
        Ok(())
    }
}

#[derive(FromQueryResult)]
struct RawChannel {
    channel_pk: i64,
    name: String,
    kind: String,
    enabled: bool,
    settings: String,
    secrets: String,
    template: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl RawChannel {
    fn row(self) -> ChannelRow {
        ChannelRow {
            id: self.channel_pk,
            name: self.name,
            // The table's check allows only the kinds this build knows.
            kind: ChannelKind::parse(&self.kind).unwrap_or(ChannelKind::Webhook),
            enabled: self.enabled,
            settings: serde_json::from_str(&self.settings).unwrap_or_default(),
            secrets: serde_json::from_str(&self.secrets).unwrap_or_default(),
            template: self.template,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

const CHANNEL_COLUMNS: &str = "channel_pk, name, kind, enabled, settings::text AS settings, \
                               secrets::text AS secrets, template, created_at, updated_at";

/// Every channel, by id.
pub async fn channels(db: &impl ConnectionTrait) -> ApiResult<Vec<ChannelRow>> {
    let rows = RawChannel::find_by_statement(stmt(
        &format!("SELECT {CHANNEL_COLUMNS} FROM notification_channels ORDER BY channel_pk"),
        vec![],
    ))
    .all(db)
    .await?;
    Ok(rows.into_iter().map(RawChannel::row).collect())
}

fn channel_not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("no notification channel with id {id}"))
}

pub async fn channel(db: &impl ConnectionTrait, id: i64) -> ApiResult<ChannelRow> {
    channel_read(db, id, "").await
}

/// The channel, locked until `txn` ends: an update merges its secrets onto the stored ones, and
/// a concurrent update must not make either lose the other's.
async fn channel_for_update(txn: &impl ConnectionTrait, id: i64) -> ApiResult<ChannelRow> {
    channel_read(txn, id, " FOR UPDATE").await
}

async fn channel_read(db: &impl ConnectionTrait, id: i64, lock: &str) -> ApiResult<ChannelRow> {
    RawChannel::find_by_statement(stmt(
        &format!("SELECT {CHANNEL_COLUMNS} FROM notification_channels WHERE channel_pk = $1{lock}"),
        vec![id.into()],
    ))
    .one(db)
    .await?
    .map(RawChannel::row)
    .ok_or_else(|| channel_not_found(id))
}

fn channel_name_taken(e: sea_orm::DbErr, name: &str) -> ApiError {
    match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => refuse(
            "name",
            &format!("a notification channel named {name:?} exists already"),
        ),
        _ => e.into(),
    }
}

async fn count(db: &impl ConnectionTrait, table: &str) -> ApiResult<u64> {
    let row = db
        .query_one_raw(stmt(&format!("SELECT count(*) FROM {table}"), vec![]))
        .await?
        .ok_or_else(|| no_row("count"))?;
    Ok(row.try_get_by_index::<i64>(0)? as u64)
}

fn channel_values(spec: &ChannelSpec, secrets: &Secrets) -> Vec<Value> {
    vec![
        spec.name.clone().into(),
        spec.kind.as_str().into(),
        spec.enabled.into(),
        serde_json::to_string(&spec.settings)
            .expect("settings serialize")
            .into(),
        serde_json::to_string(secrets)
            .expect("secrets serialize")
            .into(),
        spec.template.clone().into(),
    ]
}

async fn insert_channel(
    db: &impl ConnectionTrait,
    spec: &ChannelSpec,
    secrets: &Secrets,
) -> ApiResult<i64> {
    if count(db, "notification_channels").await? >= MAX_CHANNELS {
        return Err(ApiError::LimitExceeded(format!(
            "there are {MAX_CHANNELS} notification channels, the most allowed; remove one first"
        )));
    }
    let row = db
        .query_one_raw(stmt(
            "INSERT INTO notification_channels (name, kind, enabled, settings, secrets, template) \
             VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6) RETURNING channel_pk",
            channel_values(spec, secrets),
        ))
        .await
        .map_err(|e| channel_name_taken(e, &spec.name))?
        .ok_or_else(|| no_row("insert"))?;
    Ok(row.try_get_by_index(0)?)
}

async fn replace_channel(
    db: &impl ConnectionTrait,
    id: i64,
    spec: &ChannelSpec,
    secrets: &Secrets,
) -> ApiResult<()> {
    let mut values = channel_values(spec, secrets);
    values.push(id.into());
    let done = db
        .execute_raw(stmt(
            "UPDATE notification_channels SET name = $1, kind = $2, enabled = $3, \
                 settings = $4::jsonb, secrets = $5::jsonb, template = $6, updated_at = now() \
             WHERE channel_pk = $7",
            values,
        ))
        .await
        .map_err(|e| channel_name_taken(e, &spec.name))?;
    if done.rows_affected() == 0 {
        return Err(channel_not_found(id));
    }
    Ok(())
}

pub async fn add_channel(db: &DatabaseConnection, spec: &ChannelSpec) -> ApiResult<ChannelRow> {
    spec.validate(&spec.secrets)?;
    let id = insert_channel(db, spec, &spec.secrets).await?;
    channel(db, id).await
}

/// Replaces channel `id` with `spec`; secrets `spec` does not give keep their stored values
/// (unless the kind changes: then only the given ones are kept).
pub async fn update_channel(
    db: &DatabaseConnection,
    id: i64,
    spec: &ChannelSpec,
) -> ApiResult<ChannelRow> {
    check_name(&spec.name)?;
    let txn = db.begin().await?;
    let stored = channel_for_update(&txn, id).await?;
    let secrets = stored.secrets_for(spec)?;
    spec.validate(&secrets)?;
    replace_channel(&txn, id, spec, &secrets).await?;
    let row = channel(&txn, id).await?;
    txn.commit().await?;
    Ok(row)
}

/// Removes a channel with its routes and deliveries; returns it as it was.
pub async fn remove_channel(db: &DatabaseConnection, id: i64) -> ApiResult<ChannelRow> {
    let current = channel(db, id).await?;
    db.execute_raw(stmt(
        "DELETE FROM notification_channels WHERE channel_pk = $1",
        vec![id.into()],
    ))
    .await?;
    Ok(current)
}

/// What `apply_channels` did, channel by channel.
#[derive(Debug, Default)]
pub struct Applied {
    pub added: Vec<ChannelRow>,
    pub changed: Vec<ChannelRow>,
    pub removed: Vec<ChannelRow>,
    pub unchanged: Vec<ChannelRow>,
}

/// Makes the stored channels equal `specs` (keyed by name) in one transaction, as
/// `windows::apply` does for maintenance windows; with `prune`, removes the channels the list
/// does not name (with their routes). A listed channel keeps the stored secrets it does not
/// give. Every entry is validated first; a refusal names the entry.
pub async fn apply_channels(
    db: &DatabaseConnection,
    specs: &[ChannelSpec],
    prune: bool,
) -> ApiResult<Applied> {
    if specs.len() as u64 > MAX_CHANNELS {
        return Err(ApiError::BadInput(format!(
            "channels lists {} entries; at most {MAX_CHANNELS} are allowed",
            specs.len()
        )));
    }
    let entry =
        |i: usize| move |e: ApiError| ApiError::BadInput(format!("channels[{i}]: {}", e.message()));
    let mut names = HashSet::new();
    for (i, spec) in specs.iter().enumerate() {
        check_name(&spec.name).map_err(entry(i))?;
        if !names.insert(spec.name.clone()) {
            return Err(ApiError::BadInput(format!(
                "channels[{i}]: the name {:?} is listed twice",
                spec.name
            )));
        }
    }
    let txn = db.begin().await?;
    // Locked: the secrets of listed channels are merged onto these rows.
    txn.execute_raw(stmt(
        "SELECT 1 FROM notification_channels FOR UPDATE",
        vec![],
    ))
    .await?;
    let existing = channels(&txn).await?;
    let mut planned = Vec::with_capacity(specs.len());
    for (i, spec) in specs.iter().enumerate() {
        let stored = existing.iter().find(|c| c.name == spec.name);
        let secrets = match stored {
            Some(s) => s.secrets_for(spec).map_err(entry(i))?,
            None => spec.secrets.clone(),
        };
        spec.validate(&secrets).map_err(entry(i))?;
        planned.push((spec, stored, secrets));
    }
    let mut touched = Vec::new();
    let mut unchanged_ids = Vec::new();
    for (spec, stored, secrets) in &planned {
        match stored {
            Some(stored) if stored.same_as(spec, secrets) => unchanged_ids.push(stored.id),
            Some(stored) => {
                replace_channel(&txn, stored.id, spec, secrets).await?;
                touched.push((false, stored.id));
            }
            None => touched.push((true, insert_channel(&txn, spec, secrets).await?)),
        }
    }
    let mut applied = Applied::default();
    if prune {
        for stored in &existing {
            if !names.contains(&stored.name) {
                txn.execute_raw(stmt(
                    "DELETE FROM notification_channels WHERE channel_pk = $1",
                    vec![stored.id.into()],
                ))
                .await?;
                applied.removed.push(stored.clone());
            }
        }
    }
    let after = channels(&txn).await?;
    txn.commit().await?;
    for c in after {
        if unchanged_ids.contains(&c.id) {
            applied.unchanged.push(c);
        } else if let Some((added, _)) = touched.iter().find(|(_, id)| *id == c.id) {
            if *added {
                applied.added.push(c);
            } else {
                applied.changed.push(c);
            }
        }
    }
    Ok(applied)
}

// ---------------------------------------------------------------------------------------------
// Routes

/// A route as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteSpec {
    pub name: String,
    pub channel: i64,
    pub all_targets: bool,
    pub target_ids: Vec<i32>,
    pub tags: Vec<String>,
    pub events: Vec<Event>,
    pub remind_every_minutes: Option<i32>,
    pub silence_in_maintenance: bool,
    pub enabled: bool,
}

/// A route as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRow {
    pub id: i64,
    pub name: String,
    pub channel: i64,
    pub scope: Scope,
    pub events: Vec<Event>,
    pub remind_every_minutes: Option<i32>,
    pub silence_in_maintenance: bool,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

impl RouteSpec {
    /// The route's scope and events, validated; the error names the field.
    pub fn validate(&self) -> ApiResult<(Scope, Vec<Event>)> {
        check_name(&self.name)?;
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
        let bad = |e: entity::maintenance::WindowError| ApiError::BadInput(e.to_string());
        let scope = if self.all_targets {
            Scope::All
        } else if !self.target_ids.is_empty() {
            Scope::targets(self.target_ids.clone()).map_err(bad)?
        } else {
            Scope::tags(&self.tags).map_err(bad)?
        };
        let mut events = self.events.clone();
        events.sort();
        events.dedup();
        if events.is_empty() {
            return Err(refuse("events", "at least one event"));
        }
        if events.contains(&Event::Reminder) {
            return Err(refuse(
                "events",
                "REMINDER is not routable: ask for reminders with remindEveryMinutes",
            ));
        }
        if let Some(m) = self.remind_every_minutes
            && !(1..=MAX_REMIND_MINUTES).contains(&m)
        {
            return Err(refuse(
                "remindEveryMinutes",
                &format!(
                    "must be between 1 and {MAX_REMIND_MINUTES} (a week), or null for none; got {m}"
                ),
            ));
        }
        Ok((scope, events))
    }

    fn values(&self, scope: &Scope, events: &[Event]) -> Vec<Value> {
        let (all, ids, tags) = match scope {
            Scope::All => (true, Vec::new(), Vec::new()),
            Scope::Targets(ids) => (false, ids.clone(), Vec::new()),
            Scope::Tags(filters) => (
                false,
                Vec::new(),
                filters.iter().map(ToString::to_string).collect(),
            ),
        };
        let events: Vec<&str> = events.iter().map(|e| e.as_str()).collect();
        vec![
            self.name.clone().into(),
            self.channel.into(),
            all.into(),
            serde_json::to_string(&ids).expect("ids are numbers").into(),
            serde_json::to_string(&tags)
                .expect("tags are strings")
                .into(),
            serde_json::to_string(&events)
                .expect("events are strings")
                .into(),
            self.remind_every_minutes.into(),
            self.silence_in_maintenance.into(),
            self.enabled.into(),
        ]
    }
}

#[derive(FromQueryResult)]
struct RawRoute {
    route_pk: i64,
    name: String,
    channel_fk: i64,
    all_targets: bool,
    target_ids: String,
    tag_filters: String,
    events: String,
    remind_every_minutes: Option<i32>,
    silence_in_maintenance: bool,
    enabled: bool,
    created_at: DateTime<Utc>,
}

const ROUTE_COLUMNS: &str = "route_pk, name, channel_fk, all_targets, target_ids::text AS target_ids, \
                             tag_filters::text AS tag_filters, events::text AS events, \
                             remind_every_minutes, silence_in_maintenance, enabled, created_at";

/// Every route, by id.
pub async fn routes(db: &impl ConnectionTrait) -> ApiResult<Vec<RouteRow>> {
    let rows = RawRoute::find_by_statement(stmt(
        &format!("SELECT {ROUTE_COLUMNS} FROM notification_routes ORDER BY route_pk"),
        vec![],
    ))
    .all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| RouteRow {
            id: r.route_pk,
            name: r.name,
            channel: r.channel_fk,
            // Stored by this module (or checked by the table); a route edited by hand into
            // nonsense shows as covering nothing.
            scope: states::scope_of(r.all_targets, &r.target_ids, &r.tag_filters)
                .unwrap_or(Scope::Targets(Vec::new())),
            events: entity::notify::parse_events(&r.events),
            remind_every_minutes: r.remind_every_minutes,
            silence_in_maintenance: r.silence_in_maintenance,
            enabled: r.enabled,
            created_at: r.created_at,
        })
        .collect())
}

fn route_not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("no notification route with id {id}"))
}

fn route_refused(e: sea_orm::DbErr, spec: &RouteSpec) -> ApiError {
    match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => refuse(
            "name",
            &format!("a notification route named {:?} exists already", spec.name),
        ),
        Some(SqlErr::ForeignKeyConstraintViolation(_)) => refuse(
            "channelId",
            &format!("no notification channel with id {}", spec.channel),
        ),
        _ => e.into(),
    }
}

async fn route(db: &impl ConnectionTrait, id: i64) -> ApiResult<RouteRow> {
    routes(db)
        .await?
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| route_not_found(id))
}

pub async fn add_route(db: &DatabaseConnection, spec: &RouteSpec) -> ApiResult<RouteRow> {
    let (scope, events) = spec.validate()?;
    if count(db, "notification_routes").await? >= MAX_ROUTES {
        return Err(ApiError::LimitExceeded(format!(
            "there are {MAX_ROUTES} notification routes, the most allowed; remove one first"
        )));
    }
    let row = db
        .query_one_raw(stmt(
            "INSERT INTO notification_routes (name, channel_fk, all_targets, target_ids, \
                 tag_filters, events, remind_every_minutes, silence_in_maintenance, enabled) \
             VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7, $8, $9) RETURNING route_pk",
            spec.values(&scope, &events),
        ))
        .await
        .map_err(|e| route_refused(e, spec))?
        .ok_or_else(|| no_row("insert"))?;
    route(db, row.try_get_by_index(0)?).await
}

/// Replaces route `id` with `spec` (the whole route).
pub async fn update_route(
    db: &DatabaseConnection,
    id: i64,
    spec: &RouteSpec,
) -> ApiResult<RouteRow> {
    let (scope, events) = spec.validate()?;
    let mut values = spec.values(&scope, &events);
    values.push(id.into());
    let done = db
        .execute_raw(stmt(
            "UPDATE notification_routes SET name = $1, channel_fk = $2, all_targets = $3, \
                 target_ids = $4::jsonb, tag_filters = $5::jsonb, events = $6::jsonb, \
                 remind_every_minutes = $7, silence_in_maintenance = $8, enabled = $9 \
             WHERE route_pk = $10",
            values,
        ))
        .await
        .map_err(|e| route_refused(e, spec))?;
    if done.rows_affected() == 0 {
        return Err(route_not_found(id));
    }
    route(db, id).await
}

pub async fn remove_route(db: &DatabaseConnection, id: i64) -> ApiResult<RouteRow> {
    let current = route(db, id).await?;
    db.execute_raw(stmt(
        "DELETE FROM notification_routes WHERE route_pk = $1",
        vec![id.into()],
    ))
    .await?;
    Ok(current)
}

// ---------------------------------------------------------------------------------------------
// Deliveries

/// A delivery's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> DeliveryStatus {
        match text {
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        }
    }
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct DeliveryRow {
    pub delivery_pk: i64,
    pub message_id: String,
    pub channel_fk: i64,
    pub kind: String,
    pub status: String,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub due_at: DateTime<Utc>,
    pub give_up_at: DateTime<Utc>,
    pub last_status: Option<i32>,
    pub last_answer: Option<String>,
    pub last_error: Option<String>,
}

const DELIVERY_COLUMNS: &str = "delivery_pk, message_id::text AS message_id, channel_fk, kind, \
                                status, attempts, created_at, finished_at, due_at, give_up_at, \
                                last_status, last_answer, last_error";

/// One attempt of a delivery, as logged.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct AttemptRow {
    pub delivery_fk: i64,
    pub number: i32,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: Option<String>,
    pub http_status: Option<i32>,
    pub answer: Option<String>,
    pub error: Option<String>,
    pub retry_after_ms: Option<i64>,
}

/// Where a page of deliveries continues: after (created_at, id), newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct After {
    pub created_at: DateTime<Utc>,
    pub id: i64,
}

/// Which deliveries to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeliveryFilter {
    pub status: Option<DeliveryStatus>,
    pub channel: Option<i64>,
}

/// Up to `limit + 1` deliveries after `after`, newest first (the extra row says whether there
/// is a next page); on the index (created_at DESC, delivery_pk DESC), or the channel's.
pub async fn deliveries(
    db: &impl ConnectionTrait,
    limit: u64,
    after: Option<After>,
    filter: DeliveryFilter,
) -> ApiResult<Vec<DeliveryRow>> {
    let mut conditions = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    if let Some(status) = filter.status {
        values.push(status.as_str().into());
        conditions.push(format!("status = ${}", values.len()));
    }
    if let Some(channel) = filter.channel {
        values.push(channel.into());
        conditions.push(format!("channel_fk = ${}", values.len()));
    }
    if let Some(after) = after {
        values.push(after.created_at.into());
        values.push(after.id.into());
        conditions.push(format!(
            "(created_at, delivery_pk) < (${}, ${})",
            values.len() - 1,
            values.len()
        ));
    }
    let condition = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    values.push(((limit + 1).min(i64::MAX as u64) as i64).into());
    Ok(DeliveryRow::find_by_statement(stmt(
        &format!(
            "SELECT {DELIVERY_COLUMNS} FROM notification_deliveries {condition} \
             ORDER BY created_at DESC, delivery_pk DESC LIMIT ${}",
            values.len()
        ),
        values,
    ))
    .all(db)
    .await?)
}

fn delivery_not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("no delivery with id {id}"))
}

pub async fn delivery(db: &impl ConnectionTrait, id: i64) -> ApiResult<DeliveryRow> {
    DeliveryRow::find_by_statement(stmt(
        &format!("SELECT {DELIVERY_COLUMNS} FROM notification_deliveries WHERE delivery_pk = $1"),
        vec![id.into()],
    ))
    .one(db)
    .await?
    .ok_or_else(|| delivery_not_found(id))
}

/// The attempts of `deliveries`, by delivery, in order (one statement).
pub async fn attempts_of(
    db: &impl ConnectionTrait,
    deliveries: &[i64],
) -> ApiResult<HashMap<i64, Vec<AttemptRow>>> {
    let rows = AttemptRow::find_by_statement(stmt(
        "SELECT delivery_fk, number, started_at, finished_at, outcome, http_status, answer, \
                error, retry_after_ms \
         FROM notification_attempts WHERE delivery_fk = ANY($1) ORDER BY delivery_fk, number",
        vec![bigints(deliveries.iter().copied())],
    ))
    .all(db)
    .await?;
    let mut by_delivery: HashMap<i64, Vec<AttemptRow>> = HashMap::new();
    for row in rows {
        by_delivery.entry(row.delivery_fk).or_default().push(row);
    }
    Ok(by_delivery)
}

/// The changes `deliveries` carry, by delivery (one statement).
pub async fn changes_of(
    db: &impl ConnectionTrait,
    deliveries: &[i64],
) -> ApiResult<HashMap<i64, Vec<Change>>> {
    Ok(worker_notify::store::load_changes(db, deliveries).await?)
}

/// What `test_channel` reports.
#[derive(Debug, Clone)]
pub struct Tested {
    pub sent: Sent,
    pub delivery: DeliveryRow,
}

/// Sends a test message to channel `id` now (one attempt, `timeout`), and logs it as a
/// delivery of kind `test`: delivered or failed, one attempt. An answer worth a retry
/// (timeout, 5xx, 429) is failed here: a test is not retried.
pub async fn test_channel(
    db: &DatabaseConnection,
    id: i64,
    timeout: Duration,
    dashboard: &str,
) -> ApiResult<Tested> {
    let stored = channel(db, id).await?;
    // The message's id and time first, so that the log says when the attempt started.
    let row = db
        .query_one_raw(stmt("SELECT gen_random_uuid()::text, now()", vec![]))
        .await?
        .ok_or_else(|| no_row("SELECT"))?;
    let message = Message {
        id: row.try_get_by_index(0)?,
        created_at: row.try_get_by_index(1)?,
        changes: Vec::new(),
        test: true,
    };
    let sender = Sender::new(timeout, dashboard)
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e).context("HTTP client")))?;
    let mut sent = sender.send(&stored.channel(), &message).await;
    // What the receiver or the HTTP client said is stored and shown: never with a secret in it
    // (an error that names the URL, a receiver that echoes the request).
    for text in [&mut sent.answer, &mut sent.error].into_iter().flatten() {
        *text = redact(text, &stored.secrets);
    }
    let status = if sent.verdict == Verdict::Delivered {
        "delivered"
    } else {
        "failed"
    };
    // Logged after the attempt, in one statement: a test is never left pending for the
    // worker to send again.
    let row = db
        .query_one_raw(stmt(
            "WITH d AS ( \
                 INSERT INTO notification_deliveries (message_id, channel_fk, sequence_key, \
                     kind, status, due_at, give_up_at, attempts, created_at, finished_at, \
                     last_status, last_answer, last_error) \
                 VALUES ($1::uuid, $2, 'test:' || $2, 'test', $3, $4, $4, 1, $4, now(), $5, \
                         $6, $7) \
                 RETURNING delivery_pk), \
             a AS ( \
                 INSERT INTO notification_attempts (delivery_fk, number, started_at, \
                     finished_at, outcome, http_status, answer, error, retry_after_ms) \
                 SELECT delivery_pk, 1, $4, now(), $8, $5, $6, $7, $9 FROM d) \
             SELECT delivery_pk FROM d",
            vec![
                message.id.clone().into(),
                id.into(),
                status.into(),
                message.created_at.into(),
                sent.status.into(),
                sent.answer.clone().into(),
                sent.error.clone().into(),
                sent.verdict.as_str().into(),
                sent.retry_after
                    .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
                    .into(),
            ],
        ))
        .await?
        .ok_or_else(|| no_row("insert"))?;
    let delivery = delivery(db, row.try_get_by_index(0)?).await?;
    Ok(Tested { sent, delivery })
}

/// `text` with every secret of `secrets` in it replaced by `[secret]`.
pub fn redact(text: &str, secrets: &Secrets) -> String {
    let values = [
        &secrets.url,
        &secrets.signing_key,
        &secrets.token,
        &secrets.password,
        &secrets.routing_key,
    ];
    values
        .into_iter()
        .flatten()
        .filter(|v| v.len() >= 4)
        .fold(text.to_owned(), |text, secret| {
            text.replace(secret.as_str(), "[secret]")
        })
}

/// Sends a delivered or failed delivery of changes again: pending, due now, tried for at least
/// [`REDELIVER_FOR`], with the same message id (a receiver that drops repeats by id may drop
/// it). A pending one is left as it is.
pub async fn redeliver(db: &DatabaseConnection, id: i64) -> ApiResult<DeliveryRow> {
    let current = delivery(db, id).await?;
    if current.kind == "test" {
        return Err(refuse(
            "deliveryId",
            "a test message is not sent again; use testChannel",
        ));
    }
    if current.status == "pending" {
        return Ok(current);
    }
    db.execute_raw(stmt(
        "UPDATE notification_deliveries SET status = 'pending', due_at = now(), \
             finished_at = NULL, claim = NULL, \
             give_up_at = GREATEST(give_up_at, now() + $2 * interval '1 second') \
         WHERE delivery_pk = $1 AND status <> 'pending'",
        vec![id.into(), REDELIVER_FOR.num_seconds().into()],
    ))
    .await?;
    delivery(db, id).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route() -> RouteSpec {
        RouteSpec {
            name: "ops".into(),
            channel: 1,
            all_targets: true,
            events: vec![Event::Down, Event::Recovered],
            silence_in_maintenance: true,
            enabled: true,
            ..Default::default()
        }
    }

    #[test]
    fn secrets_are_redacted_from_answers() {
        let secrets = Secrets {
            token: Some("123:abc-secret".into()),
            ..Secrets::default()
        };
        assert_eq!(
            redact("POST /bot123:abc-secret/sendMessage failed", &secrets),
            "POST /bot[secret]/sendMessage failed"
        );
        assert_eq!(redact("fine", &Secrets::default()), "fine");
    }

    #[test]
    fn bad_routes_are_refused_naming_the_field() {
        assert!(route().validate().is_ok());
        for (changed, field) in [
            (
                RouteSpec {
                    target_ids: vec![1],
                    ..route()
                },
                "targetIds: ",
            ),
            (
                RouteSpec {
                    all_targets: false,
                    tags: vec!["team:*x".into()],
                    ..route()
                },
                "tags: ",
            ),
            (
                RouteSpec {
                    events: vec![],
                    ..route()
                },
                "events: ",
            ),
            (
                RouteSpec {
                    events: vec![Event::Reminder],
                    ..route()
                },
                "events: ",
            ),
            (
                RouteSpec {
                    remind_every_minutes: Some(10_081),
                    ..route()
                },
                "remindEveryMinutes: ",
            ),
            (
                RouteSpec {
                    name: String::new(),
                    ..route()
                },
                "name: ",
            ),
        ] {
            let err = changed.validate().unwrap_err();
            assert_eq!(err.code(), "BAD_USER_INPUT");
            assert!(
                err.message().starts_with(field),
                "{field}: {}",
                err.message()
            );
        }
    }
}
