//! What "up" means for a target, when its user says so: typed assertions on a response (status,
//! a header, the body as text or as JSON through a JSONPath of RFC 9535, the response time, the
//! days left on its certificate), checked before they are stored and evaluated by the monitor.
//! No I/O here: the API compiles them to refuse bad entries with a reason, the monitor compiles
//! them once per target and checks each response.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What an assertion looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Source {
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
    /// Whole days until the leaf certificate's `notAfter` (HTTPS only).
    CertExpiresInDays,
}

/// How the looked-at value is compared with `value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Comparison {
    Equals,
    NotEquals,
    LessThan,
    GreaterThan,
    Contains,
    NotContains,
    /// A regular expression (linear-time, at most [`MAX_REGEX_BYTES`] compiled).
    Matches,
    /// `low-high`, both included, e.g. `200-399`.
    InRange,
    IsEmpty,
    NotEmpty,
}

/// One assertion as the user writes it (and as it is stored).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Assertion {
    pub source: Source,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property: Option<String>,
    pub comparison: Comparison,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// Most assertions per target.
pub const MAX_ASSERTIONS: usize = 20;
/// Longest property or value, in bytes.
pub const MAX_TEXT_BYTES: usize = 1024;
/// Largest compiled regular expression (the `regex` crate's size limit).
pub const MAX_REGEX_BYTES: usize = 64 * 1024;
/// Longest "expected" or "found" kept for a failed assertion.
pub const MAX_SHOWN_CHARS: usize = 200;

/// Why an assertion cannot be used, for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

/// What the comparison needs, prepared once.
#[derive(Debug, Clone)]
enum Expected {
    Number(f64),
    Range(f64, f64),
    Text(String),
    Json(serde_json::Value),
    Regex(regex::Regex),
    Nothing,
}

/// An assertion ready to check responses.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub assertion: Assertion,
    path: Option<serde_json_path::JsonPath>,
    expected: Expected,
}

/// What a probe observed, as the assertions read it.
#[derive(Debug, Clone, Default)]
pub struct Observed<'a> {
    pub status: Option<u16>,
    /// Names in any case; looked up case-insensitively.
    pub headers: &'a [(String, String)],
    /// The body read (None when it was not read or there was no response).
    pub body: Option<&'a [u8]>,
    pub response_time_ms: u64,
    pub cert_expires_in_days: Option<i64>,
    /// Texts a failure must never show (the request's header values: a server that echoes
    /// the request would otherwise put them into `found`).
    pub secrets: &'a [&'a str],
}

/// A failed assertion: what was expected and what was found, both shortened for display.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Its position in the target's list.
    pub index: usize,
    pub expected: String,
    pub found: String,
}

/// What replaces a secret in a failure.
pub const REDACTED: &str = "[redacted]";

/// `text` with every secret replaced by [`REDACTED`]: as it is, and as a JSON document or a
/// PHP-style JSON encoder writes it (`"`, `\\`, control characters and `/` escaped), longest
/// secret first so no part of a longer one stays.
fn redact(mut text: String, secrets: &[&str]) -> String {
    let mut forms: Vec<String> = Vec::new();
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        let json = serde_json::to_string(secret).expect("a string serializes");
        let json = json[1..json.len() - 1].to_owned();
        forms.push(json.replace('/', "\\/"));
        forms.push(json);
        forms.push((*secret).to_owned());
    }
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms.dedup();
    for form in forms {
        text = text.replace(&form, REDACTED);
    }
    text
}

/// `text` cut to [`MAX_SHOWN_CHARS`] characters, with NUL (which no text column holds) shown as
/// U+FFFD.
fn shorten(text: &str) -> String {
    let text = text.replace('\0', "\u{FFFD}");
    match text.char_indices().nth(MAX_SHOWN_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Source::Status => "STATUS",
            Source::Header => "HEADER",
            Source::BodyText => "BODY_TEXT",
            Source::BodyJson => "BODY_JSON",
            Source::ResponseTimeMs => "RESPONSE_TIME_MS",
            Source::CertExpiresInDays => "CERT_EXPIRES_IN_DAYS",
        };
        f.write_str(name)
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Comparison::Equals => "EQUALS",
            Comparison::NotEquals => "NOT_EQUALS",
            Comparison::LessThan => "LESS_THAN",
            Comparison::GreaterThan => "GREATER_THAN",
            Comparison::Contains => "CONTAINS",
            Comparison::NotContains => "NOT_CONTAINS",
            Comparison::Matches => "MATCHES",
            Comparison::InRange => "IN_RANGE",
            Comparison::IsEmpty => "IS_EMPTY",
            Comparison::NotEmpty => "NOT_EMPTY",
        };
        f.write_str(name)
    }
}

/// The comparisons that make sense for each source.
fn allowed(source: Source, comparison: Comparison) -> bool {
    use Comparison::*;
    match source {
        Source::Status | Source::ResponseTimeMs | Source::CertExpiresInDays => {
            matches!(
                comparison,
                Equals | NotEquals | LessThan | GreaterThan | InRange
            )
        }
        Source::Header | Source::BodyText => matches!(
            comparison,
            Equals | NotEquals | Contains | NotContains | Matches | IsEmpty | NotEmpty
        ),
        Source::BodyJson => !matches!(comparison, InRange),
    }
}

fn number(value: &str) -> Result<f64, Invalid> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .ok_or_else(|| Invalid(format!("{value:?} is not a number")))
}

fn range(value: &str) -> Result<(f64, f64), Invalid> {
    let bad = || Invalid(format!("{value:?} is not a range like 200-399"));
    // The separator is the first '-' after the first character (a low end may be negative).
    let cut = value
        .char_indices()
        .skip(1)
        .find(|(_, c)| *c == '-')
        .map(|(i, _)| i)
        .ok_or_else(bad)?;
    let (low, high) = (number(&value[..cut])?, number(&value[cut + 1..])?);
    if low > high {
        return Err(bad());
    }
    Ok((low, high))
}

impl Assertion {
    /// Checks the assertion and prepares it; the error says what is wrong with it.
    pub fn compile(&self) -> Result<Compiled, Invalid> {
        let (source, comparison) = (self.source, self.comparison);
        if !allowed(source, comparison) {
            return Err(Invalid(format!(
                "{comparison} cannot be used with {source}"
            )));
        }
        for text in [&self.property, &self.value].into_iter().flatten() {
            if text.len() > MAX_TEXT_BYTES {
                return Err(Invalid(format!(
                    "a property or value is longer than {MAX_TEXT_BYTES} bytes"
                )));
            }
            if text.contains('\0') {
                return Err(Invalid(
                    "a property or value contains a NUL character".into(),
                ));
            }
        }
        let property = self.property.as_deref().filter(|p| !p.trim().is_empty());
        let path = match (source, property) {
            (Source::Header, None) => {
                return Err(Invalid("HEADER needs the header's name as property".into()));
            }
            (Source::Header, Some(name)) => {
                if !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
                {
                    return Err(Invalid(format!("{name:?} is not a header name")));
                }
                None
            }
            (Source::BodyJson, None) => {
                return Err(Invalid(
                    "BODY_JSON needs a JSONPath as property, e.g. $.status".into(),
                ));
            }
            (Source::BodyJson, Some(path)) => Some(
                serde_json_path::JsonPath::parse(path)
                    .map_err(|e| Invalid(format!("{path:?} is not a JSONPath: {e}")))?,
            ),
            (_, Some(_)) => {
                return Err(Invalid(format!("{source} takes no property")));
            }
            (_, None) => None,
        };
        let needs_value = !matches!(comparison, Comparison::IsEmpty | Comparison::NotEmpty);
        let value = match (&self.value, needs_value) {
            (Some(value), true) => value.as_str(),
            (None, true) => return Err(Invalid(format!("{comparison} needs a value"))),
            (Some(_), false) => return Err(Invalid(format!("{comparison} takes no value"))),
            (None, false) => "",
        };
        let numeric = matches!(
            source,
            Source::Status | Source::ResponseTimeMs | Source::CertExpiresInDays
        );
        let expected = match comparison {
            Comparison::IsEmpty | Comparison::NotEmpty => Expected::Nothing,
            Comparison::InRange => {
                let (low, high) = range(value)?;
                Expected::Range(low, high)
            }
            Comparison::Matches => Expected::Regex(
                regex::RegexBuilder::new(value)
                    .size_limit(MAX_REGEX_BYTES)
                    // The lazy DFA's cache, per regex: the monitor holds one per target.
                    .dfa_size_limit(MAX_REGEX_BYTES)
                    .build()
                    .map_err(|e| {
                        Invalid(format!("{value:?} is not a usable regular expression: {e}"))
                    })?,
            ),
            Comparison::LessThan | Comparison::GreaterThan => Expected::Number(number(value)?),
            Comparison::Equals | Comparison::NotEquals if numeric => {
                Expected::Number(number(value)?)
            }
            // JSON compares as JSON when the value parses as JSON (`true`, `3`, `"UP"`), else as
            // the text itself (`UP`).
            Comparison::Equals | Comparison::NotEquals if source == Source::BodyJson => {
                Expected::Json(
                    serde_json::from_str(value)
                        .unwrap_or_else(|_| serde_json::Value::String(value.to_owned())),
                )
            }
            _ => Expected::Text(value.to_owned()),
        };
        Ok(Compiled {
            assertion: self.clone(),
            path,
            expected,
        })
    }
}

/// Compiles a target's list, naming the entry that is wrong.
pub fn compile_all(assertions: &[Assertion]) -> Result<Vec<Compiled>, Invalid> {
    if assertions.len() > MAX_ASSERTIONS {
        return Err(Invalid(format!(
            "at most {MAX_ASSERTIONS} assertions per target, got {}",
            assertions.len()
        )));
    }
    assertions
        .iter()
        .enumerate()
        .map(|(i, a)| {
            a.compile().map_err(|e| {
                Invalid(format!(
                    "assertion {} ({} {}): {e}",
                    i, a.source, a.comparison
                ))
            })
        })
        .collect()
}

/// Whether any of `assertions` reads the body (only then is it read).
pub fn need_body(assertions: &[Compiled]) -> bool {
    assertions
        .iter()
        .any(|a| matches!(a.assertion.source, Source::BodyText | Source::BodyJson))
}

/// A JSON value as a user reads it: strings without their quotes.
fn json_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn json_empty(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Null => true,
        serde_json::Value::String(s) => s.is_empty(),
        serde_json::Value::Array(a) => a.is_empty(),
        serde_json::Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

impl Compiled {
    /// Checks `observed`; the failure says what was expected and what was found. `index` is the
    /// assertion's position, for the failure.
    pub fn check(&self, index: usize, observed: &Observed<'_>) -> Result<(), Failure> {
        let a = &self.assertion;
        let fail = |found: String| {
            // Only what the server sent can echo the request (a status or a time cannot), and
            // before shortening, so no prefix of a secret survives the cut.
            let found = match a.source {
                Source::Header | Source::BodyText | Source::BodyJson => {
                    redact(found, observed.secrets)
                }
                _ => found,
            };
            Failure {
                index,
                expected: shorten(&self.describe()),
                found: shorten(&found),
            }
        };
        match a.source {
            Source::Status => match observed.status {
                Some(status) => self
                    .number(f64::from(status))
                    .map_err(|_| fail(status.to_string())),
                None => Err(fail("no response".into())),
            },
            Source::ResponseTimeMs => {
                let ms = observed.response_time_ms;
                self.number(ms as f64).map_err(|_| fail(format!("{ms} ms")))
            }
            Source::CertExpiresInDays => match observed.cert_expires_in_days {
                Some(days) => self
                    .number(days as f64)
                    .map_err(|_| fail(format!("{days} days"))),
                None => Err(fail("no certificate".into())),
            },
            Source::Header => {
                let name = a.property.as_deref().unwrap_or_default();
                let found = observed
                    .headers
                    .iter()
                    .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                self.text(&found).map_err(|_| fail(found))
            }
            Source::BodyText => {
                let body = observed
                    .body
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                self.text(&body).map_err(|_| fail(body.into_owned()))
            }
            Source::BodyJson => {
                let Some(body) = observed.body else {
                    return Err(fail("no body".into()));
                };
                let document: serde_json::Value = match serde_json::from_slice(body) {
                    Ok(document) => document,
                    Err(e) => return Err(fail(format!("a body that is not JSON ({e})"))),
                };
                let path = self.path.as_ref().expect("BODY_JSON compiles with a path");
                let nodes: Vec<&serde_json::Value> = path.query(&document).all();
                let shown = || match nodes.as_slice() {
                    [] => "nothing selected".to_owned(),
                    [one] => json_text(one),
                    many => serde_json::Value::Array(many.iter().map(|v| (*v).clone()).collect())
                        .to_string(),
                };
                self.json(&nodes).map_err(|_| fail(shown()))
            }
        }
    }

    /// What the assertion expects, for the user.
    fn describe(&self) -> String {
        let a = &self.assertion;
        let subject = match &a.property {
            Some(p) => format!("{} {p}", a.source),
            None => a.source.to_string(),
        };
        match &a.value {
            Some(v) => format!("{subject} {} {v}", a.comparison),
            None => format!("{subject} {}", a.comparison),
        }
    }

    fn number(&self, found: f64) -> Result<(), ()> {
        let ok = match (&self.expected, self.assertion.comparison) {
            (Expected::Number(n), Comparison::Equals) => found == *n,
            (Expected::Number(n), Comparison::NotEquals) => found != *n,
            (Expected::Number(n), Comparison::LessThan) => found < *n,
            (Expected::Number(n), Comparison::GreaterThan) => found > *n,
            (Expected::Range(low, high), Comparison::InRange) => (*low..=*high).contains(&found),
            _ => false,
        };
        ok.then_some(()).ok_or(())
    }

    fn text(&self, found: &str) -> Result<(), ()> {
        let ok = match (&self.expected, self.assertion.comparison) {
            (Expected::Text(t), Comparison::Equals) => found == t,
            (Expected::Text(t), Comparison::NotEquals) => found != t,
            (Expected::Text(t), Comparison::Contains) => found.contains(t.as_str()),
            (Expected::Text(t), Comparison::NotContains) => !found.contains(t.as_str()),
            (Expected::Regex(r), Comparison::Matches) => r.is_match(found),
            (_, Comparison::IsEmpty) => found.is_empty(),
            (_, Comparison::NotEmpty) => !found.is_empty(),
            _ => false,
        };
        ok.then_some(()).ok_or(())
    }

    /// A JSONPath's nodes: EQUALS, CONTAINS, MATCHES and the number comparisons hold when it
    /// selects something and every node passes; NOT_EQUALS and NOT_CONTAINS when no node has
    /// what they exclude; IS_EMPTY when nothing is selected or every node is null or empty.
    fn json(&self, nodes: &[&serde_json::Value]) -> Result<(), ()> {
        let comparison = self.assertion.comparison;
        let every = |pass: &dyn Fn(&serde_json::Value) -> bool| {
            !nodes.is_empty() && nodes.iter().all(|n| pass(n))
        };
        let ok = match (&self.expected, comparison) {
            (Expected::Json(v), Comparison::Equals) => every(&|n| n == v),
            (Expected::Json(v), Comparison::NotEquals) => nodes.iter().all(|n| *n != v),
            (Expected::Number(x), Comparison::LessThan) => {
                every(&|n| n.as_f64().is_some_and(|n| n < *x))
            }
            (Expected::Number(x), Comparison::GreaterThan) => {
                every(&|n| n.as_f64().is_some_and(|n| n > *x))
            }
            (Expected::Text(t), Comparison::Contains) => {
                every(&|n| json_text(n).contains(t.as_str()))
            }
            (Expected::Text(t), Comparison::NotContains) => {
                nodes.iter().all(|n| !json_text(n).contains(t.as_str()))
            }
            (Expected::Regex(r), Comparison::Matches) => every(&|n| r.is_match(&json_text(n))),
            (_, Comparison::IsEmpty) => nodes.iter().all(|n| json_empty(n)),
            (_, Comparison::NotEmpty) => every(&|n| !json_empty(n)),
            _ => false,
        };
        ok.then_some(()).ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assertion(
        source: Source,
        property: Option<&str>,
        comparison: Comparison,
        value: Option<&str>,
    ) -> Assertion {
        Assertion {
            source,
            property: property.map(str::to_owned),
            comparison,
            value: value.map(str::to_owned),
        }
    }

    fn check(a: &Assertion, observed: &Observed<'_>) -> Result<(), Failure> {
        a.compile().unwrap().check(0, observed)
    }

    #[test]
    fn a_health_json_is_read_through_a_jsonpath() {
        let up =
            br#"{"status":"UP","checks":[{"name":"db","ok":true},{"name":"cache","ok":false}]}"#;
        let down = br#"{"status":"DOWN","checks":[{"name":"db","ok":false}]}"#;
        let db_ok = assertion(
            Source::BodyJson,
            Some("$.checks[?@.name=='db'].ok"),
            Comparison::Equals,
            Some("true"),
        );
        let status_up = assertion(
            Source::BodyJson,
            Some("$.status"),
            Comparison::Equals,
            Some("UP"),
        );
        let seen = |body: &'static [u8]| Observed {
            body: Some(body),
            ..Observed::default()
        };
        assert_eq!(check(&db_ok, &seen(up)), Ok(()));
        assert_eq!(check(&status_up, &seen(up)), Ok(()));
        let failure = check(&db_ok, &seen(down)).unwrap_err();
        assert_eq!(failure.found, "false");
        assert!(failure.expected.contains("EQUALS true"), "{failure:?}");
        assert_eq!(check(&status_up, &seen(down)).unwrap_err().found, "DOWN");
        // Not JSON, and a path that selects nothing.
        assert!(
            check(&status_up, &seen(b"<html>"))
                .unwrap_err()
                .found
                .contains("not JSON")
        );
        let missing = assertion(Source::BodyJson, Some("$.nope"), Comparison::NotEmpty, None);
        assert_eq!(
            check(&missing, &seen(up)).unwrap_err().found,
            "nothing selected"
        );
    }

    #[test]
    fn a_200_that_says_error_fails_not_contains() {
        let a = assertion(
            Source::BodyText,
            None,
            Comparison::NotContains,
            Some("Error"),
        );
        let body = b"<h1>500 Internal Error</h1>";
        let observed = Observed {
            status: Some(200),
            body: Some(body),
            ..Observed::default()
        };
        assert!(
            check(&a, &observed)
                .unwrap_err()
                .found
                .contains("Internal Error")
        );
        let fine = Observed {
            body: Some(b"all good"),
            ..observed
        };
        assert_eq!(check(&a, &fine), Ok(()));
    }

    #[test]
    fn headers_status_times_and_certificates() {
        let headers = vec![(
            "Content-Type".to_owned(),
            "application/json; charset=utf-8".to_owned(),
        )];
        let observed = Observed {
            status: Some(503),
            headers: &headers,
            response_time_ms: 120,
            cert_expires_in_days: Some(3),
            ..Observed::default()
        };
        let json = assertion(
            Source::Header,
            Some("content-type"),
            Comparison::Contains,
            Some("json"),
        );
        assert_eq!(check(&json, &observed), Ok(()));
        let missing = assertion(
            Source::Header,
            Some("x-version"),
            Comparison::NotEmpty,
            None,
        );
        assert!(check(&missing, &observed).is_err());
        let ok_status = assertion(Source::Status, None, Comparison::InRange, Some("200-399"));
        assert_eq!(check(&ok_status, &observed).unwrap_err().found, "503");
        let fast = assertion(
            Source::ResponseTimeMs,
            None,
            Comparison::LessThan,
            Some("300"),
        );
        assert_eq!(check(&fast, &observed), Ok(()));
        let cert = assertion(
            Source::CertExpiresInDays,
            None,
            Comparison::GreaterThan,
            Some("14"),
        );
        assert_eq!(check(&cert, &observed).unwrap_err().found, "3 days");
        let plain = Observed {
            cert_expires_in_days: None,
            ..observed
        };
        assert_eq!(check(&cert, &plain).unwrap_err().found, "no certificate");
    }

    #[test]
    fn bad_entries_are_refused_with_the_entry_and_the_reason() {
        let cases = [
            (
                assertion(Source::Status, None, Comparison::Contains, Some("2")),
                "CONTAINS cannot be used with STATUS",
            ),
            (
                assertion(
                    Source::BodyJson,
                    Some("$.[oops"),
                    Comparison::Equals,
                    Some("1"),
                ),
                "not a JSONPath",
            ),
            (
                assertion(
                    Source::BodyText,
                    None,
                    Comparison::Matches,
                    Some("(unclosed"),
                ),
                "not a usable regular expression",
            ),
            (
                assertion(
                    Source::BodyText,
                    None,
                    Comparison::Matches,
                    Some(r"\w{1000}\w{1000}\w{1000}"),
                ),
                "not a usable regular expression",
            ),
            (
                assertion(Source::Status, None, Comparison::InRange, Some("399-200")),
                "not a range",
            ),
            (
                assertion(
                    Source::Status,
                    None,
                    Comparison::Equals,
                    Some("two hundred"),
                ),
                "not a number",
            ),
            (
                assertion(Source::Header, None, Comparison::NotEmpty, None),
                "needs the header's name",
            ),
            (
                assertion(Source::Header, Some("bad name"), Comparison::NotEmpty, None),
                "not a header name",
            ),
            (
                assertion(Source::Status, Some("x"), Comparison::Equals, Some("200")),
                "takes no property",
            ),
            (
                assertion(Source::BodyText, None, Comparison::IsEmpty, Some("x")),
                "takes no value",
            ),
            (
                assertion(Source::BodyText, None, Comparison::Contains, None),
                "needs a value",
            ),
        ];
        for (a, says) in cases {
            let list = vec![
                assertion(Source::Status, None, Comparison::Equals, Some("200")),
                a,
            ];
            let err = compile_all(&list).unwrap_err().0;
            assert!(err.starts_with("assertion 1 ("), "{err}");
            assert!(err.contains(says), "{err} should say {says}");
        }
        let too_many = vec![assertion(Source::Status, None, Comparison::Equals, Some("200")); 21];
        assert!(compile_all(&too_many).unwrap_err().0.contains("at most 20"));
    }

    #[test]
    fn only_body_assertions_read_the_body_and_long_findings_are_shortened() {
        let status = assertion(Source::Status, None, Comparison::Equals, Some("200"));
        let text = assertion(Source::BodyText, None, Comparison::Contains, Some("ok"));
        assert!(!need_body(
            &compile_all(std::slice::from_ref(&status)).unwrap()
        ));
        assert!(need_body(&compile_all(&[status, text.clone()]).unwrap()));
        let long = "x".repeat(5000);
        let failure = check(
            &text,
            &Observed {
                body: Some(long.as_bytes()),
                ..Observed::default()
            },
        )
        .unwrap_err();
        assert_eq!(failure.found.chars().count(), MAX_SHOWN_CHARS + 1);
        // Stored as JSON, as the API and the monitor exchange it.
        let stored = serde_json::to_string(&text).unwrap();
        assert_eq!(
            stored,
            r#"{"source":"BODY_TEXT","comparison":"CONTAINS","value":"ok"}"#
        );
        assert_eq!(serde_json::from_str::<Assertion>(&stored).unwrap(), text);
    }

    #[test]
    fn failures_never_show_a_secret_or_a_nul() {
        let echo = b"you sent Authorization: Bearer s3cret-token and \0 a NUL";
        let contains_nope = assertion(Source::BodyText, None, Comparison::Contains, Some("nope"));
        let observed = Observed {
            status: Some(200),
            body: Some(echo),
            secrets: &["Bearer s3cret-token"],
            ..Observed::default()
        };
        let failure = check(&contains_nope, &observed).unwrap_err();
        assert!(!failure.found.contains("s3cret"), "{failure:?}");
        assert!(failure.found.contains(REDACTED), "{failure:?}");
        assert!(!failure.found.contains('\0'), "{failure:?}");
        // A secret cut in half by the shortening is redacted before the cut.
        let long = format!("{}Bearer s3cret-token", "x".repeat(MAX_SHOWN_CHARS - 5));
        let observed = Observed {
            body: Some(long.as_bytes()),
            ..observed
        };
        let failure = check(&contains_nope, &observed).unwrap_err();
        assert!(!failure.found.contains("Beare"), "{failure:?}");
        // Escaped as JSON (and `/` as PHP writes it), and a secret inside a longer one.
        let secrets = ["Basic dXNlcjpw/YXNz\"x", "Basic dXNlcjpw"];
        let escaped = br#"{"auth":"Basic dXNlcjpw\/YXNz\"x"}"#;
        let observed = Observed {
            body: Some(escaped),
            secrets: &secrets,
            ..Observed::default()
        };
        let failure = check(&contains_nope, &observed).unwrap_err();
        assert!(!failure.found.contains("dXNlcjpw"), "{failure:?}");
        // A status is never redacted, whatever a header holds.
        let status = assertion(Source::Status, None, Comparison::Equals, Some("200"));
        let observed = Observed {
            status: Some(503),
            secrets: &["5"],
            ..Observed::default()
        };
        assert_eq!(check(&status, &observed).unwrap_err().found, "503");
        let nul = assertion(Source::BodyText, None, Comparison::Contains, Some("a\0b"));
        assert!(nul.compile().unwrap_err().0.contains("NUL"));
    }
}
