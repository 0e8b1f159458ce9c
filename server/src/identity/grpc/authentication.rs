//! `mgpass.identity.v1.AuthenticationService`: sign-in, refresh, sign-out, JWKS.

use mgpass_proto::identity::{self as pb, authentication_service_server::AuthenticationService};
use tonic::{Request, Response, Status};

use super::client_info;
use crate::{
    auth::principal,
    crypto::keys::{KeyRing, PublicJwk},
    identity::service::IdentityService,
};

/// Serves `mgpass.identity.v1.AuthenticationService`.
pub struct AuthenticationGrpc(pub IdentityService, pub KeyRing);

fn jwk_to_proto(jwk: PublicJwk) -> pb::Jwk {
    pb::Jwk {
        kty: jwk.kty,
        kid: jwk.kid,
        r#use: jwk.use_,
        alg: jwk.alg,
        crv: jwk.crv,
        x: jwk.x,
        y: jwk.y,
    }
}

#[tonic::async_trait]
impl AuthenticationService for AuthenticationGrpc {
    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let client = client_info(&request);
        let req = request.into_inner();
        let tokens = self
            .0
            .login(&req.identifier, &req.password, &client)
            .await?;
        Ok(Response::new(pb::LoginResponse {
            access_token: tokens.access.access_token,
            token_type: "Bearer".into(),
            expires_in: tokens.access.expires_in as i32,
            refresh_token: tokens.refresh_token,
            scope: tokens.access.scope,
            user_id: tokens.user_id.to_string(),
            pending_second_factor: super::second_factor::factor_to_proto(
                tokens.pending_second_factor.as_deref(),
            ) as i32,
        }))
    }

    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::RefreshTokenResponse>, Status> {
        let tokens = self.0.refresh(&request.into_inner().refresh_token).await?;
        Ok(Response::new(pb::RefreshTokenResponse {
            access_token: tokens.access.access_token,
            token_type: "Bearer".into(),
            expires_in: tokens.access.expires_in as i32,
            refresh_token: tokens.refresh_token,
            scope: tokens.access.scope,
        }))
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let principal = principal(&request)?;
        if let Some(session_id) = principal.session_id {
            // Already revoked is fine: signing out twice is not an error.
            let _ = self
                .0
                .revoke_session(principal.user_id, &session_id.to_string(), "logout")
                .await;
        }
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn get_jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        let keys = self.1.jwks().await.into_iter().map(jwk_to_proto).collect();
        Ok(Response::new(pb::GetJwksResponse { keys }))
    }
}
