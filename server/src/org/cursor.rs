//! Keyset pages ordered by a name rather than by creation time (organizations by name, roles
//! and flags by name): the page token is the opaque `(name, id)` of the last row served.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

use crate::error::{Error, Result};

/// A validated page request over `(name, tiebreak)`.
pub struct NamePage {
    pub size: i64,
    pub after: Option<(String, String)>,
}

impl NamePage {
    pub fn parse(page_size: i32, page_token: &str) -> Result<Self> {
        let size = crate::paging::page_size(page_size)?;
        let after = if page_token.is_empty() {
            None
        } else {
            Some(decode(page_token)?)
        };
        Ok(Self { size, after })
    }

    pub fn fetch(&self) -> i64 {
        self.size + 1
    }

    /// The cursor with a UUID tiebreak.
    pub fn after_uuid(&self) -> Result<Option<(String, uuid::Uuid)>> {
        match &self.after {
            None => Ok(None),
            Some((name, id)) => Ok(Some((
                name.clone(),
                uuid::Uuid::parse_str(id).map_err(|_| bad())?,
            ))),
        }
    }

    /// Trims to the page and returns the next page's token (empty on the last page).
    pub fn finish<T>(
        &self,
        mut rows: Vec<T>,
        position: impl Fn(&T) -> (String, String),
    ) -> (Vec<T>, String) {
        if rows.len() as i64 <= self.size {
            return (rows, String::new());
        }
        rows.truncate(self.size as usize);
        let next = rows.last().map(|r| encode(position(r))).unwrap_or_default();
        (rows, next)
    }
}

fn bad() -> Error {
    Error::invalid(
        "INVALID_PAGE_TOKEN",
        "page_token",
        "the page token is not valid",
    )
}

fn encode((name, id): (String, String)) -> String {
    URL_SAFE_NO_PAD.encode(format!("{id}\n{name}"))
}

fn decode(token: &str) -> Result<(String, String)> {
    let raw =
        String::from_utf8(URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?).map_err(|_| bad())?;
    let (id, name) = raw.split_once('\n').ok_or_else(bad)?;
    Ok((name.to_string(), id.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        let page = NamePage::parse(1, "").unwrap();
        let (rows, next) = page.finish(vec![("b", "1"), ("c", "2")], |r| {
            (r.0.to_string(), r.1.to_string())
        });
        assert_eq!(rows.len(), 1);
        assert_eq!(
            NamePage::parse(1, &next).unwrap().after,
            Some(("b".into(), "1".into()))
        );
        assert!(NamePage::parse(0, "!!").is_err());
    }
}
