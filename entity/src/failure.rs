//! Why a probe got no HTTP response. Stored in `monitor_results.failure_class`, whose CHECK
//! constraint lists the same values.

use std::fmt;
use std::str::FromStr;

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The class of a failed probe: exactly one of this or an HTTP status describes every result.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "Text")]
#[serde(rename_all = "snake_case")]
pub enum FailureClass {
    /// The host name did not resolve.
    #[sea_orm(string_value = "dns")]
    Dns,
    /// No TCP connection (refused, unreachable, reset before a response).
    #[sea_orm(string_value = "connect")]
    Connect,
    /// The TLS handshake failed (untrusted or invalid certificate, protocol error).
    #[sea_orm(string_value = "tls")]
    Tls,
    /// No complete response within the probe timeout.
    #[sea_orm(string_value = "timeout")]
    Timeout,
    /// More redirects than allowed, or a redirect loop.
    #[sea_orm(string_value = "redirect_limit")]
    RedirectLimit,
    /// The address is on the deny-list (cloud metadata, link-local, configured CIDRs).
    #[sea_orm(string_value = "denied")]
    Denied,
    /// The response started but its body could not be read.
    #[sea_orm(string_value = "body")]
    Body,
    /// A response came, and one of the target's assertions failed on it (the only class
    /// stored together with a status).
    #[sea_orm(string_value = "assertion")]
    Assertion,
    /// Anything else; the worker's log says more.
    #[sea_orm(string_value = "other")]
    Other,
}

/// A string that is not a failure class.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "failure class must be one of dns, connect, tls, timeout, redirect_limit, denied, body, assertion, other, got {0:?}"
)]
pub struct FailureClassError(pub String);

impl FailureClass {
    /// Every class, in the order of the CHECK constraint.
    pub const ALL: [FailureClass; 9] = [
        FailureClass::Dns,
        FailureClass::Connect,
        FailureClass::Tls,
        FailureClass::Timeout,
        FailureClass::RedirectLimit,
        FailureClass::Denied,
        FailureClass::Body,
        FailureClass::Assertion,
        FailureClass::Other,
    ];

    /// The stored and serialized name.
    pub const fn as_str(self) -> &'static str {
        match self {
            FailureClass::Dns => "dns",
            FailureClass::Connect => "connect",
            FailureClass::Tls => "tls",
            FailureClass::Timeout => "timeout",
            FailureClass::RedirectLimit => "redirect_limit",
            FailureClass::Denied => "denied",
            FailureClass::Body => "body",
            FailureClass::Assertion => "assertion",
            FailureClass::Other => "other",
        }
    }
}

impl FromStr for FailureClass {
    type Err = FailureClassError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| FailureClassError(s.to_owned()))
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_class_names_round_trip_through_text_and_json() {
        for class in FailureClass::ALL {
            assert_eq!(class.as_str().parse::<FailureClass>(), Ok(class));
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(json, format!("\"{}\"", class.as_str()));
            assert_eq!(serde_json::from_str::<FailureClass>(&json).unwrap(), class);
        }
    }

    #[test]
    fn failure_class_refuses_unknown_names() {
        let err = "flaky".parse::<FailureClass>().unwrap_err().to_string();
        assert!(
            err.contains("redirect_limit") && err.contains("flaky"),
            "{err}"
        );
    }
}
