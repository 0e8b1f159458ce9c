//! The deployment's identity rules (the Mindbricks login definition): which identifiers exist and
//! are required, how names are stored, and the custom properties every user write is checked
//! against.

use serde_json::{Map, Value};

use crate::{
    config::IdentityConfig,
    error::{Error, Result},
};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Primary {
    Email,
    Mobile,
    EmailOrMobile,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Presence {
    None,
    Optional,
    Required,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PropertyKind {
    String,
    Integer,
    Boolean,
    Enum(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Property {
    pub name: String,
    pub kind: PropertyKind,
    pub required: bool,
    pub default: Option<Value>,
    pub unique: bool,
}

#[derive(Debug, Clone)]
pub struct IdentityPolicy {
    pub primary: Primary,
    /// Presence of the non-primary identifier (for `EmailOrMobile`: `Required` means both).
    pub secondary: Presence,
    pub full_name: bool,
    pub registration_public: bool,
    pub email_verification_required: bool,
    pub mobile_verification_required: bool,
    pub properties: Vec<Property>,
}

fn property(
    section: &str,
    cfg: &crate::config::PropertyConfig,
) -> std::result::Result<Property, String> {
    let valid_name = cfg.name.len() <= 40
        && cfg
            .name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
        && cfg
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(format!(
            "{section}.properties: `{}` is not a valid property name",
            cfg.name
        ));
    }
    let kind = match cfg.kind.as_str() {
        "string" => PropertyKind::String,
        "integer" => PropertyKind::Integer,
        "boolean" => PropertyKind::Boolean,
        "enum" if !cfg.values.is_empty() => PropertyKind::Enum(cfg.values.clone()),
        "enum" => {
            return Err(format!(
                "{section}.properties.{}: an enum needs `values`",
                cfg.name
            ));
        }
        other => {
            return Err(format!(
                "{section}.properties.{}: unknown type `{other}`",
                cfg.name
            ));
        }
    };
    let prop = Property {
        name: cfg.name.clone(),
        kind,
        required: cfg.required,
        default: cfg.default.clone(),
        unique: cfg.unique,
    };
    if let Some(default) = &prop.default {
        check_value(&prop, default)
            .map_err(|e| format!("{section}.properties.{}: default {e}", cfg.name))?;
    }
    Ok(prop)
}

/// Reads the custom properties declared under `<section>.properties` (users under `identity`,
/// organizations under `organizations`); every problem is reported.
pub fn parse_properties(
    section: &str,
    cfgs: &[crate::config::PropertyConfig],
) -> std::result::Result<Vec<Property>, Vec<String>> {
    let mut bad = Vec::new();
    let mut properties = Vec::new();
    for p in cfgs {
        match property(section, p) {
            Ok(prop) if properties.iter().any(|q: &Property| q.name == prop.name) => {
                bad.push(format!(
                    "{section}.properties: `{}` is declared twice",
                    prop.name
                ));
            }
            Ok(prop) => properties.push(prop),
            Err(e) => bad.push(e),
        }
    }
    if bad.is_empty() {
        Ok(properties)
    } else {
        Err(bad)
    }
}

/// Validates custom property values against their declarations. On creation (`creating`),
/// defaults fill the gaps and required properties must be present; on update, the given map
/// replaces the stored one and the same rules apply to the result.
pub fn check_property_values(
    properties: &[Property],
    props: &mut Map<String, Value>,
    creating: bool,
    require: bool,
) -> Result<()> {
    if let Some(unknown) = props
        .keys()
        .find(|k| !properties.iter().any(|p| &p.name == *k))
    {
        return Err(invalid_property(unknown, "is not declared".into()));
    }
    for prop in properties {
        match props.get(&prop.name) {
            Some(Value::Null) | None => {
                props.remove(&prop.name);
                if creating {
                    if let Some(default) = &prop.default {
                        props.insert(prop.name.clone(), default.clone());
                        continue;
                    }
                }
                if prop.required && require {
                    return Err(invalid_property(&prop.name, "is required".into()));
                }
            }
            Some(value) => check_value(prop, value).map_err(|e| invalid_property(&prop.name, e))?,
        }
    }
    Ok(())
}

fn check_value(prop: &Property, value: &Value) -> std::result::Result<(), String> {
    let ok = match (&prop.kind, value) {
        (PropertyKind::String, Value::String(s)) => s.len() <= 1024,
        (PropertyKind::Integer, Value::Number(n)) => {
            n.as_i64().is_some() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        (PropertyKind::Boolean, Value::Bool(_)) => true,
        (PropertyKind::Enum(values), Value::String(s)) => values.contains(s),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        let expected = match &prop.kind {
            PropertyKind::String => "a string of at most 1024 bytes".to_string(),
            PropertyKind::Integer => "an integer".to_string(),
            PropertyKind::Boolean => "a boolean".to_string(),
            PropertyKind::Enum(values) => format!("one of {}", values.join(", ")),
        };
        Err(format!("must be {expected}"))
    }
}

fn invalid_property(name: &str, message: String) -> Error {
    Error::InvalidArgument {
        reason: "INVALID_PROPERTY",
        field: "properties",
        message: format!("property `{name}`: {message}"),
    }
}

impl IdentityPolicy {
    /// Reads and checks the configuration; every problem is reported.
    pub fn from_config(cfg: &IdentityConfig) -> std::result::Result<Self, Vec<String>> {
        let mut bad = Vec::new();
        let primary = match cfg.primary_identifier.as_str() {
            "email" => Primary::Email,
            "mobile" => Primary::Mobile,
            "emailOrMobile" => Primary::EmailOrMobile,
            other => {
                bad.push(format!(
                    "identity.primary_identifier: `{other}` must be email, mobile or emailOrMobile"
                ));
                Primary::Email
            }
        };
        let mut secondary = match cfg.secondary_identifier.as_str() {
            "none" => Presence::None,
            "optional" => Presence::Optional,
            "required" => Presence::Required,
            other => {
                bad.push(format!(
                    "identity.secondary_identifier: `{other}` must be none, optional or required"
                ));
                Presence::Optional
            }
        };
        if primary == Primary::EmailOrMobile {
            secondary = match cfg.dual_registration.as_str() {
                "atLeastOne" => Presence::Optional,
                "both" => Presence::Required,
                other => {
                    bad.push(format!(
                        "identity.dual_registration: `{other}` must be atLeastOne or both"
                    ));
                    Presence::Optional
                }
            };
        }
        let full_name = match cfg.user_name_type.as_str() {
            "asFullname" => true,
            "asNamePair" => false,
            other => {
                bad.push(format!(
                    "identity.user_name_type: `{other}` must be asNamePair or asFullname"
                ));
                false
            }
        };
        let properties = parse_properties("identity", &cfg.properties).unwrap_or_else(|errors| {
            bad.extend(errors);
            Vec::new()
        });
        if !bad.is_empty() {
            return Err(bad);
        }
        Ok(Self {
            primary,
            secondary,
            full_name,
            registration_public: cfg.registration_public,
            email_verification_required: cfg.email_verification_required_for_login,
            mobile_verification_required: cfg.mobile_verification_required_for_login,
            properties,
        })
    }

    /// Checks which identifiers a user has against the deployment's rules.
    pub fn check_identifiers(&self, email: Option<&str>, mobile: Option<&str>) -> Result<()> {
        let required = |field: &'static str, what: &str| {
            Err(Error::invalid(
                "IDENTIFIER_REQUIRED",
                field,
                format!("{what} is required"),
            ))
        };
        let (primary, secondary, primary_field, secondary_field, primary_name, secondary_name) =
            match self.primary {
                Primary::Email => (
                    email,
                    mobile,
                    "email",
                    "mobile",
                    "an email address",
                    "a mobile number",
                ),
                Primary::Mobile => (
                    mobile,
                    email,
                    "mobile",
                    "email",
                    "a mobile number",
                    "an email address",
                ),
                Primary::EmailOrMobile => {
                    return match (email, mobile, self.secondary) {
                        (None, None, _) => required("email", "an email address or a mobile number"),
                        (Some(_), Some(_), _) | (_, _, Presence::Optional) => Ok(()),
                        (None, _, _) => required("email", "an email address"),
                        (_, None, _) => required("mobile", "a mobile number"),
                    };
                }
            };
        if primary.is_none() {
            return required(primary_field, primary_name);
        }
        match (self.secondary, secondary) {
            (Presence::Required, None) => required(secondary_field, secondary_name),
            (Presence::None, Some(_)) => Err(Error::invalid(
                "INVALID_ARGUMENT",
                secondary_field,
                format!("{secondary_name} is not used in this deployment"),
            )),
            _ => Ok(()),
        }
    }

    /// Checks that only the name fields of the deployment's name type are used.
    pub fn check_names(&self, given: &str, family: &str, full: &str) -> Result<()> {
        let unused = if self.full_name {
            (!given.is_empty() || !family.is_empty()).then_some((
                "given_name",
                "given_name and family_name are not used: names are full names",
            ))
        } else {
            (!full.is_empty()).then_some((
                "full_name",
                "full_name is not used: names are given and family names",
            ))
        };
        match unused {
            Some((field, message)) => Err(Error::invalid("INVALID_ARGUMENT", field, message)),
            None => Ok(()),
        }
    }

    /// Validates custom properties. On creation (`creating`), defaults fill the gaps and required
    /// properties must be present; on update, the given map replaces the stored one and the same
    /// rules apply to the result.
    pub fn check_properties(
        &self,
        props: &mut Map<String, Value>,
        creating: bool,
        require: bool,
    ) -> Result<()> {
        check_property_values(&self.properties, props, creating, require)
    }

    /// The property of a unique index name (`users_prop_<name>_key`).
    pub fn unique_index(name: &str) -> String {
        format!("users_prop_{}_key", name.to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn policy(primary: &str, secondary: &str, dual: &str) -> IdentityPolicy {
        let cfg = IdentityConfig {
            primary_identifier: primary.into(),
            secondary_identifier: secondary.into(),
            dual_registration: dual.into(),
            ..Default::default()
        };
        IdentityPolicy::from_config(&cfg).unwrap()
    }

    #[test]
    fn identifier_rules_follow_the_login_definition() {
        let e = Some("a@example.com");
        let m = Some("+233201234567");
        assert!(
            policy("email", "optional", "atLeastOne")
                .check_identifiers(e, None)
                .is_ok()
        );
        assert!(
            policy("email", "optional", "atLeastOne")
                .check_identifiers(None, m)
                .is_err()
        );
        assert!(
            policy("email", "required", "atLeastOne")
                .check_identifiers(e, None)
                .is_err()
        );
        assert!(
            policy("email", "none", "atLeastOne")
                .check_identifiers(e, m)
                .is_err()
        );
        assert!(
            policy("mobile", "none", "atLeastOne")
                .check_identifiers(None, m)
                .is_ok()
        );
        assert!(
            policy("emailOrMobile", "none", "atLeastOne")
                .check_identifiers(None, m)
                .is_ok()
        );
        assert!(
            policy("emailOrMobile", "none", "both")
                .check_identifiers(None, m)
                .is_err()
        );
        assert!(
            policy("emailOrMobile", "none", "both")
                .check_identifiers(e, m)
                .is_ok()
        );
        assert!(
            policy("emailOrMobile", "none", "atLeastOne")
                .check_identifiers(None, None)
                .is_err()
        );
    }

    #[test]
    fn properties_are_typed_defaulted_and_required() {
        let mut cfg = IdentityConfig::default();
        cfg.properties = serde_json::from_value(json!([
            {"name": "newsletter", "type": "boolean", "default": false},
            {"name": "tier", "type": "enum", "values": ["free", "plus"], "required": true},
            {"name": "age", "type": "integer"},
        ]))
        .unwrap();
        let p = IdentityPolicy::from_config(&cfg).unwrap();
        let mut props = json!({"tier": "plus"}).as_object().unwrap().clone();
        p.check_properties(&mut props, true, true).unwrap();
        assert_eq!(props["newsletter"], json!(false));
        for bad in [
            json!({"tier": "gold"}),
            json!({}),
            json!({"tier": "free", "age": "3"}),
            json!({"tier": "free", "x": 1}),
        ] {
            let mut props = bad.as_object().unwrap().clone();
            assert!(p.check_properties(&mut props, true, true).is_err(), "{bad}");
        }
        cfg.properties[0].default = Some(json!("yes"));
        assert!(
            IdentityPolicy::from_config(&cfg).is_err(),
            "a default of the wrong type is a config error"
        );
    }
}
