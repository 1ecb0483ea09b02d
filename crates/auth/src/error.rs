//! Why a request was refused, in the vocabulary AWS JSON services answer with.

use thiserror::Error;

/// AWS's text for a request signed with a key this vault does not know (and for session
/// tokens, which this vault never issues).
pub const UNRECOGNIZED_CLIENT_MESSAGE: &str =
    "The security token included in the request is invalid.";
/// AWS's text for a signature that does not match the one recomputed by the server.
pub const SIGNATURE_MISMATCH_MESSAGE: &str = "The request signature we calculated does not match \
     the signature you provided. Check your AWS Secret Access Key and signing method. Consult the \
     service documentation for details.";

/// A refused request. [`AuthError::code`] and [`AuthError::message`] are what the client
/// sees (`{"__type": code, "message": message}`, HTTP [`AuthError::status`]); `Display`
/// may add server-side detail for logs.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// No `Authorization` header at all.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    /// The access key id in the credential scope is unknown.
    #[error("unknown access key id {access_key_id:?}")]
    UnknownAccessKey { access_key_id: String },
    /// The request carries `X-Amz-Security-Token`: this vault issues no session tokens.
    #[error("session tokens are not accepted")]
    SessionTokenNotAccepted,
    /// The `Authorization` header or `X-Amz-Date` is malformed or incomplete.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The credential scope names the wrong service, region, terminator or date.
    #[error("{0}")]
    InvalidScope(String),
    /// `X-Amz-Date` is too far in the past.
    #[error("{0}")]
    SignatureExpired(String),
    /// `X-Amz-Date` is too far in the future.
    #[error("{0}")]
    SignatureNotYetCurrent(String),
    /// `X-Amz-Content-Sha256` is not the hash of the body, or asks for an unsigned payload.
    #[error("{0}")]
    PayloadHash(String),
    /// The recomputed signature differs from the one sent.
    #[error("signature mismatch")]
    SignatureMismatch,
    /// The key store could not be read. The detail stays in server logs.
    #[error("key store unavailable: {0}")]
    KeyStoreUnavailable(String),
}

impl AuthError {
    /// The AWS error code (`__type`).
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            AuthError::UnknownAccessKey { .. } | AuthError::SessionTokenNotAccepted => {
                "UnrecognizedClientException"
            }
            AuthError::IncompleteSignature(_) => "IncompleteSignatureException",
            AuthError::InvalidScope(_)
            | AuthError::SignatureExpired(_)
            | AuthError::SignatureNotYetCurrent(_)
            | AuthError::PayloadHash(_)
            | AuthError::SignatureMismatch => "InvalidSignatureException",
            AuthError::KeyStoreUnavailable(_) => "ServiceUnavailableException",
        }
    }

    /// The message the client sees. Never contains secrets or server internals.
    pub fn message(&self) -> String {
        match self {
            AuthError::UnknownAccessKey { .. } | AuthError::SessionTokenNotAccepted => {
                UNRECOGNIZED_CLIENT_MESSAGE.to_string()
            }
            AuthError::SignatureMismatch => SIGNATURE_MISMATCH_MESSAGE.to_string(),
            AuthError::KeyStoreUnavailable(_) => {
                "The service is unavailable. Please try again later.".to_string()
            }
            other => other.to_string(),
        }
    }

    /// The HTTP status AWS answers with: 400 for every authentication failure, 500 when the
    /// vault itself cannot check (CloudWatch's ServiceUnavailableException).
    pub fn status(&self) -> u16 {
        match self {
            AuthError::KeyStoreUnavailable(_) => 500,
            _ => 400,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages_match_aws() {
        assert_eq!(
            AuthError::MissingAuthenticationToken.message(),
            "Missing Authentication Token"
        );
        let unknown = AuthError::UnknownAccessKey {
            access_key_id: "TVAKX".into(),
        };
        assert_eq!(unknown.code(), "UnrecognizedClientException");
        assert_eq!(unknown.message(), UNRECOGNIZED_CLIENT_MESSAGE);
        assert_eq!(
            AuthError::SessionTokenNotAccepted.message(),
            UNRECOGNIZED_CLIENT_MESSAGE
        );
        assert_eq!(
            AuthError::SignatureMismatch.code(),
            "InvalidSignatureException"
        );
        assert!(AuthError::SignatureMismatch
            .message()
            .starts_with("The request signature we calculated does not match"));
        let ks = AuthError::KeyStoreUnavailable("/secret/path: EIO".into());
        assert_eq!(ks.status(), 500);
        assert!(!ks.message().contains("/secret/path"));
    }
}
