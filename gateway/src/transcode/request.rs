//! Builds the gRPC request message of a REST call. Body, path variables and query parameters
//! are merged into one JSON object that prost-reflect then deserializes with unknown fields
//! denied, so every JSON rule (names, types, well-known types) is the canonical proto3 one and
//! never re-implemented here.

use std::collections::BTreeMap;

use prost_reflect::{DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor};
use serde_json::{Map, Value};

use super::error::RestError;
use super::routes::{BodyRule, Route, resolve_path};
use super::template::Bindings;

/// The request message of `route` from the path bindings, the raw query string and the body.
pub fn build(route: &Route, bindings: Bindings, query: Option<&str>, body: &[u8]) -> Result<DynamicMessage, RestError> {
    let input = route.method.input();
    let mut root = Map::new();
    let body = body.trim_ascii();
    match &route.body {
        BodyRule::None if !body.is_empty() => {
            return Err(RestError::invalid_argument("this method takes no request body"));
        }
        BodyRule::None => {}
        BodyRule::Whole if body.is_empty() => {}
        BodyRule::Whole => match parse_json(body)? {
            Value::Object(obj) => root = obj,
            _ => return Err(RestError::invalid_argument("the request body must be a JSON object")),
        },
        // An empty body leaves the field unset (an empty message for the server).
        BodyRule::Field(_) if body.is_empty() => {}
        BodyRule::Field(fields) => set_path(&mut root, fields, parse_json(body)?)?,
    }

    let mut bound: Vec<Vec<FieldDescriptor>> = Vec::new();
    for (names, raw) in bindings {
        let fields = resolve_path(&input, &names)?;
        let value = text_to_json(fields.last().expect("non-empty path"), &raw)?;
        // The path wins over a conflicting body value: the URL names the resource.
        set_path(&mut root, &fields, value)?;
        bound.push(fields);
    }

    if let Some(query) = query.filter(|q| !q.is_empty()) {
        apply_query(&mut root, &input, &route.body, &bound, query)?;
    }

    let options = DeserializeOptions::new(); // denies unknown fields and unknown enum names
    DynamicMessage::deserialize_with_options(input, Value::Object(root), &options).map_err(deserialize_error)
}

fn parse_json(body: &[u8]) -> Result<Value, RestError> {
    serde_json::from_slice(body).map_err(RestError::malformed_json)
}

/// Query parameters fill the fields left unbound by the path and the body: `a.b=1` sets nested
/// fields, a repeated field takes every occurrence of its parameter.
fn apply_query(
    root: &mut Map<String, Value>,
    input: &MessageDescriptor,
    body: &BodyRule,
    bound: &[Vec<FieldDescriptor>],
    query: &str,
) -> Result<(), RestError> {
    let mut params: BTreeMap<String, (Vec<FieldDescriptor>, Vec<Value>)> = BTreeMap::new();
    for (name, raw) in form_urlencoded::parse(query.as_bytes()) {
        let names: Vec<&str> = name.split('.').collect();
        let fields = resolve_path(input, &names)?;
        let covered_by_body = match body {
            BodyRule::Whole => true,
            BodyRule::Field(b) => overlaps(b, &fields),
            BodyRule::None => false,
        };
        if covered_by_body || bound.iter().any(|b| overlaps(b, &fields)) {
            return Err(RestError::invalid_argument(format!("`{name}` is set by the path or the body, not by a query parameter")));
        }
        let leaf = fields.last().expect("non-empty path");
        let value = text_to_json(leaf, &raw)?;
        let entry = params.entry(name.into_owned()).or_insert_with(|| (fields.clone(), Vec::new()));
        if !leaf.is_list() && !entry.1.is_empty() {
            return Err(RestError::invalid_argument(format!("`{}` is not repeated but given more than once", leaf.name())));
        }
        entry.1.push(value);
    }
    for (fields, mut values) in params.into_values() {
        let value = if fields.last().is_some_and(FieldDescriptor::is_list) { Value::Array(values) } else { values.remove(0) };
        set_path(root, &fields, value)?;
    }
    Ok(())
}

/// Whether one field path is a prefix of the other (then they set the same data).
fn overlaps(a: &[FieldDescriptor], b: &[FieldDescriptor]) -> bool {
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// The JSON form of a value given as text (path segment or query parameter), by field kind.
/// Numbers stay strings: proto3 JSON accepts their string forms, including int64 and `NaN`.
fn text_to_json(field: &FieldDescriptor, raw: &str) -> Result<Value, RestError> {
    if field.is_map() {
        return Err(RestError::invalid_argument(format!("map field `{}` cannot be set from the URL", field.name())));
    }
    kind_to_json(field.name(), &field.kind(), raw)
}

fn kind_to_json(name: &str, kind: &Kind, raw: &str) -> Result<Value, RestError> {
    Ok(match kind {
        Kind::Bool => match raw {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(RestError::invalid_argument(format!("`{name}` must be true or false, not `{raw}`"))),
        },
        // Enums by name, or by number as a convenience.
        Kind::Enum(_) => raw.parse::<i32>().map(Value::from).unwrap_or_else(|_| Value::from(raw)),
        Kind::Message(m) => match m.full_name() {
            // Well-known types whose JSON form is a string.
            "google.protobuf.Timestamp" | "google.protobuf.Duration" | "google.protobuf.FieldMask" => Value::from(raw),
            // Wrappers take the JSON form of their `value`.
            w if w.starts_with("google.protobuf.") && w.ends_with("Value") && m.get_field_by_name("value").is_some() => {
                let inner = m.get_field_by_name("value").expect("checked");
                return kind_to_json(name, &inner.kind(), raw);
            }
            _ => return Err(RestError::invalid_argument(format!("message field `{name}` cannot be set from the URL"))),
        },
        _ => Value::from(raw),
    })
}

/// Sets `value` at a field path, creating intermediate objects. Keys are JSON names; a key
/// spelled with the proto name (also valid JSON input) is renamed first so one field never
/// appears twice.
fn set_path(root: &mut Map<String, Value>, fields: &[FieldDescriptor], value: Value) -> Result<(), RestError> {
    let (last, parents) = fields.split_last().expect("non-empty path");
    let mut obj = root;
    for field in parents {
        let slot = slot(obj, field);
        if slot.is_null() {
            *slot = Value::Object(Map::new());
        }
        obj = slot
            .as_object_mut()
            .ok_or_else(|| RestError::invalid_argument(format!("`{}` must be a JSON object", field.json_name())))?;
    }
    *slot(obj, last) = value;
    Ok(())
}

fn slot<'a>(obj: &'a mut Map<String, Value>, field: &FieldDescriptor) -> &'a mut Value {
    let json = field.json_name();
    if json != field.name()
        && let Some(v) = obj.remove(field.name())
    {
        obj.entry(json).or_insert(v);
    }
    obj.entry(json).or_insert(Value::Null)
}

/// prost-reflect reports semantic errors as serde_json data errors; an unknown key is the one
/// case with its own reason, so clients can point at the offending field.
fn deserialize_error(err: serde_json::Error) -> RestError {
    let message = err.to_string();
    let unknown = message.strip_prefix("unrecognized field name '").and_then(|rest| rest.split('\'').next());
    match unknown {
        Some(field) => RestError::unknown_field(field),
        None => RestError::invalid_argument(message),
    }
}
