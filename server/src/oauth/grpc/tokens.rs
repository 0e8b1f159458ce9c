//! `mgpass.oauth.v1.TokenService`: the token endpoint's grants for gRPC clients. Same rules as
//! `/oauth2/token`; errors carry the RFC error as their reason (`INVALID_GRANT`, ...).

use mgpass_proto::oauth::{self as pb, token_service_server::TokenService};
use tonic::{Request, Response, Status};

use crate::{
    auth::principal,
    error::Error,
    identity::store as users,
    oauth::{OAuthService, grants::TokenResponse, id_token::user_claims},
};

pub struct TokenGrpc(pub OAuthService);

fn opt(s: &str) -> Option<&str> {
    Some(s).filter(|s| !s.is_empty())
}

fn secs(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

struct Tokens(TokenResponse);

macro_rules! token_response {
    ($t:expr, $ty:ident) => {{
        let t = $t.0;
        pb::$ty {
            access_token: t.access_token,
            token_type: "Bearer".into(),
            expires_in: secs(t.expires_in),
            refresh_token: t.refresh_token.unwrap_or_default(),
            id_token: t.id_token.unwrap_or_default(),
            scope: t.scope,
        }
    }};
}

#[tonic::async_trait]
impl TokenService for TokenGrpc {
    async fn issue_client_credentials_token(
        &self,
        request: Request<pb::IssueClientCredentialsTokenRequest>,
    ) -> Result<Response<pb::IssueClientCredentialsTokenResponse>, Status> {
        let r = request.into_inner();
        let t = self
            .0
            .client_credentials(
                &r.client_id,
                opt(&r.client_secret),
                &r.scope,
                opt(&r.resource),
            )
            .await?;
        Ok(Response::new(pb::IssueClientCredentialsTokenResponse {
            access_token: t.access_token,
            token_type: "Bearer".into(),
            expires_in: secs(t.expires_in),
            scope: t.scope,
        }))
    }

    async fn exchange_authorization_code(
        &self,
        request: Request<pb::ExchangeAuthorizationCodeRequest>,
    ) -> Result<Response<pb::ExchangeAuthorizationCodeResponse>, Status> {
        let r = request.into_inner();
        let t = self
            .0
            .exchange_code(
                &r.client_id,
                opt(&r.client_secret),
                &r.code,
                &r.redirect_uri,
                opt(&r.code_verifier),
            )
            .await?;
        Ok(Response::new(token_response!(
            Tokens(t),
            ExchangeAuthorizationCodeResponse
        )))
    }

    async fn refresh_access_token(
        &self,
        request: Request<pb::RefreshAccessTokenRequest>,
    ) -> Result<Response<pb::RefreshAccessTokenResponse>, Status> {
        let r = request.into_inner();
        if opt(&r.resource).is_some() {
            return Err(Error::invalid(
                "INVALID_TARGET",
                "resource",
                "a refresh keeps the grant's resource",
            )
            .into());
        }
        let t = self
            .0
            .refresh(
                &r.client_id,
                opt(&r.client_secret),
                &r.refresh_token,
                opt(&r.scope),
            )
            .await?;
        Ok(Response::new(token_response!(
            Tokens(t),
            RefreshAccessTokenResponse
        )))
    }

    async fn exchange_token(
        &self,
        request: Request<pb::ExchangeTokenRequest>,
    ) -> Result<Response<pb::ExchangeTokenResponse>, Status> {
        let r = request.into_inner();
        let t = self
            .0
            .exchange_token(crate::oauth::exchange::ExchangeRequest {
                client_id: &r.client_id,
                client_secret: opt(&r.client_secret),
                subject_token: &r.subject_token,
                subject_token_type: opt(&r.subject_token_type),
                organization_id: &r.organization_id,
                scope: &r.scope,
                resource: opt(&r.resource),
            })
            .await?;
        Ok(Response::new(pb::ExchangeTokenResponse {
            access_token: t.access_token,
            issued_token_type: crate::oauth::exchange::ACCESS_TOKEN_TYPE.into(),
            token_type: "Bearer".into(),
            expires_in: secs(t.expires_in),
            scope: t.scope,
        }))
    }

    async fn start_device_authorization(
        &self,
        request: Request<pb::StartDeviceAuthorizationRequest>,
    ) -> Result<Response<pb::StartDeviceAuthorizationResponse>, Status> {
        let r = request.into_inner();
        let d = self
            .0
            .start_device(
                &r.client_id,
                opt(&r.client_secret),
                &r.scope,
                opt(&r.resource),
            )
            .await?;
        Ok(Response::new(pb::StartDeviceAuthorizationResponse {
            device_code: d.device_code,
            user_code: d.user_code,
            verification_uri: d.verification_uri,
            verification_uri_complete: d.verification_uri_complete,
            expires_in: secs(d.expires_in),
            interval: secs(d.interval),
        }))
    }

    async fn approve_device_authorization(
        &self,
        request: Request<pb::ApproveDeviceAuthorizationRequest>,
    ) -> Result<Response<pb::ApproveDeviceAuthorizationResponse>, Status> {
        let principal = principal(&request)?.clone();
        if principal.client_id.is_some() && principal.session_id.is_none() {
            return Err(
                Error::permission_denied("USER_REQUIRED", "a user must approve a device").into(),
            );
        }
        let r = request.into_inner();
        let info = self
            .0
            .decide_user_code(
                &r.user_code,
                principal.user_id,
                principal.session_id,
                r.deny,
            )
            .await?;
        Ok(Response::new(pb::ApproveDeviceAuthorizationResponse {
            client_id: info.client_id,
            application_name: info.application_name,
            scope: info.scopes.join(" "),
        }))
    }

    async fn poll_device_authorization(
        &self,
        request: Request<pb::PollDeviceAuthorizationRequest>,
    ) -> Result<Response<pb::PollDeviceAuthorizationResponse>, Status> {
        let r = request.into_inner();
        let t = self
            .0
            .poll_device(&r.client_id, opt(&r.client_secret), &r.device_code)
            .await?;
        Ok(Response::new(token_response!(
            Tokens(t),
            PollDeviceAuthorizationResponse
        )))
    }

    async fn revoke_token(
        &self,
        request: Request<pb::RevokeTokenRequest>,
    ) -> Result<Response<pb::RevokeTokenResponse>, Status> {
        let r = request.into_inner();
        self.0
            .revoke(&r.client_id, opt(&r.client_secret), &r.token)
            .await?;
        Ok(Response::new(pb::RevokeTokenResponse {}))
    }

    async fn introspect_token(
        &self,
        request: Request<pb::IntrospectTokenRequest>,
    ) -> Result<Response<pb::IntrospectTokenResponse>, Status> {
        let r = request.into_inner();
        let i = self
            .0
            .introspect(&r.client_id, opt(&r.client_secret), &r.token)
            .await?;
        Ok(Response::new(pb::IntrospectTokenResponse {
            active: i.active,
            scope: i.scope,
            client_id: i.client_id,
            sub: i.sub,
            token_type: i.token_type,
            exp: i.exp,
            iat: i.iat,
            aud: i.aud,
            iss: i.iss,
            jti: i.jti,
            org_id: i.org_id,
            sid: i.sid,
        }))
    }

    /// The caller's own claims, released by the scopes of their token (a first-party sign-in
    /// token releases the profile, email and phone claims).
    async fn get_user_info(
        &self,
        request: Request<pb::GetUserInfoRequest>,
    ) -> Result<Response<pb::GetUserInfoResponse>, Status> {
        let principal = principal(&request)?.clone();
        if principal.session_id.is_none() {
            return Err(Error::permission_denied(
                "USER_REQUIRED",
                "user info is about a signed-in user",
            )
            .into());
        }
        let mut conn = self.0.pool.get().await.map_err(Error::from)?;
        let user = users::get(&mut conn, principal.user_id)
            .await?
            .ok_or_else(|| Error::not_found("USER_NOT_FOUND", "the user no longer exists"))?;
        let scope = if principal.client_id.is_some() {
            principal.scopes.join(" ")
        } else {
            "openid profile email phone".into()
        };
        let orgs = crate::org::org_claims(&mut conn, user.id).await?;
        let c = user_claims(&user, &scope, &orgs);
        let text = |k: &str| {
            c.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_string()
        };
        let flag = |k: &str| c.get(k).and_then(|v| v.as_bool()).unwrap_or_default();
        Ok(Response::new(pb::GetUserInfoResponse {
            sub: user.id.to_string(),
            name: text("name"),
            given_name: text("given_name"),
            family_name: text("family_name"),
            picture: text("picture"),
            updated_at: c
                .get("updated_at")
                .and_then(|v| v.as_i64())
                .unwrap_or_default(),
            email: text("email"),
            email_verified: flag("email_verified"),
            phone_number: text("phone_number"),
            phone_number_verified: flag("phone_number_verified"),
            orgs: orgs
                .into_iter()
                .map(|o| pb::OrganizationClaim {
                    id: o.id,
                    role: o.role,
                })
                .collect(),
        }))
    }
}
