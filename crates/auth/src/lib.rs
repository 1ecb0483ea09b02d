//! Authentication for the vault's CloudWatch Logs API.
//!
//! - [`keys`]: the vault's own access keys ([`AccessKey`]), the [`KeyStore`] trait the verifier
//!   reads them through, and [`FileKeyStore`] (`<data>/auth/keys.json`, plus the AWS
//!   shared-credentials file `<data>/credentials` written for the first admin key).
//! - [`sigv4`]: AWS Signature Version 4, one canonicalization used both ways: [`verify`] on
//!   the server, [`sign`] in the client.
//! - [`credentials`]: finding credentials the way AWS tools do ([`Credentials::discover`]).
//!
//! Invariants: a secret never appears in `Debug` output or in an error message; a request is
//! accepted only if its signature, recomputed with the stored secret over the exact bytes
//! received (body included), matches in constant time; session tokens are always refused.

pub mod credentials;
mod error;
pub mod keys;
pub mod sigv4;

pub use credentials::{Credentials, CredentialsError};
pub use error::{AuthError, SIGNATURE_MISMATCH_MESSAGE, UNRECOGNIZED_CLIENT_MESSAGE};
pub use keys::{AccessKey, FileKeyStore, KeyStore, KeyStoreError, MemoryKeyStore};
pub use sigv4::{sign, verify, Principal, SignError, SignedRequest, SigningParams, VerifyConfig};
