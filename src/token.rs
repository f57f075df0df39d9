//! The API token format of SPEC section 3, shared by the CLI (minting) and `auth` (checking).
//!
//! A token is `kt_` + 32 hex characters of CSPRNG output + an 8-hex checksum: the first 4 bytes of
//! BLAKE3 over those 32 hex characters. The checksum lets `auth` refuse a mistyped or invented
//! token without touching the database, and lets secret scanners tell real tokens from noise.
//! Only `hash` of a token is ever stored.

const PREFIX: &str = "kt_";
const RANDOM_HEX: usize = 32;
const CHECKSUM_HEX: usize = 8;
pub const TOKEN_LEN: usize = PREFIX.len() + RANDOM_HEX + CHECKSUM_HEX;
/// How many leading characters are kept as the token's visible `prefix` (e.g. `kt_1a2b3`).
pub const DISPLAY_PREFIX_LEN: usize = 8;

/// What is stored instead of the token: BLAKE3 of the whole token.
pub type TokenHash = [u8; 32];

/// A new token from the operating system's CSPRNG.
pub fn generate() -> Result<String, getrandom::Error> {
    let mut random = [0u8; RANDOM_HEX / 2];
    getrandom::fill(&mut random)?;
    let body = hex(&random);
    let checksum = checksum(&body);
    Ok(format!("{PREFIX}{body}{checksum}"))
}

/// True when `token` has the exact shape and a matching checksum.
pub fn is_well_formed(token: &str) -> bool {
    has_shape(token) && checksum_matches(token)
}

/// True when `token` is `kt_` and the right number of lower-case hex characters.
pub fn has_shape(token: &str) -> bool {
    token.strip_prefix(PREFIX).is_some_and(|rest| {
        rest.len() == RANDOM_HEX + CHECKSUM_HEX
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// True when the checksum of a token that `has_shape` matches its random part.
pub fn checksum_matches(token: &str) -> bool {
    let Some((body, sum)) = token
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.split_at_checked(RANDOM_HEX))
    else {
        return false;
    };
    // Not secret: the checksum is derived from the visible part, so a plain compare is fine.
    checksum(body) == sum
}

pub fn hash(token: &str) -> TokenHash {
    *blake3::hash(token.as_bytes()).as_bytes()
}

pub fn display_prefix(token: &str) -> &str {
    &token[..DISPLAY_PREFIX_LEN]
}

fn checksum(body: &str) -> String {
    hex(&blake3::hash(body.as_bytes()).as_bytes()[..CHECKSUM_HEX / 2])
}

/// Lower-case hex of `bytes`. By table, not `write!("{b:02x}")`: every authenticated request
/// checks a checksum, and the formatter cost more than the BLAKE3 hash it prints.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_the_documented_shape() {
        let token = generate().unwrap();
        assert_eq!(token.len(), 43);
        assert!(token.starts_with("kt_"));
        assert!(
            token[3..]
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert!(is_well_formed(&token));
        assert_ne!(token, generate().unwrap());
    }

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        let all: Vec<u8> = (0..=255).collect();
        let expected: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&all), expected);
    }

    #[test]
    fn checksum_is_blake3_of_the_random_hex() {
        let body = "00112233445566778899aabbccddeeff";
        let expected = &blake3::hash(body.as_bytes()).to_hex()[..8];
        assert!(is_well_formed(&format!("kt_{body}{expected}")));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let token = generate().unwrap();
        let mut flipped = token.clone().into_bytes();
        flipped[10] = if flipped[10] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap();
        for bad in [
            "",
            "kt_",
            &token[..42],
            &format!("{token}0"),
            &token.to_uppercase(),
            &token.replacen("kt_", "kx_", 1),
            &flipped,
            "kt_zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        ] {
            assert!(!is_well_formed(bad), "{bad:?} accepted");
        }
        // The two halves `auth` runs apart: the flipped token has the shape and fails the sum,
        // and the sum alone never panics on a string too short to hold one.
        assert!(has_shape(&flipped) && !checksum_matches(&flipped));
        assert!(has_shape(&token) && checksum_matches(&token));
        for short in [
            "",
            "kt_",
            "kt_0123",
            "0123456789012345678901234567890123456789",
        ] {
            assert!(!checksum_matches(short), "{short:?}");
        }
    }

    #[test]
    fn hash_and_prefix() {
        let token = generate().unwrap();
        assert_eq!(hash(&token), *blake3::hash(token.as_bytes()).as_bytes());
        assert_eq!(display_prefix(&token), &token[..8]);
    }
}
