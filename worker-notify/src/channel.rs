//! Channels: what each kind needs (settings shown by the API, secrets never shown), how a
//! channel is checked before it is saved (each refusal names the GraphQL input field), and the
//! request each kind's real service expects for a message:
//!
//! - webhook: `POST url`, JSON `{type, timestamp, data: {id, summary, text, changes}}`, signed
//!   the Standard Webhooks way (`webhook-id` = the message id, `webhook-timestamp`,
//!   `webhook-signature`) when the channel has a signing key;
//! - Slack incoming webhook: `POST url`, `{"text"}` (mrkdwn, `&<>` escaped);
//! - Discord webhook: `POST url`, `{"embeds": [{title, description, color, timestamp}]}`, no
//!   mentions;
//! - Microsoft Teams workflow webhook: `POST url`, a message with an Adaptive Card attachment;
//! - ntfy: `POST base` with JSON `{topic, title, message, priority, tags, click}`, a bearer
//!   token when given;
//! - Telegram: `POST base/bot<token>/sendMessage`, `{chat_id, text}`;
//! - PagerDuty Events v2: `POST base/v2/enqueue`, `trigger` or `resolve` with `dedup_key` = the
//!   incident (`pingpipe-incident-<id>`), so PagerDuty folds a redelivery into the same alert;
//! - e-mail: SMTP (see [`crate::email`]).
//!
//! Every base URL can be changed (self-hosted services, tests). Every HTTP message also carries
//! `X-Pingpipe-Message-Id`, the id that stays the same on every attempt.

use entity::notify::{ChannelKind, Event};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::message::{Message, cut};
use crate::signing::SigningKey;

/// Where Telegram's Bot API is by default.
pub const TELEGRAM_API: &str = "https://api.telegram.org";
/// Where PagerDuty's Events API v2 is by default.
pub const PAGERDUTY_API: &str = "https://events.pagerduty.com";
/// The public ntfy server.
pub const NTFY_SERVER: &str = "https://ntfy.sh";
/// The header that carries a message's stable id on every HTTP message.
pub const MESSAGE_ID_HEADER: &str = "x-pingpipe-message-id";

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP (a relay on the same machine or network).
    None,
    /// Plain, upgraded with STARTTLS (required).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

impl SmtpSecurity {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpSecurity::None => 25,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Tls => 465,
        }
    }
}

/// What the API shows of a channel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The webhook's URL, or the base URL of ntfy, Telegram or PagerDuty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// ntfy's topic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Telegram's chat (`-100…` or `@channel`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chat_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_port: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_security: Option<SmtpSecurity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// What the API never shows: write-only.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Secrets {
    /// Slack's, Discord's and Teams' webhook URLs (their path is the credential).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The webhook's Standard Webhooks key (`whsec_…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
    /// ntfy's access token, Telegram's bot token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The SMTP password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// PagerDuty's integration (routing) key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<String>| if v.is_some() { "[set]" } else { "[unset]" };
        f.debug_struct("Secrets")
            .field("url", &set(&self.url))
            .field("signing_key", &set(&self.signing_key))
            .field("token", &set(&self.token))
            .field("password", &set(&self.password))
            .field("routing_key", &set(&self.routing_key))
            .finish()
    }
}

impl Secrets {
    /// The names of the secrets that are set (what the API may show).
    pub fn names(&self) -> Vec<&'static str> {
        [
            ("url", &self.url),
            ("signingKey", &self.signing_key),
            ("token", &self.token),
            ("password", &self.password),
            ("routingKey", &self.routing_key),
        ]
        .into_iter()
        .filter(|(_, v)| v.is_some())
        .map(|(n, _)| n)
        .collect()
    }

    /// These secrets with the ones `other` sets written over them (an update keeps the
    /// secrets it does not mention).
    pub fn merged(&self, other: &Secrets) -> Secrets {
        let pick = |new: &Option<String>, old: &Option<String>| new.clone().or_else(|| old.clone());
        Secrets {
            url: pick(&other.url, &self.url),
            signing_key: pick(&other.signing_key, &self.signing_key),
            token: pick(&other.token, &self.token),
            password: pick(&other.password, &self.password),
            routing_key: pick(&other.routing_key, &self.routing_key),
        }
    }
}

/// A channel as the worker sends to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Channel {
    pub id: i64,
    pub name: String,
    pub kind: ChannelKind,
    pub settings: Settings,
    pub secrets: Secrets,
    pub template: Option<String>,
}

/// A channel refused, naming the GraphQL input field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// Most recipients of one e-mail channel.
pub const MAX_RECIPIENTS: usize = 50;

/// Checks an `http://` or `https://` URL with a host.
pub fn check_url(field: &'static str, text: &str) -> Result<url::Url, FieldError> {
    let url =
        // The text is not repeated: for Slack, Discord and Teams the URL is a secret.
        url::Url::parse(text).map_err(|e| refuse(field, format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refuse(
            field,
            format!("must be an http:// or https:// URL, not {}:", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(refuse(field, "must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse(
            field,
            "must not carry credentials (user:password@): the URL is shown; give a token instead",
        ));
    }
    // How the API shows a stored secret URL (its origin and "…"): given back, it would replace
    // the real one.
    if url.path() == "/%E2%80%A6" {
        return Err(refuse(
            field,
            "this is how the stored URL is shown, not the URL: give the whole URL, or leave it \
             out to keep the stored one",
        ));
    }
    if text.len() > 2048 {
        return Err(refuse(field, "longer than 2048 bytes"));
    }
    Ok(url)
}

fn required<'a>(field: &'static str, value: &'a Option<String>) -> Result<&'a str, FieldError> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(refuse(field, "is required for this kind of channel")),
    }
}

/// An e-mail address as lettre reads it (`Name <a@b.example>` or `a@b.example`).
pub fn check_address(
    field: &'static str,
    text: &str,
) -> Result<lettre::message::Mailbox, FieldError> {
    text.parse::<lettre::message::Mailbox>()
        .map_err(|e| refuse(field, format!("{text:?} is not an e-mail address ({e})")))
}

/// Longest text of a setting or secret, in bytes.
pub const MAX_FIELD_BYTES: usize = 2048;

/// Every text of `settings` and `secrets`, with its GraphQL input field.
fn texts<'a>(settings: &'a Settings, secrets: &'a Secrets) -> Vec<(&'static str, &'a str)> {
    let mut all: Vec<(&'static str, &'a str)> = [
        ("url", &settings.url),
        ("topic", &settings.topic),
        ("chatId", &settings.chat_id),
        ("smtpHost", &settings.smtp_host),
        ("from", &settings.from),
        ("username", &settings.username),
        ("url", &secrets.url),
        ("signingKey", &secrets.signing_key),
        ("token", &secrets.token),
        ("password", &secrets.password),
        ("routingKey", &secrets.routing_key),
    ]
    .into_iter()
    .filter_map(|(field, value)| value.as_deref().map(|v| (field, v)))
    .collect();
    all.extend(settings.to.iter().map(|to| ("to", to.as_str())));
    all
}

/// Checks that `settings` and `secrets` give `kind` what it needs, and nothing malformed: no
/// text longer than [`MAX_FIELD_BYTES`] or with a control character (PostgreSQL cannot store a
/// NUL, and none belongs in a header, an address or a key).
pub fn validate(
    kind: ChannelKind,
    settings: &Settings,
    secrets: &Secrets,
) -> Result<(), FieldError> {
    for (field, text) in texts(settings, secrets) {
        if text.len() > MAX_FIELD_BYTES {
            return Err(refuse(
                field,
                format!("longer than {MAX_FIELD_BYTES} bytes"),
            ));
        }
        if text.chars().any(char::is_control) {
            return Err(refuse(field, "must not contain control characters"));
        }
    }
    if let Some(url) = &settings.url {
        check_url("url", url)?;
    }
    if let Some(url) = &secrets.url {
        check_url("url", url)?;
    }
    match kind {
        ChannelKind::Webhook => {
            check_url("url", required("url", &settings.url)?)?;
            if let Some(key) = &secrets.signing_key {
                SigningKey::parse(key).map_err(|e| refuse("signingKey", e.to_string()))?;
            }
        }
        ChannelKind::Slack | ChannelKind::Discord | ChannelKind::Teams => {
            check_url("url", required("url", &secrets.url)?)?;
        }
        ChannelKind::Ntfy => {
            let topic = required("topic", &settings.topic)?;
            if topic.len() > 64
                || !topic
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(refuse(
                    "topic",
                    "up to 64 letters, digits, '-' or '_' (ntfy's topic names)",
                ));
            }
        }
        ChannelKind::Telegram => {
            let token = required("token", &secrets.token)?;
            let valid = token.split_once(':').is_some_and(|(bot, key)| {
                !bot.is_empty()
                    && bot.chars().all(|c| c.is_ascii_digit())
                    && !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            });
            if !valid {
                return Err(refuse(
                    "token",
                    "a Telegram bot token looks like 123456:ABC-DEF… (from @BotFather)",
                ));
            }
            let chat = required("chatId", &settings.chat_id)?;
            if chat.len() > 64 || chat.contains(char::is_whitespace) {
                return Err(refuse("chatId", "a chat id (-100…) or a channel (@name)"));
            }
        }
        ChannelKind::Email => {
            let host = required("smtpHost", &settings.smtp_host)?;
            if host.contains(['/', ' ', ':']) && host.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(refuse("smtpHost", "a host name or address, without a port"));
            }
            if settings.smtp_port == Some(0) {
                return Err(refuse("smtpPort", "must be between 1 and 65535"));
            }
            check_address("from", required("from", &settings.from)?)?;
            if settings.to.is_empty() {
                return Err(refuse("to", "at least one recipient"));
            }
            if settings.to.len() > MAX_RECIPIENTS {
                return Err(refuse("to", format!("at most {MAX_RECIPIENTS} recipients")));
            }
            for to in &settings.to {
                check_address("to", to)?;
            }
            if secrets.password.is_some() && settings.username.is_none() {
                return Err(refuse("username", "a password needs a user name"));
            }
        }
        ChannelKind::Pagerduty => {
            let key = required("routingKey", &secrets.routing_key)?;
            if key.len() > 128 || key.contains(char::is_whitespace) {
                return Err(refuse(
                    "routingKey",
                    "a PagerDuty integration key (32 characters, from the service's Events API v2 integration)",
                ));
            }
        }
    }
    Ok(())
}

/// An HTTP request to send.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Request {
    /// Without the URL's path (Telegram's token, Slack's, Discord's and Teams' credentials) and
    /// the headers' values (ntfy's token).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let origin = url::Url::parse(&self.url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Request")
            .field("origin", &origin)
            .field("headers", &names)
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

/// Why a request could not be built (a channel changed by hand in SQL).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the channel cannot be used: {0}")]
pub struct Unusable(pub String);

/// The HTTP request `channel` (not e-mail) sends for `message`; `text` is the message's text
/// (default or templated) and `now` the attempt's time (the signature's timestamp).
pub fn request(
    channel: &Channel,
    message: &Message,
    text: &str,
    dashboard: &str,
    now: i64,
) -> Result<Request, Unusable> {
    let summary = message.summary();
    let missing = |what: &str| Unusable(format!("{what} is not set"));
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        (MESSAGE_ID_HEADER.to_owned(), message.id.clone()),
    ];
    let (url, body) = match channel.kind {
        ChannelKind::Webhook => {
            let url = channel.settings.url.clone().ok_or_else(|| missing("url"))?;
            let changes: Vec<serde_json::Value> = message
                .changes
                .iter()
                .map(|c| {
                    json!({
                        "target_id": c.target_id,
                        "url": c.url,
                        "event": c.event,
                        "from": c.from,
                        "to": c.to,
                        "since": c.since,
                        "cause": c.cause,
                        "incident_id": c.incident_id,
                        "reminder": c.reminder,
                        "link": c.link(dashboard),
                    })
                })
                .collect();
            let body = json!({
                "type": if message.test { "pingpipe.test" } else { "pingpipe.changes" },
                "timestamp": message.created(),
                "data": {
                    "id": message.id,
                    "summary": summary,
                    "text": text,
                    "changes": changes,
                },
            });
            let body = serde_json::to_vec(&body).expect("JSON values serialize");
            headers.push(("webhook-id".to_owned(), message.id.clone()));
            headers.push(("webhook-timestamp".to_owned(), now.to_string()));
            if let Some(key) = &channel.secrets.signing_key {
                let key = SigningKey::parse(key).map_err(|e| Unusable(e.to_string()))?;
                headers.push((
                    "webhook-signature".to_owned(),
                    key.sign(&message.id, now, &body),
                ));
            }
            (url, body)
        }
        ChannelKind::Slack => {
            let url = channel.secrets.url.clone().ok_or_else(|| missing("url"))?;
            let body = json!({
                "text": format!("*{}*\n{}", slack_escape(&summary), slack_escape(text)),
                "unfurl_links": false,
            });
            (
                url,
                serde_json::to_vec(&body).expect("JSON values serialize"),
            )
        }
        ChannelKind::Discord => {
            let url = channel.secrets.url.clone().ok_or_else(|| missing("url"))?;
            let body = json!({
                "username": "Pingpipe",
                "embeds": [{
                    "title": cut(&summary, 256),
                    "description": cut(text, 4096),
                    "color": color(message),
                    "timestamp": message.created(),
                }],
                "allowed_mentions": { "parse": [] },
            });
            (
                url,
                serde_json::to_vec(&body).expect("JSON values serialize"),
            )
        }
        ChannelKind::Teams => {
            let url = channel.secrets.url.clone().ok_or_else(|| missing("url"))?;
            let body = json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            { "type": "TextBlock", "text": summary, "weight": "Bolder",
                              "size": "Medium", "wrap": true },
                            { "type": "TextBlock", "text": text, "wrap": true },
                        ],
                    },
                }],
            });
            (
                url,
                serde_json::to_vec(&body).expect("JSON values serialize"),
            )
        }
        ChannelKind::Ntfy => {
            let base = channel.settings.url.as_deref().unwrap_or(NTFY_SERVER);
            let topic = channel
                .settings
                .topic
                .clone()
                .ok_or_else(|| missing("topic"))?;
            let mut body = json!({
                "topic": topic,
                "title": cut(&summary, 250),
                // ntfy keeps a message up to 4,096 bytes (a longer one becomes an attachment).
                "message": cut_bytes(text, 4096),
                "priority": if failing(message) { 5 } else { 3 },
                "tags": [if failing(message) { "rotating_light" } else { "white_check_mark" }],
            });
            if let [one] = message.changes.as_slice() {
                body["click"] = one.link(dashboard).into();
            }
            if let Some(token) = &channel.secrets.token {
                headers.push(("authorization".to_owned(), format!("Bearer {token}")));
            }
            (
                format!("{}/", base.trim_end_matches('/')),
                serde_json::to_vec(&body).expect("JSON values serialize"),
            )
        }
        ChannelKind::Telegram => {
            let base = channel.settings.url.as_deref().unwrap_or(TELEGRAM_API);
            let token = channel
                .secrets
                .token
                .as_deref()
                .ok_or_else(|| missing("token"))?;
            let chat = channel
                .settings
                .chat_id
                .clone()
                .ok_or_else(|| missing("chatId"))?;
            let body = json!({
                "chat_id": chat,
                "text": cut(&format!("{summary}\n\n{text}"), 4096),
                "link_preview_options": { "is_disabled": true },
            });
            (
                format!("{}/bot{token}/sendMessage", base.trim_end_matches('/')),
                serde_json::to_vec(&body).expect("JSON values serialize"),
            )
        }
        ChannelKind::Pagerduty => {
            let base = channel.settings.url.as_deref().unwrap_or(PAGERDUTY_API);
            let key = channel
                .secrets
                .routing_key
                .clone()
                .ok_or_else(|| missing("routingKey"))?;
            let body = pagerduty_event(&key, message, &summary, dashboard);
            // A test is a change event: it checks the key and shows on the service without
            // paging anyone (an alert would stay open).
            let path = if message.test {
                "v2/change/enqueue"
            } else {
                "v2/enqueue"
            };
            (
                format!("{}/{path}", base.trim_end_matches('/')),
                serde_json::to_vec(&body).expect("JSON values serialize"),
            )
        }
        ChannelKind::Email => {
            return Err(Unusable("e-mail is sent over SMTP, not HTTP".to_owned()));
        }
    };
    Ok(Request { url, headers, body })
}

/// PagerDuty's `dedup_key` of a change: its DOWN incident, or the target and the state it
/// entered (a trigger) or left (a resolve).
pub fn dedup_key(change: &crate::message::Change) -> String {
    let state = if change.event == Event::Recovered {
        &change.from
    } else {
        &change.to
    };
    match change.incident_id {
        Some(id) if state == "down" => format!("pingpipe-incident-{id}"),
        _ => format!("pingpipe-target-{}-{state}", change.target_id),
    }
}

fn pagerduty_event(
    key: &str,
    message: &Message,
    summary: &str,
    dashboard: &str,
) -> serde_json::Value {
    let Some(change) = message.changes.first() else {
        return json!({
            "routing_key": key,
            "payload": {
                "summary": summary,
                "source": "pingpipe",
                "timestamp": message.created(),
                "custom_details": { "message_id": message.id },
            },
            "links": [{ "href": dashboard, "text": "Pingpipe" }],
        });
    };
    if change.event == Event::Recovered {
        return json!({
            "routing_key": key,
            "event_action": "resolve",
            "dedup_key": dedup_key(change),
        });
    }
    let severity = match change.event {
        Event::Down | Event::Reminder => "critical",
        _ => "warning",
    };
    let mut event = json!({
        "routing_key": key,
        "event_action": "trigger",
        "dedup_key": dedup_key(change),
        "payload": {
            "summary": cut(&change.line(), 1024),
            "source": change.url,
            "severity": severity,
            "timestamp": change.since,
            "component": change.url,
            "custom_details": {
                "event": change.event,
                "from": change.from,
                "to": change.to,
                "since": change.since,
                "message_id": message.id,
            },
        },
        "client": "Pingpipe",
        "client_url": change.link(dashboard),
        "links": [{ "href": change.link(dashboard), "text": "The target in Pingpipe" }],
    });
    // Fields without a value are left out rather than sent as null.
    if let Some(cause) = &change.cause {
        event["payload"]["class"] = cause.as_str().into();
        event["payload"]["custom_details"]["cause"] = cause.as_str().into();
    }
    event
}

/// Whether a message tells of trouble (rather than only of recoveries).
fn failing(message: &Message) -> bool {
    message.test || message.changes.iter().any(|c| c.event != Event::Recovered)
}

/// Discord's embed colour: red for trouble, green for recoveries, grey for a test.
fn color(message: &Message) -> u32 {
    if message.test {
        0x9e9e9e
    } else if failing(message) {
        0xd32f2f
    } else {
        0x2e7d32
    }
}

/// `text` cut to at most `max` bytes, on a character boundary (with an ellipsis when cut).
fn cut_bytes(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Slack's mrkdwn: `&`, `<` and `>` are control characters.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str) -> Settings {
        Settings {
            url: Some(url.to_owned()),
            ..Settings::default()
        }
    }

    #[test]
    fn channels_are_refused_naming_the_field() {
        let err = validate(
            ChannelKind::Webhook,
            &settings("ftp://x"),
            &Secrets::default(),
        )
        .unwrap_err();
        assert_eq!(err.field, "url");
        assert!(err.message.contains("http:// or https://"), "{err}");
        let err = validate(
            ChannelKind::Webhook,
            &Settings::default(),
            &Secrets::default(),
        )
        .unwrap_err();
        assert_eq!(err.field, "url");
        let bad_key = Secrets {
            signing_key: Some("nope".to_owned()),
            ..Secrets::default()
        };
        let err = validate(
            ChannelKind::Webhook,
            &settings("https://a.example/"),
            &bad_key,
        )
        .unwrap_err();
        assert_eq!(err.field, "signingKey");
        let email = Settings {
            smtp_host: Some("127.0.0.1".to_owned()),
            from: Some("pingpipe@example.com".to_owned()),
            to: vec!["not an address".to_owned()],
            ..Settings::default()
        };
        let err = validate(ChannelKind::Email, &email, &Secrets::default()).unwrap_err();
        assert_eq!(err.field, "to");
        let email = Settings {
            to: vec!["Ops <ops@example.com>".to_owned()],
            ..email
        };
        assert_eq!(
            validate(ChannelKind::Email, &email, &Secrets::default()),
            Ok(())
        );
        let err = validate(
            ChannelKind::Telegram,
            &Settings {
                chat_id: Some("-1001".to_owned()),
                ..Settings::default()
            },
            &Secrets {
                token: Some("no colon".to_owned()),
                ..Secrets::default()
            },
        )
        .unwrap_err();
        assert_eq!(err.field, "token");
    }

    #[test]
    fn secrets_never_show_in_debug_output_and_updates_keep_unmentioned_ones() {
        let secrets = Secrets {
            token: Some("123:very-secret".to_owned()),
            ..Secrets::default()
        };
        assert!(!format!("{secrets:?}").contains("very-secret"));
        assert_eq!(secrets.names(), ["token"]);
        let merged = secrets.merged(&Secrets {
            password: Some("pw".to_owned()),
            ..Secrets::default()
        });
        assert_eq!(merged.names(), ["token", "password"]);
    }

    #[test]
    fn pagerduty_keys_a_down_and_its_recovery_by_the_incident() {
        let mut m = Message::sample();
        m.changes.truncate(1);
        let down = m.changes[0].clone();
        assert_eq!(dedup_key(&down), "pingpipe-incident-1");
        let recovered = crate::message::Change {
            event: Event::Recovered,
            from: "down".to_owned(),
            to: "up".to_owned(),
            ..down.clone()
        };
        assert_eq!(dedup_key(&recovered), "pingpipe-incident-1");
        let degraded = crate::message::Change {
            event: Event::Degraded,
            to: "degraded".to_owned(),
            incident_id: None,
            ..down
        };
        assert_eq!(dedup_key(&degraded), "pingpipe-target-1-degraded");
    }
}
