//! The GraphQL side of checks (#12): what a target asks of its probe (`Check`, `CheckInput`)
//! and what a result reports beyond its status (outcome, failed assertions, phases, TLS, and a
//! re-probe's first attempt, #13).
//! Header values go in and never come out: `Check` has `headerNames` only, and `HeaderInput`
//! has no `Debug`.

use async_graphql::{Enum, InputObject, MaybeUndefined, Object, SimpleObject};
use chrono::{DateTime, Utc};
use entity::urltargets;

use super::types::FailureClass;
use crate::service::checks::{CheckChange, HeaderChange};

/// The request method of a probe.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "entity::check::Method")]
pub enum Method {
    Get,
    Head,
    /// The only method that sends a body.
    Post,
}

/// What a result counts as.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "entity::check::Verdict")]
pub enum Outcome {
    /// Passed (the assertions, or without any a status in 200..=399) in time.
    Up,
    /// Passed, but slower than the target's `degradedAfterMs`; still counts as up.
    Degraded,
    /// No response, or a response that failed.
    Down,
}

/// What an assertion looks at.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "entity::assertion::Source")]
pub enum AssertionSource {
    /// The final response's status code.
    Status,
    /// A response header (`property`: its name); absent counts as empty.
    Header,
    /// The body as text (up to the probe's cap).
    BodyText,
    /// The nodes a JSONPath (`property`, RFC 9535) selects in the body parsed as JSON.
    BodyJson,
    /// The whole probe's duration.
    ResponseTimeMs,
    /// Whole days until the leaf certificate's notAfter (HTTPS only).
    CertExpiresInDays,
}

/// How the looked-at value is compared with `value`.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "entity::assertion::Comparison")]
pub enum Comparison {
    Equals,
    NotEquals,
    LessThan,
    GreaterThan,
    Contains,
    NotContains,
    /// A regular expression (linear-time, size-limited).
    Matches,
    /// `low-high`, both included, e.g. `200-399`.
    InRange,
    IsEmpty,
    NotEmpty,
}

/// A phase of a probe, as `Stats.phases` lists them.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Phase {
    /// Resolving the host name.
    Dns,
    /// Opening the TCP connection.
    Connect,
    /// The TLS handshake.
    Tls,
    /// From the request sent to the response's head received.
    Ttfb,
    /// Reading the body.
    Transfer,
}

impl Phase {
    /// In the order of `service::results::PHASES`.
    pub const ALL: [Phase; 5] = [
        Phase::Dns,
        Phase::Connect,
        Phase::Tls,
        Phase::Ttfb,
        Phase::Transfer,
    ];
}

/// One assertion of a target's check.
#[derive(SimpleObject)]
pub struct Assertion {
    /// What it looks at.
    pub source: AssertionSource,
    /// The header's name (HEADER) or the JSONPath (BODY_JSON); null otherwise.
    pub property: Option<String>,
    /// How it compares.
    pub comparison: Comparison,
    /// What it compares with; null for IS_EMPTY and NOT_EMPTY.
    pub value: Option<String>,
}

impl From<&entity::assertion::Assertion> for Assertion {
    fn from(a: &entity::assertion::Assertion) -> Self {
        Assertion {
            source: a.source.into(),
            property: a.property.clone(),
            comparison: a.comparison.into(),
            value: a.value.clone(),
        }
    }
}

/// One assertion, as given.
#[derive(InputObject)]
pub struct AssertionInput {
    /// What it looks at.
    pub source: AssertionSource,
    /// The header's name (HEADER) or a JSONPath (BODY_JSON, e.g. `$.status`); no other source
    /// takes one.
    pub property: Option<String>,
    /// How it compares; each source allows the comparisons that make sense for it.
    pub comparison: Comparison,
    /// What it compares with (a number for STATUS, RESPONSE_TIME_MS and CERT_EXPIRES_IN_DAYS,
    /// a range for IN_RANGE, a regular expression for MATCHES); none for IS_EMPTY and
    /// NOT_EMPTY.
    pub value: Option<String>,
}

impl From<AssertionInput> for entity::assertion::Assertion {
    fn from(a: AssertionInput) -> Self {
        entity::assertion::Assertion {
            source: a.source.into(),
            property: a.property,
            comparison: a.comparison.into(),
            value: a.value,
        }
    }
}

/// A request header the probe sends; its value is write-only.
// No `Debug`: the value is a secret.
#[derive(InputObject)]
pub struct HeaderInput {
    /// The header's name (an HTTP token; not one the probe sets itself, such as Content-Length).
    pub name: String,
    /// Write-only, never returned. Omitted or null: keep the value this target already stores
    /// under that name (case-insensitively); refused if it stores none.
    pub value: Option<String>,
}

/// What a target's probe sends and what counts as up. In `updateTarget`, an omitted field stays
/// as it is and null resets it; in `addTarget` and `applyTargets`, the check starts from the
/// default (GET, no assertions, no headers, TLS verified against the system's roots).
#[derive(InputObject)]
pub struct CheckInput {
    /// What counts as up (at most 20); [] or null: a status in 200..=399.
    pub assertions: MaybeUndefined<Vec<AssertionInput>>,
    /// A passing response slower than this (1 to 86,400,000 ms) is DEGRADED; null: never.
    pub degraded_after_ms: MaybeUndefined<i32>,
    /// GET (also when null), HEAD or POST.
    pub method: MaybeUndefined<Method>,
    /// Request headers (at most 20, values up to 4 KiB); replaces the whole list when given,
    /// null: none.
    pub headers: MaybeUndefined<Vec<HeaderInput>>,
    /// The request body (POST only, up to 64 KiB); null: none.
    pub body: MaybeUndefined<String>,
    /// Verify the server's certificate (true also when null).
    pub tls_verify: MaybeUndefined<bool>,
    /// PEM certificates to trust instead of the system's roots (up to 64 KiB); null: none.
    pub ca_bundle: MaybeUndefined<String>,
    /// When a probe is DOWN, probe once more a short delay later within the same slot, and
    /// report the second attempt (with the first as `firstAttempt`); false also when null.
    pub reprobe: MaybeUndefined<bool>,
}

/// A field of an input: `None` when omitted, else its value or, for null, `default`.
fn given<T, U>(field: MaybeUndefined<T>, default: U, map: impl FnOnce(T) -> U) -> Option<U> {
    match field {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(default),
        MaybeUndefined::Value(v) => Some(map(v)),
    }
}

impl From<CheckInput> for CheckChange {
    fn from(input: CheckInput) -> Self {
        CheckChange {
            assertions: given(input.assertions, Vec::new(), |list| {
                list.into_iter().map(Into::into).collect()
            }),
            degraded_after_ms: given(input.degraded_after_ms, None, Some),
            method: given(input.method, entity::Method::Get, Into::into),
            headers: given(input.headers, Vec::new(), |list| {
                list.into_iter()
                    .map(|h| HeaderChange {
                        name: h.name,
                        value: h.value,
                    })
                    .collect()
            }),
            body: given(input.body, None, Some),
            tls_verify: given(input.tls_verify, true, |v| v),
            ca_bundle: given(input.ca_bundle, None, Some),
            reprobe: given(input.reprobe, false, |v| v),
        }
    }
}

/// The change a mutation's optional `check` argument makes (none when omitted).
pub fn change_of(check: Option<CheckInput>) -> CheckChange {
    check.map(Into::into).unwrap_or_default()
}

/// What a target's probe sends and what counts as up. Header values are write-only.
pub struct Check(pub urltargets::Model);

#[Object]
impl Check {
    /// What counts as up; [] means a status in 200..=399.
    async fn assertions(&self) -> Vec<Assertion> {
        self.0.assertions.0.iter().map(Into::into).collect()
    }

    /// A passing response slower than this is DEGRADED; null: never.
    async fn degraded_after_ms(&self) -> Option<i32> {
        self.0.degraded_after_ms
    }

    async fn method(&self) -> Method {
        self.0.method.into()
    }

    /// The names of the request headers sent; their values are write-only, never returned.
    async fn header_names(&self) -> Vec<&str> {
        self.0
            .request_headers
            .0
            .iter()
            .map(|h| h.name.as_str())
            .collect()
    }

    /// The request body (POST only).
    async fn body(&self) -> Option<&str> {
        self.0.request_body.as_deref()
    }

    /// Whether the server's certificate is verified.
    async fn tls_verify(&self) -> bool {
        self.0.tls_verify
    }

    /// PEM certificates trusted instead of the system's roots.
    async fn ca_bundle(&self) -> Option<&str> {
        self.0.ca_bundle.as_deref()
    }

    /// Whether a DOWN probe is tried once more, a short delay later within the same slot.
    async fn reprobe(&self) -> bool {
        self.0.reprobe
    }
}

/// An assertion a response failed.
#[derive(SimpleObject)]
pub struct AssertionFailure {
    /// Its position in the target's `check.assertions` (from 0) when the probe ran.
    pub index: i32,
    /// What the assertion expected (shortened).
    pub expected: String,
    /// What the response had instead (shortened).
    pub found: String,
}

impl From<&entity::assertion::Failure> for AssertionFailure {
    fn from(f: &entity::assertion::Failure) -> Self {
        AssertionFailure {
            index: i32::try_from(f.index).unwrap_or(i32::MAX),
            expected: f.expected.clone(),
            found: f.found.clone(),
        }
    }
}

/// The first attempt of a re-probed slot (the target's `check.reprobe`): it was DOWN, so the
/// target was probed again, and the result is that second attempt.
pub struct FirstAttempt(pub entity::event::FirstAttempt);

#[Object]
impl FirstAttempt {
    /// DOWN (only a DOWN attempt is re-probed).
    async fn outcome(&self) -> Outcome {
        self.0.outcome.into()
    }

    /// Why it failed, as a result's `failureClass`.
    async fn failure_class(&self) -> Option<FailureClass> {
        self.0.failure_class.map(Into::into)
    }

    /// Status of its final response; null when there was none.
    async fn http_status(&self) -> Option<i32> {
        self.0.http_status
    }

    async fn duration_ms(&self) -> i32 {
        self.0.duration_ms
    }

    async fn start_time(&self) -> DateTime<Utc> {
        self.0.start_time
    }
}

/// The TLS session of an HTTPS probe (its last hop) and the server's leaf certificate.
pub struct TlsDetails(pub entity::TlsDetails);

#[Object]
impl TlsDetails {
    /// `TLSv1.2` or `TLSv1.3`.
    async fn version(&self) -> &str {
        &self.0.tls_version
    }

    /// When the leaf certificate expires.
    async fn cert_not_after(&self) -> DateTime<Utc> {
        self.0.cert_not_after
    }

    /// The certificate's issuer, as `CN=…, O=…`.
    async fn cert_issuer(&self) -> &str {
        &self.0.cert_issuer
    }

    /// The certificate's subject, as `CN=…, O=…`.
    async fn cert_subject(&self) -> &str {
        &self.0.cert_subject
    }

    /// Whole days from now until `certNotAfter`, rounded down (negative once expired).
    async fn cert_expires_in_days(&self) -> i32 {
        days_until(self.0.cert_not_after, Utc::now())
    }
}

/// Whole days from `now` until `then`, rounded down.
fn days_until(then: DateTime<Utc>, now: DateTime<Utc>) -> i32 {
    let days = (then - now).num_seconds().div_euclid(86_400);
    i32::try_from(days).unwrap_or(if days < 0 { i32::MIN } else { i32::MAX })
}

/// The median and 95th percentile of one phase over the results that reached it.
#[derive(SimpleObject)]
pub struct PhaseStats {
    /// Which phase.
    pub phase: Phase,
    /// Milliseconds; null when no result in the period reached this phase.
    pub p50_ms: Option<f64>,
    /// Milliseconds; null when no result in the period reached this phase.
    pub p95_ms: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_until_rounds_down_on_both_sides_of_now() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let day = chrono::Duration::days(1);
        let hour = chrono::Duration::hours(1);
        assert_eq!(days_until(now + day * 3 - hour, now), 2);
        assert_eq!(days_until(now + day * 3, now), 3);
        assert_eq!(days_until(now + hour, now), 0);
        assert_eq!(days_until(now - hour, now), -1);
    }

    #[test]
    fn null_resets_and_omitted_keeps() {
        let input = CheckInput {
            assertions: MaybeUndefined::Null,
            degraded_after_ms: MaybeUndefined::Null,
            method: MaybeUndefined::Null,
            headers: MaybeUndefined::Undefined,
            body: MaybeUndefined::Value("x".into()),
            tls_verify: MaybeUndefined::Null,
            ca_bundle: MaybeUndefined::Undefined,
            reprobe: MaybeUndefined::Null,
        };
        let change = CheckChange::from(input);
        assert_eq!(change.assertions, Some(vec![]));
        assert_eq!(change.degraded_after_ms, Some(None));
        assert_eq!(change.method, Some(entity::Method::Get));
        assert_eq!(change.headers, None);
        assert_eq!(change.body, Some(Some("x".into())));
        assert_eq!(change.tls_verify, Some(true));
        assert_eq!(change.ca_bundle, None);
        assert_eq!(change.reprobe, Some(false));
    }
}
