//! Passwords for the web settings page: Argon2id (the `argon2` crate's defaults, OWASP's
//! recommended floor: 19 MiB, 2 passes), stored as a PHC string. Never logged, never in argv.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::error::Error;

pub const MIN_CHARS: usize = 10;
pub const MAX_CHARS: usize = 1024;

pub fn check_rules(password: &str) -> Result<(), Error> {
    let chars = password.chars().count();
    if !(MIN_CHARS..=MAX_CHARS).contains(&chars) {
        return Err(Error::validation(
            "password",
            format!("a password is {MIN_CHARS} to {MAX_CHARS} characters"),
        ));
    }
    Ok(())
}

pub fn hash(password: &str) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| Error::internal(format!("random salt: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| Error::internal(format!("salt: {e}")))?;
    let hash = Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| Error::internal(format!("argon2: {e}")))?;
    Ok(hash.to_string())
}

/// True when `password` matches the stored PHC string (constant-time inside argon2).
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Burns the time of one verification, so an unknown email costs as much as a wrong password.
pub fn verify_nothing(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("not a password anyone has").unwrap_or_default());
    let _ = verify(password, dummy);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_per_salt() {
        let first = hash("correct horse battery").unwrap();
        assert!(first.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &first));
        assert!(!verify("correct horse batterx", &first));
        assert_ne!(first, hash("correct horse battery").unwrap());
        assert!(!verify("x", "not a hash"));
    }

    #[test]
    fn length_rules() {
        assert!(check_rules("short").is_err());
        assert!(check_rules("long enough!").is_ok());
    }
}
