//! Public registration: who may register, how often, and what a new account gets.

use std::{net::IpAddr, num::NonZeroU32, sync::Arc};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::{
    auth::Principal,
    error::{Error, Result},
    identity::{
        identifiers::{normalize_email, normalize_mobile},
        service::{IdentityService, UserFields},
        session_service::ClientInfo,
        store::UserRow,
    },
};

/// Registrations allowed per identifier per hour: enough for typos and retries, too few to use
/// the endpoint to probe or to flood one address with verification messages.
const PER_IDENTIFIER_PER_HOUR: u32 = 5;

/// Per-instance registration throttles (in memory: they bound abuse, they are not a ledger).
#[derive(Clone)]
pub struct RegistrationLimits {
    per_ip: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    per_identifier: Arc<DefaultKeyedRateLimiter<String>>,
}

impl RegistrationLimits {
    pub fn new(per_ip_per_hour: u32) -> Self {
        let per_identifier = NonZeroU32::new(PER_IDENTIFIER_PER_HOUR).expect("non-zero");
        Self {
            per_ip: NonZeroU32::new(per_ip_per_hour)
                .map(|n| Arc::new(RateLimiter::keyed(Quota::per_hour(n)))),
            per_identifier: Arc::new(RateLimiter::keyed(Quota::per_hour(per_identifier))),
        }
    }
}

/// What a registration produced.
pub struct Registered {
    pub user: UserRow,
    pub email_verification_needed: bool,
    pub mobile_verification_needed: bool,
}

fn rate_limited() -> Error {
    Error::ResourceExhausted {
        reason: "RATE_LIMITED",
        message: "too many registrations; try again later".into(),
    }
}

impl IdentityService {
    /// Registers a new user with the default role. Refused when registration is restricted,
    /// unless the caller may create users anyway, or the sign-up answers an organization
    /// invitation (`invited_email`, checked by the caller): then the email must be the invited
    /// one, and it counts as verified (the invitation reached it).
    pub async fn register(
        &self,
        mut fields: UserFields,
        password: String,
        caller: Option<&Principal>,
        client: &ClientInfo,
        limits: &RegistrationLimits,
        invited_email: Option<&str>,
    ) -> Result<Registered> {
        let privileged = caller.is_some_and(|p| p.has_permission("identity.users.create"));
        if let Some(invited) = invited_email {
            if !normalize_email(&fields.email).is_ok_and(|e| e.eq_ignore_ascii_case(invited)) {
                return Err(Error::FailedPrecondition {
                    reason: "INVITATION_EMAIL_MISMATCH",
                    message:
                        "the invitation is for another email address; sign up with that address"
                            .into(),
                });
            }
        }
        if !self.policy.registration_public && !privileged && invited_email.is_none() {
            return Err(Error::permission_denied(
                "REGISTRATION_RESTRICTED",
                "registration is restricted to administrators",
            ));
        }
        if !privileged {
            if let (Some(limiter), Some(ip)) = (&limits.per_ip, client.ip) {
                limiter.check_key(&ip).map_err(|_| rate_limited())?;
            }
            for identifier in [
                normalize_email(&fields.email).ok(),
                normalize_mobile(&fields.mobile).ok(),
            ]
            .into_iter()
            .flatten()
            {
                limits
                    .per_identifier
                    .check_key(&identifier.to_lowercase())
                    .map_err(|_| rate_limited())?;
            }
        }
        if password.is_empty() {
            return Err(Error::invalid(
                "WEAK_PASSWORD",
                "password",
                "a password is required",
            ));
        }
        // Roles are for administrators to give; a registration gets the default role.
        fields.roles = Vec::new();
        let user = self
            .create_user(fields, Some(password), invited_email.is_some())
            .await?;
        tracing::info!(user_id = %user.id, invited = invited_email.is_some(), "user registered");
        Ok(Registered {
            email_verification_needed: self.policy.email_verification_required
                && !user.email_verified
                && user.email.is_some(),
            mobile_verification_needed: self.policy.mobile_verification_required
                && user.mobile.is_some(),
            user,
        })
    }
}
