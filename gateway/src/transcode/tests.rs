//! Transcoder tests against a probe service added to the real descriptor pool: its messages have
//! the field kinds the mgpass API may grow into (int64, repeated scalars, maps, nested messages),
//! and an echo gRPC service returns the request message as the reply, so a test sees exactly the
//! message the transcoder built and how a reply renders.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::ConnectInfo;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::{Value, json};

use super::Transcoder;
use super::routes::RouteTable;
use crate::GrpcService;

fn field(name: &str, number: u32, ty: &str, extra: Value) -> Value {
    let mut f = json!({"name": name, "number": number, "label": "LABEL_OPTIONAL", "type": ty});
    f.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    f
}

fn method(name: &str, http: Value, server_streaming: bool) -> Value {
    json!({"name": name, "inputType": ".gwtest.Probe", "outputType": ".gwtest.Probe",
           "serverStreaming": server_streaming, "options": {"[google.api.http]": http}})
}

/// The mgpass pool plus `gwtest/probe.proto` with `methods` on `gwtest.ProbeService`.
fn pool_with(methods: Vec<Value>) -> DescriptorPool {
    let repeated = json!({"label": "LABEL_REPEATED"});
    let file = json!({
        "name": "gwtest/probe.proto",
        "package": "gwtest",
        "dependency": ["google/api/annotations.proto", "google/protobuf/timestamp.proto", "mgpass/identity/v1/user.proto"],
        "syntax": "proto3",
        "messageType": [{
            "name": "Probe",
            "field": [
                field("id", 1, "TYPE_STRING", json!({})),
                field("big", 2, "TYPE_INT64", json!({})),
                field("nums", 3, "TYPE_INT32", repeated.clone()),
                field("status", 4, "TYPE_ENUM", json!({"typeName": ".mgpass.identity.v1.UserStatus"})),
                field("flag", 5, "TYPE_BOOL", json!({})),
                field("ratio", 6, "TYPE_DOUBLE", json!({})),
                field("at", 7, "TYPE_MESSAGE", json!({"typeName": ".google.protobuf.Timestamp"})),
                field("child", 8, "TYPE_MESSAGE", json!({"typeName": ".gwtest.Probe"})),
                field("labels", 9, "TYPE_MESSAGE", json!({"label": "LABEL_REPEATED", "typeName": ".gwtest.Probe.LabelsEntry"})),
                field("tags", 10, "TYPE_STRING", repeated),
                field("page_size", 11, "TYPE_UINT64", json!({"jsonName": "pageSize"})),
            ],
            "nestedType": [{
                "name": "LabelsEntry",
                "field": [field("key", 1, "TYPE_STRING", json!({})), field("value", 2, "TYPE_STRING", json!({}))],
                "options": {"mapEntry": true}
            }]
        }],
        "service": [{"name": "ProbeService", "method": methods}]
    });
    let mut pool = mgpass_proto::descriptor_pool();
    let desc = pool.get_message_by_name("google.protobuf.FileDescriptorProto").unwrap();
    let fdp = DynamicMessage::deserialize(desc, file).expect("probe file descriptor");
    pool.decode_file_descriptor_proto(fdp.encode_to_vec().as_slice()).expect("probe file is valid");
    pool
}

fn probe_pool() -> DescriptorPool {
    pool_with(vec![
        method("Echo", json!({"get": "/probe/{id}", "additionalBindings": [{"post": "/probe/{id}:echo", "body": "*"}]}), false),
        method("EchoChild", json!({"patch": "/probe/{child.id}", "body": "child"}), false),
        method("Watch", json!({"get": "/probe-watch"}), true),
        // Declared after `/probe/{id}` on purpose: the literal must still win.
        method("Special", json!({"get": "/probe/special"}), false),
    ])
}

/// What the echo service saw of the last call: gRPC path, headers, peer from `ConnectInfo`.
type SeenCall = (String, HeaderMap, Option<SocketAddr>);

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Option<SeenCall>>>);

fn echo(seen: Seen) -> GrpcService {
    GrpcService::new(tower::service_fn(move |req: Request<Body>| {
        let seen = seen.clone();
        async move {
            let (parts, body) = req.into_parts();
            let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
            *seen.0.lock().unwrap() = Some((parts.uri.path().to_owned(), parts.headers, peer));
            let frame = body.collect().await.unwrap().to_bytes();
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", "0".parse().unwrap());
            let frames = vec![Ok::<_, Infallible>(Frame::data(frame)), Ok(Frame::trailers(trailers))];
            let mut res = http::Response::new(tonic::body::Body::new(StreamBody::new(futures::stream::iter(frames))));
            res.headers_mut().insert("content-type", "application/grpc".parse().unwrap());
            res.headers_mut().insert("set-cookie", "sid=1; HttpOnly".parse().unwrap());
            res.headers_mut().insert("x-internal", "not for REST clients".parse().unwrap());
            Ok::<_, Infallible>(res)
        }
    }))
}

async fn send(t: &Transcoder, method: Method, uri: &str, body: &str) -> (StatusCode, HeaderMap, Value) {
    let req = Request::builder().method(method).uri(uri).body(Body::from(body.to_owned())).unwrap();
    let res = t.handle(req).await;
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&bytes)));
    (parts.status, parts.headers, value)
}

fn transcoder() -> (Transcoder, Seen) {
    let seen = Seen::default();
    (Transcoder::new(&probe_pool(), echo(seen.clone()), 256), seen)
}

#[tokio::test]
async fn query_params_of_every_kind_and_canonical_rendering() {
    let (t, _) = transcoder();
    let uri = "/probe/p%201?big=9007199254740993&nums=1&nums=2&status=USER_STATUS_ACTIVE&flag=true&ratio=0.5\
               &at=2024-01-02T03:04:05.5%2B01:00&child.id=c&tags=a&tags=b+c&pageSize=3&child.nums=7";
    let (status, _, v) = send(&t, Method::GET, uri, "").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // int64/uint64 as strings, enum by name, Timestamp normalized to UTC with `Z`, camelCase.
    let expected = json!({"id": "p 1", "big": "9007199254740993", "nums": [1, 2], "status": "USER_STATUS_ACTIVE",
        "flag": true, "ratio": 0.5, "at": "2024-01-02T02:04:05.500Z", "child": {"id": "c", "nums": [7]},
        "tags": ["a", "b c"], "pageSize": "3"});
    assert_eq!(v, expected);
    // Enum by number and proto field names work too; defaults are omitted from the reply.
    let (_, _, v) = send(&t, Method::GET, "/probe/x?status=2&page_size=0&flag=false", "").await;
    assert_eq!(v, json!({"id": "x", "status": "USER_STATUS_SUSPENDED"}));
}

#[tokio::test]
async fn bad_query_params() {
    let (t, _) = transcoder();
    for (uri, reason) in [
        ("/probe/x?nope=1", "UNKNOWN_FIELD"),
        ("/probe/x?child.nope=1", "UNKNOWN_FIELD"),
        ("/probe/x?labels=a", "INVALID_ARGUMENT"),
        ("/probe/x?child=a", "INVALID_ARGUMENT"),
        ("/probe/x?flag=yes", "INVALID_ARGUMENT"),
        ("/probe/x?big=ten", "INVALID_ARGUMENT"),
        ("/probe/x?status=USER_STATUS_NOPE", "INVALID_ARGUMENT"),
        ("/probe/x?at=yesterday", "INVALID_ARGUMENT"),
        ("/probe/x?big=1&big=2", "INVALID_ARGUMENT"),
        ("/probe/x?id=y", "INVALID_ARGUMENT"),
        ("/probe/x:echo?big=1", "INVALID_ARGUMENT"),
    ] {
        let method = if uri.contains(":echo") { Method::POST } else { Method::GET };
        let (status, _, v) = send(&t, method, uri, "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {v}");
        assert_eq!(v["details"][0]["reason"], reason, "{uri}: {v}");
    }
    let (_, _, v) = send(&t, Method::GET, "/probe/x?child.nope=1", "").await;
    assert_eq!(v["details"][0]["metadata"]["field"], "child.nope");
}

#[tokio::test]
async fn bodies() {
    let (t, _) = transcoder();
    // body "*": the path variable overrides the body's value.
    let (status, _, v) = send(&t, Method::POST, "/probe/p1:echo", r#"{"id":"other","big":"5","child":{"flag":true}}"#).await;
    assert_eq!((status, v), (StatusCode::OK, json!({"id": "p1", "big": "5", "child": {"flag": true}})));
    // body "child": the body is the child; the path sets child.id; query params set the rest.
    let (status, _, v) = send(&t, Method::PATCH, "/probe/c1?id=top&tags=t", r#"{"big":7,"page_size":2}"#).await;
    assert_eq!((status, v), (StatusCode::OK, json!({"id": "top", "tags": ["t"], "child": {"id": "c1", "big": "7", "pageSize": "2"}})));
    for (method, uri, body, reason) in [
        (Method::POST, "/probe/p:echo", "{", "MALFORMED_JSON"),
        (Method::POST, "/probe/p:echo", "[1]", "INVALID_ARGUMENT"),
        (Method::POST, "/probe/p:echo", r#"{"nickname":"x"}"#, "UNKNOWN_FIELD"),
        (Method::PATCH, "/probe/p?child.big=1", "{}", "INVALID_ARGUMENT"),
        (Method::POST, "/probe/p:echo", r#"{"big":"x"}"#, "INVALID_ARGUMENT"),
        (Method::GET, "/probe/p", "{}", "INVALID_ARGUMENT"),
        (Method::POST, "/probe/p:echo", &format!(r#"{{"id":"{}"}}"#, "x".repeat(300)), "BODY_TOO_LARGE"),
    ] {
        let (status, _, v) = send(&t, method, uri, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri} {body}: {v}");
        assert_eq!(v["details"][0]["reason"], reason, "{uri} {body}: {v}");
        assert_eq!(v["code"], 3);
    }
}

#[tokio::test]
async fn call_carries_headers_extensions_and_returns_cookies() {
    let (t, seen) = transcoder();
    let peer: SocketAddr = "203.0.113.9:4242".parse().unwrap();
    let mut req = Request::get("/probe/x")
        .header("authorization", "Bearer t")
        .header("x-api-key", "k")
        .header("cookie", "a=1")
        .header("x-request-id", "rid-1")
        .header("accept-language", "fr")
        .body(Body::empty())
        .unwrap();
    req.extensions_mut().insert(ConnectInfo(peer));
    let res = t.handle(req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["set-cookie"], "sid=1; HttpOnly");
    assert!(res.headers().get("x-internal").is_none());
    let (path, headers, got_peer) = seen.0.lock().unwrap().take().unwrap();
    assert_eq!(path, "/gwtest.ProbeService/Echo");
    assert_eq!(got_peer, Some(peer));
    for (name, value) in [("authorization", "Bearer t"), ("x-api-key", "k"), ("cookie", "a=1"), ("x-request-id", "rid-1")] {
        assert_eq!(headers[name], value);
    }
    assert_eq!(headers["content-type"], "application/grpc");
    assert_eq!(headers["te"], "trailers");
    assert_eq!(headers["x-mgpass-transport"], "rest");
    assert!(headers.get("accept-language").is_none());
}

#[tokio::test]
async fn streaming_and_routing_errors() {
    let (t, _) = transcoder();
    let (status, _, v) = send(&t, Method::GET, "/probe-watch", "").await;
    assert_eq!((status, v["code"].clone(), v["details"][0]["reason"].clone()), (StatusCode::NOT_IMPLEMENTED, json!(12), json!("STREAMING_NOT_SUPPORTED")));
    let (status, headers, v) = send(&t, Method::DELETE, "/probe/x", "").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{v}");
    assert_eq!(headers["allow"], "GET, PATCH");
    let (status, _, v) = send(&t, Method::GET, "/nowhere", "").await;
    assert_eq!((status, v["details"][0]["reason"].clone()), (StatusCode::NOT_FOUND, json!("METHOD_NOT_FOUND")));
}

#[tokio::test]
async fn literal_segments_beat_variables() {
    let (t, seen) = transcoder();
    let (status, _, v) = send(&t, Method::GET, "/probe/special", "").await;
    assert_eq!((status, v), (StatusCode::OK, json!({})));
    assert_eq!(seen.0.lock().unwrap().take().unwrap().0, "/gwtest.ProbeService/Special");
    let (_, _, v) = send(&t, Method::GET, "/probe/specials", "").await;
    assert_eq!(v, json!({"id": "specials"}));
    assert_eq!(seen.0.lock().unwrap().take().unwrap().0, "/gwtest.ProbeService/Echo");
}

#[tokio::test]
async fn plain_http_answer_from_the_grpc_side() {
    let svc = GrpcService::new(tower::service_fn(|_req: Request<Body>| async {
        let mut res = http::Response::new(tonic::body::Body::empty());
        *res.status_mut() = StatusCode::UNAUTHORIZED;
        res.headers_mut().insert("www-authenticate", "Bearer".parse().unwrap());
        Ok::<_, Infallible>(res)
    }));
    let t = Transcoder::new(&probe_pool(), svc, 1024);
    let (status, headers, v) = send(&t, Method::GET, "/probe/x", "").await;
    assert_eq!((status, v["code"].clone()), (StatusCode::UNAUTHORIZED, json!(16)));
    assert_eq!(headers["www-authenticate"], "Bearer");
}

#[test]
#[should_panic(expected = "duplicate REST binding GET /dup/*")]
fn duplicate_bindings_refused_at_start() {
    let pool = pool_with(vec![
        method("A", json!({"get": "/dup/{id}"}), false),
        method("B", json!({"post": "/dup/{id}", "additionalBindings": [{"get": "/dup/{child.id}"}]}), false),
    ]);
    RouteTable::from_pool(&pool);
}

#[test]
#[should_panic(expected = "gwtest.ProbeService.A")]
fn binding_to_missing_field_refused_at_start() {
    RouteTable::from_pool(&pool_with(vec![method("A", json!({"get": "/x/{missing}"}), false)]));
}
