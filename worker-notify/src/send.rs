//! Sending one message to one channel, with a timeout, and judging the receiver's answer:
//! delivered (2xx, SMTP 2xx), worth another try (a timeout, no connection, 408, 429, 5xx, an
//! SMTP 4xx) with the wait the receiver asked for (`Retry-After` in seconds or as an HTTP date,
//! Telegram's and Discord's `retry_after`), or failed for good (any other 4xx, an SMTP 5xx, a
//! channel that cannot be used) with the receiver's answer kept for people to read.

use std::time::Duration;

use chrono::Utc;
use entity::notify::ChannelKind;
use lettre::AsyncTransport;

use crate::channel::{Channel, SmtpSecurity, Unusable, request};
use crate::message::{Message, cut};

/// Longest part of a receiver's answer that is kept (characters).
pub const MAX_ANSWER_CHARS: usize = 2_000;
/// Longest wait a receiver may ask for; a longer `Retry-After` is capped.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(6 * 3600);

/// What became of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// Worth another try (after at least `retry_after`, when given).
    Retry,
    /// The receiver refused it for good.
    Failed,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Delivered => "delivered",
            Verdict::Retry => "retry",
            Verdict::Failed => "failed",
        }
    }
}

/// One attempt's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub verdict: Verdict,
    /// The HTTP status or SMTP code.
    pub status: Option<i32>,
    /// The receiver's answer (at most [`MAX_ANSWER_CHARS`]).
    pub answer: Option<String>,
    /// Why the attempt could not complete (no connection, timeout, …).
    pub error: Option<String>,
    pub retry_after: Option<Duration>,
}

impl Sent {
    fn error(verdict: Verdict, error: impl Into<String>) -> Sent {
        Sent {
            verdict,
            status: None,
            answer: None,
            error: Some(error.into()),
            retry_after: None,
        }
    }
}

/// Sends messages: one HTTP client (connections kept per host) and the settings every message
/// shares.
#[derive(Clone)]
pub struct Sender {
    http: reqwest::Client,
    timeout: Duration,
    dashboard: String,
}

impl Sender {
    /// `timeout` bounds each attempt as a whole; `dashboard` is the dashboard's public URL
    /// (links in messages).
    pub fn new(timeout: Duration, dashboard: &str) -> Result<Sender, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            // A receiver that redirects is answered as it answered: webhooks are not browsers.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pingpipe-notify/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Sender {
            http,
            timeout,
            dashboard: dashboard.trim_end_matches('/').to_owned(),
        })
    }

    pub fn dashboard(&self) -> &str {
        &self.dashboard
    }

    /// The message's text for `channel`: its template, or the default text when it has none —
    /// or when the template fails on this message (logged; the message still goes out).
    pub fn text(&self, channel: &Channel, message: &Message) -> String {
        match message.text(channel.template.as_deref(), &self.dashboard) {
            Ok(text) => text,
            Err(e) => {
                tracing::warn!(
                    channel_id = channel.id,
                    message_id = message.id,
                    error = %e,
                    "The channel's template failed on this message; it goes out with the default text."
                );
                message.default_text(&self.dashboard)
            }
        }
    }

    /// One attempt to deliver `message` to `channel`. Its answer and error never hold a NUL
    /// (a receiver may answer one; PostgreSQL's text cannot store it, and every caller stores
    /// them): each is replaced by U+FFFD.
    pub async fn send(&self, channel: &Channel, message: &Message) -> Sent {
        let mut sent = self.attempt(channel, message).await;
        for text in [&mut sent.answer, &mut sent.error].into_iter().flatten() {
            if text.contains('\0') {
                *text = text.replace('\0', "\u{FFFD}");
            }
        }
        sent
    }

    async fn attempt(&self, channel: &Channel, message: &Message) -> Sent {
        let text = self.text(channel, message);
        if channel.kind == ChannelKind::Email {
            return self.email(channel, message, &text).await;
        }
        let request = match request(
            channel,
            message,
            &text,
            &self.dashboard,
            Utc::now().timestamp(),
        ) {
            Ok(request) => request,
            Err(Unusable(why)) => return Sent::error(Verdict::Failed, why),
        };
        let mut builder = self.http.post(&request.url).body(request.body);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let response = match builder.send().await {
            Ok(response) => response,
            Err(e) => return Sent::error(Verdict::Retry, describe(e)),
        };
        let status = response.status();
        let header_wait = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // The answer's first bytes are enough to read (and keep memory bounded however much a
        // receiver sends); the rest is dropped with the connection.
        let answer = match read_start(response).await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => format!("(answer unreadable: {})", describe(e)),
        };
        let verdict = judge_http(status.as_u16());
        let retry_after = header_wait.or_else(|| body_retry_after(&answer));
        Sent {
            verdict,
            status: Some(i32::from(status.as_u16())),
            answer: Some(cut(answer.trim(), MAX_ANSWER_CHARS)),
            error: None,
            retry_after: retry_after.map(|w| w.min(MAX_RETRY_AFTER)),
        }
    }

    async fn email(&self, channel: &Channel, message: &Message, text: &str) -> Sent {
        let email = match crate::email::build(channel, message, text) {
            Ok(email) => email,
            Err(why) => return Sent::error(Verdict::Failed, why),
        };
        let s = &channel.settings;
        let host = s.smtp_host.clone().unwrap_or_default();
        let security = s.smtp_security.unwrap_or_default();
        let port = s.smtp_port.unwrap_or(security.default_port());
        type Smtp = lettre::AsyncSmtpTransport<lettre::Tokio1Executor>;
        let builder = match security {
            SmtpSecurity::None => Ok(Smtp::builder_dangerous(host.as_str())),
            SmtpSecurity::Starttls => Smtp::starttls_relay(&host),
            SmtpSecurity::Tls => Smtp::relay(&host),
        };
        let mut builder = match builder {
            Ok(b) => b.port(port).timeout(Some(self.timeout)),
            Err(e) => return Sent::error(Verdict::Failed, format!("SMTP: {e}")),
        };
        if let (Some(user), Some(password)) = (&s.username, &channel.secrets.password) {
            builder =
                builder.credentials(lettre::transport::smtp::authentication::Credentials::new(
                    user.clone(),
                    password.clone(),
                ));
        }
        let transport = builder.build();
        let sent = tokio::time::timeout(self.timeout, transport.send(email)).await;
        match sent {
            Err(_) => Sent::error(
                Verdict::Retry,
                format!("no answer within {:?}", self.timeout),
            ),
            Ok(Ok(response)) => Sent {
                verdict: Verdict::Delivered,
                status: Some(i32::from(u16::from(response.code()))),
                answer: Some(cut(
                    &response.message().collect::<Vec<_>>().join(" "),
                    MAX_ANSWER_CHARS,
                )),
                error: None,
                retry_after: None,
            },
            Ok(Err(e)) => {
                let status = e.status().map(|c| i32::from(u16::from(c)));
                let verdict = if e.is_permanent() {
                    Verdict::Failed
                } else {
                    Verdict::Retry
                };
                Sent {
                    verdict,
                    status,
                    answer: None,
                    error: Some(cut(&e.to_string(), MAX_ANSWER_CHARS)),
                    retry_after: None,
                }
            }
        }
    }
}

/// The first [`ANSWER_BYTES`] of a response's body.
async fn read_start(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut bytes = Vec::new();
    while bytes.len() < ANSWER_BYTES {
        match response.chunk().await? {
            Some(chunk) => bytes.extend_from_slice(&chunk),
            None => break,
        }
    }
    bytes.truncate(ANSWER_BYTES);
    Ok(bytes)
}

/// Most bytes of an answer read.
const ANSWER_BYTES: usize = 8 * 1024;

/// An HTTP status's verdict: 2xx delivered; 408, 429 and 5xx worth another try; any other
/// answer refused for good.
pub fn judge_http(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        408 | 429 | 500..=599 => Verdict::Retry,
        _ => Verdict::Failed,
    }
}

/// `Retry-After`: seconds, or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&Utc) - Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// A wait in the answer's JSON: Telegram's `parameters.retry_after` (seconds) or Discord's
/// `retry_after` (seconds, fractional).
fn body_retry_after(answer: &str) -> Option<Duration> {
    let json: serde_json::Value = serde_json::from_str(answer).ok()?;
    let seconds = json
        .pointer("/parameters/retry_after")
        .or_else(|| json.get("retry_after"))?
        .as_f64()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(1e6)))
}

/// An HTTP error in a few words, with its causes (reqwest's own message is "error sending
/// request") — without the URL, whose path is a credential for Telegram (the bot token), Slack,
/// Discord and Teams: the text is logged and shown in the delivery log.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "cannot connect".to_owned()
    } else {
        e.to_string()
    };
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    cut(&text, MAX_ANSWER_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_judged_as_the_issue_says() {
        assert_eq!(judge_http(200), Verdict::Delivered);
        assert_eq!(judge_http(202), Verdict::Delivered);
        assert_eq!(judge_http(204), Verdict::Delivered);
        assert_eq!(judge_http(429), Verdict::Retry);
        assert_eq!(judge_http(500), Verdict::Retry);
        assert_eq!(judge_http(503), Verdict::Retry);
        assert_eq!(judge_http(408), Verdict::Retry);
        assert_eq!(judge_http(400), Verdict::Failed);
        assert_eq!(judge_http(404), Verdict::Failed);
        assert_eq!(judge_http(301), Verdict::Failed);
    }

    #[test]
    fn retry_after_reads_seconds_dates_and_service_bodies() {
        assert_eq!(parse_retry_after("5"), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        let later = (Utc::now() + chrono::TimeDelta::seconds(120)).to_rfc2822();
        let wait = parse_retry_after(&later).unwrap();
        assert!(wait > Duration::from_secs(100), "{wait:?}");
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(
            body_retry_after(r#"{"ok":false,"error_code":429,"parameters":{"retry_after":7}}"#),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            body_retry_after(r#"{"message":"You are being rate limited.","retry_after":1.5}"#),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(body_retry_after("ok"), None);
    }
}
