//! Secrets of the runner protocol: registration tokens and runner credentials are random,
//! shown once, and kept only as SHA-256 hashes.
//!
//! A credential is `gantry-runner.<runner id>.<secret>`: the id finds the runner without a
//! scan, and only the secret's hash is compared (in constant time, so the comparison's timing
//! does not reveal how much of a guess was right).

use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The prefix of every runner credential.
const CREDENTIAL_PREFIX: &str = "gantry-runner.";

/// The prefix of every registration token made by the server.
const TOKEN_PREFIX: &str = "gantry-reg.";

/// 32 random bytes as hex: what a secret is made of.
pub(crate) fn random_secret() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|error| ApiError::internal(&format!("no randomness: {error}")))?;
    Ok(hex(&bytes))
}

/// A new registration token.
pub(crate) fn new_registration_token() -> Result<String, ApiError> {
    Ok(format!("{TOKEN_PREFIX}{}", random_secret()?))
}

/// The hex SHA-256 of `secret`: what the store keeps.
pub(crate) fn hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// The credential handed to runner `id` for `secret`.
pub(crate) fn credential(id: i64, secret: &str) -> String {
    format!("{CREDENTIAL_PREFIX}{id}.{secret}")
}

/// A presented credential split into the runner id and the secret.
pub(crate) fn parse_credential(credential: &str) -> Option<(i64, &str)> {
    let rest = credential.strip_prefix(CREDENTIAL_PREFIX)?;
    let (id, secret) = rest.split_once('.')?;
    let id = id.parse().ok()?;
    (!secret.is_empty()).then_some((id, secret))
}

/// Whether two hashes are equal, in time that depends only on their length.
pub(crate) fn same_hash(left: &str, right: &str) -> bool {
    left.len() == right.len()
        && left
            .bytes()
            .zip(right.bytes())
            .fold(0u8, |difference, (a, b)| difference | (a ^ b))
            == 0
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(64), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_round_trip_and_reject_forgeries() {
        let secret = random_secret().unwrap();
        assert_eq!(secret.len(), 64);
        let credential = credential(42, &secret);
        assert_eq!(parse_credential(&credential), Some((42, secret.as_str())));
        assert_eq!(parse_credential("gantry-runner.x.abc"), None);
        assert_eq!(parse_credential("gantry-runner.7."), None);
        assert_eq!(parse_credential("Bearer something"), None);
        assert!(same_hash(&hash(&secret), &hash(&secret)));
        assert!(!same_hash(&hash(&secret), &hash("guess")));
        assert_ne!(random_secret().unwrap(), secret);
    }
}
