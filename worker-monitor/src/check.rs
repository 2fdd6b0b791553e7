//! What a target's probe does beyond a GET: its request (method, headers, body), how it trusts
//! TLS, and the assertions and degraded threshold its response is judged by — prepared once per
//! change of the target, not per probe.
//!
//! Header values come from PostgreSQL and stay in memory: they are marked sensitive, never
//! logged (the `Debug` of [`Check`] hides them) and never part of a result event.

use std::collections::HashMap;
use std::sync::Arc;

use entity::Method;
use entity::assertion::{self, Compiled};
use entity::check::{self, StoredCheck};
use hyper::body::Bytes;
use hyper::header::{HeaderName, HeaderValue};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// A target's prepared check.
pub struct Check {
    pub method: hyper::Method,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The header values as stored, for redacting them from what a failure shows.
    pub secrets: Vec<String>,
    pub body: Option<Bytes>,
    pub tls: Arc<ClientConfig>,
    /// Shared by every target with the same list (compiled once).
    pub assertions: Arc<[Compiled]>,
    /// Whether an assertion reads the body (otherwise it is not read at all).
    pub need_body: bool,
    pub degraded_after_ms: Option<u64>,
    /// Probe once more, within the same slot, when a probe is DOWN (see `reprobe`).
    pub reprobe: bool,
    /// Why the stored check cannot be used (the API refuses such input; a row written past
    /// it, or by a newer version, is reported as a failure instead of probed wrongly).
    pub broken: Option<String>,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Check")
            .field("method", &self.method)
            .field("header_names", &names)
            .field("assertions", &self.assertions.len())
            .field("degraded_after_ms", &self.degraded_after_ms)
            .field("reprobe", &self.reprobe)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// Builds checks, sharing one TLS configuration per distinct trust (system roots, a CA bundle,
/// or none).
pub struct CheckBuilder {
    provider: Arc<CryptoProvider>,
    system: Arc<ClientConfig>,
    unverified: Arc<ClientConfig>,
    bundles: HashMap<String, Arc<ClientConfig>>,
    /// Compiled assertion lists by their stored form: 50,000 targets with the same list hold
    /// one compiled copy (a compiled regular expression and its caches take tens of KiB).
    compiled: HashMap<Vec<assertion::Assertion>, Arc<[Compiled]>>,
}

impl CheckBuilder {
    /// Fails when the system's trust store cannot be loaded.
    pub fn new() -> Result<CheckBuilder, rustls::Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = rustls_platform_verifier::Verifier::new(provider.clone())?;
        let system = client_config(&provider, Arc::new(verifier))?;
        let unverified = client_config(&provider, Arc::new(Unverified(provider.clone())))?;
        Ok(CheckBuilder {
            provider,
            system,
            unverified,
            bundles: HashMap::new(),
            compiled: HashMap::new(),
        })
    }

    /// The check of a plain GET, judged by its status.
    pub fn plain(&mut self) -> Check {
        self.build(&StoredCheck::default())
    }

    /// Prepares `stored`; a part that cannot be used makes the check `broken` with the reason.
    pub fn build(&mut self, stored: &StoredCheck) -> Check {
        let mut check = Check {
            method: match stored.method {
                Method::Get => hyper::Method::GET,
                Method::Head => hyper::Method::HEAD,
                Method::Post => hyper::Method::POST,
            },
            headers: Vec::new(),
            secrets: Vec::new(),
            body: stored.body.clone().map(Bytes::from),
            tls: self.system.clone(),
            assertions: Arc::from(Vec::new()),
            need_body: false,
            degraded_after_ms: stored
                .degraded_after_ms
                .and_then(|ms| u64::try_from(ms).ok()),
            reprobe: stored.reprobe,
            broken: None,
        };
        if let Err(reason) = self.prepare(stored, &mut check) {
            check.broken = Some(reason);
        }
        check
    }

    fn prepare(&mut self, stored: &StoredCheck, check: &mut Check) -> Result<(), String> {
        check.assertions = match self.compiled.get(&stored.assertions.0) {
            Some(compiled) => compiled.clone(),
            None => {
                let compiled: Arc<[Compiled]> = assertion::compile_all(&stored.assertions.0)
                    .map_err(|e| e.0)?
                    .into();
                self.compiled
                    .insert(stored.assertions.0.clone(), compiled.clone());
                compiled
            }
        };
        check.need_body = assertion::need_body(&check.assertions);
        check::validate_method_assertions(stored.method, &stored.assertions.0)?;
        check::validate_headers(&stored.headers.0)?;
        check::validate_body(stored.method, stored.body.as_deref())?;
        for (i, header) in stored.headers.0.iter().enumerate() {
            let name = HeaderName::from_bytes(header.name.as_bytes())
                .map_err(|_| format!("header {i} ({}): not a header name", header.name))?;
            let mut value = HeaderValue::from_str(&header.value)
                .map_err(|_| format!("header {i} ({}): not a header value", header.name))?;
            value.set_sensitive(true);
            check.headers.push((name, value));
            check.secrets.push(header.value.clone());
        }
        check.tls = match (stored.tls_verify, &stored.ca_bundle) {
            (false, _) => self.unverified.clone(),
            (true, None) => self.system.clone(),
            (true, Some(pem)) => self.bundle(pem)?,
        };
        Ok(())
    }

    fn bundle(&mut self, pem: &str) -> Result<Arc<ClientConfig>, String> {
        if let Some(config) = self.bundles.get(pem) {
            return Ok(config.clone());
        }
        let mut roots = RootCertStore::empty();
        for cert in check::parse_ca_bundle(pem)? {
            roots
                .add(cert)
                .map_err(|e| format!("the CA bundle has a certificate rustls refuses: {e}"))?;
        }
        let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        .map_err(|e| format!("the CA bundle cannot verify servers: {e}"))?;
        let config = client_config(&self.provider, verifier).map_err(|e| e.to_string())?;
        self.bundles.insert(pem.to_owned(), config.clone());
        Ok(config)
    }

    /// Forgets CA bundles and assertion lists no target uses any more (only this builder
    /// holds them).
    pub fn forget_unused(&mut self, in_use: &std::collections::HashSet<&str>) {
        self.bundles.retain(|pem, _| in_use.contains(pem.as_str()));
        self.compiled.retain(|_, list| Arc::strong_count(list) > 1);
    }
}

/// A client configuration: HTTP/1.1 only, no session resumption (every probe pays for its own
/// handshake, as a first visitor does).
fn client_config(
    provider: &Arc<CryptoProvider>,
    verifier: Arc<dyn ServerCertVerifier>,
) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// `tlsVerify: false`: any certificate is accepted (expired, self-signed, another name), but
/// the handshake's signatures are still checked, so the session is with the holder of the key
/// the certificate names.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broken_stored_check_says_why_without_the_header_value() {
        let mut builder = CheckBuilder::new().unwrap();
        let stored = StoredCheck {
            headers: check::RequestHeaders(vec![check::RequestHeader {
                name: "X-Token".into(),
                value: "s3cret\nx".into(),
            }]),
            ..StoredCheck::default()
        };
        let check = builder.build(&stored);
        let reason = check.broken.clone().unwrap();
        assert!(reason.contains("X-Token"), "{reason}");
        assert!(!format!("{reason} {check:?}").contains("s3cret"));
        assert!(builder.plain().broken.is_none());
    }

    #[test]
    fn checks_share_the_tls_configuration_of_their_trust() {
        let mut builder = CheckBuilder::new().unwrap();
        let a = builder.plain();
        let b = builder.plain();
        assert!(Arc::ptr_eq(&a.tls, &b.tls));
        let off = builder.build(&StoredCheck {
            tls_verify: false,
            ..StoredCheck::default()
        });
        assert!(!Arc::ptr_eq(&a.tls, &off.tls));
    }

    #[test]
    fn targets_with_the_same_assertions_share_one_compiled_list() {
        let mut builder = CheckBuilder::new().unwrap();
        let stored = StoredCheck {
            assertions: serde_json::from_str(
                r#"[{"source":"BODY_TEXT","comparison":"MATCHES","value":"UP|OK"}]"#,
            )
            .unwrap(),
            ..StoredCheck::default()
        };
        let (a, b) = (builder.build(&stored), builder.build(&stored));
        assert!(Arc::ptr_eq(&a.assertions, &b.assertions));
        assert!(a.need_body);
        drop((a, b));
        builder.forget_unused(&std::collections::HashSet::new());
        assert!(builder.compiled.is_empty());
    }
}
