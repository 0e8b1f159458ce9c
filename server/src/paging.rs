//! Keyset pagination shared by every List RPC: pages are ordered newest first by
//! `(created_at, id)`, and the page token is the opaque position of the last row served, so pages
//! stay stable while rows are inserted.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::{Error, Result};

/// The position after which a page starts.
pub type Cursor = (DateTime<Utc>, Uuid);

/// A validated page request.
pub struct Page {
    /// Rows to serve.
    pub size: i64,
    /// Start strictly after this position; `None` for the first page.
    pub after: Option<Cursor>,
}

/// The rows a page serves: `page_size` 0 means 50; negative or above 1000 is refused. Every
/// listing takes its size from here.
pub fn page_size(page_size: i32) -> Result<i64> {
    match page_size {
        0 => Ok(50),
        1..=1000 => Ok(i64::from(page_size)),
        _ => Err(Error::invalid(
            "INVALID_ARGUMENT",
            "page_size",
            "page_size must be between 0 and 1000",
        )),
    }
}

impl Page {
    pub fn parse(page_size: i32, page_token: &str) -> Result<Self> {
        let size = self::page_size(page_size)?;
        let after = if page_token.is_empty() {
            None
        } else {
            Some(decode(page_token)?)
        };
        Ok(Self { size, after })
    }

    /// Rows to ask the store for: one more than served tells whether another page exists.
    pub fn fetch(&self) -> i64 {
        self.size + 1
    }

    /// Trims the fetched rows to the page and returns them with the next page's token (empty
    /// on the last page).
    pub fn finish<T>(&self, mut rows: Vec<T>, position: impl Fn(&T) -> Cursor) -> (Vec<T>, String) {
        if rows.len() as i64 <= self.size {
            return (rows, String::new());
        }
        rows.truncate(self.size as usize);
        let next = rows.last().map(|r| encode(position(r))).unwrap_or_default();
        (rows, next)
    }
}

fn encode((at, id): Cursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", at.timestamp_micros(), id))
}

fn decode(token: &str) -> Result<Cursor> {
    let bad = || {
        Error::invalid(
            "INVALID_PAGE_TOKEN",
            "page_token",
            "the page token is not valid",
        )
    };
    let raw =
        String::from_utf8(URL_SAFE_NO_PAD.decode(token).map_err(|_| bad())?).map_err(|_| bad())?;
    let (micros, id) = raw.split_once(':').ok_or_else(bad)?;
    let at = DateTime::from_timestamp_micros(micros.parse().map_err(|_| bad())?).ok_or_else(bad)?;
    Ok((at, Uuid::parse_str(id).map_err(|_| bad())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_tokens() {
        let page = Page::parse(2, "").unwrap();
        let rows: Vec<Cursor> = (0..3)
            .map(|i| {
                (
                    DateTime::from_timestamp(1_000 - i, 0).unwrap(),
                    Uuid::new_v4(),
                )
            })
            .collect();
        let (served, next) = page.finish(rows.clone(), |r| *r);
        assert_eq!(served.len(), 2);
        assert_eq!(Page::parse(2, &next).unwrap().after, Some(rows[1]));
        let (_, last) = page.finish(rows[..2].to_vec(), |r| *r);
        assert!(last.is_empty());
        assert!(Page::parse(1001, "").is_err());
        assert!(Page::parse(0, "garbage!").is_err());
        assert_eq!(Page::parse(0, "").unwrap().size, 50);
    }
}
