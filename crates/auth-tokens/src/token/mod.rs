//! Issuing and verifying access and refresh tokens.

mod claims;
mod error;
mod issue;
mod policy;
mod verify;

pub use claims::{Claims, NoCustomClaims, TokenType};
pub use error::{TokenError, TokenErrorKind};
pub use issue::{Grant, IssuedToken, TokenIssuer, random_id};
pub use policy::{MAX_LEEWAY, Relaxations, TokenPolicy};
pub use verify::TokenVerifier;
