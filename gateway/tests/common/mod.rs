//! The gRPC side of the gateway tests: tiny in-memory `UserService` and `AuthenticationService`
//! behind a stand-in for the server's auth layer, assembled with [`mgpass_gateway::router`]
//! exactly as the server does.

#![allow(dead_code)] // each test binary uses a different part of the harness

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::ConnectInfo;
use axum::routing::get;
use mgpass_gateway::{GatewayOptions, GrpcService, router};
use mgpass_proto::identity::authentication_service_server::{AuthenticationService, AuthenticationServiceServer};
use mgpass_proto::identity::user_service_server::{UserService, UserServiceServer};
use mgpass_proto::identity::*;
use prost_types::Timestamp;
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower::ServiceExt;

/// 2023-11-14T22:13:20Z
pub const CREATED: i64 = 1_700_000_000;
pub const ADMIN: &str = "Bearer admin";
pub const MAX_BODY: usize = 4096;

#[derive(Default)]
pub struct State {
    users: Mutex<BTreeMap<String, User>>,
    pub last_list: Mutex<Option<ListUsersRequest>>,
    pub last_update: Mutex<Option<UpdateUserRequest>>,
    pub last_suspend_reason: Mutex<Option<String>>,
    /// The peer address each call saw in its request extensions, and its transport marker.
    pub calls: Mutex<Vec<(Option<SocketAddr>, Option<String>)>>,
}

pub struct FakeUsers(Arc<State>);

fn user_not_found(id: &str) -> Status {
    let meta = HashMap::from([("user_id".to_owned(), id.to_owned())]);
    Status::with_error_details(Code::NotFound, "user not found", ErrorDetails::with_error_info("USER_NOT_FOUND", "mgpass.net", meta))
}

fn check_id(id: &str) -> Result<(), Status> {
    if id.contains(' ') {
        let details = ErrorDetails::with_bad_request_violation("user_id", "must be a UUID");
        return Err(Status::with_error_details(Code::InvalidArgument, "invalid id", details));
    }
    Ok(())
}

impl FakeUsers {
    fn stored(&self, id: &str) -> Result<User, Status> {
        check_id(id)?;
        self.0.users.lock().unwrap().get(id).cloned().ok_or_else(|| user_not_found(id))
    }
}

#[tonic::async_trait]
impl UserService for FakeUsers {
    async fn create_user(&self, req: Request<CreateUserRequest>) -> Result<Response<CreateUserResponse>, Status> {
        let mut user = req.into_inner().user.unwrap_or_default();
        let mut users = self.0.users.lock().unwrap();
        if users.values().any(|u| u.email == user.email) {
            let meta = HashMap::from([("field".to_owned(), "email".to_owned())]);
            let details = ErrorDetails::with_error_info("EMAIL_TAKEN", "mgpass.net", meta);
            return Err(Status::with_error_details(Code::AlreadyExists, "email already in use", details));
        }
        user.id = format!("u{}", users.len() + 1);
        user.status = UserStatus::Active as i32;
        user.create_time = Some(Timestamp { seconds: CREATED, nanos: 0 });
        users.insert(user.id.clone(), user.clone());
        Ok(Response::new(CreateUserResponse { user: Some(user) }))
    }

    async fn get_user(&self, req: Request<GetUserRequest>) -> Result<Response<GetUserResponse>, Status> {
        let user = self.stored(&req.get_ref().user_id)?;
        Ok(Response::new(GetUserResponse { user: Some(user) }))
    }

    async fn list_users(&self, req: Request<ListUsersRequest>) -> Result<Response<ListUsersResponse>, Status> {
        *self.0.last_list.lock().unwrap() = Some(req.into_inner());
        let users = self.0.users.lock().unwrap().values().cloned().collect();
        Ok(Response::new(ListUsersResponse { users, next_page_token: String::new() }))
    }

    async fn update_user(&self, req: Request<UpdateUserRequest>) -> Result<Response<UpdateUserResponse>, Status> {
        let req = req.into_inner();
        *self.0.last_update.lock().unwrap() = Some(req.clone());
        let patch = req.user.unwrap_or_default();
        let mut user = self.stored(&patch.id)?;
        for path in req.update_mask.unwrap_or_default().paths {
            match path.as_str() {
                "given_name" => user.given_name = patch.given_name.clone(),
                "family_name" => user.family_name = patch.family_name.clone(),
                "email" => user.email = patch.email.clone(),
                other => return Err(Status::invalid_argument(format!("path {other} not updatable"))),
            }
        }
        user.update_time = Some(Timestamp { seconds: CREATED + 60, nanos: 250_000_000 });
        self.0.users.lock().unwrap().insert(user.id.clone(), user.clone());
        Ok(Response::new(UpdateUserResponse { user: Some(user) }))
    }

    async fn delete_user(&self, req: Request<DeleteUserRequest>) -> Result<Response<DeleteUserResponse>, Status> {
        let id = &req.get_ref().user_id;
        self.stored(id)?;
        self.0.users.lock().unwrap().remove(id);
        Ok(Response::new(DeleteUserResponse {}))
    }

    async fn suspend_user(&self, req: Request<SuspendUserRequest>) -> Result<Response<SuspendUserResponse>, Status> {
        let req = req.into_inner();
        let mut user = self.stored(&req.user_id)?;
        user.status = UserStatus::Suspended as i32;
        *self.0.last_suspend_reason.lock().unwrap() = Some(req.reason);
        self.0.users.lock().unwrap().insert(user.id.clone(), user.clone());
        Ok(Response::new(SuspendUserResponse { user: Some(user) }))
    }

    async fn unsuspend_user(&self, _: Request<UnsuspendUserRequest>) -> Result<Response<UnsuspendUserResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn unlock_user(&self, _: Request<UnlockUserRequest>) -> Result<Response<UnlockUserResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn force_password_reset(&self, _: Request<ForcePasswordResetRequest>) -> Result<Response<ForcePasswordResetResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }
}

pub struct FakeAuth;

#[tonic::async_trait]
impl AuthenticationService for FakeAuth {
    async fn login(&self, _: Request<LoginRequest>) -> Result<Response<LoginResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn refresh_token(&self, _: Request<RefreshTokenRequest>) -> Result<Response<RefreshTokenResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn logout(&self, _: Request<LogoutRequest>) -> Result<Response<LogoutResponse>, Status> {
        Err(Status::unimplemented("not in the fake"))
    }

    async fn get_jwks(&self, _: Request<GetJwksRequest>) -> Result<Response<GetJwksResponse>, Status> {
        let key = Jwk { kty: "EC".into(), kid: "k1".into(), alg: "ES256".into(), crv: "P-256".into(), x: "xx".into(), y: "yy".into(), ..Default::default() };
        Ok(Response::new(GetJwksResponse { keys: vec![key] }))
    }
}

/// The gRPC service as the server hands it over: tonic `Routes` behind an auth layer. The stand-in
/// layer demands `authorization: Bearer admin` for `UserService`, so a test can tell that REST
/// calls went through it.
pub fn grpc_service(state: Arc<State>) -> GrpcService {
    let routes = tonic::service::Routes::new(UserServiceServer::new(FakeUsers(state.clone()))).add_service(AuthenticationServiceServer::new(FakeAuth));
    GrpcService::new(tower::service_fn(move |req: http::Request<axum::body::Body>| {
        let (routes, state) = (routes.clone(), state.clone());
        async move {
            let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
            let transport = req.headers().get("x-mgpass-transport").map(|v| v.to_str().unwrap().to_owned());
            state.calls.lock().unwrap().push((peer, transport));
            let admin = req.headers().get("authorization").is_some_and(|v| v == ADMIN);
            if req.uri().path().starts_with("/mgpass.identity.v1.UserService/") && !admin {
                let mut status = Status::unauthenticated("missing or invalid credentials");
                status.metadata_mut().insert("www-authenticate", "Bearer".parse().unwrap());
                return Ok::<_, Infallible>(status.into_http());
            }
            routes.oneshot(req).await
        }
    }))
}

/// The whole edge: gateway router over the fake gRPC side, with one server page.
pub fn app() -> (axum::Router, Arc<State>) {
    let state = Arc::new(State::default());
    let pages = axum::Router::new().route("/healthz", get(|| async { "ok" }));
    let opts = GatewayOptions { max_body_bytes: MAX_BODY };
    (router(grpc_service(state.clone()), mgpass_proto::descriptor_pool(), pages, opts), state)
}
