//! One test body for every reset-token store: `check` spends nothing.

use palisade_passwords::reset::{ResetErrorKind, ResetTokenStore, ResetTokens};
use secrecy::ExposeSecret;

/// A reset link must survive the checks a service makes before the new
/// password is stored (attack this stops: a denial of service on account
/// recovery, where a flood that fills the hashing pool, or one refused new
/// password, burns the user's link): `check` accepts the live token as
/// often as asked, refuses what `redeem` refuses without spending the
/// token, and the token still redeems exactly once afterwards.
pub async fn check_spends_nothing<S: ResetTokenStore>(resets: &ResetTokens<S>, hash: &str) {
    let token = resets.issue("user-42", hash).await.unwrap();
    let text = token.expose_secret();
    for _ in 0..3 {
        resets.check("user-42", text, hash).await.unwrap();
    }
    let other_user = resets.check("user-43", text, hash).await.unwrap_err();
    assert_eq!(other_user.kind(), ResetErrorKind::UnknownOrExpired);
    let guess = "A".repeat(text.len());
    let wrong = resets.check("user-42", &guess, hash).await.unwrap_err();
    assert_eq!(wrong.kind(), ResetErrorKind::UnknownOrExpired);
    let malformed = resets.check("user-42", "short", hash).await.unwrap_err();
    assert_eq!(malformed.kind(), ResetErrorKind::Malformed);
    let changed = resets
        .check("user-42", text, "$argon2id$other")
        .await
        .unwrap_err();
    assert_eq!(changed.kind(), ResetErrorKind::PasswordChanged);
    resets.redeem("user-42", text, hash).await.unwrap();
    let spent = resets.check("user-42", text, hash).await.unwrap_err();
    assert_eq!(spent.kind(), ResetErrorKind::UnknownOrExpired);
    let replay = resets.redeem("user-42", text, hash).await.unwrap_err();
    assert_eq!(replay.kind(), ResetErrorKind::UnknownOrExpired);
}
