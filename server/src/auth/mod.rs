//! Credentials to principals, and the one layer that enforces every RPC's declared audience and
//! permission (`mgpass.options.v1.auth`) before any service code runs, for gRPC, grpc-web and REST
//! alike (REST reaches the gRPC router in process, through this layer).

pub mod api_keys;
pub mod key_cache;
mod layer;
pub mod org_scope;
pub mod rate_limit;
pub mod revocation;
pub mod session_check;
pub mod tokens;

pub use layer::{AuthLayer, MethodRules};

use uuid::Uuid;

/// The scope that authorizes every management API.
pub const ADMIN_SCOPE: &str = "mgpass:admin";

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CredentialKind {
    /// A JWT access token (header, cookie or query parameter).
    #[default]
    Jwt,
    /// An `mgp_` API key (`Authorization: Bearer mgp_...`).
    ApiKey,
    /// A reward partner's `mgpp_` key (`X-API-Key`), accepted only on partner RPCs.
    PartnerApiKey,
}

/// Who is calling, as established by the auth layer and read by services from the request
/// extensions.
#[derive(Debug, Clone, Default)]
pub struct Principal {
    /// The user, or for a machine-to-machine token the application's id.
    pub user_id: Uuid,
    /// The OAuth client the token was issued to (for an M2M token, the subject itself).
    pub client_id: Option<String>,
    /// The session of a user's access token (absent for tokens not tied to a session).
    pub session_id: Option<Uuid>,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
    /// How the caller authenticated.
    pub credential_kind: CredentialKind,
    /// The API key used, for [`CredentialKind::ApiKey`].
    pub api_key_id: Option<Uuid>,
    /// The organization an organization API key acts as (`user_id` is then the organization's
    /// id too, as an M2M token's subject is its application).
    pub api_key_organization_id: Option<Uuid>,
    /// The organization of an organization token (`org_id`): its scopes act in that
    /// organization only (see `auth::org_scope`).
    pub org_id: Option<Uuid>,
    /// The reward partner of a partner API key (`user_id` is then the partner's id too). Holds
    /// no permission: partner keys reach only `AUDIENCE_PARTNER` methods.
    pub partner_id: Option<Uuid>,
}

impl Principal {
    /// Whether the principal holds `permission`. `mgpass:admin` holds every permission; the
    /// access-control domain will add role- and grant-based permissions here.
    /// An organization token holds nothing globally.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.org_id.is_none() && self.partner_id.is_none() && self.scopes.iter().any(|s| s == ADMIN_SCOPE || s == permission)
    }
}

/// The principal of a request that passed the auth layer. Services call it only on methods whose
/// audience requires one, so its absence is a wiring bug.
pub fn principal<T>(request: &tonic::Request<T>) -> crate::error::Result<&Principal> {
    request
        .extensions()
        .get::<Principal>()
        .ok_or_else(|| crate::error::Error::unauthenticated("UNAUTHENTICATED", "authentication required"))
}
