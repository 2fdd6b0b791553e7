//! Configuration groups that several binaries share, flattened into each binary's own `clap`
//! struct so the same option has the same name, variable and help everywhere.

use std::path::PathBuf;

use clap::Args;

/// Where PostgreSQL is.
#[derive(Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL connection URL, e.g. postgres://user:password@127.0.0.1:5432/pingpipe.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: String,
}

/// The URL with its password hidden: a configuration printed with `{:?}` shows no secret.
impl std::fmt::Debug for DatabaseArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseArgs")
            .field("database_url", &redacted_database_url(&self.database_url))
            .finish()
    }
}

/// `url` as it may be shown: the password replaced by `***`, and so are the values of
/// `password` and `sslkey` parameters; a text that is not a URL is not shown at all.
pub fn redacted_database_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "(DATABASE_URL, not shown: not a URL)".to_owned();
    };
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| {
            let secret = matches!(k.as_ref(), "password" | "sslkey" | "ssl-key");
            (
                k.into_owned(),
                if secret {
                    "***".to_owned()
                } else {
                    v.into_owned()
                },
            )
        })
        .collect();
    if !pairs.is_empty() {
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string()
}

/// Where Kafka is, and the topic the results travel on.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, comma-separated host:port.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "127.0.0.1:9092"
    )]
    pub kafka_bootstrap_servers: String,

    /// Topic of the probe results (the monitor publishes to it, the ingest worker reads it).
    #[arg(long, env = "PINGPIPE_RESULTS_TOPIC", default_value = crate::topics::RESULTS_TOPIC)]
    pub topic: String,

    /// How to talk to the brokers: plaintext, ssl (TLS, with a client certificate for mutual
    /// TLS), sasl_ssl (TLS and a SASL user) or sasl_plaintext.
    #[arg(
        long,
        env = "KAFKA_SECURITY_PROTOCOL",
        value_enum,
        ignore_case = true,
        default_value = "plaintext"
    )]
    pub kafka_security_protocol: SecurityProtocol,

    /// PEM file of the CA certificates that sign the brokers' certificates (the system's trust
    /// store when unset). The brokers' host names are checked against their certificates.
    #[arg(long, env = "KAFKA_SSL_CA_LOCATION")]
    pub kafka_ssl_ca_location: Option<PathBuf>,

    /// PEM file of this client's certificate, for brokers that require client certificates.
    #[arg(long, env = "KAFKA_SSL_CERTIFICATE_LOCATION")]
    pub kafka_ssl_certificate_location: Option<PathBuf>,

    /// PEM file of the private key of that certificate.
    #[arg(long, env = "KAFKA_SSL_KEY_LOCATION")]
    pub kafka_ssl_key_location: Option<PathBuf>,

    /// Password of that private key, if it is encrypted.
    #[arg(long, env = "KAFKA_SSL_KEY_PASSWORD", hide_env_values = true)]
    pub kafka_ssl_key_password: Option<Secret>,

    /// SASL mechanism: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN.
    #[arg(
        long,
        env = "KAFKA_SASL_MECHANISM",
        value_enum,
        ignore_case = true,
        default_value = "SCRAM-SHA-512"
    )]
    pub kafka_sasl_mechanism: SaslMechanism,

    /// SASL user name (sasl_ssl and sasl_plaintext).
    #[arg(long, env = "KAFKA_SASL_USERNAME")]
    pub kafka_sasl_username: Option<String>,

    /// SASL password. Prefer the variable to the flag: a flag shows in the process list.
    #[arg(long, env = "KAFKA_SASL_PASSWORD", hide_env_values = true)]
    pub kafka_sasl_password: Option<Secret>,
}

/// `security.protocol` as librdkafka names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SecurityProtocol {
    #[value(name = "plaintext")]
    Plaintext,
    #[value(name = "ssl")]
    Ssl,
    #[value(name = "sasl_plaintext")]
    SaslPlaintext,
    #[value(name = "sasl_ssl")]
    SaslSsl,
}

impl SecurityProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plaintext => "plaintext",
            Self::Ssl => "ssl",
            Self::SaslPlaintext => "sasl_plaintext",
            Self::SaslSsl => "sasl_ssl",
        }
    }

    fn tls(self) -> bool {
        matches!(self, Self::Ssl | Self::SaslSsl)
    }

    fn sasl(self) -> bool {
        matches!(self, Self::SaslPlaintext | Self::SaslSsl)
    }
}

/// `sasl.mechanism` as librdkafka names it (GSSAPI and OAUTHBEARER are not built in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SaslMechanism {
    #[value(name = "SCRAM-SHA-512")]
    ScramSha512,
    #[value(name = "SCRAM-SHA-256")]
    ScramSha256,
    #[value(name = "PLAIN")]
    Plain,
}

impl SaslMechanism {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ScramSha512 => "SCRAM-SHA-512",
            Self::ScramSha256 => "SCRAM-SHA-256",
            Self::Plain => "PLAIN",
        }
    }
}

/// A password: what it is never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

/// Prefix of the variables passed to librdkafka as they are: `KAFKA_CONFIG_CLIENT_DNS_LOOKUP`
/// sets `client.dns.lookup`. They never override what a binary sets itself.
pub const PASS_THROUGH_PREFIX: &str = "KAFKA_CONFIG_";

/// librdkafka properties a pass-through variable may not set, and why: those with a variable of
/// their own (and their aliases), those the binaries set for their guarantees (a result's
/// partition, transactions, read_committed, positions kept in PostgreSQL), and those that would
/// turn off a check of the brokers' certificates.
const NOT_PASSED_THROUGH: &[(&str, &str)] = &[
    ("bootstrap.servers", "has a variable of its own"),
    (
        "metadata.broker.list",
        "has a variable of its own (KAFKA_BOOTSTRAP_SERVERS)",
    ),
    ("security.protocol", "has a variable of its own"),
    ("ssl.ca.location", "has a variable of its own"),
    ("ssl.certificate.location", "has a variable of its own"),
    ("ssl.key.location", "has a variable of its own"),
    ("ssl.key.password", "has a variable of its own"),
    ("sasl.mechanism", "has a variable of its own"),
    (
        "sasl.mechanisms",
        "has a variable of its own (KAFKA_SASL_MECHANISM)",
    ),
    ("sasl.username", "has a variable of its own"),
    ("sasl.password", "has a variable of its own"),
    (
        "enable.ssl.certificate.verification",
        "would stop checking the brokers' certificates",
    ),
    (
        "ssl.endpoint.identification.algorithm",
        "would stop checking the brokers' host names",
    ),
    ("group.id", "is set by the binaries"),
    ("group.instance.id", "is set by the binaries"),
    ("group.protocol", "is set by the binaries"),
    ("partition.assignment.strategy", "is set by the binaries"),
    ("isolation.level", "is set by the binaries"),
    ("enable.auto.commit", "is set by the binaries"),
    ("auto.commit.enable", "is set by the binaries"),
    ("enable.auto.offset.store", "is set by the binaries"),
    ("auto.offset.reset", "is set by the binaries"),
    ("transactional.id", "is set by the binaries"),
    ("transaction.timeout.ms", "is set by the binaries"),
    (
        "enable.idempotence",
        "is set by the binaries (transactions)",
    ),
    ("acks", "is set by the binaries (transactions)"),
    (
        "request.required.acks",
        "is set by the binaries (transactions)",
    ),
    (
        "partitioner",
        "decides a result's partition, which every monitor must agree on",
    ),
    ("allow.auto.create.topics", "is set by the binaries"),
    // Set by a binary after the pass-through, so a value given here would be overridden
    // without a word: refused instead.
    (
        "session.timeout.ms",
        "has variables of its own (PINGPIPE_MONITOR_SESSION_TIMEOUT, \
         PINGPIPE_INGEST_SESSION_TIMEOUT)",
    ),
    (
        "heartbeat.interval.ms",
        "has a variable of its own (PINGPIPE_MONITOR_HEARTBEAT_INTERVAL)",
    ),
    ("linger.ms", "is set by the binaries"),
    (
        "queue.buffering.max.ms",
        "is set by the binaries (linger.ms)",
    ),
    ("compression.type", "is set by the binaries"),
    (
        "compression.codec",
        "is set by the binaries (compression.type)",
    ),
    ("retry.backoff.max.ms", "is set by the binaries"),
    ("queued.max.messages.kbytes", "is set by the binaries"),
    ("queued.min.messages", "is set by the binaries"),
    ("fetch.queue.backoff.ms", "is set by the binaries"),
    ("fetch.wait.max.ms", "is set by the binaries"),
];

/// Kafka settings that cannot work together, or files that cannot be read: refused at start.
#[derive(Debug, thiserror::Error)]
#[error("Kafka configuration: {0}")]
pub struct KafkaConfigError(pub String);

impl KafkaArgs {
    /// The librdkafka properties these settings stand for, checked: TLS settings need a TLS
    /// protocol, SASL ones a SASL protocol, a certificate needs its key, SASL needs a user and
    /// password, and every file must be readable now (librdkafka's own message for a missing
    /// file is less plain). Values of secrets are in the result but never in an error.
    pub fn properties(&self) -> Result<Vec<(String, String)>, KafkaConfigError> {
        // vars() would panic on a variable that is not UTF-8, however unrelated.
        let vars = std::env::vars_os().filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            let value = value.into_string().ok()?;
            Some((name, value))
        });
        self.properties_with(vars)
    }

    /// [`properties`](Self::properties), with the pass-through variables taken from `vars`.
    pub fn properties_with(
        &self,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Vec<(String, String)>, KafkaConfigError> {
        let refuse = |m: String| Err(KafkaConfigError(m));
        let protocol = self.kafka_security_protocol;
        let files = [
            (
                "KAFKA_SSL_CA_LOCATION",
                "ssl.ca.location",
                &self.kafka_ssl_ca_location,
            ),
            (
                "KAFKA_SSL_CERTIFICATE_LOCATION",
                "ssl.certificate.location",
                &self.kafka_ssl_certificate_location,
            ),
            (
                "KAFKA_SSL_KEY_LOCATION",
                "ssl.key.location",
                &self.kafka_ssl_key_location,
            ),
        ];
        if !protocol.tls() {
            let set: Vec<&str> = files
                .iter()
                .filter(|(_, _, v)| v.is_some())
                .map(|(name, _, _)| *name)
                .chain(
                    self.kafka_ssl_key_password
                        .as_ref()
                        .map(|_| "KAFKA_SSL_KEY_PASSWORD"),
                )
                .collect();
            if !set.is_empty() {
                return refuse(format!(
                    "{} set but KAFKA_SECURITY_PROTOCOL is {}: use ssl or sasl_ssl, or unset them",
                    set.join(", "),
                    protocol.as_str()
                ));
            }
        }
        if !protocol.sasl()
            && (self.kafka_sasl_username.is_some() || self.kafka_sasl_password.is_some())
        {
            return refuse(format!(
                "KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD set but KAFKA_SECURITY_PROTOCOL is {}: \
                 use sasl_ssl, or unset them",
                protocol.as_str()
            ));
        }
        if self.kafka_ssl_certificate_location.is_some() != self.kafka_ssl_key_location.is_some() {
            return refuse(
                "KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION go together: set both \
                 or neither"
                    .into(),
            );
        }
        if self.kafka_ssl_key_password.is_some() && self.kafka_ssl_key_location.is_none() {
            return refuse("KAFKA_SSL_KEY_PASSWORD set without KAFKA_SSL_KEY_LOCATION".into());
        }
        if protocol.sasl()
            && (self.kafka_sasl_username.is_none() || self.kafka_sasl_password.is_none())
        {
            return refuse(format!(
                "KAFKA_SECURITY_PROTOCOL={} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD",
                protocol.as_str()
            ));
        }

        let mut props = vec![
            (
                "bootstrap.servers".to_owned(),
                self.kafka_bootstrap_servers.clone(),
            ),
            ("security.protocol".to_owned(), protocol.as_str().to_owned()),
        ];
        for (name, property, path) in files {
            let Some(path) = path else { continue };
            if let Err(e) = std::fs::File::open(path) {
                return refuse(format!("cannot read {name} {}: {e}", path.display()));
            }
            props.push((property.to_owned(), path.display().to_string()));
        }
        if let Some(password) = &self.kafka_ssl_key_password {
            props.push(("ssl.key.password".into(), password.expose().to_owned()));
        }
        if protocol.sasl() {
            props.push((
                "sasl.mechanism".into(),
                self.kafka_sasl_mechanism.as_str().into(),
            ));
            if let (Some(user), Some(password)) =
                (&self.kafka_sasl_username, &self.kafka_sasl_password)
            {
                props.push(("sasl.username".into(), user.clone()));
                props.push(("sasl.password".into(), password.expose().to_owned()));
            }
        }
        let mut extra: Vec<(String, String)> = vars
            .into_iter()
            .filter_map(|(name, value)| {
                let rest = name.strip_prefix(PASS_THROUGH_PREFIX)?;
                Some((rest.to_ascii_lowercase().replace('_', "."), value))
            })
            .filter(|(property, _)| !property.is_empty())
            .collect();
        extra.sort();
        for (property, value) in extra {
            if let Some((_, why)) = NOT_PASSED_THROUGH.iter().find(|(p, _)| *p == property) {
                return refuse(format!(
                    "{PASS_THROUGH_PREFIX}{} sets {property}, which {why}",
                    property.to_ascii_uppercase().replace('.', "_")
                ));
            }
            props.push((property, value));
        }
        Ok(props)
    }
}

/// The thresholds of targets that have none of their own (#13).
#[derive(Debug, Clone, Copy, Args)]
pub struct StateArgs {
    /// Consecutive failing results before a target is DOWN (an incident opens), or consecutive
    /// results that are not up before it is DEGRADED; 1 to 100.
    #[arg(
        long,
        env = "PINGPIPE_FAILURES_BEFORE_DOWN",
        default_value_t = 3,
        value_parser = clap::value_parser!(u32).range(1..=100)
    )]
    pub failures_before_down: u32,

    /// Consecutive passing results before a DOWN or DEGRADED target is UP again; 1 to 100.
    #[arg(
        long,
        env = "PINGPIPE_SUCCESSES_BEFORE_UP",
        default_value_t = 2,
        value_parser = clap::value_parser!(u32).range(1..=100)
    )]
    pub successes_before_up: u32,
}

impl StateArgs {
    pub fn thresholds(&self) -> crate::state::Thresholds {
        crate::state::Thresholds {
            failures_before_down: self.failures_before_down,
            successes_before_up: self.successes_before_up,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        kafka: KafkaArgs,
    }

    #[test]
    fn a_database_url_printed_with_debug_shows_no_password() {
        let args = DatabaseArgs {
            database_url: "postgres://app:hunter2secret@db.internal:5432/pingpipe?sslmode=require"
                .to_owned(),
        };
        let shown = format!("{args:?}");
        assert!(!shown.contains("hunter2secret"), "{shown}");
        assert!(
            shown.contains("app:***@db.internal:5432/pingpipe"),
            "{shown}"
        );
    }

    fn args(flags: &[&str]) -> KafkaArgs {
        let mut argv = vec!["test"];
        argv.extend_from_slice(flags);
        Cli::try_parse_from(argv).expect("flags parse").kafka
    }

    fn properties(flags: &[&str]) -> Result<Vec<(String, String)>, KafkaConfigError> {
        args(flags).properties_with(Vec::new())
    }

    fn value<'a>(props: &'a [(String, String)], name: &str) -> Option<&'a str> {
        props
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A file that exists, for the location settings.
    fn existing() -> String {
        std::env::current_exe()
            .expect("test binary path")
            .display()
            .to_string()
    }

    #[test]
    fn plaintext_by_default_sets_only_the_brokers() {
        let props = properties(&[]).expect("valid");
        assert_eq!(value(&props, "bootstrap.servers"), Some("127.0.0.1:9092"));
        assert_eq!(value(&props, "security.protocol"), Some("plaintext"));
        assert_eq!(props.len(), 2, "{props:?}");
    }

    #[test]
    fn mutual_tls_and_scram_become_librdkafka_properties() {
        let file = existing();
        let props = properties(&[
            "--kafka-security-protocol",
            "SSL",
            "--kafka-ssl-ca-location",
            &file,
            "--kafka-ssl-certificate-location",
            &file,
            "--kafka-ssl-key-location",
            &file,
        ])
        .expect("valid");
        assert_eq!(value(&props, "security.protocol"), Some("ssl"));
        assert_eq!(value(&props, "ssl.ca.location"), Some(file.as_str()));
        assert_eq!(value(&props, "ssl.key.location"), Some(file.as_str()));
        assert_eq!(value(&props, "sasl.mechanism"), None);

        let props = properties(&[
            "--kafka-security-protocol",
            "sasl_ssl",
            "--kafka-sasl-username",
            "monitor",
            "--kafka-sasl-password",
            "s3cret",
        ])
        .expect("valid");
        assert_eq!(value(&props, "security.protocol"), Some("sasl_ssl"));
        assert_eq!(value(&props, "sasl.mechanism"), Some("SCRAM-SHA-512"));
        assert_eq!(value(&props, "sasl.username"), Some("monitor"));
        assert_eq!(value(&props, "sasl.password"), Some("s3cret"));
    }

    #[test]
    fn settings_that_cannot_work_are_refused_by_name_without_secrets() {
        let file = existing();
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (
                vec!["--kafka-ssl-ca-location", &file],
                "KAFKA_SSL_CA_LOCATION set but",
            ),
            (
                vec![
                    "--kafka-sasl-username",
                    "u",
                    "--kafka-sasl-password",
                    "hunter22",
                ],
                "KAFKA_SASL_USERNAME/KAFKA_SASL_PASSWORD set but",
            ),
            (
                vec![
                    "--kafka-security-protocol",
                    "sasl_ssl",
                    "--kafka-sasl-username",
                    "u",
                ],
                "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD",
            ),
            (
                vec![
                    "--kafka-security-protocol",
                    "ssl",
                    "--kafka-ssl-certificate-location",
                    &file,
                ],
                "go together",
            ),
            (
                vec![
                    "--kafka-security-protocol",
                    "ssl",
                    "--kafka-ssl-key-password",
                    "hunter22",
                ],
                "KAFKA_SSL_KEY_PASSWORD set without KAFKA_SSL_KEY_LOCATION",
            ),
            (
                vec![
                    "--kafka-security-protocol",
                    "ssl",
                    "--kafka-ssl-ca-location",
                    "/nonexistent/ca.pem",
                ],
                "cannot read KAFKA_SSL_CA_LOCATION /nonexistent/ca.pem",
            ),
        ];
        for (flags, expected) in cases {
            let error = properties(&flags).expect_err("refused").to_string();
            assert!(error.contains(expected), "{flags:?}: {error}");
            assert!(!error.contains("hunter22"), "{flags:?}: {error}");
        }
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let file = existing();
        let args = args(&[
            "--kafka-security-protocol",
            "sasl_ssl",
            "--kafka-sasl-username",
            "monitor",
            "--kafka-sasl-password",
            "hunter22",
            "--kafka-ssl-certificate-location",
            &file,
            "--kafka-ssl-key-location",
            &file,
            "--kafka-ssl-key-password",
            "swordfish",
        ]);
        let shown = format!("{args:?}");
        assert!(shown.contains("monitor"), "{shown}");
        assert!(
            !shown.contains("hunter22") && !shown.contains("swordfish"),
            "{shown}"
        );
    }

    #[test]
    fn pass_through_variables_add_properties_but_never_replace_ours() {
        let vars = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let props = args(&[])
            .properties_with(vars(&[
                ("KAFKA_CONFIG_CLIENT_DNS_LOOKUP", "use_all_dns_ips"),
                // For quotas and the brokers' logs.
                ("KAFKA_CONFIG_CLIENT_ID", "pingpipe-eu"),
                ("KAFKA_BOOTSTRAP_SERVERS", "ignored:1"),
                ("HOME", "/root"),
            ]))
            .expect("valid");
        assert_eq!(value(&props, "client.dns.lookup"), Some("use_all_dns_ips"));
        assert_eq!(value(&props, "client.id"), Some("pingpipe-eu"));
        assert_eq!(value(&props, "bootstrap.servers"), Some("127.0.0.1:9092"));
        assert_eq!(props.len(), 4, "{props:?}");

        let error = args(&[])
            .properties_with(vars(&[("KAFKA_CONFIG_SECURITY_PROTOCOL", "ssl")]))
            .expect_err("refused")
            .to_string();
        assert!(
            error.contains("KAFKA_CONFIG_SECURITY_PROTOCOL sets security.protocol"),
            "{error}"
        );
        for (name, why) in [
            (
                "KAFKA_CONFIG_METADATA_BROKER_LIST",
                "has a variable of its own",
            ),
            ("KAFKA_CONFIG_ISOLATION_LEVEL", "is set by the binaries"),
            ("KAFKA_CONFIG_PARTITIONER", "every monitor must agree on"),
            // Set after the pass-through: refused rather than silently overridden.
            (
                "KAFKA_CONFIG_SESSION_TIMEOUT_MS",
                "PINGPIPE_INGEST_SESSION_TIMEOUT",
            ),
            ("KAFKA_CONFIG_LINGER_MS", "is set by the binaries"),
            ("KAFKA_CONFIG_FETCH_WAIT_MAX_MS", "is set by the binaries"),
            (
                "KAFKA_CONFIG_ENABLE_SSL_CERTIFICATE_VERIFICATION",
                "stop checking",
            ),
        ] {
            let error = args(&[])
                .properties_with(vars(&[(name, "x")]))
                .expect_err("refused")
                .to_string();
            assert!(error.contains(name) && error.contains(why), "{error}");
        }
    }
}
