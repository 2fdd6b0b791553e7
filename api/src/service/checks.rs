//! A target's check (#12): what its probe sends and what counts as up. Every check is validated
//! here with the entity's own functions, so the API refuses exactly what the monitor could not
//! use. Header values are secrets: nothing in this module puts one in a message, and no type
//! here prints one with `Debug`.

use entity::assertion::{self, Assertion};
use entity::check::{self, Assertions, Method, RequestHeader, RequestHeaders};
use entity::urltargets;
use sea_orm::Set;

/// A request header as given: without a value it keeps the one stored under its name.
#[derive(Clone, PartialEq, Eq)]
pub struct HeaderChange {
    pub name: String,
    pub value: Option<String>,
}

impl std::fmt::Debug for HeaderChange {
    /// The value is a secret: shown as whether there is one, never as itself.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeaderChange")
            .field("name", &self.name)
            .field("value", &self.value.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A change to a check, field by field: `None` leaves a field as it is; a cleared field is
/// `Some` of its default (`Some(None)`, `Some(Method::Get)`, `Some(vec![])`, `Some(true)`,
/// `Some(false)`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckChange {
    pub assertions: Option<Vec<Assertion>>,
    pub degraded_after_ms: Option<Option<i32>>,
    pub method: Option<Method>,
    pub headers: Option<Vec<HeaderChange>>,
    pub body: Option<Option<String>>,
    pub tls_verify: Option<bool>,
    pub ca_bundle: Option<Option<String>>,
    pub reprobe: Option<bool>,
}

/// A whole check, as stored in `urltargets` (the type the monitor reads too).
pub use entity::check::StoredCheck as Check;

/// What the API does to a stored check: change it from an input, and write it.
pub trait CheckEdit: Sized {
    /// This check with `change` made, header values left out taken from `stored` (by name,
    /// case-insensitively), and validated. The error names the field and the reason, never a
    /// header's value.
    fn changed(self, change: &CheckChange, stored: &[RequestHeader]) -> Result<Check, String>;

    /// Sets the check's columns on `model`.
    fn set_on(self, model: &mut urltargets::ActiveModel);
}

impl CheckEdit for Check {
    fn changed(mut self, change: &CheckChange, stored: &[RequestHeader]) -> Result<Check, String> {
        if let Some(assertions) = &change.assertions {
            self.assertions = Assertions(assertions.clone());
        }
        if let Some(ms) = change.degraded_after_ms {
            self.degraded_after_ms = ms;
        }
        if let Some(method) = change.method {
            self.method = method;
        }
        if let Some(headers) = &change.headers {
            self.headers = RequestHeaders(resolve_headers(headers, stored)?);
        }
        if let Some(body) = &change.body {
            self.body.clone_from(body);
        }
        if let Some(verify) = change.tls_verify {
            self.tls_verify = verify;
        }
        if let Some(bundle) = &change.ca_bundle {
            self.ca_bundle.clone_from(bundle);
        }
        if let Some(reprobe) = change.reprobe {
            self.reprobe = reprobe;
        }
        validate(&self)?;
        Ok(self)
    }

    fn set_on(self, model: &mut urltargets::ActiveModel) {
        model.assertions = Set(self.assertions);
        model.degraded_after_ms = Set(self.degraded_after_ms);
        model.method = Set(self.method);
        model.request_headers = Set(self.headers);
        model.request_body = Set(self.body);
        model.tls_verify = Set(self.tls_verify);
        model.ca_bundle = Set(self.ca_bundle);
        model.reprobe = Set(self.reprobe);
    }
}

/// Whether the monitor can use `check`; the reason names the field (as the API spells it) and
/// the entry.
fn validate(check: &Check) -> Result<(), String> {
    assertion::compile_all(&check.assertions.0).map_err(|e| format!("check.assertions: {e}"))?;
    check::validate_method_assertions(check.method, &check.assertions.0)
        .map_err(|e| format!("check.assertions: {e}"))?;
    check::validate_degraded_after(check.degraded_after_ms)
        .map_err(|e| format!("check.degradedAfterMs: {e}"))?;
    check::validate_headers(&check.headers.0).map_err(|e| format!("check.headers: {e}"))?;
    check::validate_body(check.method, check.body.as_deref())
        .map_err(|e| format!("check.body: {e}"))?;
    if let Some(bundle) = &check.ca_bundle {
        check::parse_ca_bundle(bundle).map_err(|e| format!("check.caBundle: {e}"))?;
    }
    Ok(())
}

/// The headers `given`, a header without a value taking the value stored under its name.
fn resolve_headers(
    given: &[HeaderChange],
    stored: &[RequestHeader],
) -> Result<Vec<RequestHeader>, String> {
    // Bounded before the lookups below (each is a scan of the stored list).
    if given.len() > check::MAX_HEADERS {
        return Err(format!(
            "check.headers: at most {} headers, got {}",
            check::MAX_HEADERS,
            given.len()
        ));
    }
    given
        .iter()
        .enumerate()
        .map(|(i, header)| {
            let value = match &header.value {
                Some(value) => value.clone(),
                None => stored
                    .iter()
                    .find(|s| s.name.eq_ignore_ascii_case(&header.name))
                    .map(|s| s.value.clone())
                    .ok_or_else(|| {
                        let shown: String = header.name.chars().take(40).collect();
                        format!(
                            "check.headers: header {i} ({shown:?}) has no value, and this \
                             target stores none under that name to keep"
                        )
                    })?,
            };
            Ok(RequestHeader {
                name: header.name.clone(),
                value,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use entity::assertion::{Comparison, Source};

    fn header(name: &str, value: Option<&str>) -> HeaderChange {
        HeaderChange {
            name: name.into(),
            value: value.map(str::to_owned),
        }
    }

    #[test]
    fn a_header_without_value_keeps_the_stored_one_whatever_its_case() {
        let stored = [RequestHeader {
            name: "Authorization".into(),
            value: "Bearer s3cret".into(),
        }];
        let change = CheckChange {
            headers: Some(vec![header("authorization", None)]),
            ..CheckChange::default()
        };
        let check = Check::default().changed(&change, &stored).unwrap();
        assert_eq!(check.headers.0[0].value, "Bearer s3cret");
        assert_eq!(check.headers.0[0].name, "authorization");
        let err = Check::default().changed(&change, &[]).unwrap_err();
        assert!(err.contains("header 0 (\"authorization\")"), "{err}");
    }

    #[test]
    fn invalid_checks_are_refused_naming_the_field_and_never_a_value() {
        let bad = |change: CheckChange, says: &str| {
            let err = Check::default().changed(&change, &[]).unwrap_err();
            assert!(err.contains(says), "{err} should say {says}");
            assert!(!err.contains("s3cret"), "{err}");
        };
        bad(
            CheckChange {
                assertions: Some(vec![Assertion {
                    source: Source::Status,
                    property: None,
                    comparison: Comparison::Contains,
                    value: Some("2".into()),
                }]),
                ..CheckChange::default()
            },
            "check.assertions: assertion 0 (STATUS CONTAINS)",
        );
        bad(
            CheckChange {
                headers: Some(vec![header("X-Token", Some("s3cret\r\nHost: x"))]),
                ..CheckChange::default()
            },
            "check.headers: header 0 (X-Token)",
        );
        bad(
            CheckChange {
                body: Some(Some("{}".into())),
                ..CheckChange::default()
            },
            "check.body: a body is sent with POST only",
        );
        bad(
            CheckChange {
                degraded_after_ms: Some(Some(0)),
                ..CheckChange::default()
            },
            "check.degradedAfterMs",
        );
        bad(
            CheckChange {
                ca_bundle: Some(Some("garbage".into())),
                ..CheckChange::default()
            },
            "check.caBundle",
        );
    }
}
