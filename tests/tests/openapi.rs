//! `GET /openapi.json`: the committed OpenAPI document, describing every REST binding of the
//! contract (each `google.api.http` rule and its additional bindings) and nothing else.

use std::collections::BTreeSet;

use mgpass_e2e::TestServer;
use prost_reflect::{DynamicMessage, Value as PValue};
use serde_json::Value;

/// `/v1/users/{user_id}` and `/v1/users/{userId}` both become `/v1/users/{}`.
fn shape(path: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '{' => {
                depth += 1;
                if depth == 1 {
                    out.push_str("{}");
                }
            }
            '}' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// (HTTP method, path shape) of every binding in one HttpRule and its additional bindings.
fn bindings(rule: &DynamicMessage, out: &mut BTreeSet<(String, String)>) {
    for verb in ["get", "put", "post", "delete", "patch"] {
        if rule.has_field_by_name(verb) {
            if let Some(PValue::String(path)) = rule.get_field_by_name(verb).as_deref() {
                out.insert((verb.to_string(), shape(path)));
            }
        }
    }
    if let Some(PValue::List(more)) = rule.get_field_by_name("additional_bindings").as_deref() {
        for binding in more {
            if let PValue::Message(binding) = binding {
                bindings(binding, out);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_document_is_served_and_covers_every_rest_binding() {
    let server = TestServer::start().await;
    let resp = server.http.get(server.url("/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let served = resp.text().await.unwrap();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json")).unwrap();
    assert_eq!(served, committed, "the server serves the committed docs/openapi.json");

    let doc: Value = serde_json::from_str(&served).unwrap();
    assert_eq!(doc["swagger"], "2.0");
    let mut documented = BTreeSet::new();
    for (path, operations) in doc["paths"].as_object().unwrap() {
        for verb in operations.as_object().unwrap().keys() {
            documented.insert((verb.clone(), shape(path)));
        }
    }

    let pool = mgpass_proto::descriptor_pool();
    let http = pool.get_extension_by_name("google.api.http").unwrap();
    let mut contract = BTreeSet::new();
    for service in pool.services().filter(|s| s.full_name().starts_with("mgpass.")) {
        for method in service.methods() {
            let options = method.options();
            if options.has_extension(&http) {
                if let PValue::Message(rule) = options.get_extension(&http).as_ref() {
                    bindings(rule, &mut contract);
                }
            }
        }
    }
    assert!(contract.len() > 100, "the contract has {} REST bindings", contract.len());
    assert_eq!(documented, contract);
}
