//! The rules of invitations: who may invite with which role, one pending invitation per address,
//! single-use tokens (256 random bits, stored as SHA-256) with an expiry, the email queued
//! through the outbox in the same transaction, and acceptance by the signed-in invitee only.
//! Transport-free.

use chrono::{DateTime, Duration, Utc};
use diesel_async::AsyncConnection;
use uuid::Uuid;

use crate::{
    auth::Principal,
    config::OrganizationsConfig,
    crypto::secret::{digest, random_token},
    db::DbPool,
    delivery::{Outbox, OutgoingMessage},
    error::{Error, Result},
    identity::store as users,
    org::{
        access::OrgAccess,
        failed,
        invitation_store::{self as store, InvitationRow},
        org_not_found, org_role_store as roles,
        org_store::{self, MemberRow, MemberView},
        organization_service::check_role_grantable,
        parse_id, parse_org_id,
    },
    paging::Page,
};

const DEFAULT_TTL_SECS: i64 = 7 * 86_400;
const MIN_TTL_SECS: i64 = 3_600;
const MAX_TTL_SECS: i64 = 30 * 86_400;

/// What the page behind an invitation link shows.
#[derive(Debug, Clone)]
pub struct InvitationPreview {
    pub organization_name: String,
    pub organization_avatar_url: String,
    pub email: String,
    pub role: String,
    pub inviter_display_name: String,
    pub expire_time: DateTime<Utc>,
    pub account_exists: bool,
}

#[derive(Clone)]
pub struct InvitationService {
    pool: DbPool,
    access: OrgAccess,
    outbox: Outbox,
    /// The link of the email, with `{token}`.
    link: String,
}

fn not_found() -> Error {
    Error::not_found("INVITATION_NOT_FOUND", "no such invitation")
}

fn not_pending() -> Error {
    failed(
        "INVITATION_NOT_PENDING",
        "the invitation was already accepted or revoked",
    )
}

/// Refuses an invitation that can no longer be used.
fn check_usable(row: &InvitationRow) -> Result<()> {
    match row.effective_status(Utc::now()) {
        "pending" => Ok(()),
        "expired" => Err(failed(
            "INVITATION_EXPIRED",
            "the invitation has expired; ask for a new one",
        )),
        _ => Err(not_pending()),
    }
}

impl InvitationService {
    pub fn new(
        pool: DbPool,
        access: OrgAccess,
        outbox: Outbox,
        config: &OrganizationsConfig,
        issuer: &str,
    ) -> Self {
        let link = if config.invitation_link_url.is_empty() {
            format!("{}/invitations/{{token}}", issuer.trim_end_matches('/'))
        } else {
            config.invitation_link_url.clone()
        };
        Self {
            pool,
            access,
            outbox,
            link,
        }
    }

    /// Invites `email` with `role` and queues the email, in one transaction.
    pub async fn create(
        &self,
        caller: &Principal,
        org: &str,
        email: &str,
        role: &str,
        ttl_secs: Option<i64>,
    ) -> Result<InvitationRow> {
        let org = parse_org_id(org)?;
        let email = email.trim().to_string();
        if email.is_empty() || email.len() > 254 || email.parse::<lettre::Address>().is_err() {
            return Err(Error::invalid(
                "INVALID_EMAIL",
                "email",
                "not a valid email address",
            ));
        }
        let ttl = ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
        if !(MIN_TTL_SECS..=MAX_TTL_SECS).contains(&ttl) {
            return Err(Error::invalid(
                "INVALID_ARGUMENT",
                "ttl",
                "ttl must be between 1 hour and 30 days",
            ));
        }
        let token = random_token(32);
        let mut conn = self.pool.get().await?;
        let row = conn
            .transaction(async |conn| {
                let organization = org_store::get_for_update(conn, org)
                    .await?
                    .ok_or_else(org_not_found)?;
                let role = roles::by_name(conn, org, role).await?.ok_or_else(|| {
                    Error::not_found(
                        "ORG_ROLE_NOT_FOUND",
                        format!("no role `{role}` in this organization"),
                    )
                })?;
                check_role_grantable(&self.access, caller, "org.invitations.create", org, &role)
                    .await?;
                if store::email_is_member(conn, org, &email).await? {
                    return Err(Error::already_exists(
                        "ALREADY_ORGANIZATION_MEMBER",
                        "a user with this address is already a member",
                    ));
                }
                store::expire_stale(conn, org, &email).await?;
                let now = Utc::now();
                let inviter = users::get(conn, caller.user_id).await?;
                let row = store::insert(
                    conn,
                    InvitationRow {
                        id: Uuid::now_v7(),
                        organization_id: org,
                        email: email.clone(),
                        role: role.name.clone(),
                        token_hash: digest(&token),
                        inviter_user_id: inviter.as_ref().map(|u| u.id),
                        status: "pending".into(),
                        expires_at: now + Duration::seconds(ttl),
                        created_at: now,
                        closed_at: None,
                        accepter_user_id: None,
                    },
                )
                .await?;
                let inviter_name = inviter
                    .map(|u| org_store::display_name(&u.given_name, &u.family_name, &u.full_name))
                    .unwrap_or_default();
                let msg = OutgoingMessage::email(&email, "invitation")
                    .var("organization", organization.name.as_str())
                    .var("inviter", inviter_name)
                    .var("role", role.name.as_str())
                    .var("link", self.link.replace("{token}", &token))
                    .var("expires_days", (ttl / 86_400).max(1));
                self.outbox.enqueue(conn, msg).await?;
                Ok::<_, Error>(row)
            })
            .await?;
        tracing::info!(organization_id = %org, invitation_id = %row.id, role = %row.role, "invitation sent");
        Ok(row)
    }

    pub async fn get(&self, org: &str, id: &str) -> Result<InvitationRow> {
        let org = parse_org_id(org)?;
        let id = parse_id(id, "invitation_id")?;
        let mut conn = self.pool.get().await?;
        org_store::get(&mut conn, org)
            .await?
            .ok_or_else(org_not_found)?;
        store::get(&mut conn, org, id).await?.ok_or_else(not_found)
    }

    pub async fn list(
        &self,
        org: &str,
        status: Option<&str>,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<InvitationRow>, String)> {
        let org = parse_org_id(org)?;
        let page = Page::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        org_store::get(&mut conn, org)
            .await?
            .ok_or_else(org_not_found)?;
        let rows = store::list(&mut conn, org, status, page.after, page.fetch()).await?;
        Ok(page.finish(rows, |r| (r.created_at, r.id)))
    }

    /// Revokes a pending invitation.
    pub async fn revoke(&self, org: &str, id: &str) -> Result<InvitationRow> {
        let org = parse_org_id(org)?;
        let id = parse_id(id, "invitation_id")?;
        let mut conn = self.pool.get().await?;
        let row = conn
            .transaction(async |conn| {
                org_store::get_for_update(conn, org)
                    .await?
                    .ok_or_else(org_not_found)?;
                let row = store::get_for_update(conn, org, id)
                    .await?
                    .ok_or_else(not_found)?;
                if row.effective_status(Utc::now()) != "pending" {
                    return Err(not_pending());
                }
                store::close(conn, id, "revoked", None).await
            })
            .await?;
        tracing::info!(organization_id = %org, invitation_id = %id, "invitation revoked");
        Ok(row)
    }

    /// Describes the invitation behind a token.
    pub async fn lookup(&self, token: &str) -> Result<InvitationPreview> {
        if token.is_empty() {
            return Err(not_found());
        }
        let mut conn = self.pool.get().await?;
        let row = store::by_token_hash(&mut conn, &digest(token))
            .await?
            .ok_or_else(not_found)?;
        check_usable(&row)?;
        let org = org_store::get(&mut conn, row.organization_id)
            .await?
            .ok_or_else(not_found)?;
        let inviter = match row.inviter_user_id {
            Some(id) => users::get(&mut conn, id).await?,
            None => None,
        };
        let account_exists = users::find_by_email(&mut conn, &row.email).await?.is_some();
        Ok(InvitationPreview {
            organization_name: org.name,
            organization_avatar_url: org.avatar_url,
            email: row.email,
            role: row.role,
            inviter_display_name: inviter
                .map(|u| org_store::display_name(&u.given_name, &u.family_name, &u.full_name))
                .unwrap_or_default(),
            expire_time: row.expires_at,
            account_exists,
        })
    }

    /// The invited email of a usable invitation, for a sign-up that accepts it (checked before
    /// the account is created, so a bad token creates nothing).
    pub async fn invited_email(&self, token: &str) -> Result<String> {
        if token.is_empty() {
            return Err(not_found());
        }
        let mut conn = self.pool.get().await?;
        let row = store::by_token_hash(&mut conn, &digest(token))
            .await?
            .ok_or_else(not_found)?;
        check_usable(&row)?;
        Ok(row.email)
    }

    /// The signed-in invitee accepts: the membership is created and the token used up, once.
    pub async fn accept(&self, caller: &Principal, token: &str) -> Result<MemberView> {
        if caller.session_id.is_none() {
            return Err(Error::permission_denied(
                "USER_REQUIRED",
                "a signed-in user accepts an invitation",
            ));
        }
        self.accept_as(caller.user_id, token).await
    }

    /// `user` accepts (the signed-in caller, or the account a sign-up with the token just made).
    pub async fn accept_as(&self, user_id: Uuid, token: &str) -> Result<MemberView> {
        if token.is_empty() {
            return Err(not_found());
        }
        let hash = digest(token);
        let mut conn = self.pool.get().await?;
        let org = store::by_token_hash(&mut conn, &hash)
            .await?
            .ok_or_else(not_found)?
            .organization_id;
        let row = conn
            .transaction(async |conn| {
                // Lock order: the organization, then the invitation.
                org_store::get_for_update(conn, org)
                    .await?
                    .ok_or_else(not_found)?;
                let row = store::by_token_hash_for_update(conn, &hash)
                    .await?
                    .ok_or_else(not_found)?;
                check_usable(&row)?;
                let user = users::get_for_update(conn, user_id).await?.ok_or_else(|| {
                    Error::not_found("USER_NOT_FOUND", "the user no longer exists")
                })?;
                if !user
                    .email
                    .as_deref()
                    .is_some_and(|e| e.eq_ignore_ascii_case(&row.email))
                {
                    return Err(failed(
                        "INVITATION_EMAIL_MISMATCH",
                        "the invitation is for another email address; sign in with that address",
                    ));
                }
                org_store::insert_member(
                    conn,
                    MemberRow {
                        organization_id: org,
                        user_id: user.id,
                        role: row.role.clone(),
                        created_at: Utc::now(),
                    },
                )
                .await?;
                store::mark_email_verified(conn, user.id).await?;
                store::close(conn, row.id, "accepted", Some(user.id)).await
            })
            .await?;
        self.access.forget_organization(org);
        tracing::info!(organization_id = %org, invitation_id = %row.id, %user_id, "invitation accepted");
        org_store::member_view(&mut conn, org, user_id)
            .await?
            .ok_or_else(|| Error::internal("membership missing after acceptance"))
    }
}
