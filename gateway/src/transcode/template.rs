//! `google.api.http` path templates: parsing and matching.
//!
//! Grammar (from google/api/http.proto):
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! Verb     = ":" LITERAL ;
//! ```
//! A template is flattened into a list of segment matchers plus variables that each cover a
//! range of those segments, so `{name=users/*}` is the two matchers `users`, `*`.

use percent_encoding::percent_decode_str;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Literal(String),
    /// `*`: exactly one non-empty segment.
    Single,
    /// `**`: zero or more segments; only allowed last.
    Rest,
}

impl Segment {
    /// Specificity used to choose between templates that match the same path: a literal beats a
    /// single-segment wildcard, which beats `**`.
    fn rank(&self) -> u8 {
        match self {
            Segment::Literal(_) => 3,
            Segment::Single => 2,
            Segment::Rest => 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Variable {
    /// Dotted field path, split (`user.id` -> `["user", "id"]`).
    pub field_path: Vec<String>,
    start: usize,
    end: usize,
}

#[derive(Debug, Clone)]
pub struct Template {
    segments: Vec<Segment>,
    pub variables: Vec<Variable>,
    /// The custom verb with its colon (`:suspend`), matched as a suffix of the request path.
    verb: Option<String>,
}

/// Path variables bound by a match: field path and percent-decoded value.
pub type Bindings = Vec<(Vec<String>, String)>;

impl Template {
    pub fn parse(src: &str) -> Result<Template, String> {
        let rest = src.strip_prefix('/').ok_or("a path template must start with '/'")?;
        let (body, verb) = split_verb(rest);
        let mut segments = Vec::new();
        let mut variables = Vec::new();
        for piece in split_top_level(body)? {
            if let Some(inner) = piece.strip_prefix('{') {
                let inner = inner.strip_suffix('}').ok_or_else(|| format!("unclosed variable in `{piece}`"))?;
                let (path, pattern) = inner.split_once('=').unwrap_or((inner, "*"));
                let field_path: Vec<String> = path.split('.').map(str::to_owned).collect();
                if field_path.iter().any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')) {
                    return Err(format!("invalid field path `{path}`"));
                }
                let start = segments.len();
                for part in pattern.split('/') {
                    segments.push(plain_segment(part)?);
                }
                variables.push(Variable { field_path, start, end: segments.len() });
            } else {
                segments.push(plain_segment(piece)?);
            }
        }
        if segments.iter().rev().skip(1).any(|s| *s == Segment::Rest) {
            return Err("`**` must be the last segment".into());
        }
        if verb.as_deref().is_some_and(|v| v.len() < 2 || v.contains(['/', '{', '}', '*'])) {
            return Err("invalid custom verb".into());
        }
        Ok(Template { segments, variables, verb })
    }

    /// The template with variable names erased (`/v1/users/*:suspend`): two bindings of the same
    /// HTTP method with the same shape can never be told apart, whatever their variables are named.
    pub fn shape(&self) -> String {
        let mut out = String::new();
        for s in &self.segments {
            out.push('/');
            out.push_str(match s {
                Segment::Literal(l) => l,
                Segment::Single => "*",
                Segment::Rest => "**",
            });
        }
        if out.is_empty() {
            out.push('/');
        }
        out.push_str(self.verb.as_deref().unwrap_or(""));
        out
    }

    /// Ordering key: the more specific template has the greater key.
    pub fn specificity(&self) -> (Vec<u8>, bool) {
        (self.segments.iter().map(Segment::rank).collect(), self.verb.is_some())
    }

    /// Matches a request path (without query); returns the variable bindings.
    pub fn matches(&self, path: &str) -> Option<Bindings> {
        let mut path = path.strip_prefix('/')?;
        if let Some(verb) = &self.verb {
            path = path.strip_suffix(verb.as_str())?;
        }
        let parts: Vec<&str> = if path.is_empty() { Vec::new() } else { path.split('/').collect() };
        let mut matched_rest = false;
        for (i, seg) in self.segments.iter().enumerate() {
            match seg {
                Segment::Literal(l) if parts.get(i) == Some(&l.as_str()) => {}
                Segment::Single if parts.get(i).is_some_and(|p| !p.is_empty()) => {}
                Segment::Rest => matched_rest = true,
                _ => return None,
            }
        }
        if !matched_rest && parts.len() != self.segments.len() {
            return None;
        }
        let bindings = self
            .variables
            .iter()
            .map(|v| {
                let end = if matched_rest && v.end == self.segments.len() { parts.len() } else { v.end };
                let raw = parts[v.start.min(parts.len())..end].join("/");
                (v.field_path.clone(), percent_decode_str(&raw).decode_utf8_lossy().into_owned())
            })
            .collect();
        Some(bindings)
    }
}

fn plain_segment(s: &str) -> Result<Segment, String> {
    match s {
        "*" => Ok(Segment::Single),
        "**" => Ok(Segment::Rest),
        "" => Err("empty path segment".into()),
        l if l.contains(['{', '}', '=']) => Err(format!("invalid literal segment `{l}`")),
        l => Ok(Segment::Literal(l.to_owned())),
    }
}

/// Splits off the custom verb: the last `:` outside braces and after the last top-level `/`.
fn split_verb(s: &str) -> (&str, Option<String>) {
    let mut depth = 0i32;
    let mut colon = None;
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            '/' if depth == 0 => colon = None,
            ':' if depth == 0 => colon = Some(i),
            _ => {}
        }
    }
    match colon {
        Some(i) => (&s[..i], Some(s[i..].to_owned())),
        None => (s, None),
    }
}

/// Splits on `/` outside braces, so `{name=users/*}` stays one piece.
fn split_top_level(s: &str) -> Result<Vec<&str>, String> {
    if s.is_empty() {
        return Ok(Vec::new());
    }
    let (mut depth, mut start, mut out) = (0i32, 0, Vec::new());
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            '/' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err("unbalanced or nested braces".into());
        }
    }
    out.push(&s[start..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bind(t: &str, path: &str) -> Option<Vec<(String, String)>> {
        let t = Template::parse(t).unwrap();
        t.matches(path).map(|b| b.into_iter().map(|(f, v)| (f.join("."), v)).collect())
    }

    #[test]
    fn literals_variables_and_verbs() {
        assert_eq!(bind("/v1/users", "/v1/users"), Some(vec![]));
        assert_eq!(bind("/v1/users", "/v1/users/x"), None);
        assert_eq!(bind("/v1/users/{user_id}", "/v1/users/a%20b"), Some(vec![("user_id".into(), "a b".into())]));
        assert_eq!(bind("/v1/users/{user.id}", "/v1/users/7"), Some(vec![("user.id".into(), "7".into())]));
        assert_eq!(bind("/v1/users/{user_id}:suspend", "/v1/users/7:suspend"), Some(vec![("user_id".into(), "7".into())]));
        assert_eq!(bind("/v1/users/{user_id}:suspend", "/v1/users/7"), None);
        assert_eq!(bind("/v1/users/{user_id}", "/v1/users/"), None);
        assert_eq!(bind("/.well-known/jwks.json", "/.well-known/jwks.json"), Some(vec![]));
    }

    #[test]
    fn patterns_and_double_star() {
        let b = bind("/v1/{name=orgs/*/members/*}", "/v1/orgs/o1/members/m2");
        assert_eq!(b, Some(vec![("name".into(), "orgs/o1/members/m2".into())]));
        assert_eq!(bind("/v1/{name=orgs/*}", "/v1/teams/o1"), None);
        assert_eq!(bind("/files/{path=**}", "/files/a/b/c"), Some(vec![("path".into(), "a/b/c".into())]));
        assert_eq!(bind("/files/{path=**}:download", "/files/a/b:download"), Some(vec![("path".into(), "a/b".into())]));
        assert!(Template::parse("/a/**/b").is_err());
        assert!(Template::parse("v1/users").is_err());
        assert!(Template::parse("/v1/{user").is_err());
    }

    #[test]
    fn shape_and_specificity() {
        let a = Template::parse("/v1/users/{id}:suspend").unwrap();
        let b = Template::parse("/v1/users/{user_id}:suspend").unwrap();
        assert_eq!(a.shape(), b.shape());
        assert_eq!(a.shape(), "/v1/users/*:suspend");
        let lit = Template::parse("/v1/users/me").unwrap();
        let var = Template::parse("/v1/users/{id}").unwrap();
        assert!(lit.specificity() > var.specificity());
        assert!(a.specificity() > var.specificity());
    }
}
