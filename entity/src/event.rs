//! The result event: what the monitor publishes for every probe and the ingest worker stores.
//!
//! JSON on the wire, one event per Kafka record, keyed by the target id as decimal text. Every
//! event carries `schema_version`; readers refuse versions they do not know and ignore fields
//! they do not know, so a newer producer can add fields without breaking an older consumer.
//!
//! Version 2 (#12) adds the outcome (up, degraded, down), the assertions that failed, the time of
//! each phase and the TLS session's details. Version 1 is still read: its outcome is derived as
//! it always was (up for a 2xx or 3xx status) and the new fields are absent. The request's
//! headers are never part of an event.
//!
//! A re-probed slot (#13) adds `first_attempt` to version 2, without a new version: the event is
//! the second attempt, `first_attempt` summarises the first. A reader that does not know the
//! field ignores it; an event without it is as before.

use chrono::{DateTime, Datelike, Utc};
use sea_orm::FromJsonQueryResult;
use serde::{Deserialize, Serialize};

use crate::assertion::{Failure, MAX_ASSERTIONS, MAX_TEXT_BYTES};
use crate::check::{Timings, TlsDetails, Verdict};
use crate::{FailureClass, Frequency};

/// The schema version this build writes.
pub const RESULT_EVENT_SCHEMA_VERSION: u32 = 2;
/// The schema versions this build reads.
pub const READABLE_SCHEMA_VERSIONS: [u32; 2] = [1, 2];

/// One probe of one target in one scheduled slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultEvent {
    /// [`RESULT_EVENT_SCHEMA_VERSION`] when written by this build.
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
    /// Status of the final response; `None` exactly when there was no response.
    pub http_status: Option<i32>,
    /// Why the probe failed: no response (then `http_status` is `None`), or `assertion` (then
    /// it is set).
    pub failure_class: Option<FailureClass>,
    /// Version 2: up, degraded or down. Required in version 2; see [`ResultEvent::verdict`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Verdict>,
    /// Version 2: the failed assertions, when `failure_class` is `assertion`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assertion_failures: Vec<Failure>,
    /// Version 2: phase times (see [`Timings`]); absent for phases not reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_ms: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ms: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ms: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttfb_ms: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_ms: Option<i32>,
    /// Version 2, HTTPS: the TLS version and the leaf certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_not_after: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_subject: Option<String>,
    /// Version 2, a re-probed slot: the first attempt, in short; this event is the second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_attempt: Option<FirstAttempt>,
}

/// The first attempt of a re-probed slot, in short (#13): what it found and when. Stored as is
/// in `monitor_results.first_attempt`. The monitor re-probes after a DOWN only, so `outcome` is
/// down in what it writes; a reader checks only that the fields agree with each other.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult)]
pub struct FirstAttempt {
    pub outcome: Verdict,
    /// As [`ResultEvent::failure_class`]: none with a response, `assertion` with its status.
    #[serde(default)]
    pub failure_class: Option<FailureClass>,
    #[serde(default)]
    pub http_status: Option<i32>,
    pub duration_ms: i32,
    pub start_time: DateTime<Utc>,
}

impl FirstAttempt {
    /// The summary of `event`, the result the first attempt would have been on its own.
    pub fn of(event: &ResultEvent) -> FirstAttempt {
        FirstAttempt {
            outcome: event.verdict(),
            failure_class: event.failure_class,
            http_status: event.http_status,
            duration_ms: event.duration_ms,
            start_time: event.start_time,
        }
    }

    /// The rules of the event's own fields: a coherent outcome, a sane duration and time.
    fn check(&self) -> Result<(), EventError> {
        outcome_of(self.http_status, self.failure_class)?;
        if let Some(class) = self.failure_class
            && self.outcome != Verdict::Down
        {
            return Err(EventError::IncoherentVerdict {
                outcome: self.outcome.as_str(),
                class: class.to_string(),
            });
        }
        check_duration(self.duration_ms)?;
        check_time("start_time", self.start_time, MIN_YEAR)
    }
}

/// Statuses that count as up when a target has no assertions: a 2xx or 3xx final response.
pub const UP_STATUSES: std::ops::RangeInclusive<i32> = 200..=399;

/// Whether a check with this final status (none: no response) counts as up by that rule.
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
    #[error("unknown schema_version {found}; this build reads 1 and 2")]
    UnknownSchemaVersion { found: u64 },
    #[error(
        "exactly one of http_status and failure_class must be set (both only with failure_class assertion)"
    )]
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
    #[error("a version 2 event needs an outcome (up, degraded or down)")]
    MissingOutcome,
    #[error("outcome {outcome} contradicts failure_class {class} (a failure is down)")]
    IncoherentVerdict {
        outcome: &'static str,
        class: String,
    },
    #[error(
        "assertion_failures must list 1 to {MAX_ASSERTIONS} entries exactly when failure_class is assertion"
    )]
    AssertionFailures,
    #[error("{field} {value} is outside 0..={MAX_DURATION_MS} ms")]
    InvalidTiming { field: &'static str, value: i32 },
    #[error("{field} is longer than {MAX_EVENT_TEXT_BYTES} bytes")]
    TextTooLong { field: &'static str },
    #[error("first_attempt: {0}")]
    FirstAttempt(Box<EventError>),
}

/// Longest duration a probe can report: a day (probes time out after seconds).
pub const MAX_DURATION_MS: i32 = 86_400_000;
/// Years an event's times may fall in. PostgreSQL stores 4713 BC to 294276 AD and chrono
/// parses far more; a probe result outside these years is a forgery or a broken clock.
pub const MIN_YEAR: i32 = 1970;
pub const MAX_YEAR: i32 = 9999;
/// Longest text a version 2 field may carry (a certificate's names, an expected or found value).
pub const MAX_EVENT_TEXT_BYTES: usize = 4 * MAX_TEXT_BYTES;

/// Just enough of an event to read its version before trusting the rest of the shape.
#[derive(Deserialize)]
struct VersionProbe {
    schema_version: u64,
}

/// What a probe adds to its response in version 2.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub failures: Vec<Failure>,
    pub timings: Timings,
    pub tls: Option<TlsDetails>,
}

impl ResultEvent {
    /// An event of the current schema version. `verdict` `None` derives it as version 1 did;
    /// `failure_class` `assertion` goes with a status and `report.failures`.
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
        let verdict = if is_up(http_status) {
            Verdict::Up
        } else {
            Verdict::Down
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
            outcome: Some(verdict),
            assertion_failures: Vec::new(),
            dns_ms: None,
            connect_ms: None,
            tls_ms: None,
            ttfb_ms: None,
            transfer_ms: None,
            tls_version: None,
            cert_not_after: None,
            cert_issuer: None,
            cert_subject: None,
            first_attempt: None,
        }
    }

    /// This event with a checked verdict: the status stays, failed assertions make it down
    /// with the class `assertion`, and the phases and TLS details are attached.
    pub fn with_check(mut self, verdict: Verdict, report: CheckReport) -> Self {
        self.outcome = Some(verdict);
        if !report.failures.is_empty() && self.http_status.is_some() {
            self.failure_class = Some(FailureClass::Assertion);
            self.outcome = Some(Verdict::Down);
        }
        self.assertion_failures = report.failures;
        let t = report.timings;
        (
            self.dns_ms,
            self.connect_ms,
            self.tls_ms,
            self.ttfb_ms,
            self.transfer_ms,
        ) = (t.dns_ms, t.connect_ms, t.tls_ms, t.ttfb_ms, t.transfer_ms);
        if let Some(tls) = report.tls {
            self.tls_version = Some(tls.tls_version);
            self.cert_not_after = Some(tls.cert_not_after);
            self.cert_issuer = Some(tls.cert_issuer);
            self.cert_subject = Some(tls.cert_subject);
        }
        self
    }

    /// This event as the second attempt of a re-probed slot whose first attempt was `first`.
    pub fn with_first_attempt(mut self, first: FirstAttempt) -> Self {
        self.first_attempt = Some(first);
        self
    }

    /// The outcome, if the status and failure class are coherent.
    pub fn outcome(&self) -> Result<Outcome, EventError> {
        outcome_of(self.http_status, self.failure_class)
    }

    /// Up, degraded or down: as sent (version 2), or derived from the status (version 1).
    pub fn verdict(&self) -> Verdict {
        match self.outcome {
            Some(verdict) => verdict,
            None if self.failure_class.is_none() && is_up(self.http_status) => Verdict::Up,
            None => Verdict::Down,
        }
    }

    pub fn timings(&self) -> Timings {
        Timings {
            dns_ms: self.dns_ms,
            connect_ms: self.connect_ms,
            tls_ms: self.tls_ms,
            ttfb_ms: self.ttfb_ms,
            transfer_ms: self.transfer_ms,
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
    /// ignored, and so are version 2's fields in a version 1 event.
    pub fn decode(bytes: &[u8]) -> Result<Self, EventError> {
        let probe: VersionProbe = serde_json::from_slice(bytes)?;
        let version = u32::try_from(probe.schema_version)
            .ok()
            .filter(|v| READABLE_SCHEMA_VERSIONS.contains(v))
            .ok_or(EventError::UnknownSchemaVersion {
                found: probe.schema_version,
            })?;
        let mut event: ResultEvent = serde_json::from_slice(bytes)?;
        if version == 1 {
            // A version 1 producer knows none of version 2's fields; whatever it sent under
            // those names means something else.
            event = ResultEvent {
                outcome: None,
                assertion_failures: Vec::new(),
                dns_ms: None,
                connect_ms: None,
                tls_ms: None,
                ttfb_ms: None,
                transfer_ms: None,
                tls_version: None,
                cert_not_after: None,
                cert_issuer: None,
                cert_subject: None,
                first_attempt: None,
                ..event
            };
            if event.failure_class == Some(FailureClass::Assertion) {
                return Err(EventError::AmbiguousOutcome);
            }
        }
        event.outcome()?;
        check_duration(event.duration_ms)?;
        if event.target_id < 1 {
            return Err(EventError::InvalidTarget(event.target_id));
        }
        check_time("scheduled_at", event.scheduled_at, MIN_YEAR)?;
        check_time("start_time", event.start_time, MIN_YEAR)?;
        if let Some(time) = event.cert_not_after {
            check_time("cert_not_after", time, 1)?;
        }
        if event.url.contains('\0') {
            return Err(EventError::NulInText { field: "url" });
        }
        if version == 2 {
            event.check_version_2()?;
        }
        Ok(event)
    }

    fn check_version_2(&self) -> Result<(), EventError> {
        let verdict = self.outcome.ok_or(EventError::MissingOutcome)?;
        if let Some(class) = self.failure_class
            && verdict != Verdict::Down
        {
            return Err(EventError::IncoherentVerdict {
                outcome: verdict.as_str(),
                class: class.to_string(),
            });
        }
        let assertion = self.failure_class == Some(FailureClass::Assertion);
        let listed = !self.assertion_failures.is_empty();
        if assertion != listed || self.assertion_failures.len() > MAX_ASSERTIONS {
            return Err(EventError::AssertionFailures);
        }
        for (field, value) in self.timings().phases() {
            if let Some(value) = value
                && !(0..=MAX_DURATION_MS).contains(&value)
            {
                return Err(EventError::InvalidTiming { field, value });
            }
        }
        let texts = [
            ("tls_version", self.tls_version.as_deref()),
            ("cert_issuer", self.cert_issuer.as_deref()),
            ("cert_subject", self.cert_subject.as_deref()),
        ]
        .into_iter()
        .chain(self.assertion_failures.iter().flat_map(|f| {
            [
                ("assertion_failures.expected", Some(f.expected.as_str())),
                ("assertion_failures.found", Some(f.found.as_str())),
            ]
        }));
        for (field, text) in texts {
            let Some(text) = text else { continue };
            if text.contains('\0') {
                return Err(EventError::NulInText { field });
            }
            if text.len() > MAX_EVENT_TEXT_BYTES {
                return Err(EventError::TextTooLong { field });
            }
        }
        if let Some(first) = &self.first_attempt {
            first
                .check()
                .map_err(|e| EventError::FirstAttempt(Box::new(e)))?;
        }
        Ok(())
    }
}

/// The outcome a status and a failure class describe, if they are coherent: exactly one of them,
/// or a status with the class `assertion`; a status in 100..=599.
fn outcome_of(
    http_status: Option<i32>,
    failure_class: Option<FailureClass>,
) -> Result<Outcome, EventError> {
    match (http_status, failure_class) {
        (Some(status), None | Some(FailureClass::Assertion)) if (100..=599).contains(&status) => {
            Ok(Outcome::Status(status))
        }
        (Some(status), None | Some(FailureClass::Assertion)) => {
            Err(EventError::InvalidStatus(status))
        }
        (None, Some(class)) if class != FailureClass::Assertion => Ok(Outcome::Failure(class)),
        _ => Err(EventError::AmbiguousOutcome),
    }
}

/// A duration of 0 to [`MAX_DURATION_MS`].
fn check_duration(duration_ms: i32) -> Result<(), EventError> {
    if duration_ms < 0 {
        return Err(EventError::NegativeDuration(duration_ms));
    }
    if duration_ms > MAX_DURATION_MS {
        return Err(EventError::AbsurdDuration(duration_ms));
    }
    Ok(())
}

/// A time in the years `min_year` to [`MAX_YEAR`].
fn check_time(field: &'static str, time: DateTime<Utc>, min_year: i32) -> Result<(), EventError> {
    if (min_year..=MAX_YEAR).contains(&time.year()) {
        Ok(())
    } else {
        Err(EventError::TimeOutOfRange {
            field,
            value: time.to_rfc3339(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{Timings, Verdict};
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
        assert_eq!(value["schema_version"], 2);
        assert_eq!(value["outcome"], "down");
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
        value["schema_version"] = 3.into();
        let err = ResultEvent::decode(&serde_json::to_vec(&value).unwrap()).unwrap_err();
        assert!(
            matches!(err, EventError::UnknownSchemaVersion { found: 3 }),
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

    /// What a version 1 producer (the prototype, an older monitor) wrote.
    fn version_1(status: serde_json::Value, class: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "schema_version": 1, "target_id": 42, "url": "https://example.test/health",
            "frequency": 5, "scheduled_at": "2026-11-26T12:00:00Z",
            "start_time": "2026-11-26T12:00:01Z", "duration_ms": 87,
            "http_status": status, "failure_class": class,
        })
    }

    #[test]
    fn version_1_events_are_read_with_the_outcome_derived_as_before() {
        use serde_json::Value::Null;
        for (status, class, verdict) in [
            (200.into(), Null, Verdict::Up),
            (399.into(), Null, Verdict::Up),
            (500.into(), Null, Verdict::Down),
            (Null, "timeout".into(), Verdict::Down),
        ] {
            let bytes = serde_json::to_vec(&version_1(status, class)).unwrap();
            let event = ResultEvent::decode(&bytes).unwrap();
            assert_eq!(event.schema_version, 1);
            assert_eq!(event.outcome, None);
            assert_eq!(event.verdict(), verdict);
            assert_eq!(event.url, "https://example.test/health");
        }
        // Version 2's names mean nothing in version 1.
        let mut v = version_1(200.into(), Null);
        v["outcome"] = "down".into();
        v["dns_ms"] = (-4).into();
        let event = ResultEvent::decode(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!((event.verdict(), event.dns_ms), (Verdict::Up, None));
        let v = version_1(200.into(), "assertion".into());
        assert!(matches!(
            ResultEvent::decode(&serde_json::to_vec(&v).unwrap()),
            Err(EventError::AmbiguousOutcome)
        ));
    }

    fn failed_assertion() -> ResultEvent {
        let failure = Failure {
            index: 0,
            expected: "NOT_CONTAINS \"Error\"".into(),
            found: "Internal Error".into(),
        };
        sample(Outcome::Status(200)).with_check(
            Verdict::Up,
            CheckReport {
                failures: vec![failure],
                timings: Timings {
                    dns_ms: None,
                    connect_ms: Some(1),
                    tls_ms: Some(3),
                    ttfb_ms: Some(10),
                    transfer_ms: Some(2),
                },
                tls: None,
            },
        )
    }

    #[test]
    fn version_2_events_carry_the_check() {
        let event = failed_assertion();
        assert_eq!(event.failure_class, Some(FailureClass::Assertion));
        assert_eq!(event.verdict(), Verdict::Down);
        let decoded = ResultEvent::decode(&event.encode()).unwrap();
        assert_eq!(decoded, event);
        assert_eq!(decoded.outcome().unwrap(), Outcome::Status(200));
        assert_eq!(decoded.timings().tls_ms, Some(3));
        assert_eq!(decoded.timings().dns_ms, None);
    }

    #[test]
    fn version_2_events_must_be_coherent() {
        let refused = |event: ResultEvent| ResultEvent::decode(&event.encode()).unwrap_err();
        let mut e = sample(Outcome::Status(200));
        e.outcome = None;
        assert!(matches!(refused(e), EventError::MissingOutcome));
        let mut e = sample(Outcome::Failure(FailureClass::Dns));
        e.outcome = Some(Verdict::Up);
        assert!(matches!(refused(e), EventError::IncoherentVerdict { .. }));
        let mut e = failed_assertion();
        e.assertion_failures.clear();
        assert!(matches!(refused(e), EventError::AssertionFailures));
        let mut e = sample(Outcome::Status(200));
        e.assertion_failures = failed_assertion().assertion_failures;
        assert!(matches!(refused(e), EventError::AssertionFailures));
        let mut e = failed_assertion();
        e.http_status = None;
        assert!(matches!(refused(e), EventError::AmbiguousOutcome));
        let mut e = failed_assertion();
        e.ttfb_ms = Some(-1);
        assert!(matches!(
            refused(e),
            EventError::InvalidTiming {
                field: "ttfb_ms",
                ..
            }
        ));
        let mut e = failed_assertion();
        e.assertion_failures[0].found = "a\0b".into();
        assert!(matches!(refused(e), EventError::NulInText { .. }));
        let mut e = failed_assertion();
        e.cert_subject = Some("x".repeat(MAX_EVENT_TEXT_BYTES + 1));
        assert!(matches!(
            refused(e),
            EventError::TextTooLong {
                field: "cert_subject"
            }
        ));
    }

    /// A slot probed twice: the second attempt up, the first a refused connection.
    fn reprobed() -> ResultEvent {
        let first = sample(Outcome::Failure(FailureClass::Connect));
        let mut second = sample(Outcome::Status(200));
        second.start_time = first.start_time + chrono::Duration::seconds(2);
        second.with_first_attempt(FirstAttempt::of(&first))
    }

    #[test]
    fn a_reprobed_event_carries_its_first_attempt_and_a_single_one_none() {
        let event = reprobed();
        let decoded = ResultEvent::decode(&event.encode()).unwrap();
        assert_eq!(decoded, event);
        let value: serde_json::Value = serde_json::from_slice(&event.encode()).unwrap();
        assert_eq!(value["outcome"], "up");
        assert_eq!(
            value["first_attempt"],
            serde_json::json!({"outcome": "down", "failure_class": "connect",
                               "http_status": null, "duration_ms": 87,
                               "start_time": "2026-11-26T12:00:01.234Z"})
        );
        // Not re-probed: no such field at all, as before.
        let single: serde_json::Value =
            serde_json::from_slice(&sample(Outcome::Status(200)).encode()).unwrap();
        assert!(single.get("first_attempt").is_none(), "{single}");
        // A failed assertion keeps its status and class in the summary.
        let summary = FirstAttempt::of(&failed_assertion());
        assert_eq!(
            (summary.outcome, summary.failure_class, summary.http_status),
            (Verdict::Down, Some(FailureClass::Assertion), Some(200))
        );
        let event = sample(Outcome::Status(200)).with_first_attempt(summary);
        assert!(ResultEvent::decode(&event.encode()).is_ok());
    }

    #[test]
    fn an_incoherent_first_attempt_is_refused_saying_so() {
        let refused = |change: &dyn Fn(&mut FirstAttempt)| {
            let mut event = reprobed();
            change(event.first_attempt.as_mut().unwrap());
            let err = ResultEvent::decode(&event.encode()).unwrap_err();
            let shown = err.to_string();
            assert!(shown.starts_with("first_attempt: "), "{shown}");
            match err {
                EventError::FirstAttempt(inner) => *inner,
                other => panic!("not about the first attempt: {other}"),
            }
        };
        assert!(matches!(
            refused(&|f| f.outcome = Verdict::Up),
            EventError::IncoherentVerdict { .. }
        ));
        assert!(matches!(
            refused(&|f| f.http_status = Some(200)),
            EventError::AmbiguousOutcome
        ));
        assert!(matches!(
            refused(&|f| f.failure_class = None),
            EventError::AmbiguousOutcome
        ));
        assert!(matches!(
            refused(&|f| {
                f.failure_class = None;
                f.http_status = Some(1000);
            }),
            EventError::InvalidStatus(1000)
        ));
        assert!(matches!(
            refused(&|f| f.duration_ms = -1),
            EventError::NegativeDuration(-1)
        ));
        assert!(matches!(
            refused(&|f| f.duration_ms = MAX_DURATION_MS + 1),
            EventError::AbsurdDuration(_)
        ));
        assert!(matches!(
            refused(&|f| f.start_time = Utc.with_ymd_and_hms(1969, 12, 31, 0, 0, 0).unwrap()),
            EventError::TimeOutOfRange {
                field: "start_time",
                ..
            }
        ));
        // Not an object of the right shape: not a result event at all.
        let mut value: serde_json::Value = serde_json::from_slice(&reprobed().encode()).unwrap();
        value["first_attempt"] = serde_json::json!({"outcome": "sideways"});
        assert!(matches!(
            ResultEvent::decode(&serde_json::to_vec(&value).unwrap()),
            Err(EventError::Malformed(_))
        ));
    }

    #[test]
    fn version_1_events_ignore_a_first_attempt() {
        let mut v = version_1(200.into(), serde_json::Value::Null);
        // Well-formed, but incoherent: refused in version 2, dropped unread in version 1.
        v["first_attempt"] = serde_json::json!({"outcome": "up", "failure_class": "dns",
            "duration_ms": -1, "start_time": "2026-11-26T12:00:00Z"});
        let event = ResultEvent::decode(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(event.first_attempt, None);
    }
}
