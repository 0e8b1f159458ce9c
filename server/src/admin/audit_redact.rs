//! What of a message may enter the audit log: its JSON form with every secret replaced by
//! `"[REDACTED]"`. A field is a secret when the proto marks it `INPUT_ONLY`
//! (`google.api.field_behavior`: passwords, codes, client secrets, link tokens), or when it is a
//! string whose name says so (`key`, `code`, `token`, `secret`, `password` and `*_key`, `*_code`,
//! `*_codes`, `*_token`, `*_secret`, `*_password`): that covers output secrets such as a created
//! API key, an access or refresh token, a client secret or recovery codes.

use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage, Value,
};

/// The marker put in place of a secret.
pub const REDACTED: &str = "[REDACTED]";
/// `google.api.FieldBehavior.INPUT_ONLY`.
const INPUT_ONLY: i32 = 4;
/// Paging cursors end in `_token` but are no secret.
const NOT_SECRET: [&str; 3] = ["page_token", "next_page_token", "token_type"];

fn input_only(field: &FieldDescriptor) -> bool {
    let pool = field.parent_pool();
    let Some(ext) = pool.get_extension_by_name("google.api.field_behavior") else {
        return false;
    };
    let options = field.options();
    if !options.has_extension(&ext) {
        return false;
    }
    match options.get_extension(&ext).as_ref() {
        Value::List(list) => list.iter().any(|v| v.as_enum_number() == Some(INPUT_ONLY)),
        Value::EnumNumber(n) => *n == INPUT_ONLY,
        _ => false,
    }
}

fn secret_name(name: &str) -> bool {
    if NOT_SECRET.contains(&name) {
        return false;
    }
    const WORDS: [&str; 5] = ["key", "code", "token", "secret", "password"];
    // `otpauth_uri` carries the TOTP secret inside the URI.
    WORDS
        .iter()
        .any(|w| name == *w || name.ends_with(&format!("_{w}")))
        || name == "codes"
        || name.ends_with("_codes")
        || name == "otpauth_uri"
}

/// Whether a field's value must never be stored.
pub fn is_secret(field: &FieldDescriptor) -> bool {
    input_only(field)
        || (matches!(field.kind(), Kind::String | Kind::Bytes) && secret_name(field.name()))
}

/// Redacts `message` in place, recursively (nested messages, lists and maps).
pub fn redact(message: &mut DynamicMessage) {
    let descriptor: MessageDescriptor = message.descriptor();
    for field in descriptor.fields() {
        if !message.has_field(&field) {
            continue;
        }
        if is_secret(&field) {
            let marker = match field.kind() {
                Kind::String if field.is_list() => {
                    Value::List(vec![Value::String(REDACTED.into())])
                }
                Kind::String => Value::String(REDACTED.into()),
                _ => {
                    message.clear_field(&field);
                    continue;
                }
            };
            message.set_field(&field, marker);
            continue;
        }
        redact_value(message.get_field_mut(&field));
    }
}

fn redact_value(value: &mut Value) {
    match value {
        Value::Message(m) => redact(m),
        Value::List(items) => items.iter_mut().for_each(redact_value),
        Value::Map(map) => map.values_mut().for_each(redact_value),
        _ => {}
    }
}

/// The JSON form of a message, redacted; `None` if it cannot be rendered.
pub fn redacted_json(mut message: DynamicMessage) -> Option<serde_json::Value> {
    redact(&mut message);
    serde_json::to_value(&message).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(name: &str, json: serde_json::Value) -> DynamicMessage {
        let pool = mgpass_proto::descriptor_pool();
        let desc = pool.get_message_by_name(name).unwrap();
        DynamicMessage::deserialize(desc, json).unwrap()
    }

    #[test]
    fn input_only_and_secret_names_are_redacted() {
        let login = message(
            "mgpass.identity.v1.LoginRequest",
            serde_json::json!({"identifier": "a@b.c", "password": "hunter2hunter2"}),
        );
        let json = redacted_json(login).unwrap();
        assert_eq!(json["identifier"], "a@b.c");
        assert_eq!(json["password"], REDACTED);

        let created = message(
            "mgpass.access.v1.CreateMyApiKeyResponse",
            serde_json::json!({"apiKey": {"name": "ci", "prefix": "mgp_abcdefgh"}, "key": "mgp_secret"}),
        );
        let json = redacted_json(created).unwrap();
        assert_eq!(json["key"], REDACTED);
        assert_eq!(json["apiKey"]["name"], "ci");
        assert!(!json.to_string().contains("mgp_secret"));

        let listed = message(
            "mgpass.access.v1.ListMyApiKeysRequest",
            serde_json::json!({"pageToken": "abc"}),
        );
        assert_eq!(redacted_json(listed).unwrap()["pageToken"], "abc");
    }
}
