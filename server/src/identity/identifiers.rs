//! Validation and normalisation of sign-in identifiers.

use crate::error::{Error, Result};

/// A syntactically valid email address, trimmed. Case is kept; uniqueness ignores it.
pub fn normalize_email(input: &str) -> Result<String> {
    let email = input.trim();
    if email.len() > 254 || !email_address::EmailAddress::is_valid(email) {
        return Err(Error::invalid("INVALID_EMAIL", "email", format!("`{email}` is not a valid email address")));
    }
    Ok(email.to_string())
}

/// An E.164 mobile number (`+` then 8 to 15 digits, the first not 0). Spaces, dots, dashes and
/// parentheses are dropped; a leading `00` becomes `+`.
pub fn normalize_mobile(input: &str) -> Result<String> {
    let compact: String = input.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
    let digits = compact.strip_prefix('+').or_else(|| compact.strip_prefix("00"));
    let valid = digits.filter(|d| {
        (8..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()) && !d.starts_with('0')
    });
    match valid {
        Some(d) => Ok(format!("+{d}")),
        None => Err(Error::invalid(
            "INVALID_MOBILE",
            "mobile",
            format!("`{}` is not a mobile number in international form (+233201234567)", input.trim()),
        )),
    }
}

/// Which column an identifier given at sign-in refers to.
pub enum Identifier {
    Email(String),
    Mobile(String),
}

/// Detects an identifier's kind by its format.
pub fn parse_identifier(input: &str) -> Option<Identifier> {
    if input.contains('@') {
        normalize_email(input).ok().map(Identifier::Email)
    } else {
        normalize_mobile(input).ok().map(Identifier::Mobile)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert_eq!(normalize_email("  Ama@Example.com ").unwrap(), "Ama@Example.com");
        assert!(normalize_email("not-an-email").is_err());
        assert!(normalize_email("a@").is_err());
    }

    #[test]
    fn mobiles() {
        assert_eq!(normalize_mobile("+233 20 123 4567").unwrap(), "+233201234567");
        assert_eq!(normalize_mobile("00233-20-123-4567").unwrap(), "+233201234567");
        assert!(normalize_mobile("0201234567").is_err());
        assert!(normalize_mobile("+23320abc4567").is_err());
        assert!(normalize_mobile("+1234").is_err());
    }
}
