//! The result event: what the monitor publishes for every probe and the ingest worker stores.
//!
//! JSON on the wire, one event per Kafka record, keyed by the target id as decimal text. Every
//! event carries `schema_version`; readers refuse versions they do not know and ignore fields
//! they do not know, so a newer producer can add fields without breaking an older consumer.

use chrono::{DateTime, Datelike, Utc};
use serde::{Deserialize, Serialize};

use crate::{FailureClass, Frequency};

/// The schema version this build writes and the only one it reads.
pub const RESULT_EVENT_SCHEMA_VERSION: u32 = 1;

/// One probe of one target in one scheduled slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultEvent {
    /// Always [`RESULT_EVENT_SCHEMA_VERSION`] when written by this build.
    pub schema_version: u32,
    /// `urltargets.urltargets_pk` of the probed target.
    pub target_id: i32,
    /// The URL as it was probed.
    pub url: String,
    /// The target's frequency when it was probed.
    pub frequency: Frequency,
    /// The slot this probe belongs to; at most one result is stored per (target, slot).
    pub scheduled_at: DateTime<Utc>,
    /// When the probe started (UTC).
    pub start_time: DateTime<Utc>,
    /// Total duration in milliseconds, DNS, connect and TLS included.
    pub duration_ms: i32,
    /// Status of the final response; `None` exactly when `failure_class` is set.
    pub http_status: Option<i32>,
    /// Why there was no response; `None` exactly when `http_status` is set.
    pub failure_class: Option<FailureClass>,
}

/// Statuses that count as up: a 2xx or 3xx final response. The one definition of "up" for
/// the API's statistics, its `up` field and the dashboard (which reads that field).
pub const UP_STATUSES: std::ops::RangeInclusive<i32> = 200..=399;

/// Whether a check with this final status (none: no response) counts as up.
pub fn is_up(http_status: Option<i32>) -> bool {
    http_status.is_some_and(|s| UP_STATUSES.contains(&s))
}

/// What a probe found: a response, or a failure without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The final response's HTTP status.
    Status(i32),
    /// No HTTP response, and why.
    Failure(FailureClass),
}

/// Why bytes from Kafka are not a usable [`ResultEvent`]. Every variant is deterministic: the
/// same bytes fail the same way, so the record is parked, never retried.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("not a result event: {0}")]
    Malformed(#[from] serde_json::Error),
    #[error("unknown schema_version {found}; this build reads {RESULT_EVENT_SCHEMA_VERSION}")]
    UnknownSchemaVersion { found: u64 },
    #[error("exactly one of http_status and failure_class must be set")]
    AmbiguousOutcome,
    #[error("http_status {0} is outside 100..=599")]
    InvalidStatus(i32),
    #[error("duration_ms {0} is negative")]
    NegativeDuration(i32),
    #[error("duration_ms {0} is longer than a day ({MAX_DURATION_MS} ms)")]
    AbsurdDuration(i32),
    #[error("{field} {value} is outside the years {MIN_YEAR}..={MAX_YEAR}")]
    TimeOutOfRange { field: &'static str, value: String },
    #[error("{field} contains a NUL character, which no text column can hold")]
    NulInText { field: &'static str },
    #[error("target_id {0} is not a target key (keys start at 1)")]
    InvalidTarget(i32),
}

/// Longest duration a probe can report: a day (probes time out after seconds).
pub const MAX_DURATION_MS: i32 = 86_400_000;
/// Years an event's times may fall in. PostgreSQL stores 4713 BC to 294276 AD and chrono
/// parses far more; a probe result outside these years is a forgery or a broken clock.
pub const MIN_YEAR: i32 = 1970;
pub const MAX_YEAR: i32 = 9999;

/// Just enough of an event to read its version before trusting the rest of the shape.
#[derive(Deserialize)]
struct VersionProbe {
    schema_version: u64,
}

impl ResultEvent {
    /// An event of the current schema version.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        target_id: i32,
        url: impl Into<String>,
        frequency: Frequency,
        scheduled_at: DateTime<Utc>,
        start_time: DateTime<Utc>,
        duration_ms: i32,
        outcome: Outcome,
    ) -> Self {
        let (http_status, failure_class) = match outcome {
            Outcome::Status(status) => (Some(status), None),
            Outcome::Failure(class) => (None, Some(class)),
        };
        Self {
            schema_version: RESULT_EVENT_SCHEMA_VERSION,
            target_id,
            url: url.into(),
            frequency,
            scheduled_at,
            start_time,
            duration_ms,
            http_status,
            failure_class,
        }
    }

    /// The outcome, if exactly one of status and failure class is set.
    pub fn outcome(&self) -> Result<Outcome, EventError> {
        match (self.http_status, self.failure_class) {
            (Some(status), None) if (100..=599).contains(&status) => Ok(Outcome::Status(status)),
            (Some(status), None) => Err(EventError::InvalidStatus(status)),
            (None, Some(class)) => Ok(Outcome::Failure(class)),
            _ => Err(EventError::AmbiguousOutcome),
        }
    }

    /// The Kafka record key: the target id as decimal text, readable in any Kafka tool.
    pub fn key(&self) -> String {
        self.target_id.to_string()
    }

    /// JSON bytes for a Kafka record value.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a ResultEvent has only string keys and plain values")
    }

    /// Reads and validates a record value: known schema version, every field present, a
    /// coherent outcome, and nothing PostgreSQL could refuse (times within [`MIN_YEAR`] to
    /// [`MAX_YEAR`], no NUL in text, a duration of at most a day). Unknown extra fields are
    /// ignored.
    pub fn decode(bytes: &[u8]) -> Result<Self, EventError> {
        let probe: VersionProbe = serde_json::from_slice(bytes)?;
        if probe.schema_version != u64::from(RESULT_EVENT_SCHEMA_VERSION) {
            return Err(EventError::UnknownSchemaVersion {
                found: probe.schema_version,
            });
        }
        let event: ResultEvent = serde_json::from_slice(bytes)?;
        event.outcome()?;
        if event.duration_ms < 0 {
            return Err(EventError::NegativeDuration(event.duration_ms));
        }
        if event.duration_ms > MAX_DURATION_MS {
            return Err(EventError::AbsurdDuration(event.duration_ms));
        }
        if event.target_id < 1 {
            return Err(EventError::InvalidTarget(event.target_id));
        }
        for (field, time) in [
            ("scheduled_at", event.scheduled_at),
            ("start_time", event.start_time),
        ] {
            if !(MIN_YEAR..=MAX_YEAR).contains(&time.year()) {
                return Err(EventError::TimeOutOfRange {
                    field,
                    value: time.to_rfc3339(),
                });
            }
        }
        if event.url.contains('\0') {
            return Err(EventError::NulInText { field: "url" });
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample(outcome: Outcome) -> ResultEvent {
        let slot = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
        ResultEvent::new(
            42,
            "https://example.test/health",
            Frequency::FiveMinutes,
            slot,
            slot + chrono::Duration::milliseconds(1_234),
            87,
            outcome,
        )
    }

    #[test]
    fn event_round_trips_through_json() {
        for outcome in [
            Outcome::Status(200),
            Outcome::Failure(FailureClass::Timeout),
        ] {
            let event = sample(outcome);
            let decoded = ResultEvent::decode(&event.encode()).unwrap();
            assert_eq!(decoded, event);
            assert_eq!(decoded.outcome().unwrap(), outcome);
        }
    }

    #[test]
    fn event_json_is_readable_by_other_tools() {
        let value: serde_json::Value =
            serde_json::from_slice(&sample(Outcome::Status(404)).encode()).unwrap();
        assert_eq!(value["schema_version"], 1);
        assert_eq!(value["target_id"], 42);
        assert_eq!(value["frequency"], 5);
        assert_eq!(value["http_status"], 404);
        assert_eq!(value["failure_class"], serde_json::Value::Null);
        assert_eq!(value["scheduled_at"], "2026-11-26T12:00:00Z");
        assert_eq!(sample(Outcome::Status(404)).key(), "42");
    }

    #[test]
    fn event_decode_tolerates_unknown_fields() {
        let mut value: serde_json::Value =
            serde_json::from_slice(&sample(Outcome::Status(200)).encode()).unwrap();
        value["probe_region"] = "eu-west".into();
        value["tls"] = serde_json::json!({"version": "1.3"});
        let decoded = ResultEvent::decode(&serde_json::to_vec(&value).unwrap()).unwrap();
        assert_eq!(decoded, sample(Outcome::Status(200)));
    }

    #[test]
    fn event_decode_refuses_unknown_schema_version() {
        let mut value: serde_json::Value =
            serde_json::from_slice(&sample(Outcome::Status(200)).encode()).unwrap();
        value["schema_version"] = 2.into();
        let err = ResultEvent::decode(&serde_json::to_vec(&value).unwrap()).unwrap_err();
        assert!(
            matches!(err, EventError::UnknownSchemaVersion { found: 2 }),
            "{err}"
        );
    }

    #[test]
    fn event_decode_refuses_missing_fields_and_garbage() {
        let mut value: serde_json::Value =
            serde_json::from_slice(&sample(Outcome::Status(200)).encode()).unwrap();
        value.as_object_mut().unwrap().remove("scheduled_at");
        let err = ResultEvent::decode(&serde_json::to_vec(&value).unwrap()).unwrap_err();
        assert!(err.to_string().contains("scheduled_at"), "{err}");

        assert!(matches!(
            ResultEvent::decode(b"\xff\x00not json"),
            Err(EventError::Malformed(_))
        ));
        assert!(matches!(
            ResultEvent::decode(br#"{"hello":"world"}"#),
            Err(EventError::Malformed(_))
        ));
    }

    /// Values serde and chrono accept but PostgreSQL would refuse are refused here, before
    /// they reach a statement (a record that fails inside a batch would hold up the batch).
    #[test]
    fn event_decode_refuses_what_postgres_cannot_store() {
        let good: serde_json::Value =
            serde_json::from_slice(&sample(Outcome::Status(200)).encode()).unwrap();
        let with = |field: &str, value: serde_json::Value| {
            let mut v = good.clone();
            v[field] = value;
            ResultEvent::decode(&serde_json::to_vec(&v).unwrap())
        };
        let err = with("scheduled_at", "-5000-01-01T00:00:00Z".into()).unwrap_err();
        assert!(
            matches!(
                err,
                EventError::TimeOutOfRange {
                    field: "scheduled_at",
                    ..
                }
            ),
            "{err}"
        );
        let err = with("start_time", "+200000-01-01T00:00:00Z".into()).unwrap_err();
        assert!(
            matches!(
                err,
                EventError::TimeOutOfRange {
                    field: "start_time",
                    ..
                }
            ),
            "{err}"
        );
        let err = with("url", "http://127.0.0.1/\u{0}".into()).unwrap_err();
        assert!(
            matches!(err, EventError::NulInText { field: "url" }),
            "{err}"
        );
        let err = with("duration_ms", (MAX_DURATION_MS + 1).into()).unwrap_err();
        assert!(matches!(err, EventError::AbsurdDuration(_)), "{err}");
        let err = with("target_id", 0.into()).unwrap_err();
        assert!(matches!(err, EventError::InvalidTarget(0)), "{err}");
        // A failure class with a NUL is not a failure class; the message may carry the NUL,
        // which is why whoever stores a reason must make it storable (the ingest worker does).
        let mut v = good.clone();
        v["http_status"] = serde_json::Value::Null;
        v["failure_class"] = "\u{0}".into();
        assert!(matches!(
            ResultEvent::decode(&serde_json::to_vec(&v).unwrap()),
            Err(EventError::Malformed(_))
        ));
        // The limits themselves are accepted.
        assert!(with("duration_ms", MAX_DURATION_MS.into()).is_ok());
        assert!(with("scheduled_at", "9999-12-31T23:59:59Z".into()).is_ok());
        assert!(with("scheduled_at", "1970-01-01T00:00:00Z".into()).is_ok());
    }

    #[test]
    fn event_decode_refuses_incoherent_outcomes() {
        let mut both = sample(Outcome::Status(200));
        both.failure_class = Some(FailureClass::Dns);
        assert!(matches!(
            ResultEvent::decode(&both.encode()),
            Err(EventError::AmbiguousOutcome)
        ));

        let mut neither = sample(Outcome::Status(200));
        neither.http_status = None;
        assert!(matches!(
            ResultEvent::decode(&neither.encode()),
            Err(EventError::AmbiguousOutcome)
        ));

        let bad_status = sample(Outcome::Status(1000));
        assert!(matches!(
            ResultEvent::decode(&bad_status.encode()),
            Err(EventError::InvalidStatus(1000))
        ));

        let mut negative = sample(Outcome::Status(200));
        negative.duration_ms = -5;
        assert!(matches!(
            ResultEvent::decode(&negative.encode()),
            Err(EventError::NegativeDuration(-5))
        ));
    }
}
