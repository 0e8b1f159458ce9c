//! Credentials to principals, and the one layer that enforces every RPC's declared audience and
//! permission (`mgpass.options.v1.auth`) before any service code runs, for gRPC, grpc-web and REST
//! alike (REST reaches the gRPC router in process, through this layer).

mod layer;
pub mod revocation;
pub mod session_check;
pub mod tokens;

pub use layer::{AuthLayer, MethodRules};

use uuid::Uuid;

/// The scope that authorizes every management API.
pub const ADMIN_SCOPE: &str = "mgpass:admin";

/// Who is calling, as established by the auth layer and read by services from the request
/// extensions.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user, or for a machine-to-machine token the application's id.
    pub user_id: Uuid,
    /// The OAuth client the token was issued to (for an M2M token, the subject itself).
    pub client_id: Option<String>,
    /// The session of a user's access token (absent for tokens not tied to a session).
    pub session_id: Option<Uuid>,
    pub roles: Vec<String>,
    pub scopes: Vec<String>,
}

impl Principal {
    /// Whether the principal holds `permission`. `mgpass:admin` holds every permission; the
    /// access-control domain will add role- and grant-based permissions here.
    pub fn has_permission(&self, permission: &str) -> bool {
        self.scopes.iter().any(|s| s == ADMIN_SCOPE || s == permission)
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
