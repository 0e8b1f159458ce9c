//! `mgpass.identity.v1.SecondFactorService`: authenticator apps, recovery codes and the second
//! step of a sign-in.

use mgpass_proto::identity::{self as pb, second_factor_service_server::SecondFactorService};
use tonic::{Request, Response, Status};

use super::{sessions::session_to_proto, verification::dispatch_to_proto};
use crate::{
    auth::{principal, session_check::SessionCheck},
    convert::timestamp,
    identity::{second_factor::FactorMethod, service::IdentityService},
};

/// Serves `mgpass.identity.v1.SecondFactorService`. Holds the auth layer's session cache, to
/// forget a session's pending factor the moment it is verified.
pub struct SecondFactorGrpc {
    pub identity: IdentityService,
    pub sessions: SessionCheck,
}

/// A session's pending factor as the protobuf enum.
pub(super) fn factor_to_proto(factor: Option<&str>) -> pb::SecondFactorMethod {
    match factor {
        Some("email") => pb::SecondFactorMethod::Email,
        Some("mobile") => pb::SecondFactorMethod::Mobile,
        Some("totp") => pb::SecondFactorMethod::Totp,
        _ => pb::SecondFactorMethod::Unspecified,
    }
}

#[tonic::async_trait]
impl SecondFactorService for SecondFactorGrpc {
    async fn get_my_second_factors(
        &self,
        request: Request<pb::GetMySecondFactorsRequest>,
    ) -> Result<Response<pb::GetMySecondFactorsResponse>, Status> {
        let s = self
            .identity
            .my_second_factors(principal(&request)?.user_id)
            .await?;
        Ok(Response::new(pb::GetMySecondFactorsResponse {
            totp_enrolled: s.totp_enrolled,
            totp_enroll_time: s.totp_enroll_time.map(timestamp),
            recovery_codes_remaining: s.recovery_codes_remaining as i32,
            email_code_required: s.email_code_required,
            mobile_code_required: s.mobile_code_required,
            totp_available: s.totp_available,
        }))
    }

    async fn enroll_totp(
        &self,
        request: Request<pb::EnrollTotpRequest>,
    ) -> Result<Response<pb::EnrollTotpResponse>, Status> {
        let me = principal(&request)?.user_id;
        let e = self
            .identity
            .enroll_totp(me, &request.into_inner().password)
            .await?;
        Ok(Response::new(pb::EnrollTotpResponse {
            secret: e.secret_base32,
            otpauth_uri: e.otpauth_uri,
            expire_time: Some(timestamp(e.expire_time)),
        }))
    }

    async fn confirm_totp_enrollment(
        &self,
        request: Request<pb::ConfirmTotpEnrollmentRequest>,
    ) -> Result<Response<pb::ConfirmTotpEnrollmentResponse>, Status> {
        let me = principal(&request)?.user_id;
        let recovery_codes = self
            .identity
            .confirm_totp_enrollment(me, &request.into_inner().code)
            .await?;
        Ok(Response::new(pb::ConfirmTotpEnrollmentResponse {
            recovery_codes,
        }))
    }

    async fn disable_totp(
        &self,
        request: Request<pb::DisableTotpRequest>,
    ) -> Result<Response<pb::DisableTotpResponse>, Status> {
        let me = principal(&request)?.user_id;
        self.identity
            .disable_totp(me, &request.into_inner().code)
            .await?;
        Ok(Response::new(pb::DisableTotpResponse {}))
    }

    async fn regenerate_recovery_codes(
        &self,
        request: Request<pb::RegenerateRecoveryCodesRequest>,
    ) -> Result<Response<pb::RegenerateRecoveryCodesResponse>, Status> {
        let me = principal(&request)?.user_id;
        let recovery_codes = self
            .identity
            .regenerate_recovery_codes(me, &request.into_inner().code)
            .await?;
        Ok(Response::new(pb::RegenerateRecoveryCodesResponse {
            recovery_codes,
        }))
    }

    async fn send_second_factor_code(
        &self,
        request: Request<pb::SendSecondFactorCodeRequest>,
    ) -> Result<Response<pb::SendSecondFactorCodeResponse>, Status> {
        let me = principal(&request)?;
        let d = self
            .identity
            .send_second_factor_code(me.user_id, me.session_id)
            .await?;
        Ok(Response::new(pb::SendSecondFactorCodeResponse {
            verification: Some(dispatch_to_proto(d)),
        }))
    }

    async fn verify_second_factor(
        &self,
        request: Request<pb::VerifySecondFactorRequest>,
    ) -> Result<Response<pb::VerifySecondFactorResponse>, Status> {
        let me = principal(&request)?.clone();
        let req = request.into_inner();
        let method = match pb::SecondFactorMethod::try_from(req.method).unwrap_or_default() {
            pb::SecondFactorMethod::Unspecified => FactorMethod::Pending,
            pb::SecondFactorMethod::Email => FactorMethod::Email,
            pb::SecondFactorMethod::Mobile => FactorMethod::Mobile,
            pb::SecondFactorMethod::Totp => FactorMethod::Totp,
            pb::SecondFactorMethod::RecoveryCode => FactorMethod::RecoveryCode,
        };
        let result = self
            .identity
            .verify_second_factor(me.user_id, me.session_id, method, &req.code)
            .await;
        if let Some(sid) = me.session_id {
            // Verified or revoked: either way this instance must not serve a stale answer.
            self.sessions.forget(sid);
        }
        let (session, remaining) = result?;
        Ok(Response::new(pb::VerifySecondFactorResponse {
            session: Some(session_to_proto(session, me.session_id)),
            recovery_codes_remaining: remaining.unwrap_or(0) as i32,
        }))
    }

    async fn reset_user_second_factors(
        &self,
        request: Request<pb::ResetUserSecondFactorsRequest>,
    ) -> Result<Response<pb::ResetUserSecondFactorsResponse>, Status> {
        self.identity
            .reset_user_second_factors(&request.into_inner().user_id)
            .await?;
        Ok(Response::new(pb::ResetUserSecondFactorsResponse {}))
    }
}
