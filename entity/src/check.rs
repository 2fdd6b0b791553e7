//! What a target asks of its probe beyond the URL — the request to make, how to trust TLS, when
//! a response is degraded — and what a probe reports beyond a status: an outcome, the phases'
//! times and the server's certificate. Validation lives here so the API refuses exactly what the
//! monitor could not use.

use chrono::{DateTime, Utc};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::assertion::{Assertion, Failure};

/// The request method of a probe.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    #[default]
    #[sea_orm(string_value = "GET")]
    Get,
    #[sea_orm(string_value = "HEAD")]
    Head,
    #[sea_orm(string_value = "POST")]
    Post,
}

impl Method {
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
        }
    }
}

/// A result's outcome: up, up but slower than the target's `degraded_after_ms`, or down.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    #[sea_orm(string_value = "up")]
    Up,
    #[sea_orm(string_value = "degraded")]
    Degraded,
    #[sea_orm(string_value = "down")]
    Down,
}

impl Verdict {
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Up => "up",
            Verdict::Degraded => "degraded",
            Verdict::Down => "down",
        }
    }

    /// The verdict a stored `outcome` names.
    pub fn parse(text: &str) -> Option<Verdict> {
        [Verdict::Up, Verdict::Degraded, Verdict::Down]
            .into_iter()
            .find(|v| v.as_str() == text)
    }
}

/// A request header the probe sends. The value is a secret: the API never returns it, the
/// monitor never logs it, and it never travels on Kafka.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RequestHeader {
    pub name: String,
    pub value: String,
}

impl std::fmt::Debug for RequestHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestHeader")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// `urltargets.request_headers` (a JSON array).
#[derive(
    Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, FromJsonQueryResult,
)]
pub struct RequestHeaders(pub Vec<RequestHeader>);

/// `urltargets.assertions` (a JSON array).
#[derive(
    Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, FromJsonQueryResult,
)]
pub struct Assertions(pub Vec<Assertion>);

/// A target's whole check as `urltargets` stores it: what the API writes and the monitor
/// prepares. The default is today's rule: GET, a status in 200..=399, the system's roots, no
/// re-probe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoredCheck {
    pub assertions: Assertions,
    pub degraded_after_ms: Option<i32>,
    pub method: Method,
    pub headers: RequestHeaders,
    pub body: Option<String>,
    pub tls_verify: bool,
    pub ca_bundle: Option<String>,
    /// Probe once more, a short delay later within the same slot, when a probe is DOWN.
    pub reprobe: bool,
}

impl Default for StoredCheck {
    fn default() -> Self {
        StoredCheck {
            assertions: Assertions::default(),
            degraded_after_ms: None,
            method: Method::Get,
            headers: RequestHeaders::default(),
            body: None,
            tls_verify: true,
            ca_bundle: None,
            reprobe: false,
        }
    }
}

impl StoredCheck {
    /// The check stored on `target`.
    pub fn of(target: &crate::urltargets::Model) -> StoredCheck {
        StoredCheck {
            assertions: target.assertions.clone(),
            degraded_after_ms: target.degraded_after_ms,
            method: target.method,
            headers: target.request_headers.clone(),
            body: target.request_body.clone(),
            tls_verify: target.tls_verify,
            ca_bundle: target.ca_bundle.clone(),
            reprobe: target.reprobe,
        }
    }
}

/// `monitor_results.assertion_failures` (a JSON array).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, FromJsonQueryResult)]
pub struct AssertionFailures(pub Vec<Failure>);

/// Most request headers per target.
pub const MAX_HEADERS: usize = 20;
/// Longest header name, in bytes.
pub const MAX_HEADER_NAME_BYTES: usize = 128;
/// Longest header value, in bytes.
pub const MAX_HEADER_VALUE_BYTES: usize = 4096;
/// Largest request body, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest CA bundle (PEM), in bytes.
pub const MAX_CA_BUNDLE_BYTES: usize = 64 * 1024;
/// Largest `degraded_after_ms`: a day.
pub const MAX_DEGRADED_AFTER_MS: i32 = 86_400_000;

/// Headers the probe sets itself, because they frame the request or the connection (a user's
/// value would make the request ambiguous) or name where it goes (`Host`: the stored secrets go
/// to the URL's origin only, not to another site on the same address).
const RESERVED_HEADERS: [&str; 9] = [
    "connection",
    "content-length",
    "host",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether `name` is an HTTP field name (RFC 9110 §5.1: a token).
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Checks request headers; the reason names the entry by position and name, never the value.
pub fn validate_headers(headers: &[RequestHeader]) -> Result<(), String> {
    if headers.len() > MAX_HEADERS {
        return Err(format!(
            "at most {MAX_HEADERS} headers, got {}",
            headers.len()
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for (i, header) in headers.iter().enumerate() {
        let name = &header.name;
        if name.len() > MAX_HEADER_NAME_BYTES || !is_token(name) {
            let shown: String = name.chars().take(40).collect();
            return Err(format!(
                "header {i} ({shown:?}): a name is 1 to {MAX_HEADER_NAME_BYTES} letters, digits or !#$%&'*+-.^_`|~"
            ));
        }
        if !seen.insert(name.to_ascii_lowercase()) {
            return Err(format!("header {i} ({name}): given twice"));
        }
        if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "header {i} ({name}): set by the probe itself, it cannot be given"
            ));
        }
        let value = header.value.as_bytes();
        if value.len() > MAX_HEADER_VALUE_BYTES {
            return Err(format!(
                "header {i} ({name}): the value is longer than {MAX_HEADER_VALUE_BYTES} bytes"
            ));
        }
        // RFC 9110 §5.5: visible characters, spaces and tabs; no CR, LF or NUL.
        if value
            .iter()
            .any(|b| (*b < 0x20 && *b != b'\t') || *b == 0x7f)
        {
            return Err(format!(
                "header {i} ({name}): the value has a control character (CR, LF, NUL, …)"
            ));
        }
        // A server trims them before it echoes the value; the probe redacts the value as stored.
        if header.value.trim() != header.value {
            return Err(format!(
                "header {i} ({name}): the value starts or ends with a space"
            ));
        }
    }
    Ok(())
}

/// Checks a request body against its method.
pub fn validate_body(method: Method, body: Option<&str>) -> Result<(), String> {
    let Some(body) = body else { return Ok(()) };
    if method != Method::Post {
        return Err(format!(
            "a body is sent with POST only, not {}",
            method.as_str()
        ));
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(format!("the body is longer than {MAX_BODY_BYTES} bytes"));
    }
    if body.contains('\0') {
        return Err("the body contains a NUL character".to_owned());
    }
    Ok(())
}

/// The certificates of a PEM bundle; at least one, nothing that is not a certificate.
pub fn parse_ca_bundle(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    if pem.len() > MAX_CA_BUNDLE_BYTES {
        return Err(format!(
            "the CA bundle is longer than {MAX_CA_BUNDLE_BYTES} bytes"
        ));
    }
    if pem.contains('\0') {
        return Err("the CA bundle contains a NUL character".to_owned());
    }
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the CA bundle is not PEM: {e}"))?;
    if certs.is_empty() {
        return Err(
            "the CA bundle holds no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
        );
    }
    Ok(certs)
}

/// Checks that the assertions can be judged on what `method` gets: a HEAD response has no body.
pub fn validate_method_assertions(method: Method, assertions: &[Assertion]) -> Result<(), String> {
    use crate::assertion::Source;
    if method != Method::Head {
        return Ok(());
    }
    match assertions
        .iter()
        .position(|a| matches!(a.source, Source::BodyText | Source::BodyJson))
    {
        Some(i) => Err(format!(
            "assertion {i} ({}): a HEAD response has no body to check; use GET",
            assertions[i].source
        )),
        None => Ok(()),
    }
}

/// Checks `degraded_after_ms`.
pub fn validate_degraded_after(ms: Option<i32>) -> Result<(), String> {
    match ms {
        Some(ms) if !(1..=MAX_DEGRADED_AFTER_MS).contains(&ms) => Err(format!(
            "degradedAfterMs must be 1..={MAX_DEGRADED_AFTER_MS}, got {ms}"
        )),
        _ => Ok(()),
    }
}

/// How long each phase of a probe took, in milliseconds; `None` for a phase not reached (or not
/// needed: DNS for an IP literal, TLS for plain HTTP). Over redirects, each phase is the sum over
/// the hops, so the phases never add up to more than the probe's duration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timings {
    #[serde(default)]
    pub dns_ms: Option<i32>,
    #[serde(default)]
    pub connect_ms: Option<i32>,
    #[serde(default)]
    pub tls_ms: Option<i32>,
    /// From the request sent to the response's head received.
    #[serde(default)]
    pub ttfb_ms: Option<i32>,
    /// Reading the body, to its end or the cap (only when an assertion reads it).
    #[serde(default)]
    pub transfer_ms: Option<i32>,
}

impl Timings {
    pub fn phases(&self) -> [(&'static str, Option<i32>); 5] {
        [
            ("dns_ms", self.dns_ms),
            ("connect_ms", self.connect_ms),
            ("tls_ms", self.tls_ms),
            ("ttfb_ms", self.ttfb_ms),
            ("transfer_ms", self.transfer_ms),
        ]
    }
}

/// The TLS session of an HTTPS probe (its last hop) and its server's leaf certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsDetails {
    /// `TLSv1.2` or `TLSv1.3`.
    pub tls_version: String,
    pub cert_not_after: DateTime<Utc>,
    /// Distinguished names as `CN=…, O=…`.
    pub cert_issuer: String,
    pub cert_subject: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, value: &str) -> RequestHeader {
        RequestHeader {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn headers_are_refused_with_a_reason_that_never_shows_the_value() {
        assert!(validate_headers(&[header("Authorization", "Bearer s3cret")]).is_ok());
        for (bad, words) in [
            (header("Bad Name", "x"), "header 0"),
            (header("", "x"), "header 0"),
            (header("Content-Length", "5"), "set by the probe"),
            (header("Host", "elsewhere.test"), "set by the probe"),
            (header("X-Token", " s3cret"), "starts or ends with a space"),
            (
                header("X-Token", "s3cret\r\nHost: evil"),
                "control character",
            ),
            (header("X-Token", &"s".repeat(5000)), "longer than"),
        ] {
            let err = validate_headers(&[bad]).unwrap_err();
            assert!(err.contains(words), "{err}");
            assert!(!err.contains("s3cret"), "{err}");
        }
        let twice = validate_headers(&[header("X-A", "1"), header("x-a", "2")]).unwrap_err();
        assert!(twice.contains("given twice"), "{twice}");
        let many: Vec<_> = (0..21).map(|i| header(&format!("X-{i}"), "v")).collect();
        assert!(validate_headers(&many).unwrap_err().contains("at most 20"));
    }

    #[test]
    fn bodies_go_with_post_only() {
        assert!(validate_body(Method::Post, Some("{}")).is_ok());
        assert!(validate_body(Method::Get, None).is_ok());
        assert!(
            validate_body(Method::Get, Some("x"))
                .unwrap_err()
                .contains("POST only")
        );
        assert!(
            validate_body(Method::Post, Some("a\0b"))
                .unwrap_err()
                .contains("NUL")
        );
    }

    #[test]
    fn ca_bundles_must_hold_certificates() {
        assert!(
            parse_ca_bundle("not pem")
                .unwrap_err()
                .contains("no PEM certificate")
        );
        let broken = "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
        assert!(parse_ca_bundle(broken).is_err());
    }

    #[test]
    fn head_requests_cannot_check_a_body() {
        let body: Vec<Assertion> = serde_json::from_str(
            r#"[{"source":"STATUS","comparison":"EQUALS","value":"200"},{"source":"BODY_TEXT","comparison":"CONTAINS","value":"x"}]"#,
        )
        .unwrap();
        let err = validate_method_assertions(Method::Head, &body).unwrap_err();
        assert!(err.starts_with("assertion 1 (BODY_TEXT)"), "{err}");
        assert!(validate_method_assertions(Method::Get, &body).is_ok());
    }

    #[test]
    fn header_debug_output_hides_the_value() {
        let shown = format!("{:?}", header("Authorization", "Bearer s3cret"));
        assert!(
            shown.contains("Authorization") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
