//! Validation and normalisation of sign-in identifiers.

use crate::error::{Error, Result};

/// A syntactically valid email address, trimmed. Case is kept; uniqueness ignores it.
pub fn normalize_email(input: &str) -> Result<String> {
    let email = input.trim();
    if email.len() > 254 || !email_address::EmailAddress::is_valid(email) {
        return Err(Error::invalid(
            "INVALID_EMAIL",
            "email",
            format!("`{email}` is not a valid email address"),
        ));
    }
    Ok(email.to_string())
}

/// The deployment's country calling code (`identity.default_country_code`), for numbers given
/// in national form. Set once at start; unset, national numbers are refused.
static DEFAULT_COUNTRY_CODE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets the country calling code used for national numbers (digits only, e.g. `233`).
pub fn set_default_country_code(code: &str) {
    if !code.is_empty() {
        let _ = DEFAULT_COUNTRY_CODE.set(code.to_string());
    }
}

/// An E.164 mobile number (`+` then 8 to 15 digits, the first not 0). Spaces, dots, dashes and
/// parentheses are dropped; a leading `00` becomes `+`; a national number (one leading `0`)
/// takes the deployment's default country code when one is configured.
pub fn normalize_mobile(input: &str) -> Result<String> {
    normalize_mobile_with(input, DEFAULT_COUNTRY_CODE.get().map(String::as_str))
}

fn normalize_mobile_with(input: &str, country: Option<&str>) -> Result<String> {
    let compact: String = input
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let national = match (country, compact.strip_prefix('0')) {
        (Some(cc), Some(rest)) if !rest.starts_with('0') => Some(format!("{cc}{rest}")),
        _ => None,
    };
    let digits = compact
        .strip_prefix('+')
        .or_else(|| compact.strip_prefix("00"))
        .or(national.as_deref());
    let valid = digits.filter(|d| {
        (8..=15).contains(&d.len()) && d.chars().all(|c| c.is_ascii_digit()) && !d.starts_with('0')
    });
    match valid {
        Some(d) => Ok(format!("+{d}")),
        None => Err(Error::invalid(
            "INVALID_MOBILE",
            "mobile",
            format!(
                "`{}` is not a mobile number in international form (+233201234567)",
                input.trim()
            ),
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
        assert_eq!(
            normalize_email("  Ama@Example.com ").unwrap(),
            "Ama@Example.com"
        );
        assert!(normalize_email("not-an-email").is_err());
        assert!(normalize_email("a@").is_err());
    }

    #[test]
    fn mobiles() {
        assert_eq!(
            normalize_mobile("+233 20 123 4567").unwrap(),
            "+233201234567"
        );
        assert_eq!(
            normalize_mobile("00233-20-123-4567").unwrap(),
            "+233201234567"
        );
        assert!(normalize_mobile("0201234567").is_err());
        assert!(normalize_mobile("+23320abc4567").is_err());
        assert!(normalize_mobile("+1234").is_err());
    }

    #[test]
    fn national_numbers_take_the_default_country_code() {
        assert_eq!(
            normalize_mobile_with("020 123 4567", Some("233")).unwrap(),
            "+233201234567"
        );
        assert_eq!(
            normalize_mobile_with("+44 7700 900123", Some("233")).unwrap(),
            "+447700900123"
        );
        assert!(normalize_mobile_with("020 123 4567", None).is_err());
    }
}
