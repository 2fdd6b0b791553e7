//! Kafka clients as every binary makes them: the brokers and security settings of
//! [`KafkaArgs`], and a check at start that the brokers accept this client (TLS, SASL, ACLs), so
//! that a refusal stops the binary with the brokers' reason instead of a retry loop.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

use crate::config::{KafkaArgs, KafkaConfigError};

/// The librdkafka properties every client of a binary starts from. Cheap to clone; its `Debug`
/// names the brokers and the protocol, never a password.
#[derive(Clone)]
pub struct ClientSettings {
    properties: Arc<Vec<(String, String)>>,
}

impl ClientSettings {
    /// Checked settings (see [`KafkaArgs::properties`]), every property one librdkafka knows
    /// with a value it takes (an error names the property, never its value).
    pub fn new(args: &KafkaArgs) -> Result<Self, KafkaConfigError> {
        if args.kafka_security_protocol == crate::config::SecurityProtocol::SaslPlaintext {
            tracing::warn!(
                "KAFKA_SECURITY_PROTOCOL is sasl_plaintext: the SASL exchange (with PLAIN, the \
                 password itself) and every record travel unencrypted; use sasl_ssl beyond a \
                 trusted network."
            );
        }
        Self::checked(args.properties()?)
    }

    fn checked(properties: Vec<(String, String)>) -> Result<Self, KafkaConfigError> {
        let settings = Self::from_properties(properties);
        if let Err(e) = settings.client_config().create_native_config() {
            let message = match e {
                KafkaError::ClientConfig(_, description, name, value) => {
                    let description = if value.is_empty() {
                        description
                    } else {
                        description.replace(&value, "***")
                    };
                    format!("librdkafka refuses {name}: {description}")
                }
                other => other.to_string(),
            };
            return Err(KafkaConfigError(message));
        }
        Ok(settings)
    }

    /// Plaintext to `bootstrap_servers`, nothing else (tests and benchmarks).
    pub fn plaintext(bootstrap_servers: &str) -> Self {
        Self::from_properties(vec![(
            "bootstrap.servers".to_owned(),
            bootstrap_servers.to_owned(),
        )])
    }

    fn from_properties(properties: Vec<(String, String)>) -> Self {
        Self {
            properties: Arc::new(properties),
        }
    }

    /// A new client configuration holding these properties; what a caller sets after this
    /// overrides them. No client creates a topic by naming it (a producer's default would make
    /// a missing results topic with the brokers' default partitions).
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("allow.auto.create.topics", "false");
        for (name, value) in self.properties.iter() {
            config.set(name, value);
        }
        config
    }

    fn get(&self, name: &str) -> &str {
        self.properties
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    pub fn bootstrap_servers(&self) -> &str {
        self.get("bootstrap.servers")
    }
}

impl std::fmt::Debug for ClientSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let protocol = match self.get("security.protocol") {
            "" => "plaintext",
            p => p,
        };
        f.debug_struct("ClientSettings")
            .field("bootstrap.servers", &self.bootstrap_servers())
            .field("security.protocol", &protocol)
            .finish_non_exhaustive()
    }
}

/// The brokers would not take this client.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(transparent)]
    Config(#[from] KafkaConfigError),
    #[error("cannot create a Kafka client: {0}")]
    Create(KafkaError),
    #[error("the Kafka brokers at {servers} refuse this client: {reason}{hint}")]
    Refused {
        servers: String,
        reason: String,
        hint: &'static str,
    },
}

/// TLS alerts and verdicts that say the peer or this client refuses the other's certificate or
/// settings: they do not go away by retrying. A connection closed or reset mid-handshake (a
/// broker restarting, a proxy without a backend) says none of these.
const TLS_REFUSALS: &[&str] = &[
    "certificate verify failed",
    "alert bad certificate",
    "alert certificate required",
    "alert unknown ca",
    "alert certificate expired",
    "alert certificate revoked",
    "alert certificate unknown",
    "alert unsupported certificate",
    "alert access denied",
    "alert handshake failure",
    "alert protocol version",
];

fn tls_refusal(reason: &str) -> bool {
    TLS_REFUSALS.iter().any(|r| reason.contains(r))
}

/// The brokers' ACLs refuse a topic, a group, the cluster or a transactional id: no retry
/// changes that.
pub fn acl_refusal(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode as C;
    matches!(
        code,
        C::TopicAuthorizationFailed
            | C::GroupAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::TransactionalIdAuthorizationFailed
    )
}

/// What a refusal usually means, for the error an operator reads; `None` when `code` and
/// `reason` are not a refusal (a broker that is down or restarting, a connection reset, say).
pub fn refusal_hint(code: RDKafkaErrorCode, reason: &str) -> Option<&'static str> {
    use RDKafkaErrorCode as C;
    match code {
        C::Authentication | C::SaslAuthenticationFailed => Some(
            " (SASL: check KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD and KAFKA_SASL_MECHANISM \
             against the listener's users and mechanisms)",
        ),
        _ if acl_refusal(code) => Some(
            " (the brokers' ACLs do not allow it: see \"Kafka security and ACLs\" in the README \
             for what each binary needs)",
        ),
        _ if reason.contains("certificate verify failed") => Some(
            " (TLS: the brokers' certificate is not signed by KAFKA_SSL_CA_LOCATION or does not \
             name the host they are reached by)",
        ),
        // With TLS 1.3 a client finishes its handshake before the broker checks the client's
        // certificate; the broker's refusal then arrives as an alert on the first request.
        C::SSL | C::BrokerTransportFailure | C::AllBrokersDown if tls_refusal(reason) => Some(
            " (TLS: the broker refused this client's certificate, or the listener requires one \
             and KAFKA_SSL_CERTIFICATE_LOCATION/KAFKA_SSL_KEY_LOCATION are not set)",
        ),
        _ => None,
    }
}

/// The hint when a consumer's poll error says the ACLs keep it from its group or its topic,
/// which waiting does not change; `None` for any other error. Only those codes: librdkafka
/// reports a connection lost during the SASL handshake (a broker restarting) as an
/// authentication error, and bad credentials are refused at start by [`check_access`] anyway.
pub fn consumer_refusal(error: &KafkaError) -> Option<&'static str> {
    use RDKafkaErrorCode as C;
    match error.rdkafka_error_code()? {
        code @ (C::GroupAuthorizationFailed | C::TopicAuthorizationFailed) => {
            refusal_hint(code, &error.to_string())
        }
        _ => None,
    }
}

/// Hears librdkafka's global errors and keeps the first refusal.
#[derive(Default)]
struct Watch {
    refusal: Mutex<Option<(RDKafkaErrorCode, String)>>,
}

/// The refusal a librdkafka log line reports, if any: connection failures are logged every
/// time, while librdkafka raises the same error as an error event only now and then.
fn refusal_in_log(message: &str) -> Option<RDKafkaErrorCode> {
    if message.contains("SASL authentication error") {
        Some(RDKafkaErrorCode::Authentication)
    } else if tls_refusal(message) {
        Some(RDKafkaErrorCode::SSL)
    } else {
        None
    }
}

impl Watch {
    fn note(&self, code: RDKafkaErrorCode, reason: &str) {
        if let Ok(mut refusal) = self.refusal.lock() {
            refusal.get_or_insert((code, reason.to_owned()));
        }
    }
}

impl ClientContext for Watch {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        use RDKafkaLogLevel as L;
        let severe = matches!(level, L::Emerg | L::Alert | L::Critical | L::Error);
        if severe
            && fac == "FAIL"
            && let Some(code) = refusal_in_log(message)
        {
            // "[thrd:ssl://host:port/bootstrap]: ssl://host:port/bootstrap: why": once is enough.
            let reason = match message.split_once("]: ") {
                Some((thread, rest)) if thread.starts_with("[thrd:") => rest,
                _ => message,
            };
            self.note(code, reason);
        }
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => {
                tracing::error!(target: "librdkafka", "librdkafka: {fac} {message}")
            }
            L::Warning => tracing::warn!(target: "librdkafka", "librdkafka: {fac} {message}"),
            L::Notice | L::Info => {
                tracing::info!(target: "librdkafka", "librdkafka: {fac} {message}")
            }
            L::Debug => tracing::debug!(target: "librdkafka", "librdkafka: {fac} {message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        match code {
            Some(code) if refusal_hint(code, reason).is_some() => self.note(code, reason),
            _ => tracing::warn!(error = %error, ?code, reason, "Kafka is not reachable yet."),
        }
    }
}

impl ProducerContext for Watch {
    type DeliveryOpaque = ();

    fn delivery(&self, _: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

/// Asks the brokers for the metadata of `topics` until they answer, which proves that TLS and
/// SASL succeed and that this client may see the topics; keeps trying while they cannot be
/// reached, until `stop` says so (then `Ok`). Blocks its thread: run it off the async threads.
/// A topic that does not exist is not a refusal (a monitor may create its shards topic).
pub fn check_access(
    settings: &ClientSettings,
    topics: &[&str],
    stop: impl Fn() -> bool,
) -> Result<(), AccessError> {
    let refused = |code: RDKafkaErrorCode, reason: String| AccessError::Refused {
        servers: settings.bootstrap_servers().to_owned(),
        hint: refusal_hint(code, &reason).unwrap_or(""),
        reason,
    };
    let producer: BaseProducer<Watch> = settings
        .client_config()
        .create_with_context(Watch::default())
        .map_err(AccessError::Create)?;
    let mut pending = topics.iter().copied().peekable();
    while !stop() {
        let topic = pending.peek().copied();
        let answer = producer
            .client()
            .fetch_metadata(topic, Duration::from_secs(2));
        // Serves the error callback.
        producer.poll(Duration::ZERO);
        let heard = producer
            .context()
            .refusal
            .lock()
            .ok()
            .and_then(|r| r.clone());
        if let Some((code, reason)) = heard {
            return Err(refused(code, reason));
        }
        let Ok(metadata) = answer else { continue };
        for t in metadata.topics() {
            if let Some(error) = t.error()
                && RDKafkaErrorCode::from(error) == RDKafkaErrorCode::TopicAuthorizationFailed
            {
                return Err(refused(
                    RDKafkaErrorCode::TopicAuthorizationFailed,
                    format!("not allowed to describe topic {}", t.name()),
                ));
            }
        }
        if pending.next().is_none() || pending.peek().is_none() {
            return Ok(());
        }
    }
    Ok(())
}

/// [`check_access`] on the blocking pool.
pub async fn check_access_async(
    settings: ClientSettings,
    topics: Vec<String>,
    stop: impl Fn() -> bool + Send + 'static,
) -> Result<(), AccessError> {
    tokio::task::spawn_blocking(move || {
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        check_access(&settings, &topics, stop)
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_show_brokers_and_protocol_but_no_password() {
        let settings = ClientSettings::from_properties(vec![
            ("bootstrap.servers".into(), "10.0.0.1:9093".into()),
            ("security.protocol".into(), "sasl_ssl".into()),
            ("sasl.password".into(), "hunter22".into()),
        ]);
        let shown = format!("{settings:?}");
        assert!(
            shown.contains("10.0.0.1:9093") && shown.contains("sasl_ssl"),
            "{shown}"
        );
        assert!(!shown.contains("hunter22"), "{shown}");
    }

    #[test]
    fn properties_librdkafka_refuses_are_named_without_their_values() {
        for (name, value) in [
            ("no.such.property", "hunter22"),
            ("socket.timeout.ms", "hunter22"),
        ] {
            let error = ClientSettings::checked(vec![(name.into(), value.into())])
                .expect_err("refused")
                .to_string();
            assert!(error.contains(name), "{error}");
            assert!(!error.contains("hunter22"), "{error}");
        }
        assert!(ClientSettings::checked(vec![("socket.timeout.ms".into(), "5000".into())]).is_ok());
    }

    #[test]
    fn connection_failures_are_told_from_refusals() {
        let refusals = [
            "SASL authentication error: Authentication failed during authentication due to \
             invalid credentials with SASL mechanism SCRAM-SHA-512",
            "SSL handshake failed: error:0A000086:SSL routines::certificate verify failed",
            "Receive failed: error:0A000412:SSL routines::sslv3 alert bad certificate",
            "Receive failed: error:0A00045C:SSL routines::tlsv13 alert certificate required",
        ];
        for message in refusals {
            assert!(refusal_in_log(message).is_some(), "{message}");
        }
        let outages = [
            "Connect to ipv4#127.0.0.1:9093 failed: Connection refused",
            "SSL handshake failed: Disconnected: connection closed by peer: connecting to a \
             PLAINTEXT broker listener? (after 2ms in state SSL_HANDSHAKE)",
            "SSL transport error: Connection reset by peer",
            "Disconnected (after 10ms in state UP)",
            "Receive failed: Connection reset by peer",
        ];
        for message in outages {
            assert_eq!(refusal_in_log(message), None, "{message}");
        }
    }
}
