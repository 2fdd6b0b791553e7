//! One probe: the target's request as a first visitor would make it, timed phase by phase —
//! DNS, TCP connect, TLS handshake, time to the response's head, reading the body — and judged
//! by the target's check. A probe always yields a result, never an error.
//!
//! It runs on hyper's HTTP/1.1 client connection over tokio's TCP and tokio-rustls, so each phase
//! is measured where it happens (reqwest has no timing API). No connection is reused: every probe
//! pays for its own DNS, connect and TLS. Redirects are followed here, with the deny-list applied
//! to every hop, loops and overlong chains reported as `redirect_limit`, and the target's headers
//! (secrets) sent only to the origin of the target's URL.
//!
//! Phase times are taken on one clock as offsets from the probe's start, each cut to whole
//! milliseconds before subtracting, so the phases add up to at most the probe's duration. Over
//! redirects, each phase is the sum of its hops.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use entity::assertion::Observed;
use entity::event::CheckReport;
use entity::{FailureClass, Outcome, Timings, TlsDetails, Verdict};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use url::Url;

use crate::check::Check;
use crate::guard::{DenyList, Unreachable};

/// What the monitor sends in its `User-Agent` header.
pub const USER_AGENT: &str = concat!(
    "Pingpipe-Monitor/",
    env!("CARGO_PKG_VERSION"),
    " (availability probe)"
);

/// How long a connection attempt to one of several addresses of a name may take before the next
/// address is tried (longer than Linux's first SYN retransmission, 1 s, so one lost SYN does not
/// skip a working address).
const NEXT_ADDRESS_AFTER: Duration = Duration::from_secs(2);

/// How probes are made.
#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub timeout: Duration,
    pub max_redirects: usize,
    pub body_cap_bytes: usize,
    pub deny: Arc<DenyList>,
}

/// The outcome of one probe, when it ran, and what the check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeResult {
    pub start_time: DateTime<Utc>,
    pub duration_ms: i32,
    pub outcome: Outcome,
    pub verdict: Verdict,
    pub report: CheckReport,
}

/// Makes probes; cheap to share.
#[derive(Debug, Clone)]
pub struct Prober {
    settings: Arc<ProbeSettings>,
}

/// The five phases, in [`Timings`] order.
#[derive(Debug, Clone, Copy)]
enum Phase {
    Dns = 0,
    Connect = 1,
    Tls = 2,
    Ttfb = 3,
    Transfer = 4,
}

/// Phase times of one probe, on the probe's clock.
struct Trace {
    started: Instant,
    phases: [Option<u64>; 5],
    /// The final hop's session (each HTTPS hop replaces it, a plain one clears it).
    tls: Option<TlsDetails>,
}

impl Trace {
    fn new(started: Instant) -> Trace {
        Trace {
            started,
            phases: [None; 5],
            tls: None,
        }
    }

    /// Milliseconds from the probe's start to `at`, whole.
    fn offset(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.started).as_millis()).unwrap_or(u64::MAX)
    }

    /// Adds `from`..now to `phase`.
    fn record(&mut self, phase: Phase, from: Instant) {
        self.add(phase, from, Instant::now());
    }

    /// Adds `from`..`to` to `phase`, both ends cut to whole milliseconds of the probe's clock.
    fn add(&mut self, phase: Phase, from: Instant, to: Instant) {
        let ms = self.offset(to).saturating_sub(self.offset(from));
        let slot = &mut self.phases[phase as usize];
        *slot = Some(slot.unwrap_or(0) + ms);
    }

    fn timings(&self) -> Timings {
        let ms = |p: Phase| self.phases[p as usize].map(|v| i32::try_from(v).unwrap_or(i32::MAX));
        Timings {
            dns_ms: ms(Phase::Dns),
            connect_ms: ms(Phase::Connect),
            tls_ms: ms(Phase::Tls),
            ttfb_ms: ms(Phase::Ttfb),
            transfer_ms: ms(Phase::Transfer),
        }
    }
}

/// The final response as the assertions read it.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<Bytes>,
}

/// The connection task of one exchange; stopped when the exchange is over or abandoned.
struct Connection(tokio::task::JoinHandle<()>);

impl Drop for Connection {
    fn drop(&mut self) {
        self.0.abort();
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// The IP address of a URL whose host is an IP literal (those skip the resolver).
fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host() == b.host()
        && a.port_or_known_default() == b.port_or_known_default()
}

/// Whole days from now until `not_after` (negative once it passed), rounded down.
fn days_until(not_after: DateTime<Utc>) -> i64 {
    (not_after - Utc::now()).num_seconds().div_euclid(86_400)
}

/// The TLS version and leaf certificate of an established session.
fn tls_details(session: &rustls::ClientConnection) -> Option<TlsDetails> {
    let version = match session.protocol_version()? {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3".to_owned(),
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2".to_owned(),
        other => format!("{other:?}"),
    };
    let leaf = session.peer_certificates()?.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let not_after = Utc
        .timestamp_opt(cert.validity().not_after.timestamp(), 0)
        .single()?;
    Some(TlsDetails {
        tls_version: version,
        cert_not_after: not_after,
        cert_issuer: storable_name(&cert.issuer().to_string()),
        cert_subject: storable_name(&cert.subject().to_string()),
    })
}

/// Longest issuer or subject kept, in characters.
const MAX_NAME_CHARS: usize = 1024;

/// A distinguished name as the server sent it, made storable: NUL shown as U+FFFD, at most
/// [`MAX_NAME_CHARS`] characters (a hostile certificate can carry anything).
fn storable_name(name: &str) -> String {
    name.chars()
        .take(MAX_NAME_CHARS)
        .map(|c| if c == '\0' { '\u{FFFD}' } else { c })
        .collect()
}

impl Prober {
    pub fn new(settings: ProbeSettings) -> Prober {
        Prober {
            settings: Arc::new(settings),
        }
    }

    /// Probes `url` once as `check` says. Never fails: a probe without a response is a failure
    /// class, a response the check refuses is down with the failed assertions.
    pub async fn probe(&self, url: &str, check: &Check) -> ProbeResult {
        let start_time = Utc::now();
        let started = Instant::now();
        let mut trace = Trace::new(started);
        let answer = match &check.broken {
            Some(_) => Err(FailureClass::Other),
            None => {
                match tokio::time::timeout(
                    self.settings.timeout,
                    self.attempt(url, check, &mut trace),
                )
                .await
                {
                    Ok(answer) => answer,
                    Err(_elapsed) => Err(FailureClass::Timeout),
                }
            }
        };
        let duration_ms = trace.offset(Instant::now());
        let mut report = CheckReport {
            failures: Vec::new(),
            timings: trace.timings(),
            tls: trace.tls.take(),
        };
        let (outcome, verdict) = match answer {
            Err(class) => (Outcome::Failure(class), Verdict::Down),
            Ok(answer) => {
                let status = i32::from(answer.status);
                let passed = if check.assertions.is_empty() {
                    entity::is_up(Some(status))
                } else {
                    let secrets: Vec<&str> = check.secrets.iter().map(String::as_str).collect();
                    let observed = Observed {
                        secrets: &secrets,
                        status: Some(answer.status),
                        headers: &answer.headers,
                        body: answer.body.as_deref(),
                        response_time_ms: duration_ms,
                        cert_expires_in_days: report
                            .tls
                            .as_ref()
                            .map(|d| days_until(d.cert_not_after)),
                    };
                    report.failures = check
                        .assertions
                        .iter()
                        .enumerate()
                        .filter_map(|(i, a)| a.check(i, &observed).err())
                        .collect();
                    report.failures.is_empty()
                };
                let slow = check
                    .degraded_after_ms
                    .is_some_and(|limit| duration_ms > limit);
                let verdict = match (passed, slow) {
                    (false, _) => Verdict::Down,
                    (true, true) => Verdict::Degraded,
                    (true, false) => Verdict::Up,
                };
                (Outcome::Status(status), verdict)
            }
        };
        ProbeResult {
            start_time,
            duration_ms: i32::try_from(duration_ms).unwrap_or(i32::MAX),
            outcome,
            verdict,
            report,
        }
    }

    /// The request, its redirects and the final response.
    async fn attempt(
        &self,
        url: &str,
        check: &Check,
        trace: &mut Trace,
    ) -> Result<Answer, FailureClass> {
        let origin = Url::parse(url).map_err(|_| FailureClass::Other)?;
        let mut url = origin.clone();
        let mut method = check.method.clone();
        let mut body = check.body.clone();
        // A repeat is the same request again: POST → 303 → GET of the same URL is not a loop.
        let mut visited: HashSet<(Method, Url)> = HashSet::new();
        loop {
            if !matches!(url.scheme(), "http" | "https") {
                return Err(FailureClass::Other);
            }
            visited.insert((method.clone(), url.clone()));
            // The target's headers are secrets for its own origin only.
            let headers: &[_] = if same_origin(&url, &origin) {
                &check.headers
            } else {
                &[]
            };
            let (_connection, response) = self
                .exchange(&url, &method, body.clone(), headers, &check.tls, trace)
                .await?;
            let status = response.status();
            let location = response
                .headers()
                .get(header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| url.join(l).ok());
            if let (true, Some(next)) = (status.is_redirection(), location) {
                if visited.len() > self.settings.max_redirects {
                    return Err(FailureClass::RedirectLimit);
                }
                // RFC 9110 §15.4: 303 turns the request into a GET; so do 301 and 302 for a
                // POST, as every browser does. 307 and 308 repeat it as it was.
                let to_get = status == StatusCode::SEE_OTHER && method != Method::HEAD
                    || matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND)
                        && method == Method::POST;
                if to_get {
                    method = Method::GET;
                    body = None;
                }
                if visited.contains(&(method.clone(), next.clone())) {
                    return Err(FailureClass::RedirectLimit);
                }
                url = next;
                continue;
            }
            let headers = response
                .headers()
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = if check.need_body && method != Method::HEAD {
                Some(self.read_body(response.into_body(), trace).await?)
            } else {
                None
            };
            return Ok(Answer {
                status: status.as_u16(),
                headers,
                body,
            });
        }
    }

    /// Reads the body up to the cap.
    async fn read_body(
        &self,
        mut body: hyper::body::Incoming,
        trace: &mut Trace,
    ) -> Result<Bytes, FailureClass> {
        let from = Instant::now();
        let cap = self.settings.body_cap_bytes;
        let mut read: Vec<u8> = Vec::new();
        while read.len() < cap {
            match body.frame().await {
                None => break,
                Some(Err(_)) => {
                    trace.record(Phase::Transfer, from);
                    return Err(FailureClass::Body);
                }
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        let room = cap - read.len();
                        read.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
            }
        }
        trace.record(Phase::Transfer, from);
        Ok(Bytes::from(read))
    }

    /// One request on a new connection: resolve, connect, TLS, send, and the response's head.
    async fn exchange(
        &self,
        url: &Url,
        method: &Method,
        body: Option<Bytes>,
        extra_headers: &[(HeaderName, HeaderValue)],
        tls: &Arc<rustls::ClientConfig>,
        trace: &mut Trace,
    ) -> Result<(Connection, hyper::Response<hyper::body::Incoming>), FailureClass> {
        let host = url.host_str().ok_or(FailureClass::Other)?;
        let port = url.port_or_known_default().ok_or(FailureClass::Other)?;
        let addrs = match literal_ip(url) {
            Some(ip) if self.settings.deny.denies(ip) => return Err(FailureClass::Denied),
            Some(ip) => vec![SocketAddr::new(ip, port)],
            None => {
                let from = Instant::now();
                let resolved = self.settings.deny.resolve(host, port).await;
                trace.record(Phase::Dns, from);
                resolved.map_err(|e| match e {
                    Unreachable::Dns(_) => FailureClass::Dns,
                    Unreachable::Denied(_) => FailureClass::Denied,
                })?
            }
        };

        let from = Instant::now();
        let mut tcp = None;
        let mut timed_out = false;
        let count = addrs.len();
        for (i, addr) in addrs.into_iter().enumerate() {
            // An address that does not answer (a blackholed IPv6 route, say) gets two seconds
            // before the next one is tried; the last one has what is left of the timeout.
            let attempt = if i + 1 < count {
                match tokio::time::timeout(NEXT_ADDRESS_AFTER, TcpStream::connect(addr)).await {
                    Ok(attempt) => attempt,
                    // Not the probe's timeout: what the last address says decides the class.
                    Err(_) => continue,
                }
            } else {
                TcpStream::connect(addr).await
            };
            match attempt {
                Ok(stream) => {
                    tcp = Some(stream);
                    break;
                }
                Err(e) => timed_out = e.kind() == std::io::ErrorKind::TimedOut,
            }
        }
        trace.record(Phase::Connect, from);
        let tcp = match tcp {
            Some(tcp) => tcp,
            None if timed_out => return Err(FailureClass::Timeout),
            None => return Err(FailureClass::Connect),
        };
        // Small requests: send each as soon as it is written.
        let _ = tcp.set_nodelay(true);

        let stream: Box<dyn Stream> = if url.scheme() == "https" {
            let name = match literal_ip(url) {
                Some(ip) => ServerName::IpAddress(ip.into()),
                None => ServerName::try_from(host.to_owned()).map_err(|_| FailureClass::Other)?,
            };
            let from = Instant::now();
            let session = tokio_rustls::TlsConnector::from(tls.clone())
                .connect(name, tcp)
                .await;
            trace.record(Phase::Tls, from);
            let session = session.map_err(|e| {
                if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
                    FailureClass::Tls
                } else {
                    FailureClass::Connect
                }
            })?;
            trace.tls = tls_details(session.get_ref().1);
            Box::new(session)
        } else {
            trace.tls = None;
            Box::new(tcp)
        };

        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| FailureClass::Connect)?;
        let connection = Connection(tokio::spawn(async move {
            // Its errors surface through `send_request` and the body.
            let _ = connection.await;
        }));

        let mut request = Request::builder()
            .method(method.clone())
            .uri(&url[url::Position::BeforePath..url::Position::AfterQuery]);
        let host_header = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        let headers = request.headers_mut().ok_or(FailureClass::Other)?;
        headers.insert(
            header::HOST,
            HeaderValue::from_str(&host_header).map_err(|_| FailureClass::Other)?,
        );
        headers.insert(header::USER_AGENT, HeaderValue::from_static(USER_AGENT));
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        for (name, value) in extra_headers {
            headers.insert(name.clone(), value.clone());
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|_| FailureClass::Other)?;

        let from = Instant::now();
        let response = sender.send_request(request).await;
        trace.record(Phase::Ttfb, from);
        let response = response.map_err(|e| {
            if e.is_timeout() {
                FailureClass::Timeout
            } else if e.is_parse() {
                // Something answered, but not HTTP/1.1.
                FailureClass::Other
            } else {
                // Closed or reset before a response.
                FailureClass::Connect
            }
        })?;
        Ok((connection, response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_ips_are_recognised_in_both_families() {
        let ip = |u: &str| literal_ip(&Url::parse(u).unwrap());
        assert_eq!(
            ip("http://127.0.0.1:8080/x"),
            Some("127.0.0.1".parse().unwrap())
        );
        assert_eq!(ip("http://[::1]:8080/x"), Some("::1".parse().unwrap()));
        assert_eq!(ip("http://localhost/"), None);
    }

    #[test]
    fn certificate_names_are_made_storable() {
        assert_eq!(storable_name("CN=a\0b"), "CN=a\u{FFFD}b");
        assert_eq!(storable_name(&"x".repeat(5000)).len(), MAX_NAME_CHARS);
    }

    #[test]
    fn phases_cut_to_whole_milliseconds_never_add_up_to_more_than_the_total() {
        let started = Instant::now();
        let at = |us: u64| started + Duration::from_micros(us);
        let mut trace = Trace::new(started);
        // 0.9 → 2.6 → 5.4 → 5.9 ms: cut to 0, 2, 5, 5.
        trace.add(Phase::Connect, at(900), at(2_600));
        trace.add(Phase::Ttfb, at(2_600), at(5_400));
        trace.add(Phase::Ttfb, at(5_400), at(5_900));
        let t = trace.timings();
        assert_eq!(
            (t.dns_ms, t.connect_ms, t.ttfb_ms, t.transfer_ms),
            (None, Some(2), Some(3), None)
        );
        assert!(t.connect_ms.unwrap() + t.ttfb_ms.unwrap() <= trace.offset(at(5_900)) as i32);
    }
}
