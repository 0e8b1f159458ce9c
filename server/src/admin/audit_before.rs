//! The `before` of an audit entry: what the target looked like before the call changed it, read
//! with the service's own `Get` method for the same resource (`UpdateUser` → `GetUser`,
//! `RevokeApiKey` → `GetApiKey`, `SuspendUser` → `GetUser`), in process and as the same caller.
//!
//! The pairing is found once from the descriptors: a changing method `<Verb><Noun>` pairs with
//! `Get<Noun>` of the same service when every field of the `Get` request can be filled from the
//! changing request: the same field at the top (`user_id`), the `id` of the message field the
//! name points to (`user_id` ← `user.id`), or the same field inside a message field
//! (`organization_id` ← `org_role.organization_id`).

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, MethodDescriptor, ReflectMessage, Value};

/// Verbs that create rather than change: nothing exists before them.
const CREATING_VERBS: [&str; 5] = ["Create", "Add", "Register", "Ingest", "BatchIngest"];

/// How to read the target of one changing method.
pub struct BeforeRead {
    /// The gRPC path of the `Get` method.
    pub path: String,
    pub input: MessageDescriptor,
    pub output: MessageDescriptor,
}

/// The leading CamelCase word of a method name and the rest: `UpdateUser` → (`Update`, `User`).
fn split_verb(name: &str) -> Option<(&str, &str)> {
    let end = name
        .char_indices()
        .skip(1)
        .find(|(_, c)| c.is_ascii_uppercase())?
        .0;
    Some((&name[..end], &name[end..]))
}

/// The `Get` pairing of `method`, if its request can always fill the `Get` request.
pub fn pairing(method: &MethodDescriptor) -> Option<BeforeRead> {
    let (verb, noun) = split_verb(method.name())?;
    if CREATING_VERBS.contains(&verb) || verb == "Get" {
        return None;
    }
    let get = method
        .parent_service()
        .methods()
        .find(|m| m.name() == format!("Get{noun}"))?;
    let fillable = get
        .input()
        .fields()
        .all(|f| f.kind().as_message().is_none() && source_of(&method.input(), f.name()).is_some());
    fillable.then(|| BeforeRead {
        path: format!("/{}/{}", get.parent_service().full_name(), get.name()),
        input: get.input(),
        output: get.output(),
    })
}

/// Where a `Get` field's value sits in the changing request: a top field, or (message, field).
fn source_of(request: &MessageDescriptor, field: &str) -> Option<(Option<String>, String)> {
    if request
        .get_field_by_name(field)
        .is_some_and(|f| f.kind().as_message().is_none())
    {
        return Some((None, field.to_string()));
    }
    let messages: Vec<_> = request
        .fields()
        .filter(|f| f.kind().as_message().is_some() && !f.is_list())
        .collect();
    if let Some(noun) = field.strip_suffix("_id") {
        if let Some(m) = messages.iter().find(|m| m.name() == noun) {
            if m.kind()
                .as_message()
                .is_some_and(|d| d.get_field_by_name("id").is_some())
            {
                return Some((Some(noun.to_string()), "id".to_string()));
            }
        }
    }
    messages
        .iter()
        .find(|m| {
            m.kind()
                .as_message()
                .is_some_and(|d| d.get_field_by_name(field).is_some())
        })
        .map(|m| (Some(m.name().to_string()), field.to_string()))
}

/// The `Get` request for `request`, framed for gRPC; `None` when a value is missing.
pub fn get_request(read: &BeforeRead, request: &DynamicMessage) -> Option<Bytes> {
    let mut get = DynamicMessage::new(read.input.clone());
    for field in read.input.fields() {
        let (message, name) = source_of(&request.descriptor(), field.name())?;
        let value = match message {
            None => request.get_field_by_name(&name)?.into_owned(),
            Some(m) => match request.get_field_by_name(&m)?.as_ref() {
                Value::Message(inner) => inner.get_field_by_name(&name)?.into_owned(),
                _ => return None,
            },
        };
        if value.as_str().is_some_and(str::is_empty) {
            return None;
        }
        get.try_set_field(&field, value).ok()?;
    }
    let encoded = get.encode_to_vec();
    let mut framed = BytesMut::with_capacity(encoded.len() + 5);
    framed.put_u8(0);
    framed.put_u32(encoded.len() as u32);
    framed.put_slice(&encoded);
    Some(framed.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(service: &str, name: &str) -> MethodDescriptor {
        let pool = mgpass_proto::descriptor_pool();
        pool.get_service_by_name(service)
            .unwrap()
            .methods()
            .find(|m| m.name() == name)
            .unwrap()
    }

    #[test]
    fn pairs_changes_with_their_get() {
        let update = pairing(&method("mgpass.identity.v1.UserService", "UpdateUser"))
            .expect("UpdateUser pairs");
        assert_eq!(update.path, "/mgpass.identity.v1.UserService/GetUser");
        assert!(pairing(&method("mgpass.identity.v1.UserService", "DeleteUser")).is_some());
        assert!(pairing(&method("mgpass.identity.v1.UserService", "CreateUser")).is_none());
        let update = pairing(&method(
            "mgpass.org.v1.OrganizationService",
            "UpdateOrganization",
        ))
        .unwrap();
        assert_eq!(
            update.path,
            "/mgpass.org.v1.OrganizationService/GetOrganization"
        );
        // No `GetOrganizationMember`: nothing to read.
        assert!(
            pairing(&method(
                "mgpass.org.v1.OrganizationService",
                "RemoveOrganizationMember"
            ))
            .is_none()
        );
    }

    #[test]
    fn fills_the_get_request_from_a_nested_id() {
        let update = method("mgpass.identity.v1.UserService", "UpdateUser");
        let read = pairing(&update).unwrap();
        let mut request = DynamicMessage::new(update.input());
        let mut user = DynamicMessage::new(
            update
                .input()
                .get_field_by_name("user")
                .unwrap()
                .kind()
                .as_message()
                .unwrap()
                .clone(),
        );
        user.set_field_by_name("id", Value::String("u-1".into()));
        request.set_field_by_name("user", Value::Message(user));
        let framed = get_request(&read, &request).expect("a request");
        let get = DynamicMessage::decode(read.input.clone(), &framed[5..]).unwrap();
        assert_eq!(
            get.get_field_by_name("user_id").unwrap().as_str(),
            Some("u-1")
        );
        // No id, no read.
        assert!(get_request(&read, &DynamicMessage::new(update.input())).is_none());
    }
}
