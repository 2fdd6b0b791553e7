//! Notifications (#14): the kinds of channel, the events a route can ask for, and which event a
//! state change is for a route. Shared by the ingest worker (which writes the outbox), the
//! notification worker (which delivers it) and the API (which validates channels and routes).
//!
//! A change is one event for a route, or none:
//!
//! | change                          | event                                              |
//! |---------------------------------|----------------------------------------------------|
//! | → DOWN                          | `down` (`certificate_expiring` if the cause is the certificate's expiry and the route asked for it) |
//! | one that resolves a DOWN incident (to UP or DEGRADED, also through UNKNOWN or MAINTENANCE) | `recovered`, for a route that hears `down` and `recovered` |
//! | → DEGRADED                      | `degraded` (or `certificate_expiring`, as above)   |
//! | DEGRADED → UP, UNKNOWN → UP     | `recovered`, for a route that hears what the target recovered from |
//! | → UNKNOWN                       | `unknown`                                          |
//! | → PENDING, → MAINTENANCE, a new target's first result UP | none                      |
//!
//! Reminders (`reminder`) are made by the notification worker while a target stays DOWN.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::maintenance::Scope;
use crate::state::State;

/// Where a channel's messages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// A generic HTTPS endpoint: JSON, signed the Standard Webhooks way.
    Webhook,
    /// A Slack incoming webhook.
    Slack,
    /// A Discord webhook.
    Discord,
    /// A Microsoft Teams workflow ("When a Teams webhook request is received").
    Teams,
    /// An ntfy server's topic.
    Ntfy,
    /// A Telegram bot's chat.
    Telegram,
    /// E-mail over SMTP.
    Email,
    /// PagerDuty Events API v2.
    Pagerduty,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 8] = [
        ChannelKind::Webhook,
        ChannelKind::Slack,
        ChannelKind::Discord,
        ChannelKind::Teams,
        ChannelKind::Ntfy,
        ChannelKind::Telegram,
        ChannelKind::Email,
        ChannelKind::Pagerduty,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Slack => "slack",
            ChannelKind::Discord => "discord",
            ChannelKind::Teams => "teams",
            ChannelKind::Ntfy => "ntfy",
            ChannelKind::Telegram => "telegram",
            ChannelKind::Email => "email",
            ChannelKind::Pagerduty => "pagerduty",
        }
    }

    pub fn parse(text: &str) -> Option<ChannelKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Whether changes are grouped into one message: PagerDuty keys each event by its incident
    /// (`dedup_key`), so every change is its own event there.
    pub const fn groups(self) -> bool {
        !matches!(self, ChannelKind::Pagerduty)
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a route asks to hear about (and what a notification is).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Down,
    Recovered,
    Degraded,
    CertificateExpiring,
    Unknown,
    /// The target is still DOWN (every `remind_every_minutes`); only made by the worker.
    Reminder,
}

impl Event {
    /// The events a route can ask for.
    pub const ROUTABLE: [Event; 5] = [
        Event::Down,
        Event::Recovered,
        Event::Degraded,
        Event::CertificateExpiring,
        Event::Unknown,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Event::Down => "down",
            Event::Recovered => "recovered",
            Event::Degraded => "degraded",
            Event::CertificateExpiring => "certificate_expiring",
            Event::Unknown => "unknown",
            Event::Reminder => "reminder",
        }
    }

    pub fn parse(text: &str) -> Option<Event> {
        Self::ROUTABLE
            .into_iter()
            .chain([Event::Reminder])
            .find(|e| e.as_str() == text)
    }

    /// What the change from `from` to `to` is for a route that asked for `asked`; `None`: the
    /// route does not hear it.
    pub fn for_route(from: State, to: State, facts: &Facts<'_>, asked: &[Event]) -> Option<Event> {
        let has = |e: Event| asked.contains(&e);
        let certificate = facts.cause.is_some_and(is_certificate_cause);
        let failing = |plain: Event| {
            if certificate && has(Event::CertificateExpiring) {
                Some(Event::CertificateExpiring)
            } else if has(plain) {
                Some(plain)
            } else {
                None
            }
        };
        // The change closed a DOWN incident, whatever people saw in between (UNKNOWN,
        // MAINTENANCE): a recovery for a route that heard the down.
        if facts.resolved_incident && has(Event::Recovered) && has(Event::Down) {
            return Some(Event::Recovered);
        }
        match (from, to) {
            (_, State::Down) => failing(Event::Down),
            (State::Down, State::Degraded) => failing(Event::Degraded),
            (_, State::Degraded) => failing(Event::Degraded),
            (_, State::Unknown) => has(Event::Unknown).then_some(Event::Unknown),
            (State::Degraded, State::Up) => (has(Event::Recovered)
                && (has(Event::Degraded) || has(Event::CertificateExpiring)))
            .then_some(Event::Recovered),
            // A new target's first result is no recovery.
            (State::Unknown, State::Up) if !facts.first_result => {
                (has(Event::Recovered) && has(Event::Unknown)).then_some(Event::Recovered)
            }
            _ => None,
        }
    }
}

/// What is known of a change besides its states.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts<'a> {
    /// Why the new state's first result failed.
    pub cause: Option<&'a str>,
    /// The change resolved a DOWN incident.
    pub resolved_incident: bool,
    /// The change came with the target's first result.
    pub first_result: bool,
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a failure cause is the certificate's expiry (a failed `CERT_EXPIRES_IN_DAYS`
/// assertion, as `states::CAUSE_SQL` words it).
pub fn is_certificate_cause(cause: &str) -> bool {
    cause.contains("CERT_EXPIRES_IN_DAYS")
}

/// A route as the workers read it: which targets, which events, to which channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub id: i64,
    pub channel: i64,
    pub scope: Scope,
    pub events: Vec<Event>,
    /// A reminder every this many minutes while a target stays DOWN.
    pub remind_every_minutes: Option<u32>,
    pub silence_in_maintenance: bool,
}

impl Route {
    /// Whether the route covers the target with this id and these tags.
    pub fn covers(&self, target: i32, tags: &[String]) -> bool {
        self.scope.covers(target, tags)
    }
}

/// Reads a route's stored event list (JSON), ignoring names this build does not know.
pub fn parse_events(json: &str) -> Vec<Event> {
    let names: Vec<String> = serde_json::from_str(json).unwrap_or_default();
    let mut events: Vec<Event> = names.iter().filter_map(|n| Event::parse(n)).collect();
    events.sort();
    events.dedup();
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[Event] = &Event::ROUTABLE;

    #[test]
    fn kinds_and_events_read_back_what_they_write() {
        for kind in ChannelKind::ALL {
            assert_eq!(ChannelKind::parse(kind.as_str()), Some(kind));
        }
        for event in Event::ROUTABLE.into_iter().chain([Event::Reminder]) {
            assert_eq!(Event::parse(event.as_str()), Some(event));
        }
        assert_eq!(ChannelKind::parse("sms"), None);
        assert_eq!(
            parse_events(r#"["down","recovered","nonsense","down"]"#),
            [Event::Down, Event::Recovered]
        );
    }

    fn plain(cause: Option<&str>) -> Facts<'_> {
        Facts {
            cause,
            ..Facts::default()
        }
    }

    const RESOLVED: Facts<'static> = Facts {
        cause: None,
        resolved_incident: true,
        first_result: false,
    };

    #[test]
    fn a_change_is_the_event_the_route_asked_for() {
        use State::*;
        let down_only = &[Event::Down, Event::Recovered][..];
        let timeout = plain(Some("timeout"));
        assert_eq!(
            Event::for_route(Up, Down, &timeout, down_only),
            Some(Event::Down)
        );
        assert_eq!(
            Event::for_route(Pending, Down, &timeout, down_only),
            Some(Event::Down)
        );
        assert_eq!(
            Event::for_route(Down, Up, &RESOLVED, down_only),
            Some(Event::Recovered)
        );
        // Leaving DOWN resolves the incident: a recovery, even for a route that hears DEGRADED
        // (PagerDuty's incident must be resolved), and even seen through UNKNOWN or MAINTENANCE.
        assert_eq!(
            Event::for_route(Down, Degraded, &RESOLVED, down_only),
            Some(Event::Recovered)
        );
        assert_eq!(
            Event::for_route(Down, Degraded, &RESOLVED, ALL),
            Some(Event::Recovered)
        );
        assert_eq!(
            Event::for_route(Unknown, Up, &RESOLVED, down_only),
            Some(Event::Recovered)
        );
        assert_eq!(
            Event::for_route(Maintenance, Up, &RESOLVED, down_only),
            Some(Event::Recovered)
        );
        // A route that hears DOWN only is not told about DEGRADED or its end.
        assert_eq!(
            Event::for_route(Up, Degraded, &plain(None), down_only),
            None
        );
        assert_eq!(
            Event::for_route(Degraded, Up, &plain(None), down_only),
            None
        );
        assert_eq!(Event::for_route(Up, Unknown, &plain(None), down_only), None);
        assert_eq!(
            Event::for_route(Up, Unknown, &plain(None), ALL),
            Some(Event::Unknown)
        );
        assert_eq!(
            Event::for_route(Unknown, Up, &plain(None), ALL),
            Some(Event::Recovered)
        );
        // A new target's first result, a blip and maintenance are not events.
        let first = Facts {
            first_result: true,
            ..Facts::default()
        };
        assert_eq!(Event::for_route(Unknown, Up, &first, ALL), None);
        assert_eq!(Event::for_route(Unknown, Up, &plain(None), down_only), None);
        assert_eq!(Event::for_route(Up, Pending, &timeout, ALL), None);
        assert_eq!(Event::for_route(Pending, Up, &plain(None), ALL), None);
        assert_eq!(Event::for_route(Up, Maintenance, &plain(None), ALL), None);
        assert_eq!(Event::for_route(Maintenance, Up, &plain(None), ALL), None);
    }

    #[test]
    fn a_certificate_cause_is_its_own_event_for_routes_that_ask() {
        use State::*;
        let cause = plain(Some("assertion 0: CERT_EXPIRES_IN_DAYS GREATER_THAN 14"));
        assert_eq!(
            Event::for_route(Up, Degraded, &cause, ALL),
            Some(Event::CertificateExpiring)
        );
        assert_eq!(
            Event::for_route(Up, Degraded, &cause, &[Event::Degraded]),
            Some(Event::Degraded)
        );
        assert_eq!(
            Event::for_route(Up, Degraded, &cause, &[Event::CertificateExpiring]),
            Some(Event::CertificateExpiring)
        );
        assert_eq!(
            Event::for_route(
                Degraded,
                Up,
                &plain(None),
                &[Event::CertificateExpiring, Event::Recovered]
            ),
            Some(Event::Recovered)
        );
        assert_eq!(
            Event::for_route(Up, Down, &cause, &[Event::Down]),
            Some(Event::Down)
        );
    }
}
