//! Bearer-token authentication for an agency's own systems. The token is the agency's secret
//! (from the registry's credentials or `onedoor up`'s development tokens); TLS client
//! certificates come with the security work.

use std::fmt;

use tonic::{Request, Status};

use crate::error::AdapterError;

/// A secret that never prints.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(secret: impl Into<String>) -> Result<Self, AdapterError> {
        let secret = secret.into();
        // Short secrets are guessable; dev tokens from `up` are 32 random bytes in hex.
        if secret.len() < 16 {
            return Err(AdapterError::Config(
                "agency token must be at least 16 characters".into(),
            ));
        }
        Ok(Token(secret))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison, so response timing does not reveal how much of a guess matched.
    fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(****)")
    }
}

/// A tonic interceptor: every call must carry `authorization: Bearer <token>`.
pub fn interceptor(token: Token) -> impl FnMut(Request<()>) -> Result<Request<()>, Status> + Clone {
    move |request: Request<()>| {
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            // The auth scheme is case-insensitive (RFC 7235); the token itself is not.
            .and_then(|value| {
                value
                    .split_once(' ')
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            })
            .map(|(_, token)| token)
            .map(str::trim);
        match presented {
            Some(presented) if token.matches(presented) => Ok(request),
            _ => Err(AdapterError::Unauthenticated.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_do_not_print() {
        let token = Token::new("0123456789abcdef0123").expect("long enough");
        assert_eq!(format!("{token:?}"), "Token(****)");
    }

    #[test]
    fn short_tokens_are_refused() {
        assert!(Token::new("short").is_err());
    }
}
