//! Webhook signatures the Standard Webhooks way (<https://www.standardwebhooks.com/>, version
//! 1.0): a message carries `webhook-id` (stable across redeliveries, so a receiver can drop a
//! repeat), `webhook-timestamp` (Unix seconds) and `webhook-signature`, `v1,` followed by the
//! base64 HMAC-SHA256 of `<id>.<timestamp>.<body>` under the channel's key. The key is written
//! `whsec_` + base64 of its bytes, as the specification's libraries read it.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// The prefix of a key as people copy it.
const KEY_PREFIX: &str = "whsec_";

/// Bytes of a generated key (24 to 64 are what the specification recommends).
const GENERATED_KEY_BYTES: usize = 32;

/// A channel's signing key. Its bytes are a secret: `Debug` never shows them.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey([{} bytes redacted])", self.0.len())
    }
}

/// A key that is not one; the message never repeats the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("a signing key is written whsec_ followed by base64")]
    NoPrefix,
    #[error("the part after whsec_ is not base64")]
    NotBase64,
    #[error("a signing key has 24 to 64 bytes, this one {0}")]
    Length(usize),
}

impl SigningKey {
    /// Reads `whsec_<base64>`.
    pub fn parse(text: &str) -> Result<SigningKey, KeyError> {
        let encoded = text.strip_prefix(KEY_PREFIX).ok_or(KeyError::NoPrefix)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| KeyError::NotBase64)?;
        if !(24..=64).contains(&bytes.len()) {
            return Err(KeyError::Length(bytes.len()));
        }
        Ok(SigningKey(bytes))
    }

    /// A new random key.
    pub fn generate() -> SigningKey {
        use aws_lc_rs::rand::SecureRandom;
        let mut bytes = vec![0u8; GENERATED_KEY_BYTES];
        aws_lc_rs::rand::SystemRandom::new()
            .fill(&mut bytes)
            .expect("the system's random source works");
        SigningKey(bytes)
    }

    /// The key as people copy it: `whsec_<base64>`.
    pub fn encoded(&self) -> String {
        format!("{KEY_PREFIX}{}", STANDARD.encode(&self.0))
    }

    fn hmac(&self, id: &str, timestamp: i64, body: &[u8]) -> aws_lc_rs::hmac::Tag {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &self.0);
        let mut context = aws_lc_rs::hmac::Context::with_key(&key);
        context.update(id.as_bytes());
        context.update(b".");
        context.update(timestamp.to_string().as_bytes());
        context.update(b".");
        context.update(body);
        context.sign()
    }

    /// The `webhook-signature` header of a message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            STANDARD.encode(self.hmac(id, timestamp, body).as_ref())
        )
    }

    /// Whether `header` (one or more space-separated `v1,<base64>`; other versions ignored)
    /// holds this key's signature of the message, compared in constant time.
    pub fn verify(&self, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        let expected = self.hmac(id, timestamp, body);
        header
            .split(' ')
            .filter_map(|entry| entry.strip_prefix("v1,"))
            .filter_map(|encoded| STANDARD.decode(encoded).ok())
            .any(|given| {
                aws_lc_rs::constant_time::verify_slices_are_equal(&given, expected.as_ref()).is_ok()
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key of 32 bytes 0x00..=0x1f.
    fn key() -> SigningKey {
        SigningKey((0u8..32).collect())
    }

    #[test]
    fn a_signature_matches_an_independent_hmac_of_id_timestamp_and_body() {
        // Computed with Python's hmac and base64 modules, not with this code:
        // base64(hmac.new(bytes(range(32)), b'msg_1.1764000000.{"to":"DOWN"}', sha256).digest())
        let signed = key().sign("msg_1", 1_764_000_000, br#"{"to":"DOWN"}"#);
        assert_eq!(signed, EXPECTED);
    }

    const EXPECTED: &str = "v1,Wyd155rG96L1biOVWpkvCaMCLjj4tYNKPNwa8sad/6k=";

    #[test]
    fn verify_accepts_its_own_signature_among_others_and_refuses_any_change() {
        let key = key();
        let body = br#"{"to":"DOWN"}"#;
        let signed = key.sign("msg_1", 1_764_000_000, body);
        let header = format!("v2,abc v1,bm90IGl0 {signed}");
        assert!(key.verify("msg_1", 1_764_000_000, body, &header));
        assert!(!key.verify("msg_2", 1_764_000_000, body, &signed));
        assert!(!key.verify("msg_1", 1_764_000_001, body, &signed));
        assert!(!key.verify("msg_1", 1_764_000_000, br#"{"to":"UP"}"#, &signed));
        assert!(!SigningKey::generate().verify("msg_1", 1_764_000_000, body, &signed));
        assert!(!key.verify("msg_1", 1_764_000_000, body, "v1,not base64!"));
    }

    #[test]
    fn keys_read_back_and_bad_ones_are_refused_without_repeating_them() {
        let generated = SigningKey::generate();
        assert_eq!(
            SigningKey::parse(&generated.encoded()),
            Ok(generated.clone())
        );
        assert_ne!(generated, SigningKey::generate());
        assert!(!format!("{generated:?}").contains(&generated.encoded()[6..]));
        assert_eq!(SigningKey::parse("c2VjcmV0"), Err(KeyError::NoPrefix));
        assert_eq!(SigningKey::parse("whsec_!!!"), Err(KeyError::NotBase64));
        assert_eq!(
            SigningKey::parse("whsec_c2VjcmV0"),
            Err(KeyError::Length(6))
        );
    }
}
