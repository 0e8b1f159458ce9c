//! Message templates: files under `server/templates/` compiled into the binary, replaced or
//! extended by the files of `delivery.templates_dir`, rendered with MiniJinja. See
//! `server/templates/README.md` for the layout and each template's variables.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use minijinja::{Environment, UndefinedBehavior, Value, syntax::SyntaxConfig};
use serde::{Deserialize, Serialize};

use super::Channel;
use crate::error::{Error, Result};

/// `(name, source)` of each listed file of `server/templates/`, read at compile time.
macro_rules! embed {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../templates/", $path)))),*]
    };
}

/// Every file of `server/templates/` (a unit test checks that none is missing here).
const EMBEDDED: &[(&str, &str)] = embed![
    "email/_layout.html",
    "email/verify_email.en.subject",
    "email/verify_email.en.txt",
    "email/verify_email.en.html",
    "email/password_reset.en.subject",
    "email/password_reset.en.txt",
    "email/password_reset.en.html",
    "email/magic_link.en.subject",
    "email/magic_link.en.txt",
    "email/magic_link.en.html",
    "email/email_2fa.en.subject",
    "email/email_2fa.en.txt",
    "email/email_2fa.en.html",
    "email/invitation.en.subject",
    "email/invitation.en.txt",
    "email/invitation.en.html",
    "sms/verify_mobile.en.txt",
    "sms/password_reset.en.txt",
    "sms/mobile_2fa.en.txt",
];

/// A rendered message: what the outbox seals and the worker sends.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rendered {
    /// The email subject (`None` for SMS).
    pub subject: Option<String>,
    /// The plain-text body, or the SMS text.
    pub text: String,
    /// The HTML alternative of an email, when the template has one.
    pub html: Option<String>,
}

/// Never prints the content: it carries codes and links.
impl std::fmt::Debug for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rendered(..)")
    }
}

/// The compiled templates.
pub struct Templates {
    env: Environment<'static>,
    /// The names present, e.g. `email/verify_email.en.txt`.
    names: BTreeSet<String>,
    default_locale: String,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("count", &self.names.len())
            .finish()
    }
}

impl Templates {
    /// The built-in templates, overridden by the files under `dir` (when not empty). Every
    /// template is compiled here, so a syntax error stops the start rather than a message.
    pub fn load(dir: &str, default_locale: &str) -> anyhow::Result<Self> {
        let mut sources: BTreeMap<String, String> = EMBEDDED
            .iter()
            .map(|(name, source)| (name.to_string(), source.to_string()))
            .collect();
        if !dir.is_empty() {
            for (name, source) in read_dir(Path::new(dir))? {
                sources.insert(name, source);
            }
        }
        Self::from_sources(sources, default_locale)
    }

    fn from_sources(
        sources: BTreeMap<String, String>,
        default_locale: &str,
    ) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        env.set_syntax(
            SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()?,
        );
        // Printing a variable the caller did not give fails; `{% if x %}` on it is allowed.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        let names: BTreeSet<String> = sources.keys().cloned().collect();
        for (name, source) in sources {
            env.add_template_owned(name.clone(), source)
                .map_err(|e| anyhow::anyhow!("template {name}: {e}"))?;
        }
        Ok(Self {
            env,
            names,
            default_locale: normalize_locale(default_locale).unwrap_or_else(|| "en".into()),
        })
    }

    /// The locales to try for `requested`, most specific first: `pt-br`, `pt`, the default, `en`.
    fn candidates(&self, requested: Option<&str>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Some(locale) = requested.and_then(normalize_locale) {
            if let Some((language, _)) = locale.split_once('-') {
                let language = language.to_string();
                out.push(locale);
                out.push(language);
            } else {
                out.push(locale);
            }
        }
        out.push(self.default_locale.clone());
        out.push("en".into());
        let mut seen = BTreeSet::new();
        out.retain(|l| seen.insert(l.clone()));
        out
    }

    /// The locale of `template` on `channel` used for `requested`, if the template exists.
    pub fn resolve(
        &self,
        channel: Channel,
        template: &str,
        requested: Option<&str>,
    ) -> Option<String> {
        if !valid_name(template) {
            return None;
        }
        self.candidates(requested).into_iter().find(|locale| {
            let base = format!("{}/{template}.{locale}", channel.as_str());
            self.names.contains(&format!("{base}.txt"))
                && (channel == Channel::Sms || self.names.contains(&format!("{base}.subject")))
        })
    }

    /// Renders `template` for `channel` in the best locale for `requested`; returns the locale
    /// used and the message.
    pub fn render(
        &self,
        channel: Channel,
        template: &str,
        requested: Option<&str>,
        vars: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(String, Rendered)> {
        let locale = self.resolve(channel, template, requested).ok_or_else(|| {
            Error::internal(format!(
                "no {} template `{template}` (in any locale)",
                channel.as_str()
            ))
        })?;
        let ctx = Value::from(minijinja::value::Serde(vars));
        let base = format!("{}/{template}.{locale}", channel.as_str());
        let render = |name: &str| -> Result<String> {
            self.env
                .get_template(name)
                .and_then(|t| t.render(ctx.clone()))
                .map_err(|e| Error::internal(format!("template {name}: {e}")))
        };
        let rendered = match channel {
            Channel::Email => {
                let subject = render(&format!("{base}.subject"))?;
                // One line: a newline in a header would start another header.
                let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
                let html_name = format!("{base}.html");
                let html = if self.names.contains(&html_name) {
                    Some(render(&html_name)?)
                } else {
                    None
                };
                Rendered {
                    subject: Some(subject),
                    text: tidy(&render(&format!("{base}.txt"))?),
                    html,
                }
            }
            Channel::Sms => Rendered {
                subject: None,
                text: render(&format!("{base}.txt"))?.trim().to_string(),
                html: None,
            },
        };
        Ok((locale, rendered))
    }
}

/// Lower-case, `_` as `-`, only letters, digits and dashes; anything else is no locale.
pub fn normalize_locale(locale: &str) -> Option<String> {
    let locale = locale.trim().replace('_', "-").to_ascii_lowercase();
    let ok = !locale.is_empty()
        && locale.len() <= 35
        && locale
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !locale.starts_with('-')
        && !locale.contains("--");
    ok.then_some(locale)
}

/// Template names are lower-case words with underscores (they become file names).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with('_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Trailing spaces off each line, no leading or trailing blank lines, one final newline.
fn tidy(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let mut out = lines.join("\n").trim_matches('\n').to_string();
    out.push('\n');
    out
}

/// The template files under `dir`: `email/*` and `sms/*`, named as in the embedded set.
fn read_dir(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for channel in ["email", "sms"] {
        let sub = dir.join(channel);
        if !sub.is_dir() {
            continue;
        }
        for entry in
            std::fs::read_dir(&sub).map_err(|e| anyhow::anyhow!("{}: {e}", sub.display()))?
        {
            let path = entry?.path();
            let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
                continue;
            };
            if !path.is_file() || file.starts_with('.') {
                continue;
            }
            let source = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            out.push((format!("{channel}/{file}"), source));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn vars(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn every_template_file_is_embedded() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut on_disk: Vec<String> = read_dir(&root)
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = EMBEDDED.iter().map(|(name, _)| name.to_string()).collect();
        embedded.sort();
        assert_eq!(
            on_disk, embedded,
            "add new files of server/templates to EMBEDDED"
        );
    }

    #[test]
    fn every_builtin_template_renders_with_codes_and_links() {
        let t = Templates::load("", "en").unwrap();
        let email = [
            "verify_email",
            "password_reset",
            "magic_link",
            "email_2fa",
            "invitation",
        ];
        let sms = ["verify_mobile", "password_reset", "mobile_2fa"];
        let full = vars(json!({
            "code": "493817", "link": "https://id.example/l?t=abc&x=1", "name": "Ama",
            "expires_minutes": 15, "organization": "Acme", "inviter": "Kofi", "role": "admin", "expires_days": 7
        }));
        for name in email {
            let (locale, r) = t.render(Channel::Email, name, None, &full).unwrap();
            assert_eq!(locale, "en");
            let subject = r.subject.unwrap();
            assert!(
                !subject.is_empty() && !subject.contains('\n'),
                "{name}: {subject:?}"
            );
            assert!(
                r.text.contains("493817") || r.text.contains("https://id.example/l?t=abc&x=1"),
                "{name}: {}",
                r.text
            );
            let html = r.html.expect("every built-in email has HTML");
            assert!(
                html.contains("&amp;") || html.contains("493817"),
                "{name}: HTML escapes the link"
            );
            assert!(!r.text.contains("{{") && !html.contains("{%"));
        }
        for name in sms {
            let (_, r) = t.render(Channel::Sms, name, None, &full).unwrap();
            assert!(r.subject.is_none() && r.html.is_none());
            assert!(r.text.len() <= 160, "{name} fits one SMS: {}", r.text.len());
            assert!(!r.text.contains('\n'));
        }
        // Code-only variants.
        let code = vars(json!({"code": "111222"}));
        for name in ["verify_email", "password_reset", "email_2fa"] {
            let (_, r) = t.render(Channel::Email, name, None, &code).unwrap();
            assert!(
                r.text.contains("111222") && !r.text.contains("expires"),
                "{name}: {}",
                r.text
            );
        }
        for name in ["verify_mobile", "password_reset", "mobile_2fa"] {
            let (_, r) = t.render(Channel::Sms, name, None, &code).unwrap();
            assert!(r.text.contains("111222"), "{name}: {}", r.text);
        }
    }

    #[test]
    fn missing_variable_fails_instead_of_sending_a_blank_code() {
        let t = Templates::load("", "en").unwrap();
        let err = t
            .render(Channel::Sms, "mobile_2fa", None, &vars(json!({})))
            .unwrap_err();
        assert!(err.to_string().contains("mobile_2fa"), "{err}");
        assert!(
            t.render(Channel::Email, "no_such_template", None, &vars(json!({})))
                .is_err()
        );
        assert!(
            t.render(
                Channel::Sms,
                "verify_email",
                None,
                &vars(json!({"code": "1"}))
            )
            .is_err(),
            "email-only"
        );
        assert!(
            t.render(Channel::Email, "../secret", None, &vars(json!({})))
                .is_err()
        );
    }

    #[test]
    fn locale_falls_back_from_region_to_language_to_default_to_english() {
        let mut sources: BTreeMap<String, String> = EMBEDDED
            .iter()
            .map(|(n, s)| (n.to_string(), s.to_string()))
            .collect();
        sources.insert("sms/mobile_2fa.pt.txt".into(), "Código {{ code }}".into());
        sources.insert(
            "sms/mobile_2fa.pt-br.txt".into(),
            "Seu código {{ code }}".into(),
        );
        sources.insert(
            "sms/mobile_2fa.de.txt".into(),
            "Code {{ code }} (de)".into(),
        );
        let t = Templates::from_sources(sources.clone(), "de").unwrap();
        let v = vars(json!({"code": "42"}));
        let text = |l: Option<&str>| t.render(Channel::Sms, "mobile_2fa", l, &v).unwrap();
        assert_eq!(
            text(Some("pt-BR")),
            (
                "pt-br".into(),
                Rendered {
                    subject: None,
                    text: "Seu código 42".into(),
                    html: None
                }
            )
        );
        assert_eq!(text(Some("pt_PT")).0, "pt");
        assert_eq!(text(Some("pt")).0, "pt");
        assert_eq!(text(Some("fr")).0, "de", "the deployment's default locale");
        assert_eq!(text(None).0, "de");
        assert_eq!(
            text(Some("../../etc")).0,
            "de",
            "a malformed locale is ignored"
        );
        let t = Templates::from_sources(sources, "en").unwrap();
        assert_eq!(
            t.render(Channel::Sms, "mobile_2fa", Some("fr"), &v)
                .unwrap()
                .0,
            "en"
        );
        // An email locale needs both subject and body.
        assert_eq!(
            t.resolve(Channel::Email, "verify_email", Some("pt")),
            Some("en".into())
        );
    }

    #[test]
    fn a_broken_template_fails_at_load() {
        let mut sources = BTreeMap::new();
        sources.insert("sms/x.en.txt".to_string(), "{% if %}".to_string());
        assert!(Templates::from_sources(sources, "en").is_err());
    }

    #[test]
    fn the_templates_dir_overrides_and_adds() {
        let dir =
            std::env::temp_dir().join(format!("mgpass-tpl-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("sms")).unwrap();
        std::fs::write(dir.join("sms/mobile_2fa.en.txt"), "Custom {{ code }}").unwrap();
        std::fs::write(dir.join("sms/mobile_2fa.fr.txt"), "Votre code {{ code }}").unwrap();
        let t = Templates::load(dir.to_str().unwrap(), "en").unwrap();
        let v = vars(json!({"code": "7"}));
        assert_eq!(
            t.render(Channel::Sms, "mobile_2fa", None, &v)
                .unwrap()
                .1
                .text,
            "Custom 7"
        );
        assert_eq!(
            t.render(Channel::Sms, "mobile_2fa", Some("fr"), &v)
                .unwrap()
                .1
                .text,
            "Votre code 7"
        );
        assert_eq!(
            t.render(Channel::Sms, "verify_mobile", None, &v).unwrap().0,
            "en",
            "built-ins stay"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
