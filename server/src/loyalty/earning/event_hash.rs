//! The fingerprint of an event's body: two sends of one partner event id are the same event when
//! their type, user, occur time, amount and attributes are equal (`docs/loyalty.md`). The body is
//! written as canonical JSON (keys sorted at every depth) and hashed with SHA-256.

use serde_json::{Value, json};

/// Writes JSON with object keys sorted at every depth, whatever the map's own order.
fn write(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String((*k).clone()).to_string());
                out.push(':');
                write(&map[*k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// SHA-256 of the canonical body.
pub fn hash(
    event_type: &str,
    customer: &str,
    occur_micros: i64,
    amount: Option<(i64, &str)>,
    attributes: &Value,
) -> Vec<u8> {
    let body = json!({
        "type": event_type,
        "user": customer,
        "occur": occur_micros,
        "amount": amount.map(|(a, c)| json!({"minor": a, "currency": c})),
        "attributes": attributes,
    });
    let mut text = String::new();
    write(&body, &mut text);
    crate::crypto::secret::digest(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_order_does_not_matter_values_do() {
        let a = hash(
            "purchase",
            "email:a@b.c",
            1,
            Some((100, "GHS")),
            &json!({"x": 1, "y": {"b": 2, "a": 1}}),
        );
        let b = hash(
            "purchase",
            "email:a@b.c",
            1,
            Some((100, "GHS")),
            &json!({"y": {"a": 1, "b": 2}, "x": 1}),
        );
        let c = hash(
            "purchase",
            "email:a@b.c",
            1,
            Some((101, "GHS")),
            &json!({"x": 1, "y": {"b": 2, "a": 1}}),
        );
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
