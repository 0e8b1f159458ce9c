//! REST transcoding through the whole router (request id, dispatch, transcoder, auth layer,
//! tonic), driven in memory with `oneshot`.

mod common;

use axum::body::Body;
use common::{ADMIN, MAX_BODY, app};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn call(app: &axum::Router, method: Method, uri: &str, body: &str, auth: bool) -> (StatusCode, HeaderMap, Value) {
    let mut req = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if auth {
        req = req.header("authorization", ADMIN);
    }
    let res = app.clone().oneshot(req.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
    let (parts, body) = res.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (parts.status, parts.headers, v)
}

async fn create(app: &axum::Router, email: &str) -> String {
    let body = json!({"user": {"email": email, "givenName": "Ada"}, "password": "pw"}).to_string();
    let (status, _, v) = call(app, Method::POST, "/v1/users", &body, true).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["user"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn create_and_get_render_canonical_json() {
    let (app, state) = app();
    let body = r#"{"user":{"email":"ada@example.com","given_name":"Ada"},"password":"pw"}"#;
    let (status, headers, v) = call(&app, Method::POST, "/v1/users", body, true).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(headers["content-type"], "application/json");
    // camelCase, enum names, Timestamp with `Z`, default-valued fields (emailVerified...) omitted.
    let user = json!({"id": "u1", "email": "ada@example.com", "givenName": "Ada", "status": "USER_STATUS_ACTIVE",
        "createTime": "2023-11-14T22:13:20Z"});
    assert_eq!(v, json!({"user": user}));
    let (status, _, v) = call(&app, Method::GET, "/v1/users/u1", "", true).await;
    assert_eq!((status, v), (StatusCode::OK, json!({"user": user})));
    assert_eq!(state.calls.lock().unwrap().last().unwrap().1.as_deref(), Some("rest"));
}

#[tokio::test]
async fn patch_with_body_field_and_update_mask() {
    let (app, state) = app();
    let id = create(&app, "a@example.com").await;
    let body = r#"{"givenName":"Grace","familyName":"Hopper","email":"ignored@example.com"}"#;
    let uri = format!("/v1/users/{id}?updateMask=givenName,familyName");
    let (status, _, v) = call(&app, Method::PATCH, &uri, body, true).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["user"]["givenName"], "Grace");
    assert_eq!(v["user"]["familyName"], "Hopper");
    assert_eq!(v["user"]["email"], "a@example.com");
    assert_eq!(v["user"]["updateTime"], "2023-11-14T22:14:20.250Z");
    let req = state.last_update.lock().unwrap().take().unwrap();
    assert_eq!(req.user.unwrap().id, id);
    assert_eq!(req.update_mask.unwrap().paths, vec!["given_name", "family_name"]);
}

#[tokio::test]
async fn custom_verb() {
    let (app, state) = app();
    let id = create(&app, "b@example.com").await;
    let (status, _, v) = call(&app, Method::POST, &format!("/v1/users/{id}:suspend"), r#"{"reason":"spam"}"#, true).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["user"]["status"], "USER_STATUS_SUSPENDED");
    assert_eq!(state.last_suspend_reason.lock().unwrap().as_deref(), Some("spam"));
}

#[tokio::test]
async fn list_query_params() {
    let (app, state) = app();
    let uri = "/v1/users?pageSize=25&status=USER_STATUS_SUSPENDED&createdAfter=2024-01-01T00:00:00Z&query=a%20b&organization_id=o1";
    let (status, _, v) = call(&app, Method::GET, uri, "", true).await;
    assert_eq!((status, v), (StatusCode::OK, json!({})));
    let req = state.last_list.lock().unwrap().take().unwrap();
    assert_eq!(req.page_size, 25);
    assert_eq!(req.status, 2);
    assert_eq!(req.created_after.unwrap().seconds, 1_704_067_200);
    assert_eq!(req.query, "a b");
    assert_eq!(req.organization_id, "o1");
    assert!(req.created_before.is_none());
}

#[tokio::test]
async fn additional_bindings() {
    let (app, _) = app();
    let expected = json!({"keys": [{"kty": "EC", "kid": "k1", "alg": "ES256", "crv": "P-256", "x": "xx", "y": "yy"}]});
    for uri in ["/v1/auth/jwks", "/.well-known/jwks.json"] {
        let (status, _, v) = call(&app, Method::GET, uri, "", false).await;
        assert_eq!((status, v), (StatusCode::OK, expected.clone()), "{uri}");
    }
}

#[tokio::test]
async fn grpc_errors_render_status_with_details() {
    let (app, _) = app();
    let (status, _, v) = call(&app, Method::GET, "/v1/users/nobody", "", true).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let info = json!({"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "USER_NOT_FOUND", "domain": "mgpass.net",
        "metadata": {"user_id": "nobody"}});
    assert_eq!(v, json!({"code": 5, "message": "user not found", "details": [info]}));

    let (status, _, v) = call(&app, Method::GET, "/v1/users/not%20a%20uuid", "", true).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let violation = json!({"@type": "type.googleapis.com/google.rpc.BadRequest",
        "fieldViolations": [{"field": "user_id", "description": "must be a UUID"}]});
    assert_eq!(v["details"], json!([violation]));

    create(&app, "dup@example.com").await;
    let body = json!({"user": {"email": "dup@example.com"}}).to_string();
    let (status, _, v) = call(&app, Method::POST, "/v1/users", &body, true).await;
    assert_eq!((status, v["code"].clone(), v["details"][0]["reason"].clone()), (StatusCode::CONFLICT, json!(6), json!("EMAIL_TAKEN")));

    // Without credentials, the auth layer in front of the services refuses REST as it refuses gRPC.
    let (status, headers, v) = call(&app, Method::GET, "/v1/users/u1", "", false).await;
    assert_eq!((status, v), (StatusCode::UNAUTHORIZED, json!({"code": 16, "message": "missing or invalid credentials"})));
    assert_eq!(headers["www-authenticate"], "Bearer");
}

#[tokio::test]
async fn gateway_errors() {
    let (app, _) = app();
    let big = format!(r#"{{"user":{{"email":"{}"}}}}"#, "x".repeat(MAX_BODY));
    for (method, uri, body, status, reason, field) in [
        (Method::POST, "/v1/users", r#"{"user":"#, 400, "MALFORMED_JSON", None),
        (Method::POST, "/v1/users", r#"{"user":{"nickname":"x"}}"#, 400, "UNKNOWN_FIELD", Some("nickname")),
        (Method::POST, "/v1/users", r#"{"user":{"email":42}}"#, 400, "INVALID_ARGUMENT", None),
        (Method::GET, "/v1/users?colour=red", "", 400, "UNKNOWN_FIELD", Some("colour")),
        (Method::GET, "/v1/users?pageSize=many", "", 400, "INVALID_ARGUMENT", None),
        (Method::GET, "/v1/users/u1", r#"{"x":1}"#, 400, "INVALID_ARGUMENT", None),
        (Method::POST, "/v1/users", big.as_str(), 400, "BODY_TOO_LARGE", None),
        (Method::GET, "/v2/nothing", "", 404, "METHOD_NOT_FOUND", None),
        (Method::PUT, "/v1/users/u1", "", 405, "METHOD_NOT_ALLOWED", None),
    ] {
        let (got, headers, v) = call(&app, method, uri, body, true).await;
        assert_eq!(got.as_u16(), status, "{uri}: {v}");
        assert_eq!(v["details"][0]["@type"], "type.googleapis.com/google.rpc.ErrorInfo", "{uri}: {v}");
        assert_eq!(v["details"][0]["reason"], reason, "{uri}: {v}");
        assert_eq!(v["details"][0]["domain"], "mgpass.net");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
        if let Some(field) = field {
            assert_eq!(v["details"][0]["metadata"]["field"], field, "{uri}: {v}");
        }
        if status == 405 {
            assert_eq!(headers["allow"], "GET, PATCH, DELETE");
        }
    }
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let (app, _) = app();
    let send = |id: Option<&'static str>| {
        let app = app.clone();
        async move {
            let mut req = Request::get("/v1/auth/jwks");
            if let Some(id) = id {
                req = req.header("x-request-id", id);
            }
            let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
            res.headers()["x-request-id"].to_str().unwrap().to_owned()
        }
    };
    assert_eq!(send(Some("client-id-1")).await, "client-id-1");
    let generated = send(None).await;
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
    let replaced = send(Some("no spaces allowed")).await;
    assert!(uuid::Uuid::parse_str(&replaced).is_ok(), "{replaced}");
    assert_ne!(generated, replaced);
}

#[tokio::test]
async fn pages_win_over_rest_and_grpc_web_is_dispatched() {
    let (app, _) = app();
    let (status, _, v) = call(&app, Method::GET, "/healthz", "", false).await;
    assert_eq!((status, v), (StatusCode::OK, json!("ok")));

    // grpc-web over HTTP/1.1: an empty GetJwksRequest frame.
    let req = Request::post("/mgpass.identity.v1.AuthenticationService/GetJwks")
        .header("content-type", "application/grpc-web+proto")
        .body(Body::from(vec![0u8, 0, 0, 0, 0]))
        .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/grpc-web+proto");
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    // A message frame (flag 0) then a trailers frame (flag 0x80) with grpc-status 0.
    assert_eq!(bytes[0], 0);
    assert!(String::from_utf8_lossy(&bytes).contains("grpc-status:0"), "{bytes:?}");
}
