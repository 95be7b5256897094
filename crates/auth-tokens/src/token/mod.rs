//! Issuing and verifying access and refresh tokens.

mod claims;
mod ecdsa;
mod error;
mod issue;
mod policy;
mod strict;
mod verify;

pub use claims::{Claims, NoCustomClaims, TokenType};
pub use error::{DEFAULT_REALM, TokenError, TokenErrorKind};
pub use issue::{Grant, IssuedToken, TokenIssuer, random_id};
pub use policy::{MAX_LEEWAY, Relaxations, TokenPolicy, TokenPolicyBuilder};
pub use verify::TokenVerifier;
pub(crate) use verify::{check_unrevoked, log_refusal, log_refusal_reason, log_store_unavailable};
