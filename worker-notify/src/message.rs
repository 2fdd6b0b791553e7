//! What a message says: the changes it carries (one, or a storm's worth grouped), a summary line
//! ("DOWN: https://shop.example/", "12 targets down, 3 recovered") and a text — the default text,
//! or the channel's minijinja template. Templates run with a fuel limit, so a template cannot
//! loop for long, and are checked when saved by rendering a sample message.

use chrono::{DateTime, SecondsFormat, Utc};
use entity::notify::Event;
use serde::Serialize;

/// Most changes listed in a message's text; the rest are counted ("… and 12 more").
pub const LISTED: usize = 20;
/// The fuel a template gets per message (minijinja counts instructions): plenty for a loop over
/// a storm's changes, nothing like an endless one.
pub const TEMPLATE_FUEL: u64 = 200_000;
/// Longest template, in bytes (the column's limit).
pub const MAX_TEMPLATE_BYTES: usize = 16 * 1024;
/// Longest rendered text, in characters; a longer one is cut.
pub const MAX_TEXT_CHARS: usize = 8_000;

/// One change a message tells about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub target_id: i32,
    pub url: String,
    pub event: Event,
    /// States as people see them: `up`, `down`, …
    pub from: String,
    pub to: String,
    /// When the new state began.
    pub since: DateTime<Utc>,
    pub cause: Option<String>,
    pub incident_id: Option<i64>,
    /// 0, or which reminder this is.
    pub reminder: i32,
}

/// A message: its stable id and what it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The same on every attempt (webhook-id, Message-ID, …).
    pub id: String,
    pub created_at: DateTime<Utc>,
    pub changes: Vec<Change>,
    /// A test message (`testChannel`): no changes.
    pub test: bool,
}

impl Change {
    /// The dashboard's page of the target.
    pub fn link(&self, dashboard: &str) -> String {
        format!(
            "{}/#/targets/{}",
            dashboard.trim_end_matches('/'),
            self.target_id
        )
    }

    /// The word for what happened: `DOWN`, `RECOVERED`, …
    pub fn headline(&self) -> &'static str {
        match self.event {
            Event::Down => "DOWN",
            Event::Recovered => "RECOVERED",
            Event::Degraded => "DEGRADED",
            Event::CertificateExpiring => "CERTIFICATE EXPIRING",
            Event::Unknown => "UNKNOWN",
            Event::Reminder => "STILL DOWN",
        }
    }

    /// One line: `DOWN https://shop.example/ since 2026-11-30 10:00:00 UTC: timeout`.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{} {} since {}",
            self.headline(),
            self.url,
            human(self.since)
        );
        match (&self.cause, self.event) {
            (_, Event::Unknown) => line.push_str(": no result for two periods"),
            (Some(cause), e) if e != Event::Recovered => {
                line.push_str(": ");
                line.push_str(cause);
            }
            _ => {}
        }
        line
    }
}

/// A time as people read it in a message.
pub fn human(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

impl Message {
    /// The summary line (a title, a subject).
    pub fn summary(&self) -> String {
        if self.test {
            return "Test message from Pingpipe".to_owned();
        }
        match self.changes.as_slice() {
            [one] => format!("{}: {}", one.headline(), one.url),
            many => {
                let mut counts: Vec<(Event, usize)> = Vec::new();
                for c in many {
                    match counts.iter_mut().find(|(e, _)| *e == c.event) {
                        Some((_, n)) => *n += 1,
                        None => counts.push((c.event, 1)),
                    }
                }
                counts.sort();
                let parts: Vec<String> = counts
                    .iter()
                    .map(|(e, n)| format!("{n} {}", plural_word(*e)))
                    .collect();
                format!("{} targets: {}", many.len(), parts.join(", "))
            }
        }
    }

    /// The default text: the changes one per line (at most [`LISTED`]), each with its
    /// dashboard link.
    pub fn default_text(&self, dashboard: &str) -> String {
        if self.test {
            return format!(
                "This is a test message from Pingpipe ({}). If you read this, the channel works.",
                dashboard.trim_end_matches('/')
            );
        }
        let mut text = String::new();
        for c in self.changes.iter().take(LISTED) {
            text.push_str(&c.line());
            text.push_str("\n  ");
            text.push_str(&c.link(dashboard));
            text.push('\n');
        }
        if self.changes.len() > LISTED {
            text.push_str(&format!("… and {} more\n", self.changes.len() - LISTED));
        }
        text.trim_end().to_owned()
    }

    /// The text: the channel's template rendered, or the default text.
    pub fn text(&self, template: Option<&str>, dashboard: &str) -> Result<String, TemplateError> {
        let text = match template {
            Some(source) => render(source, self, dashboard)?,
            None => self.default_text(dashboard),
        };
        Ok(cut(&text, MAX_TEXT_CHARS))
    }

    /// What a template sees: `summary`, `count`, `dashboard`, `test` and `changes` (each with
    /// `target_id`, `url`, `event`, `from`, `to`, `since`, `cause`, `incident_id`,
    /// `reminder`, `headline`, `line` and `link`).
    fn context(&self, dashboard: &str) -> serde_json::Value {
        let changes: Vec<serde_json::Value> = self
            .changes
            .iter()
            .map(|c| {
                let mut v = serde_json::to_value(c).expect("a change is plain data");
                v["since"] = human(c.since).into();
                v["headline"] = c.headline().into();
                v["line"] = c.line().into();
                v["link"] = c.link(dashboard).into();
                v
            })
            .collect();
        serde_json::json!({
            "id": self.id,
            "summary": self.summary(),
            "count": self.changes.len(),
            "dashboard": dashboard.trim_end_matches('/'),
            "test": self.test,
            "changes": changes,
        })
    }

    /// A message to check templates with: two changes.
    pub fn sample() -> Message {
        let since = DateTime::parse_from_rfc3339("2026-11-30T10:00:00Z")
            .expect("a valid time")
            .with_timezone(&Utc);
        let change = |id: i32, event: Event, to: &str, cause: Option<&str>| Change {
            target_id: id,
            url: format!("https://example.com/{id}"),
            event,
            from: "up".to_owned(),
            to: to.to_owned(),
            since,
            cause: cause.map(str::to_owned),
            incident_id: Some(i64::from(id)),
            reminder: 0,
        };
        Message {
            id: "00000000-0000-4000-8000-000000000000".to_owned(),
            created_at: since,
            changes: vec![
                change(1, Event::Down, "down", Some("timeout")),
                change(2, Event::Recovered, "up", None),
            ],
            test: false,
        }
    }

    /// RFC 3339 time, as payloads carry it.
    pub fn created(&self) -> String {
        self.created_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    }
}

fn plural_word(event: Event) -> &'static str {
    match event {
        Event::Down => "down",
        Event::Recovered => "recovered",
        Event::Degraded => "degraded",
        Event::CertificateExpiring => "with an expiring certificate",
        Event::Unknown => "unknown",
        Event::Reminder => "still down",
    }
}

/// `text` cut to at most `max` characters (with an ellipsis when cut).
pub fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((at, _)) if text.chars().count() > max => format!("{}…", &text[..at]),
        _ => text.to_owned(),
    }
}

/// Why a template was refused or failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

fn render(source: &str, message: &Message, dashboard: &str) -> Result<String, TemplateError> {
    let mut env = minijinja::Environment::new();
    env.set_fuel(Some(TEMPLATE_FUEL));
    // Plain text: nothing to escape (payloads are JSON-encoded afterwards).
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.add_template("message", source)
        .map_err(|e| TemplateError(describe(&e)))?;
    let template = env
        .get_template("message")
        .map_err(|e| TemplateError(describe(&e)))?;
    template
        .render(minijinja::value::Serde(message.context(dashboard)))
        .map_err(|e| TemplateError(describe(&e)))
}

fn describe(e: &minijinja::Error) -> String {
    let detail = e.detail().map(|d| format!(": {d}")).unwrap_or_default();
    let line = e.line().map(|l| format!(" (line {l})")).unwrap_or_default();
    format!("{}{detail}{line}", e.kind())
}

/// Checks a template before it is saved: it must compile, and render a sample message within
/// the fuel limit to a text that is not empty.
pub fn validate_template(source: &str) -> Result<(), TemplateError> {
    if source.len() > MAX_TEMPLATE_BYTES {
        return Err(TemplateError(format!(
            "longer than {MAX_TEMPLATE_BYTES} bytes"
        )));
    }
    if source.contains('\0') {
        return Err(TemplateError("must not contain a NUL character".to_owned()));
    }
    let text = render(source, &Message::sample(), "http://127.0.0.1:8080")?;
    if text.trim().is_empty() {
        return Err(TemplateError(
            "renders an empty text for a sample message".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_change_reads_as_a_sentence_with_its_link() {
        let mut m = Message::sample();
        m.changes.truncate(1);
        assert_eq!(m.summary(), "DOWN: https://example.com/1");
        assert_eq!(
            m.default_text("http://dash.example/"),
            "DOWN https://example.com/1 since 2026-11-30 10:00:00 UTC: timeout\n  \
             http://dash.example/#/targets/1"
        );
    }

    #[test]
    fn a_storm_is_counted_and_listed_up_to_the_limit() {
        let mut m = Message::sample();
        let down = m.changes[0].clone();
        m.changes = (0..30)
            .map(|i| Change {
                target_id: i,
                ..down.clone()
            })
            .collect();
        m.changes[29].event = Event::Recovered;
        assert_eq!(m.summary(), "30 targets: 29 down, 1 recovered");
        let text = m.default_text("http://d");
        assert_eq!(text.lines().filter(|l| l.starts_with("DOWN ")).count(), 20);
        assert!(text.ends_with("… and 10 more"), "{text}");
    }

    #[test]
    fn templates_render_the_changes_and_are_checked_when_saved() {
        let template = "{{ summary }}\n{% for c in changes %}{{ c.event }} {{ c.url }} ({{ c.link }})\n{% endfor %}";
        assert!(validate_template(template).is_ok());
        let text = Message::sample().text(Some(template), "http://d").unwrap();
        assert_eq!(
            text,
            "2 targets: 1 down, 1 recovered\ndown https://example.com/1 (http://d/#/targets/1)\n\
             recovered https://example.com/2 (http://d/#/targets/2)\n"
        );
        let err = validate_template("{% for c in changes %}").unwrap_err();
        assert!(err.0.contains("syntax error"), "{err}");
        let err = validate_template("{{ summary | nosuchfilter }}").unwrap_err();
        assert!(err.0.contains("unknown filter"), "{err}");
        assert!(validate_template("   ").is_err());
    }

    #[test]
    fn a_template_that_loops_forever_runs_out_of_fuel() {
        let endless =
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
        let err = validate_template(endless).unwrap_err();
        assert!(err.0.contains("fuel"), "{err}");
    }

    #[test]
    fn texts_are_cut_on_a_character_boundary() {
        assert_eq!(cut("héllo", 10), "héllo");
        assert_eq!(cut("héllo", 3), "hé…");
    }
}
