//! Name rules and name-ordered paging shared by groups, permission groups and rules.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use uuid::Uuid;

use crate::error::{Error, Result};

pub fn parse_id(id: &str, field: &'static str) -> Result<Uuid> {
    Uuid::parse_str(id)
        .map_err(|_| Error::invalid("INVALID_ID", field, format!("`{id}` is not a valid id")))
}

pub fn parse_optional_id(id: &str, field: &'static str) -> Result<Option<Uuid>> {
    if id.is_empty() {
        Ok(None)
    } else {
        parse_id(id, field).map(Some)
    }
}

/// A letter, then letters and digits, at most 64 characters: a permission group or permission
/// name (`projectManagement`, `createProject`), safe to join with `.`.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric())
        && name.len() <= 64
}

/// An object type: a letter, then letters, digits or `_`, at most 64 characters.
pub fn is_object_type(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

/// A display name: 1 to 100 characters once trimmed, no control characters.
pub fn check_display_name(name: &str, field: &'static str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            field,
            format!("`{field}` must be 1 to 100 printable characters"),
        ));
    }
    Ok(name.to_string())
}

pub fn check_description(description: &str, field: &'static str) -> Result<()> {
    if description.chars().count() > 1000 {
        return Err(Error::invalid(
            "INVALID_ARGUMENT",
            field,
            format!("`{field}` is longer than 1000 characters"),
        ));
    }
    Ok(())
}

/// A page of a listing ordered by unique name: the token is the last name served.
pub struct NamePage {
    pub size: i64,
    pub after: Option<String>,
}

impl NamePage {
    pub fn parse(page_size: i32, page_token: &str) -> Result<Self> {
        let size = crate::paging::page_size(page_size)?;
        let bad = || {
            Error::invalid(
                "INVALID_PAGE_TOKEN",
                "page_token",
                "the page token is not valid",
            )
        };
        let after = if page_token.is_empty() {
            None
        } else {
            let raw = URL_SAFE_NO_PAD.decode(page_token).map_err(|_| bad())?;
            Some(
                String::from_utf8(raw.strip_prefix(b"n:").ok_or_else(bad)?.to_vec())
                    .map_err(|_| bad())?,
            )
        };
        Ok(Self { size, after })
    }

    pub fn fetch(&self) -> i64 {
        self.size + 1
    }

    pub fn finish<T>(&self, mut rows: Vec<T>, name: impl Fn(&T) -> &str) -> (Vec<T>, String) {
        if rows.len() as i64 <= self.size {
            return (rows, String::new());
        }
        rows.truncate(self.size as usize);
        let next = rows
            .last()
            .map(|r| URL_SAFE_NO_PAD.encode(format!("n:{}", name(r))))
            .unwrap_or_default();
        (rows, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        for good in ["projectManagement", "a", "createProject2", &"a".repeat(64)] {
            assert!(is_identifier(good), "{good}");
        }
        for bad in ["", "1a", "a.b", "a_b", "a b", "é", &"a".repeat(65)] {
            assert!(!is_identifier(bad), "{bad}");
        }
        assert!(is_object_type("project_file"));
        assert!(!is_object_type("_x"));
    }

    #[test]
    fn name_tokens_round_trip() {
        let page = NamePage::parse(1, "").unwrap();
        let (rows, next) = page.finish(vec!["alpha", "beta"], |s| s);
        assert_eq!(rows, ["alpha"]);
        assert_eq!(
            NamePage::parse(1, &next).unwrap().after.as_deref(),
            Some("alpha")
        );
        assert!(NamePage::parse(1, "bm90LWEtdG9rZW4").is_err());
    }
}
