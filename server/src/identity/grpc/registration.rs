//! `mgpass.identity.v1.RegistrationService`: public sign-up and the rules it follows.

use mgpass_proto::identity::{self as pb, registration_service_server::RegistrationService};
use tonic::{Request, Response, Status};

use super::{client_info, required, user_fields, user_to_proto};
use crate::{
    auth::Principal,
    convert::json_to_value,
    identity::{
        policy::{Presence, Primary, PropertyKind},
        registration::RegistrationLimits,
        service::IdentityService,
    },
};

/// Serves `mgpass.identity.v1.RegistrationService`.
pub struct RegistrationGrpc {
    pub identity: IdentityService,
    /// A sign-up with an `invitation_token` joins the organization that invited it.
    pub invitations: crate::org::invitation_service::InvitationService,
    pub limits: RegistrationLimits,
    pub password_min_length: usize,
    pub refuse_common_passwords: bool,
}

#[tonic::async_trait]
impl RegistrationService for RegistrationGrpc {
    async fn get_registration_policy(
        &self,
        _request: Request<pb::GetRegistrationPolicyRequest>,
    ) -> Result<Response<pb::GetRegistrationPolicyResponse>, Status> {
        let policy = self.identity.policy();
        let primary = match policy.primary {
            Primary::Email => pb::PrimaryLoginIdentifier::Email,
            Primary::Mobile => pb::PrimaryLoginIdentifier::Mobile,
            Primary::EmailOrMobile => pb::PrimaryLoginIdentifier::EmailOrMobile,
        };
        let (secondary, dual) = match (policy.primary, policy.secondary) {
            (Primary::EmailOrMobile, Presence::Required) => (
                pb::SecondaryIdentifierPresence::Unspecified,
                pb::DualIdentifierRegistration::Both,
            ),
            (Primary::EmailOrMobile, _) => (
                pb::SecondaryIdentifierPresence::Unspecified,
                pb::DualIdentifierRegistration::AtLeastOne,
            ),
            (_, Presence::None) => (
                pb::SecondaryIdentifierPresence::None,
                pb::DualIdentifierRegistration::Unspecified,
            ),
            (_, Presence::Optional) => (
                pb::SecondaryIdentifierPresence::Optional,
                pb::DualIdentifierRegistration::Unspecified,
            ),
            (_, Presence::Required) => (
                pb::SecondaryIdentifierPresence::Required,
                pb::DualIdentifierRegistration::Unspecified,
            ),
        };
        let user_properties = policy
            .properties
            .iter()
            .map(|p| {
                let (kind, values) = match &p.kind {
                    PropertyKind::String => (pb::PropertyType::String, Vec::new()),
                    PropertyKind::Integer => (pb::PropertyType::Integer, Vec::new()),
                    PropertyKind::Boolean => (pb::PropertyType::Boolean, Vec::new()),
                    PropertyKind::Enum(values) => (pb::PropertyType::Enum, values.clone()),
                };
                pb::PropertyDefinition {
                    name: p.name.clone(),
                    property_type: kind as i32,
                    required: p.required,
                    default_value: p.default.clone().map(json_to_value),
                    unique: p.unique,
                    enum_values: values,
                    description: String::new(),
                }
            })
            .collect();
        Ok(Response::new(pb::GetRegistrationPolicyResponse {
            registration_open: policy.registration_public,
            primary_login_identifier: primary as i32,
            secondary_identifier_presence: secondary as i32,
            dual_identifier_registration: dual as i32,
            user_name_type: if policy.full_name {
                pb::UserNameType::FullName
            } else {
                pb::UserNameType::NamePair
            } as i32,
            password_policy: Some(pb::PasswordPolicy {
                min_length: self.password_min_length as i32,
                refuse_common_passwords: self.refuse_common_passwords,
            }),
            user_properties,
            email_verification_required: policy.email_verification_required,
            mobile_verification_required: policy.mobile_verification_required,
        }))
    }

    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let client = client_info(&request);
        let caller = request.extensions().get::<Principal>().cloned();
        let req = request.into_inner();
        let user = required(req.user, "user")?;
        // The invitation is checked first, so a bad token creates no account.
        let invited_email = match req.invitation_token.as_str() {
            "" => None,
            token => Some(self.invitations.invited_email(token).await?),
        };
        let registered = self
            .identity
            .register(
                user_fields(user),
                req.password,
                caller.as_ref(),
                &client,
                &self.limits,
                invited_email.as_deref(),
            )
            .await?;
        let mut organization_id = String::new();
        if invited_email.is_some() {
            match self
                .invitations
                .accept_as(registered.user.id, &req.invitation_token)
                .await
            {
                Ok(view) => organization_id = view.member.organization_id.to_string(),
                Err(err) => {
                    // The invitation went away meanwhile (revoked, used, expired): the sign-up it
                    // allowed is undone rather than left without its membership.
                    self.identity
                        .delete_user(&registered.user.id.to_string())
                        .await?;
                    return Err(err.into());
                }
            }
        }
        let (email_verification, mobile_verification) =
            self.identity.dispatch_registration(&registered.user).await;
        Ok(Response::new(pb::RegisterResponse {
            user: Some(user_to_proto(registered.user)),
            email_verification_needed: registered.email_verification_needed,
            mobile_verification_needed: registered.mobile_verification_needed,
            email_verification: email_verification.map(super::verification::dispatch_to_proto),
            mobile_verification: mobile_verification.map(super::verification::dispatch_to_proto),
            organization_id,
        }))
    }
}
