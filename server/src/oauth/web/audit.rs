//! Audit entries of the hosted pages. Their forms call the identity service directly, not
//! through the gRPC stack whose layer audits every change, so the security-relevant ones append
//! their own entries here, under the action of the RPC that does the same thing
//! (`AuthenticationService/Login`, ...), so that one filter finds both.

use chrono::Utc;
use uuid::Uuid;

use crate::{admin::audit_store::AuditRow, error::Error, oauth::web::browser::Browser};

use super::Web;

/// What a hosted page did.
pub(super) enum PageAction {
    SignIn,
    SignUp,
    PasswordReset,
    MagicLink,
}

impl PageAction {
    fn rpc(&self) -> &'static str {
        match self {
            PageAction::SignIn => "mgpass.identity.v1.AuthenticationService/Login",
            PageAction::SignUp => "mgpass.identity.v1.RegistrationService/Register",
            PageAction::PasswordReset => {
                "mgpass.identity.v1.VerificationService/ConfirmPasswordReset"
            }
            PageAction::MagicLink => "mgpass.identity.v1.VerificationService/ConfirmMagicLink",
        }
    }
}

impl Web {
    /// Appends the entry of a page action: who (the user, when known), on which identifier,
    /// and how it ended. Passwords and codes never reach it.
    pub(super) async fn audit(
        &self,
        b: &Browser,
        action: PageAction,
        identifier: &str,
        user: Option<Uuid>,
        outcome: Result<(), &Error>,
    ) {
        let (target_type, target_id) = match user {
            Some(id) => ("user".to_string(), id.to_string()),
            None => (
                "identifier".to_string(),
                identifier.chars().take(256).collect(),
            ),
        };
        let row = AuditRow {
            id: Uuid::now_v7(),
            credential_kind: "none".into(),
            actor_user_id: user,
            actor_application_id: None,
            actor_api_key_id: None,
            action: action.rpc().into(),
            target_type,
            target_id,
            organization_id: None,
            request: Some(serde_json::json!({"identifier": identifier, "via": "hosted_page"})),
            before: None,
            after: None,
            success: outcome.is_ok(),
            error_reason: outcome
                .err()
                .map(|e| e.reason().to_string())
                .unwrap_or_default(),
            ip_address: b.client.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            user_agent: b.client.user_agent.chars().take(512).collect(),
            request_id: String::new(),
            created_at: Utc::now(),
        };
        self.audit_log.append(row).await;
    }
}
