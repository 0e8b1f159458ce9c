//! One real TCP port serving REST (reqwest, HTTP/1.1) and native gRPC (tonic client, h2c), with
//! `ConnectInfo` provided the way the server must provide it.

mod common;

use std::net::SocketAddr;

use common::{ADMIN, CREATED, app};
use mgpass_proto::identity::user_service_client::UserServiceClient;
use mgpass_proto::identity::{GetUserRequest, UserStatus};
use serde_json::{Value, json};
use tonic_types::StatusExt;

#[tokio::test]
async fn rest_and_grpc_share_one_port_and_one_service() {
    let (router, state) = app();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
    });
    let base = format!("http://{addr}");

    // REST creates a user...
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{base}/v1/users"))
        .header("authorization", ADMIN)
        .json(&json!({"user": {"email": "tcp@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    let v: Value = res.json().await.unwrap();
    let id = v["user"]["id"].as_str().unwrap().to_owned();
    assert_eq!(v["user"]["createTime"], "2023-11-14T22:13:20Z");

    // ...the server saw the TCP peer in the request extensions, and the REST marker.
    let (peer, transport) = state.calls.lock().unwrap().last().cloned().unwrap();
    assert_eq!(peer.map(|p| p.ip()), Some(addr.ip()));
    assert_eq!(transport.as_deref(), Some("rest"));

    // ...and native gRPC on the same port reads it back from the same service.
    let mut client = UserServiceClient::connect(base.clone()).await.unwrap();
    let mut req = tonic::Request::new(GetUserRequest { user_id: id.clone() });
    req.metadata_mut().insert("authorization", ADMIN.parse().unwrap());
    // A client-sent transport marker is stripped at the edge.
    req.metadata_mut().insert("x-mgpass-transport", "rest".parse().unwrap());
    let res = client.get_user(req).await.unwrap();
    assert!(res.metadata().get("x-request-id").is_some());
    let user = res.into_inner().user.unwrap();
    assert_eq!((user.email.as_str(), user.status), ("tcp@example.com", UserStatus::Active as i32));
    assert_eq!(user.create_time.unwrap().seconds, CREATED);
    let (peer, transport) = state.calls.lock().unwrap().last().cloned().unwrap();
    assert_eq!((peer.map(|p| p.ip()), transport), (Some(addr.ip()), None));

    // gRPC errors keep their rich details natively...
    let mut req = tonic::Request::new(GetUserRequest { user_id: "ghost".into() });
    req.metadata_mut().insert("authorization", ADMIN.parse().unwrap());
    let status = client.get_user(req).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert_eq!(status.get_details_error_info().unwrap().reason, "USER_NOT_FOUND");

    // ...and as JSON over REST on the same port.
    let res = http.get(format!("{base}/v1/users/ghost")).header("authorization", ADMIN).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["details"][0]["reason"], "USER_NOT_FOUND");

    // Server pages are on the same port too.
    let res = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(res.text().await.unwrap(), "ok");
    server.abort();
}
