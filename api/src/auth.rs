//! Bearer tokens for mutations: compared in constant time, never logged.

/// Who is calling, as far as the API can tell.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub authorized: bool,
}

/// Equal-length byte strings compared without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether an `Authorization` header value carries one of `tokens`.
pub fn authorized(header: Option<&str>, tokens: &[String]) -> bool {
    let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return false;
    };
    let token = token.trim().as_bytes();
    // Every configured token is compared, so the time does not say which one matched.
    tokens
        .iter()
        .filter(|t| !t.is_empty())
        .fold(false, |found, t| {
            constant_time_eq(t.as_bytes(), token) | found
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_configured_bearer_token_authorizes() {
        let tokens = vec!["s3cret".to_owned(), "other".to_owned()];
        assert!(authorized(Some("Bearer s3cret"), &tokens));
        assert!(authorized(Some("Bearer other"), &tokens));
        assert!(!authorized(Some("Bearer s3cre"), &tokens));
        assert!(!authorized(Some("s3cret"), &tokens));
        assert!(!authorized(None, &tokens));
        assert!(!authorized(Some("Bearer "), &[String::new()]));
    }
}
