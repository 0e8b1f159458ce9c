//! Self-service: a signed-in user reads, changes, exports and deletes their own account.

use uuid::Uuid;

use crate::{
    error::{Error, Result},
    identity::{
        service::{IdentityService, UserUpdate, not_found},
        session_store,
        store::{self, UserRow},
    },
};

/// The profile fields a user may change about themselves; identifiers change through their own
/// verified flows, roles and status only through administrators.
const SELF_UPDATABLE: [&str; 5] = [
    "given_name",
    "family_name",
    "full_name",
    "avatar_url",
    "properties",
];

impl IdentityService {
    pub async fn my_profile(&self, user_id: Uuid) -> Result<UserRow> {
        let mut conn = self.pool.get().await?;
        store::get(&mut conn, user_id).await?.ok_or_else(not_found)
    }

    pub async fn update_my_profile(&self, user_id: Uuid, update: UserUpdate) -> Result<UserRow> {
        if let Some(path) = update
            .paths
            .iter()
            .find(|p| !SELF_UPDATABLE.contains(&p.as_str()))
        {
            return Err(Error::invalid(
                "INVALID_UPDATE_MASK",
                "update_mask",
                format!(
                    "`{path}` cannot be changed here (updatable: {})",
                    SELF_UPDATABLE.join(", ")
                ),
            ));
        }
        self.update_user(&user_id.to_string(), update).await
    }

    /// Checks the password of an account that has one; accounts without a password (created by
    /// an administrator, or through a link) pass.
    pub(super) async fn reauthenticate(&self, user: &UserRow, password: &str) -> Result<()> {
        if user.password_hash.is_some()
            && !self
                .hasher
                .verify(password.to_string(), user.password_hash.clone())
                .await?
        {
            return Err(Error::invalid(
                "WRONG_PASSWORD",
                "password",
                "the current password is wrong",
            ));
        }
        Ok(())
    }

    /// Changes the password and signs out every other session; returns how many ended.
    pub async fn change_my_password(
        &self,
        user_id: Uuid,
        current_session: Option<Uuid>,
        current_password: &str,
        new_password: String,
    ) -> Result<usize> {
        let user = self.my_profile(user_id).await?;
        self.reauthenticate(&user, current_password).await?;
        self.hasher.check_policy(&new_password)?;
        let hash = self.hasher.hash(new_password).await?;
        let mut conn = self.pool.get().await?;
        store::set_password(&mut conn, user_id, &hash).await?;
        let revoked = session_store::revoke(
            &mut conn,
            user_id,
            None,
            current_session,
            "password_changed",
        )
        .await?;
        tracing::info!(%user_id, revoked, "password changed");
        Ok(revoked)
    }

    /// Deletes the account; its sessions and refresh tokens go with it (foreign keys cascade).
    pub async fn delete_my_account(&self, user_id: Uuid, password: &str) -> Result<()> {
        let user = self.my_profile(user_id).await?;
        self.reauthenticate(&user, password).await?;
        let mut conn = self.pool.get().await?;
        if !store::delete(&mut conn, user_id).await? {
            return Err(not_found());
        }
        tracing::info!(%user_id, "account deleted by its owner");
        Ok(())
    }

    /// Everything mgpass holds about the user, as JSON (no secrets: no password hash, no token
    /// digests).
    pub async fn export_my_data(
        &self,
        user_id: Uuid,
    ) -> Result<serde_json::Map<String, serde_json::Value>> {
        let user = self.my_profile(user_id).await?;
        let mut conn = self.pool.get().await?;
        let sessions = session_store::list_active(&mut conn, user_id, 1000, None).await?;
        let json = serde_json::json!({
            "user": {
                "id": user.id,
                "email": user.email,
                "mobile": user.mobile,
                "givenName": user.given_name,
                "familyName": user.family_name,
                "fullName": user.full_name,
                "avatarUrl": user.avatar_url,
                "emailVerified": user.email_verified,
                "mobileVerified": user.mobile_verified,
                "roles": user.roles,
                "status": user.status,
                "properties": user.properties,
                "createTime": user.created_at,
                "updateTime": user.updated_at,
                "hasPassword": user.password_hash.is_some(),
            },
            "sessions": sessions.iter().map(|s| serde_json::json!({
                "id": s.id,
                "userAgent": s.user_agent,
                "ipAddress": s.ip_address,
                "authenticationMethods": s.amr,
                "createTime": s.created_at,
                "lastUseTime": s.last_used_at,
                "expireTime": s.expires_at,
            })).collect::<Vec<_>>(),
        });
        match json {
            serde_json::Value::Object(map) => Ok(map),
            _ => unreachable!("built as an object"),
        }
    }
}
