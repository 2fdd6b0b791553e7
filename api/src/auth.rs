//! Bearer tokens for mutations: compared in constant time, never logged.

/// Who is calling, as far as the API can tell.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    pub authorized: bool,
}

/// Shortest token accepted (checked when the API starts).
pub const MIN_TOKEN_CHARS: usize = 16;

/// Whether `given` equals `token`, in a time that depends only on the length of `given` (which
/// the caller knows anyway): no early exit, and the token's length is not compared first.
fn constant_time_eq(token: &[u8], given: &[u8]) -> bool {
    let mut diff = u8::from(token.len() != given.len());
    for (i, g) in given.iter().enumerate() {
        diff |= g ^ token.get(i).copied().unwrap_or(0);
    }
    diff == 0
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

/// Refuses tokens too short to resist guessing, with a message that names the rule (never the
/// token).
pub fn check_tokens(tokens: &[String]) -> Result<(), String> {
    match tokens
        .iter()
        .position(|t| t.chars().count() < MIN_TOKEN_CHARS)
    {
        Some(i) => Err(format!(
            "PINGPIPE_API_TOKENS: token {} of {} is shorter than {MIN_TOKEN_CHARS} characters",
            i + 1,
            tokens.len()
        )),
        None => Ok(()),
    }
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
        // A prefix or an extension of a token is not the token.
        assert!(!authorized(Some("Bearer s3cretX"), &tokens));
        assert!(!authorized(Some("Bearer s3cret\0"), &tokens));
    }

    #[test]
    fn short_tokens_are_refused_at_start_without_being_shown() {
        let err = check_tokens(&["a-long-enough-token-1".into(), "tiny1".into()]).unwrap_err();
        assert!(err.contains("token 2 of 2") && err.contains("16"), "{err}");
        assert!(!err.contains("tiny1"), "{err}");
        assert!(check_tokens(&["0123456789abcdef".into()]).is_ok());
        assert!(check_tokens(&[]).is_ok());
    }
}
