//! One probe: an HTTP(S) GET as a visitor would make it, timed from DNS to the last body byte,
//! and sorted into a status or a failure class. A probe always yields a result, never an error.
//!
//! The client keeps no idle connections (`pool_max_idle_per_host(0)`), so every probe pays for
//! its own DNS, connect and TLS. Redirects are followed by a policy of our own that also applies
//! the deny-list to each hop and reports loops and overlong chains as `redirect_limit`.

use std::error::Error as StdError;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entity::{FailureClass, Outcome};
use reqwest::redirect::{Attempt, Policy};

use crate::guard::{DeniedAddress, DenyList, DnsFailure, GuardedResolver};

/// What the monitor sends in its `User-Agent` header.
pub const USER_AGENT: &str = concat!(
    "Pingpipe-Monitor/",
    env!("CARGO_PKG_VERSION"),
    " (availability probe)"
);

/// How probes are made.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub timeout: Duration,
    pub max_redirects: usize,
    pub body_cap_bytes: usize,
    pub deny: Arc<DenyList>,
}

/// The outcome of one probe and when it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeResult {
    pub start_time: DateTime<Utc>,
    pub duration_ms: i32,
    pub outcome: Outcome,
}

/// Makes probes; cheap to share (one HTTP client, one TLS configuration).
#[derive(Debug, Clone)]
pub struct Prober {
    client: reqwest::Client,
    settings: ProbeSettings,
}

/// A redirect chain that is too long or comes back to a URL already visited.
#[derive(Debug)]
struct RedirectLimit(String);

impl std::fmt::Display for RedirectLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for RedirectLimit {}

/// The IP address of a URL whose host is an IP literal (those skip the resolver).
fn literal_ip(url: &reqwest::Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

impl Prober {
    pub fn new(settings: ProbeSettings) -> Result<Prober, reqwest::Error> {
        let deny = settings.deny.clone();
        let max_redirects = settings.max_redirects;
        let policy = Policy::custom(move |attempt: Attempt<'_>| {
            if attempt.previous().contains(attempt.url()) {
                let msg = format!("redirect loop back to {}", attempt.url());
                return attempt.error(RedirectLimit(msg));
            }
            if attempt.previous().len() > max_redirects {
                let msg = format!("more than {max_redirects} redirects");
                return attempt.error(RedirectLimit(msg));
            }
            if let Some(ip) = literal_ip(attempt.url()).filter(|ip| deny.denies(*ip)) {
                return attempt.error(DeniedAddress(ip.to_string()));
            }
            attempt.follow()
        });
        let client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .redirect(policy)
            .dns_resolver(Arc::new(GuardedResolver::new(settings.deny.clone())))
            .pool_max_idle_per_host(0)
            .no_proxy()
            .connect_timeout(settings.timeout)
            .timeout(settings.timeout)
            .build()?;
        Ok(Prober { client, settings })
    }

    /// Probes `url` once. Never fails: a probe without a response is a failure class.
    pub async fn probe(&self, url: &str) -> ProbeResult {
        let start_time = Utc::now();
        let started = Instant::now();
        let outcome = match tokio::time::timeout(self.settings.timeout, self.attempt(url)).await {
            Ok(Ok(status)) => Outcome::Status(i32::from(status)),
            Ok(Err(class)) => Outcome::Failure(class),
            Err(_elapsed) => Outcome::Failure(FailureClass::Timeout),
        };
        let duration_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        ProbeResult {
            start_time,
            duration_ms,
            outcome,
        }
    }

    async fn attempt(&self, url: &str) -> Result<u16, FailureClass> {
        let url = reqwest::Url::parse(url).map_err(|_| FailureClass::Other)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FailureClass::Other);
        }
        if literal_ip(&url).is_some_and(|ip| self.settings.deny.denies(ip)) {
            return Err(FailureClass::Denied);
        }
        let mut response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|e| classify(&e, FailureClass::Connect))?;
        let status = response.status().as_u16();
        // Read (and drop) the body up to the cap, as a visitor's browser would fetch it.
        let mut read = 0usize;
        while read < self.settings.body_cap_bytes {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                Ok(None) => break,
                Err(e) => return Err(classify(&e, FailureClass::Body)),
            }
        }
        Ok(status)
    }
}

/// Every error in the chain, including the errors `io::Error`s wrap (which their `source()`
/// skips), however deeply nested.
fn chain<'a>(err: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut out = Vec::new();
    let mut pending = vec![err];
    while let Some(e) = pending.pop() {
        out.push(e);
        if let Some(source) = e.source() {
            pending.push(source);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            pending.push(inner);
        }
    }
    out
}

/// Sorts a client error into a failure class; `fallback` is the class of an unexplained
/// failure at that stage (before the response: connect; while reading the body: body).
fn classify(err: &reqwest::Error, fallback: FailureClass) -> FailureClass {
    let links = chain(err);
    let any = |f: &dyn Fn(&(dyn StdError + 'static)) -> bool| links.iter().any(|e| f(*e));
    if any(&|e| e.is::<DeniedAddress>()) {
        FailureClass::Denied
    } else if any(&|e| e.is::<RedirectLimit>()) || err.is_redirect() {
        FailureClass::RedirectLimit
    } else if err.is_timeout()
        || any(&|e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        })
    {
        FailureClass::Timeout
    } else if any(&|e| e.is::<DnsFailure>()) || err.is_dns() {
        FailureClass::Dns
    } else if any(&|e| e.is::<rustls::Error>()) {
        FailureClass::Tls
    } else if err.is_connect() {
        FailureClass::Connect
    } else if any(&|e| {
        e.downcast_ref::<hyper::Error>()
            .is_some_and(|h| h.is_incomplete_message())
    }) {
        // The server accepted the connection and closed it without a response.
        FailureClass::Connect
    } else if err.is_body() || err.is_decode() || fallback == FailureClass::Body {
        FailureClass::Body
    } else {
        FailureClass::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_ips_are_recognised_in_both_families() {
        let ip = |u: &str| literal_ip(&reqwest::Url::parse(u).unwrap());
        assert_eq!(
            ip("http://127.0.0.1:8080/x"),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(ip("http://[::1]:8080/x"), Some("::1".parse().unwrap()));
        assert_eq!(ip("http://localhost/"), None);
    }
}
