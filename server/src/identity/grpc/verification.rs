//! `mgpass.identity.v1.VerificationService`: email and mobile verification, password reset and
//! magic links, without a session.

use mgpass_proto::identity::{self as pb, verification_service_server::VerificationService};
use tonic::{Request, Response, Status};

use super::client_info;
use crate::{
    convert::timestamp,
    delivery::Channel,
    error::Error,
    identity::{
        service::IdentityService,
        verification::Dispatch,
        verification_service::{ResetBy, SecretInput},
    },
};

/// Serves `mgpass.identity.v1.VerificationService`.
pub struct VerificationGrpc(pub IdentityService);

/// The protobuf form of what a start call sent.
pub(super) fn dispatch_to_proto(d: Dispatch) -> pb::VerificationDispatch {
    pb::VerificationDispatch {
        channel: match d.channel {
            Channel::Email => pb::VerificationChannel::Email,
            Channel::Sms => pb::VerificationChannel::Sms,
        } as i32,
        destination: d.destination,
        verification_type: if d.link {
            pb::VerificationType::Link
        } else {
            pb::VerificationType::Code
        } as i32,
        expire_time: Some(timestamp(d.expire_time)),
        resend_time: Some(timestamp(d.resend_time)),
        test_mode_secret: d.test_mode_secret.unwrap_or_default(),
    }
}

fn missing_secret() -> Error {
    Error::invalid("INVALID_ARGUMENT", "code", "`code` or `token` is required")
}

fn secret_input(code: Option<String>, token: Option<String>) -> Result<SecretInput, Error> {
    match (code, token) {
        (Some(c), _) => Ok(SecretInput::Code(c)),
        (None, Some(t)) => Ok(SecretInput::Token(t)),
        (None, None) => Err(missing_secret()),
    }
}

#[tonic::async_trait]
impl VerificationService for VerificationGrpc {
    async fn send_email_verification(
        &self,
        request: Request<pb::SendEmailVerificationRequest>,
    ) -> Result<Response<pb::SendEmailVerificationResponse>, Status> {
        let client = client_info(&request);
        let d = self
            .0
            .send_email_verification(&request.into_inner().email, &client)
            .await?;
        Ok(Response::new(pb::SendEmailVerificationResponse {
            verification: Some(dispatch_to_proto(d)),
        }))
    }

    async fn confirm_email_verification(
        &self,
        request: Request<pb::ConfirmEmailVerificationRequest>,
    ) -> Result<Response<pb::ConfirmEmailVerificationResponse>, Status> {
        use pb::confirm_email_verification_request::Secret;
        let req = request.into_inner();
        let secret = match req.secret {
            Some(Secret::Code(c)) => secret_input(Some(c), None)?,
            Some(Secret::Token(t)) => secret_input(None, Some(t))?,
            None => return Err(missing_secret().into()),
        };
        let email = self
            .0
            .confirm_email_verification(&req.email, secret)
            .await?;
        Ok(Response::new(pb::ConfirmEmailVerificationResponse {
            email,
        }))
    }

    async fn send_mobile_verification(
        &self,
        request: Request<pb::SendMobileVerificationRequest>,
    ) -> Result<Response<pb::SendMobileVerificationResponse>, Status> {
        let client = client_info(&request);
        let d = self
            .0
            .send_mobile_verification(&request.into_inner().mobile, &client)
            .await?;
        Ok(Response::new(pb::SendMobileVerificationResponse {
            verification: Some(dispatch_to_proto(d)),
        }))
    }

    async fn confirm_mobile_verification(
        &self,
        request: Request<pb::ConfirmMobileVerificationRequest>,
    ) -> Result<Response<pb::ConfirmMobileVerificationResponse>, Status> {
        use pb::confirm_mobile_verification_request::Secret;
        let req = request.into_inner();
        let secret = match req.secret {
            Some(Secret::Code(c)) => SecretInput::Code(c),
            Some(Secret::Token(t)) => SecretInput::Token(t),
            None => return Err(missing_secret().into()),
        };
        let mobile = self
            .0
            .confirm_mobile_verification(&req.mobile, secret)
            .await?;
        Ok(Response::new(pb::ConfirmMobileVerificationResponse {
            mobile,
        }))
    }

    async fn request_password_reset(
        &self,
        request: Request<pb::RequestPasswordResetRequest>,
    ) -> Result<Response<pb::RequestPasswordResetResponse>, Status> {
        use pb::request_password_reset_request::Identifier;
        let client = client_info(&request);
        let by = match request.into_inner().identifier {
            Some(Identifier::Email(e)) => ResetBy::Email(e),
            Some(Identifier::Mobile(m)) => ResetBy::Mobile(m),
            None => {
                return Err(Error::invalid(
                    "INVALID_ARGUMENT",
                    "email",
                    "`email` or `mobile` is required",
                )
                .into());
            }
        };
        let d = self.0.request_password_reset(by, &client).await?;
        Ok(Response::new(pb::RequestPasswordResetResponse {
            verification: Some(dispatch_to_proto(d)),
        }))
    }

    async fn confirm_password_reset(
        &self,
        request: Request<pb::ConfirmPasswordResetRequest>,
    ) -> Result<Response<pb::ConfirmPasswordResetResponse>, Status> {
        use pb::confirm_password_reset_request::{Identifier, Secret};
        let req = request.into_inner();
        let by = match req.identifier {
            Some(Identifier::Email(e)) => Some(ResetBy::Email(e)),
            Some(Identifier::Mobile(m)) => Some(ResetBy::Mobile(m)),
            None => None,
        };
        let secret = match req.secret {
            Some(Secret::Code(c)) => SecretInput::Code(c),
            Some(Secret::Token(t)) => SecretInput::Token(t),
            None => return Err(missing_secret().into()),
        };
        if matches!(secret, SecretInput::Code(_)) && by.is_none() {
            return Err(Error::invalid(
                "INVALID_ARGUMENT",
                "email",
                "`email` or `mobile` is required with a code",
            )
            .into());
        }
        self.0
            .confirm_password_reset(by, secret, req.new_password)
            .await?;
        Ok(Response::new(pb::ConfirmPasswordResetResponse {}))
    }

    async fn request_magic_link(
        &self,
        request: Request<pb::RequestMagicLinkRequest>,
    ) -> Result<Response<pb::RequestMagicLinkResponse>, Status> {
        let client = client_info(&request);
        let d = self
            .0
            .request_magic_link(&request.into_inner().email, &client)
            .await?;
        Ok(Response::new(pb::RequestMagicLinkResponse {
            verification: Some(dispatch_to_proto(d)),
        }))
    }

    async fn confirm_magic_link(
        &self,
        request: Request<pb::ConfirmMagicLinkRequest>,
    ) -> Result<Response<pb::ConfirmMagicLinkResponse>, Status> {
        use pb::confirm_magic_link_request::Secret;
        let client = client_info(&request);
        let req = request.into_inner();
        let secret = match req.secret {
            Some(Secret::Code(c)) => SecretInput::Code(c),
            Some(Secret::Token(t)) => SecretInput::Token(t),
            None => return Err(missing_secret().into()),
        };
        let tokens = self
            .0
            .confirm_magic_link(&req.email, secret, &client)
            .await?;
        Ok(Response::new(pb::ConfirmMagicLinkResponse {
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
}
