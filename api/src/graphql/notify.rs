//! GraphQL types of notifications (#14): channels, routes, deliveries and their attempts.
//!
//! Secrets are write-only: `ChannelInput` takes them, `Channel` says only which are set
//! (`secretsSet`) and, for Slack, Discord and Teams, whose webhook URL is a secret, the URL's
//! origin alone. `ChannelInput` has no `Debug`, so nothing can print what it holds.
//!
//! Channels and routes are read whole (two statements: there are at most
//! [`service::MAX_CHANNELS`] and [`service::MAX_ROUTES`]) into a [`Directory`] that every node
//! of an answer shares; a page of deliveries loads its changes, attempts and channels once for
//! the page (see `loaders.rs` for why batches are the list itself).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::connection::CursorType;
use async_graphql::{Enum, ErrorExtensions, ID, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::maintenance::Scope;
use entity::notify::{ChannelKind, Event};
use sea_orm::DatabaseConnection;
use tokio::sync::OnceCell;
use worker_notify::channel::{Secrets, Settings, SmtpSecurity};
use worker_notify::message::{Change, Message};

use super::types::{BadCursor, parse_id};
use crate::error::{ApiError, ApiResult};
use crate::service::notify::{
    self as service, AttemptRow, ChannelRow, ChannelSpec, DeliveryRow, DeliveryStatus, RouteRow,
    RouteSpec,
};

/// What the API needs to send test messages.
#[derive(Debug, Clone)]
pub struct NotifySettings {
    /// The dashboard's public address (links in the message).
    pub public_url: String,
    /// Longest a test message may take.
    pub test_timeout: Duration,
}

/// How long a test message may take at most; less when requests may not run that long.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(10);

impl NotifySettings {
    /// `request_timeout`: how long a request may run; the test leaves 2 s of it to log the
    /// attempt.
    pub fn new(public_url: String, request_timeout: Duration) -> NotifySettings {
        NotifySettings {
            public_url,
            test_timeout: TEST_TIMEOUT
                .min(request_timeout.saturating_sub(Duration::from_secs(2)))
                .max(Duration::from_secs(1)),
        }
    }
}

/// Where a channel's messages go.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "ChannelKind")]
pub enum Kind {
    /// A generic HTTP(S) endpoint: JSON, signed the Standard Webhooks way with a signing key.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// A Discord webhook.
    Discord,
    /// A Microsoft Teams workflow webhook.
    Teams,
    /// An ntfy topic.
    Ntfy,
    /// A Telegram bot's chat.
    Telegram,
    /// E-mail over SMTP.
    Email,
    /// PagerDuty Events API v2.
    Pagerduty,
}

impl From<ChannelKind> for Kind {
    fn from(k: ChannelKind) -> Self {
        match k {
            ChannelKind::Webhook => Kind::Webhook,
            ChannelKind::Slack => Kind::Slack,
            ChannelKind::Discord => Kind::Discord,
            ChannelKind::Teams => Kind::Teams,
            ChannelKind::Ntfy => Kind::Ntfy,
            ChannelKind::Telegram => Kind::Telegram,
            ChannelKind::Email => Kind::Email,
            ChannelKind::Pagerduty => Kind::Pagerduty,
        }
    }
}

/// What a route hears about (and what a change in a delivery is).
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum NotificationEvent {
    /// The target went DOWN (an incident opened).
    Down,
    /// It recovered from what the route hears about.
    Recovered,
    /// It went DEGRADED.
    Degraded,
    /// It failed its certificate-expiry assertion.
    CertificateExpiring,
    /// No result for two periods.
    Unknown,
    /// Still DOWN (every `remindEveryMinutes`); not routable, made by the worker.
    Reminder,
}

impl From<Event> for NotificationEvent {
    fn from(e: Event) -> Self {
        match e {
            Event::Down => NotificationEvent::Down,
            Event::Recovered => NotificationEvent::Recovered,
            Event::Degraded => NotificationEvent::Degraded,
            Event::CertificateExpiring => NotificationEvent::CertificateExpiring,
            Event::Unknown => NotificationEvent::Unknown,
            Event::Reminder => NotificationEvent::Reminder,
        }
    }
}

impl From<NotificationEvent> for Event {
    fn from(e: NotificationEvent) -> Self {
        match e {
            NotificationEvent::Down => Event::Down,
            NotificationEvent::Recovered => Event::Recovered,
            NotificationEvent::Degraded => Event::Degraded,
            NotificationEvent::CertificateExpiring => Event::CertificateExpiring,
            NotificationEvent::Unknown => Event::Unknown,
            NotificationEvent::Reminder => Event::Reminder,
        }
    }
}

/// How an SMTP connection is secured.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "SmtpSecurity")]
pub enum Security {
    /// Plain SMTP (a relay on the same machine or network); port 25 by default.
    #[graphql(name = "NONE")]
    Plain,
    /// Plain, upgraded with STARTTLS (required); port 587 by default.
    Starttls,
    /// TLS from the first byte (SMTPS); port 465 by default.
    Tls,
}

impl From<SmtpSecurity> for Security {
    fn from(s: SmtpSecurity) -> Self {
        match s {
            SmtpSecurity::None => Security::Plain,
            SmtpSecurity::Starttls => Security::Starttls,
            SmtpSecurity::Tls => Security::Tls,
        }
    }
}

impl From<Security> for SmtpSecurity {
    fn from(s: Security) -> Self {
        match s {
            Security::Plain => SmtpSecurity::None,
            Security::Starttls => SmtpSecurity::Starttls,
            Security::Tls => SmtpSecurity::Tls,
        }
    }
}

/// Where a delivery is.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "DeliveryStatus")]
pub enum Status {
    /// Waiting for its next attempt (or in one).
    Pending,
    Delivered,
    /// Refused for good, or not delivered before giving up.
    Failed,
}

impl From<DeliveryStatus> for Status {
    fn from(s: DeliveryStatus) -> Self {
        match s {
            DeliveryStatus::Pending => Status::Pending,
            DeliveryStatus::Delivered => Status::Delivered,
            DeliveryStatus::Failed => Status::Failed,
        }
    }
}

impl From<Status> for DeliveryStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::Pending => DeliveryStatus::Pending,
            Status::Delivered => DeliveryStatus::Delivered,
            Status::Failed => DeliveryStatus::Failed,
        }
    }
}

/// What became of one attempt.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum AttemptOutcome {
    Delivered,
    /// Worth another try (a timeout, no connection, 408, 429, 5xx).
    Retry,
    /// Refused for good.
    Failed,
    /// Its sender stopped before it knew.
    Interrupted,
}

impl AttemptOutcome {
    fn parse(text: &str) -> Option<AttemptOutcome> {
        match text {
            "delivered" => Some(AttemptOutcome::Delivered),
            "retry" => Some(AttemptOutcome::Retry),
            "failed" => Some(AttemptOutcome::Failed),
            "interrupted" => Some(AttemptOutcome::Interrupted),
            _ => None,
        }
    }
}

/// Every channel and route, read once for an answer.
pub struct Directory {
    pub channels: Vec<ChannelRow>,
    pub routes: Vec<RouteRow>,
}

impl Directory {
    pub async fn load(db: &DatabaseConnection) -> ApiResult<Arc<Directory>> {
        Ok(Arc::new(Directory {
            channels: service::channels(db).await?,
            routes: service::routes(db).await?,
        }))
    }

    /// The channel with id `id`, as a node of this directory.
    pub fn channel(self: &Arc<Self>, id: i64) -> Option<NotificationChannel> {
        self.channels
            .iter()
            .position(|c| c.id == id)
            .map(|index| NotificationChannel {
                dir: self.clone(),
                index,
            })
    }

    pub fn route(self: &Arc<Self>, id: i64) -> Option<NotificationRoute> {
        self.routes
            .iter()
            .position(|r| r.id == id)
            .map(|index| NotificationRoute {
                dir: self.clone(),
                index,
            })
    }

    pub fn all_channels(self: &Arc<Self>) -> Vec<NotificationChannel> {
        (0..self.channels.len())
            .map(|index| NotificationChannel {
                dir: self.clone(),
                index,
            })
            .collect()
    }

    pub fn all_routes(self: &Arc<Self>) -> Vec<NotificationRoute> {
        (0..self.routes.len())
            .map(|index| NotificationRoute {
                dir: self.clone(),
                index,
            })
            .collect()
    }

    /// A directory of what a mutation removed (its routes are gone with it).
    pub fn of_removed(channels: Vec<ChannelRow>) -> Arc<Directory> {
        Arc::new(Directory {
            channels,
            routes: Vec::new(),
        })
    }
}

/// The node of `id` in a directory loaded after a write.
pub async fn channel_node(db: &DatabaseConnection, id: i64) -> ApiResult<NotificationChannel> {
    Directory::load(db)
        .await?
        .channel(id)
        .ok_or_else(|| ApiError::NotFound(format!("no notification channel with id {id}")))
}

pub async fn route_node(db: &DatabaseConnection, id: i64) -> ApiResult<NotificationRoute> {
    Directory::load(db)
        .await?
        .route(id)
        .ok_or_else(|| ApiError::NotFound(format!("no notification route with id {id}")))
}

/// Where a channel's messages go: a webhook, a chat service, e-mail or PagerDuty.
#[derive(Clone)]
pub struct NotificationChannel {
    dir: Arc<Directory>,
    index: usize,
}

impl NotificationChannel {
    fn row(&self) -> &ChannelRow {
        &self.dir.channels[self.index]
    }

    fn settings(&self) -> &Settings {
        &self.row().settings
    }
}

/// A URL with only its origin: `https://hooks.slack.com/…` (the rest is the credential).
pub fn origin_only(text: &str) -> Option<String> {
    let url = url::Url::parse(text).ok()?;
    let host = url.host_str()?;
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    Some(format!("{}://{host}{port}/…", url.scheme()))
}

#[Object(name = "Channel")]
impl NotificationChannel {
    async fn id(&self) -> ID {
        ID(self.row().id.to_string())
    }

    /// Unique; `applyChannels` keys by it.
    async fn name(&self) -> &str {
        &self.row().name
    }

    async fn kind(&self) -> Kind {
        self.row().kind.into()
    }

    /// A disabled channel is sent nothing (its routes hear nothing).
    async fn enabled(&self) -> bool {
        self.row().enabled
    }

    /// Webhook: its URL. ntfy, Telegram, PagerDuty: the service's base URL when not the
    /// public one. Slack, Discord, Teams: the webhook URL's origin only (`https://host/…`;
    /// the whole URL is a secret).
    async fn url(&self) -> Option<String> {
        match self.row().kind {
            ChannelKind::Slack | ChannelKind::Discord | ChannelKind::Teams => {
                self.row().secrets.url.as_deref().and_then(origin_only)
            }
            _ => self.settings().url.clone(),
        }
    }

    /// ntfy: the topic.
    async fn topic(&self) -> Option<&str> {
        self.settings().topic.as_deref()
    }

    /// Telegram: the chat (`-100…` or `@channel`).
    async fn chat_id(&self) -> Option<&str> {
        self.settings().chat_id.as_deref()
    }

    /// E-mail: the SMTP server.
    async fn smtp_host(&self) -> Option<&str> {
        self.settings().smtp_host.as_deref()
    }

    /// E-mail: the SMTP port (null: the security mode's default).
    async fn smtp_port(&self) -> Option<i32> {
        self.settings().smtp_port.map(i32::from)
    }

    async fn smtp_security(&self) -> Option<Security> {
        self.settings().smtp_security.map(Into::into)
    }

    /// E-mail: the sender.
    async fn from(&self) -> Option<&str> {
        self.settings().from.as_deref()
    }

    /// E-mail: the recipients.
    async fn to(&self) -> &[String] {
        &self.settings().to
    }

    /// E-mail: the SMTP user name.
    async fn username(&self) -> Option<&str> {
        self.settings().username.as_deref()
    }

    /// The names of the secrets that are set (`url`, `signingKey`, `token`, `password`,
    /// `routingKey`); their values are never returned.
    async fn secrets_set(&self) -> Vec<&'static str> {
        self.row().secrets.names()
    }

    /// The message text's minijinja template (null: the default text).
    async fn template(&self) -> Option<&str> {
        self.row().template.as_deref()
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.row().created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.row().updated_at
    }

    /// The routes that send here, by id.
    async fn routes(&self) -> Vec<NotificationRoute> {
        let id = self.row().id;
        self.dir
            .routes
            .iter()
            .enumerate()
            .filter(|(_, r)| r.channel == id)
            .map(|(index, _)| NotificationRoute {
                dir: self.dir.clone(),
                index,
            })
            .collect()
    }
}

/// Which targets' changes, which events, to which channel.
#[derive(Clone)]
pub struct NotificationRoute {
    dir: Arc<Directory>,
    index: usize,
}

impl NotificationRoute {
    fn row(&self) -> &RouteRow {
        &self.dir.routes[self.index]
    }
}

#[Object(name = "Route")]
impl NotificationRoute {
    async fn id(&self) -> ID {
        ID(self.row().id.to_string())
    }

    /// Unique.
    async fn name(&self) -> &str {
        &self.row().name
    }

    async fn channel(&self) -> async_graphql::Result<NotificationChannel> {
        let id = self.row().channel;
        self.dir.channel(id).ok_or_else(|| {
            ApiError::NotFound(format!("no notification channel with id {id}")).extend()
        })
    }

    /// Hears about every target.
    async fn all_targets(&self) -> bool {
        self.row().scope == Scope::All
    }

    /// Hears about these targets.
    async fn target_ids(&self) -> Vec<ID> {
        match &self.row().scope {
            Scope::Targets(ids) => ids.iter().map(|id| ID(id.to_string())).collect(),
            _ => Vec::new(),
        }
    }

    /// Hears about the targets whose tags match one of these filters.
    async fn tags(&self) -> Vec<String> {
        match &self.row().scope {
            Scope::Tags(filters) => filters.iter().map(ToString::to_string).collect(),
            _ => Vec::new(),
        }
    }

    async fn events(&self) -> Vec<NotificationEvent> {
        self.row().events.iter().map(|e| (*e).into()).collect()
    }

    /// A reminder every this many minutes while a target stays DOWN (null: none).
    async fn remind_every_minutes(&self) -> Option<i32> {
        self.row().remind_every_minutes
    }

    /// Says nothing of targets in a maintenance window.
    async fn silence_in_maintenance(&self) -> bool {
        self.row().silence_in_maintenance
    }

    async fn enabled(&self) -> bool {
        self.row().enabled
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.row().created_at
    }
}

/// A channel: its kind and what that kind needs (see `Channel`). Secrets (`signingKey`, `token`,
/// `password`, `routingKey`, and `url` for Slack, Discord and Teams) are write-only; on
/// `updateChannel` and `applyChannels` those left out (or empty) keep their stored values,
/// unless the kind changes. Empty strings count as left out.
#[derive(InputObject)]
pub struct ChannelInput {
    /// 1 to 200 characters; unique.
    pub name: String,
    /// `webhook`, `slack`, `discord`, `teams`, `ntfy`, `telegram`, `email` or `pagerduty`
    /// (either case).
    pub kind: String,
    #[graphql(default = true)]
    pub enabled: bool,
    /// Webhook: its URL (required). Slack, Discord, Teams: the webhook URL (required, a
    /// secret). ntfy, Telegram, PagerDuty: the service's base URL, for a self-hosted one.
    pub url: Option<String>,
    /// ntfy: the topic (required).
    pub topic: Option<String>,
    /// Telegram: the chat id (`-100…`) or channel (`@name`) (required).
    pub chat_id: Option<String>,
    /// E-mail: SMTP server (required).
    pub smtp_host: Option<String>,
    /// E-mail: SMTP port (default: 25, 587 or 465 after `smtpSecurity`).
    pub smtp_port: Option<i32>,
    /// E-mail: default STARTTLS.
    pub smtp_security: Option<Security>,
    /// E-mail: the sender (`Name <a@b.example>` or `a@b.example`) (required).
    pub from: Option<String>,
    /// E-mail: the recipients (1 to 50).
    #[graphql(default)]
    pub to: Vec<String>,
    /// E-mail: the SMTP user name (needed with a password).
    pub username: Option<String>,
    /// Webhook: the Standard Webhooks key (`whsec_` + base64 of 24 to 64 bytes); secret.
    pub signing_key: Option<String>,
    /// ntfy: an access token; Telegram: the bot token (required); secret.
    pub token: Option<String>,
    /// E-mail: the SMTP password; secret.
    pub password: Option<String>,
    /// PagerDuty: the integration (routing) key (required); secret.
    pub routing_key: Option<String>,
    /// A minijinja template of the message's text (null or empty: the default text); checked
    /// by rendering a sample message.
    pub template: Option<String>,
}

/// `Some` unless empty.
fn given(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

impl ChannelInput {
    pub fn spec(self) -> ApiResult<ChannelSpec> {
        let kind = ChannelKind::parse(&self.kind.trim().to_ascii_lowercase()).ok_or_else(|| {
            let known: Vec<&str> = ChannelKind::ALL.iter().map(|k| k.as_str()).collect();
            ApiError::BadInput(format!(
                "kind: {:?} is not a kind of channel; one of {}",
                self.kind,
                known.join(", ")
            ))
        })?;
        let smtp_port = self
            .smtp_port
            .map(|p| {
                u16::try_from(p).ok().filter(|p| *p > 0).ok_or_else(|| {
                    ApiError::BadInput(format!("smtpPort: must be between 1 and 65535, not {p}"))
                })
            })
            .transpose()?;
        let url = given(self.url);
        let secret_url = matches!(
            kind,
            ChannelKind::Slack | ChannelKind::Discord | ChannelKind::Teams
        );
        let settings = Settings {
            url: if secret_url { None } else { url.clone() },
            topic: given(self.topic),
            chat_id: given(self.chat_id),
            smtp_host: given(self.smtp_host),
            smtp_port,
            smtp_security: self.smtp_security.map(Into::into),
            from: given(self.from),
            to: self
                .to
                .into_iter()
                .filter(|t| !t.trim().is_empty())
                .collect(),
            username: given(self.username),
        };
        let secrets = Secrets {
            url: if secret_url { url } else { None },
            signing_key: given(self.signing_key),
            token: given(self.token),
            password: given(self.password),
            routing_key: given(self.routing_key),
        };
        Ok(ChannelSpec {
            name: self.name,
            kind,
            enabled: self.enabled,
            settings,
            secrets,
            template: given(self.template),
        })
    }
}

/// A route: exactly one of `allTargets`, `targetIds` and `tags` (tag filters: `key`,
/// `key:value`, `key:*`), the events it hears (not REMINDER: ask for reminders with
/// `remindEveryMinutes`), and the channel it sends to.
#[derive(InputObject)]
pub struct RouteInput {
    /// 1 to 200 characters; unique.
    pub name: String,
    pub channel_id: ID,
    #[graphql(default)]
    pub all_targets: bool,
    #[graphql(default)]
    pub target_ids: Vec<ID>,
    #[graphql(default)]
    pub tags: Vec<String>,
    #[graphql(default_with = "vec![NotificationEvent::Down, NotificationEvent::Recovered]")]
    pub events: Vec<NotificationEvent>,
    /// 1 to 10080 (a week); null: no reminders.
    pub remind_every_minutes: Option<i32>,
    #[graphql(default = true)]
    pub silence_in_maintenance: bool,
    #[graphql(default = true)]
    pub enabled: bool,
}

impl RouteInput {
    pub fn spec(self) -> ApiResult<RouteSpec> {
        let target_ids = self
            .target_ids
            .iter()
            .map(parse_id)
            .collect::<ApiResult<Vec<i32>>>()
            .map_err(|e| ApiError::BadInput(format!("targetIds: {}", e.message())))?;
        let channel = parse_notify_id(&self.channel_id, "channelId")?;
        Ok(RouteSpec {
            name: self.name,
            channel,
            all_targets: self.all_targets,
            target_ids,
            tags: self.tags,
            events: self.events.into_iter().map(Into::into).collect(),
            remind_every_minutes: self.remind_every_minutes,
            silence_in_maintenance: self.silence_in_maintenance,
            enabled: self.enabled,
        })
    }
}

/// Parses the id of a channel, route or delivery; a refusal names `field`.
pub fn parse_notify_id(id: &ID, field: &str) -> ApiResult<i64> {
    id.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::BadInput(format!("{field}: {:?} is not an id", id.as_str())))
}

/// What `applyChannels` did.
#[derive(SimpleObject)]
pub struct ChannelApplyReport {
    pub added: Vec<NotificationChannel>,
    pub changed: Vec<NotificationChannel>,
    pub removed: Vec<NotificationChannel>,
    pub unchanged: Vec<NotificationChannel>,
}

/// One change a delivery carries.
#[derive(SimpleObject)]
pub struct DeliveryChange {
    pub target_id: ID,
    /// The target's URL as it was.
    pub url: String,
    pub event: NotificationEvent,
    /// States, as stored: `up`, `down`, `degraded`, …
    pub from: String,
    pub to: String,
    /// When the new state began.
    pub since: DateTime<Utc>,
    pub cause: Option<String>,
    /// The DOWN incident opened or resolved.
    pub incident_id: Option<ID>,
    /// 0: the change itself; n: its n-th reminder.
    pub reminder: i32,
}

impl From<&Change> for DeliveryChange {
    fn from(c: &Change) -> Self {
        DeliveryChange {
            target_id: ID(c.target_id.to_string()),
            url: c.url.clone(),
            event: c.event.into(),
            from: c.from.clone(),
            to: c.to.clone(),
            since: c.since,
            cause: c.cause.clone(),
            incident_id: c.incident_id.map(|i| ID(i.to_string())),
            reminder: c.reminder,
        }
    }
}

/// One attempt of a delivery.
#[derive(SimpleObject)]
pub struct DeliveryAttempt {
    pub number: i32,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Null while in flight.
    pub outcome: Option<AttemptOutcome>,
    /// The HTTP status (or SMTP code).
    pub http_status: Option<i32>,
    /// The receiver's answer (at most 2,000 characters).
    pub answer: Option<String>,
    /// Why the attempt could not complete.
    pub error: Option<String>,
    /// The wait the receiver asked for (Retry-After).
    pub retry_after_ms: Option<i64>,
}

impl From<&AttemptRow> for DeliveryAttempt {
    fn from(a: &AttemptRow) -> Self {
        DeliveryAttempt {
            number: a.number,
            started_at: a.started_at,
            finished_at: a.finished_at,
            outcome: a.outcome.as_deref().and_then(AttemptOutcome::parse),
            http_status: a.http_status,
            answer: a.answer.clone(),
            error: a.error.clone(),
            retry_after_ms: a.retry_after_ms,
        }
    }
}

type Loaded<T> = Result<T, Arc<ApiError>>;

/// The deliveries of one answer (a page, or one delivery): what their nodes ask for is loaded
/// for all of them at once, by the first that asks.
pub struct DeliveryBatch {
    db: DatabaseConnection,
    ids: Vec<i64>,
    changes: OnceCell<Loaded<HashMap<i64, Vec<Change>>>>,
    attempts: OnceCell<Loaded<HashMap<i64, Vec<AttemptRow>>>>,
    directory: OnceCell<Loaded<Arc<Directory>>>,
}

/// A message to one channel: its changes (or a test), its status, and every attempt.
pub struct Delivery {
    row: DeliveryRow,
    batch: Arc<DeliveryBatch>,
}

impl Delivery {
    pub fn list(db: &DatabaseConnection, rows: Vec<DeliveryRow>) -> Vec<Delivery> {
        let batch = Arc::new(DeliveryBatch {
            db: db.clone(),
            ids: rows.iter().map(|r| r.delivery_pk).collect(),
            changes: OnceCell::new(),
            attempts: OnceCell::new(),
            directory: OnceCell::new(),
        });
        rows.into_iter()
            .map(|row| Delivery {
                row,
                batch: batch.clone(),
            })
            .collect()
    }

    pub fn one(db: &DatabaseConnection, row: DeliveryRow) -> Delivery {
        Delivery::list(db, vec![row])
            .pop()
            .expect("a list of one gives one")
    }

    pub fn row(&self) -> &DeliveryRow {
        &self.row
    }

    async fn changes_loaded(&self) -> async_graphql::Result<Vec<Change>> {
        let b = &self.batch;
        let loaded = b
            .changes
            .get_or_init(|| async { service::changes_of(&b.db, &b.ids).await.map_err(Arc::new) })
            .await;
        match loaded {
            Ok(all) => Ok(all.get(&self.row.delivery_pk).cloned().unwrap_or_default()),
            Err(e) => Err(e.extend()),
        }
    }
}

#[Object]
impl Delivery {
    async fn id(&self) -> ID {
        ID(self.row.delivery_pk.to_string())
    }

    /// The message's id: the same on every attempt and redelivery (`webhook-id`,
    /// `X-Pingpipe-Message-Id`, the e-mail's Message-ID).
    async fn message_id(&self) -> &str {
        &self.row.message_id
    }

    /// Null if it was removed meanwhile.
    async fn channel(&self) -> async_graphql::Result<Option<NotificationChannel>> {
        let b = &self.batch;
        let loaded = b
            .directory
            .get_or_init(|| async { Directory::load(&b.db).await.map_err(Arc::new) })
            .await;
        match loaded {
            Ok(dir) => Ok(dir.channel(self.row.channel_fk)),
            Err(e) => Err(e.extend()),
        }
    }

    async fn status(&self) -> Status {
        DeliveryStatus::parse(&self.row.status).into()
    }

    /// A test message (`testChannel`).
    async fn test(&self) -> bool {
        self.row.kind == "test"
    }

    /// Attempts made so far.
    async fn attempts(&self) -> i32 {
        self.row.attempts
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }

    /// When it was delivered or given up.
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.row.finished_at
    }

    /// While pending: when the next attempt is due (during an attempt, when its lease ends).
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (self.row.status == "pending").then_some(self.row.due_at)
    }

    /// Tried until then, then failed.
    async fn give_up_at(&self) -> DateTime<Utc> {
        self.row.give_up_at
    }

    /// The last attempt's HTTP status (or SMTP code).
    async fn last_status(&self) -> Option<i32> {
        self.row.last_status
    }

    /// The receiver's last answer (at most 2,000 characters).
    async fn last_answer(&self) -> Option<&str> {
        self.row.last_answer.as_deref()
    }

    /// Why the last attempt could not complete.
    async fn last_error(&self) -> Option<&str> {
        self.row.last_error.as_deref()
    }

    /// The message's summary line ("DOWN: https://shop.example/", "12 targets: 12 down").
    async fn summary(&self) -> async_graphql::Result<String> {
        let message = Message {
            id: self.row.message_id.clone(),
            created_at: self.row.created_at,
            changes: self.changes_loaded().await?,
            test: self.row.kind == "test",
        };
        Ok(message.summary())
    }

    /// The changes it carries, in the order they were queued.
    async fn changes(&self) -> async_graphql::Result<Vec<DeliveryChange>> {
        Ok(self
            .changes_loaded()
            .await?
            .iter()
            .map(|c| -> DeliveryChange { c.into() })
            .collect())
    }

    /// Every attempt, first first.
    async fn attempt_log(&self) -> async_graphql::Result<Vec<DeliveryAttempt>> {
        let b = &self.batch;
        let loaded = b
            .attempts
            .get_or_init(|| async { service::attempts_of(&b.db, &b.ids).await.map_err(Arc::new) })
            .await;
        match loaded {
            Ok(all) => Ok(all
                .get(&self.row.delivery_pk)
                .map(|a| a.iter().map(DeliveryAttempt::from).collect())
                .unwrap_or_default()),
            Err(e) => Err(e.extend()),
        }
    }
}

/// What `testChannel` got.
#[derive(SimpleObject)]
pub struct TestResult {
    /// The receiver took it (2xx, SMTP 2xx).
    pub delivered: bool,
    /// The HTTP status (or SMTP code).
    pub status: Option<i32>,
    /// The receiver's answer (at most 2,000 characters).
    pub answer: Option<String>,
    /// Why the attempt could not complete (no connection, timeout, …).
    pub error: Option<String>,
    /// The test as logged.
    pub delivery: Delivery,
}

/// An opaque keyset cursor over deliveries: (created_at to the microsecond, id).
pub struct DeliveryCursor(pub service::After);

impl CursorType for DeliveryCursor {
    type Error = BadCursor;

    fn decode_cursor(s: &str) -> Result<Self, Self::Error> {
        let bad = || BadCursor::new(s);
        let (micros, id) = s
            .strip_prefix("dl")
            .and_then(|rest| rest.split_once('.'))
            .ok_or_else(bad)?;
        let micros = i64::from_str_radix(micros, 16).map_err(|_| bad())?;
        let id = i64::from_str_radix(id, 16).map_err(|_| bad())?;
        let created_at = DateTime::from_timestamp_micros(micros).ok_or_else(bad)?;
        Ok(DeliveryCursor(service::After { created_at, id }))
    }

    fn encode_cursor(&self) -> String {
        format!(
            "dl{:x}.{:x}",
            self.0.created_at.timestamp_micros(),
            self.0.id
        )
    }
}

/// A page of deliveries, newest first.
pub type DeliveryConnection = async_graphql::connection::Connection<DeliveryCursor, Delivery>;

/// Largest page of deliveries.
pub const MAX_DELIVERIES_PAGE: usize = 200;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_cursors_round_trip_and_garbage_is_refused() {
        let after = service::After {
            created_at: DateTime::from_timestamp_micros(1_795_000_000_123_456).unwrap(),
            id: 77,
        };
        let c = DeliveryCursor(after).encode_cursor();
        assert_eq!(DeliveryCursor::decode_cursor(&c).unwrap().0, after);
        for bad in ["", "dl", "dlzz.1", "in1.1", "dl1"] {
            assert!(DeliveryCursor::decode_cursor(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_urls_show_only_their_origin() {
        assert_eq!(
            origin_only("https://hooks.slack.com/services/T0/B0/secret").as_deref(),
            Some("https://hooks.slack.com/…")
        );
        assert_eq!(
            origin_only("http://127.0.0.1:9/x?token=y").as_deref(),
            Some("http://127.0.0.1:9/…")
        );
        assert_eq!(origin_only("nonsense"), None);
    }
}
