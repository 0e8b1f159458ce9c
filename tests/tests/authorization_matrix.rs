//! Every management RPC is authorized: walks EVERY method of every mgpass service in the
//! descriptor pool, reads its `(mgpass.options.v1.auth)` option and calls it over native gRPC with
//! an empty message (a raw-bytes codec, so no method is skipped for lack of a typed client):
//! without a credential every non-public method answers UNAUTHENTICATED, and with a plain user's
//! token every AUDIENCE_PERMISSION method answers PERMISSION_DENIED. The test counts the methods,
//! so one added later cannot be forgotten.

use mgpass_e2e::{TestServer, bearer, grpc_reason};
use prost::bytes::{Buf, BufMut, Bytes};
use prost_reflect::Value;
use serde_json::json;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Sends and receives raw message bytes.
#[derive(Default, Clone)]
struct RawCodec;

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

/// `mgpass.options.v1.Audience` numbers.
const PUBLIC: i32 = 1;
const AUTHENTICATED: i32 = 2;
const PERMISSION: i32 = 3;
const PARTNER: i32 = 4;

struct Method {
    path: String,
    audience: i32,
    permission: String,
}

fn methods() -> Vec<Method> {
    let pool = mgpass_e2e::proto::descriptor_pool();
    let ext = pool.get_extension_by_name("mgpass.options.v1.auth").expect("the auth option is in the pool");
    let mut out = Vec::new();
    for service in pool.services().filter(|s| s.full_name().starts_with("mgpass.")) {
        for method in service.methods() {
            let options = method.options();
            assert!(options.has_extension(&ext), "{} has no auth option", method.full_name());
            let Value::Message(auth) = options.get_extension(&ext).into_owned() else { panic!("auth option shape") };
            out.push(Method {
                path: format!("/{}/{}", service.full_name(), method.name()),
                audience: auth.get_field_by_name("audience").and_then(|v| v.as_enum_number()).unwrap_or(0),
                permission: auth
                    .get_field_by_name("permission")
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            });
        }
    }
    out
}

/// Calls `path` with an empty message and `token` (none when empty); the status.
async fn call(channel: &tonic::transport::Channel, path: &str, token: &str) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(Bytes::new());
    if !token.is_empty() {
        request.metadata_mut().insert("authorization", bearer(token));
    }
    match grpc.unary(request, path.parse().unwrap(), RawCodec).await {
        Ok(_) => tonic::Status::ok(""),
        Err(status) => status,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_method_refuses_missing_and_insufficient_credentials() {
    let methods = methods();
    let counted = |a: i32| methods.iter().filter(|m| m.audience == a).count();
    let (public, authenticated, permission, partner) =
        (counted(PUBLIC), counted(AUTHENTICATED), counted(PERMISSION), counted(PARTNER));
    // Every method has exactly one known audience, and permission methods name their permission.
    assert_eq!(public + authenticated + permission + partner, methods.len(), "a method with an unknown audience");
    assert!(methods.iter().filter(|m| m.audience == PERMISSION).all(|m| !m.permission.is_empty()));
    assert!(methods.len() >= 150 && permission >= 100, "the pool holds every service ({} methods)", methods.len());

    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let (status, body) = mgpass_e2e::rest(
        &server,
        &admin,
        "POST",
        "/v1/users",
        Some(json!({"user": {"email": "plain@example.com", "givenName": "P", "familyName": "U"},
                    "password": "a long enough password"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let user = server.login("plain@example.com", "a long enough password").await;
    let channel = server.channel().await;

    let mut unauthenticated_checked = 0;
    let mut denied_checked = 0;
    let mut failures = Vec::new();
    for method in &methods {
        if method.audience != PUBLIC {
            let status = call(&channel, &method.path, "").await;
            if status.code() != tonic::Code::Unauthenticated || grpc_reason(&status) != "UNAUTHENTICATED" {
                failures.push(format!(
                    "{} without credential: {:?} {}",
                    method.path,
                    status.code(),
                    grpc_reason(&status)
                ));
            }
            unauthenticated_checked += 1;
        }
        if method.audience == PERMISSION {
            let status = call(&channel, &method.path, &user).await;
            if status.code() != tonic::Code::PermissionDenied {
                failures.push(format!("{} as a plain user: {:?} {}", method.path, status.code(), grpc_reason(&status)));
            }
            denied_checked += 1;
        }
        if method.audience == PARTNER {
            // Partner methods take only partner keys: a user token is no credential for them.
            let status = call(&channel, &method.path, &user).await;
            if status.code() != tonic::Code::Unauthenticated {
                failures.push(format!("{} with a user token: {:?}", method.path, status.code()));
            }
        }
    }
    assert!(failures.is_empty(), "{} refusals missing:\n{}", failures.len(), failures.join("\n"));
    assert_eq!(unauthenticated_checked, methods.len() - public);
    assert_eq!(denied_checked, permission);

    // The same holds over REST for a sample of methods (the transcoder reaches the same layer).
    for (method, path) in [("GET", "/v1/users"), ("GET", "/v1/auditEvents"), ("GET", "/v1/apiKeys")] {
        let (status, _) = mgpass_e2e::rest(&server, "", method, path, None).await;
        assert_eq!(status, 401, "{path}");
        let (status, _) = mgpass_e2e::rest(&server, &user, method, path, None).await;
        assert_eq!(status, 403, "{path}");
    }
}
