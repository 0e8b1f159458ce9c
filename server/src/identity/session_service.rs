//! Sign-in, sessions and refresh tokens: the rules. A sign-in creates a session; the session
//! holds a family of refresh tokens of which only the newest is valid; presenting an older one
//! means it was stolen or replayed, so the whole session is revoked.

use std::net::IpAddr;

use chrono::{Duration, Utc};
use diesel_async::AsyncConnection;
use uuid::Uuid;

use crate::{
    auth::tokens::IssuedToken,
    crypto::secret,
    error::{Error, Result},
    identity::{
        identifiers::{Identifier, parse_identifier},
        policy::Primary,
        service::{IdentityService, not_found, parse_id},
        session_store::{self as store, NewSession, SessionRow},
        store::{self as users, UserRow},
    },
    paging::Page,
};

/// Prefix of refresh tokens, so a leaked one is recognisable (secret scanners, logs).
pub const REFRESH_TOKEN_PREFIX: &str = "mgr_";

/// Where a request came from, as far as the server can tell.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: String,
}

/// Tokens handed out by a sign-in or a refresh.
pub struct SessionTokens {
    pub access: IssuedToken,
    pub refresh_token: String,
    pub session_id: Uuid,
    pub user_id: Uuid,
    /// The second factor the session still owes (`email`, `mobile`, `totp`).
    pub pending_second_factor: Option<String>,
}

fn too_many_attempts(until: chrono::DateTime<Utc>) -> Error {
    let secs = (until - Utc::now()).num_seconds().max(1);
    Error::ResourceExhausted {
        reason: "TOO_MANY_ATTEMPTS",
        message: format!("too many failed sign-ins; try again in {secs} s"),
    }
}

impl IdentityService {
    fn throttle_keys(identifier: &str, client: &ClientInfo) -> (String, Option<String>) {
        // Normalised, so `+233 20...` and `+23320...` share one counter.
        let normalized = match parse_identifier(identifier) {
            Some(Identifier::Email(e)) => e.to_lowercase(),
            Some(Identifier::Mobile(m)) => m,
            None => identifier.trim().to_lowercase(),
        };
        let account = format!("account:{normalized}");
        (account, client.ip.map(|ip| format!("ip:{ip}")))
    }

    /// Counts a failure and locks the key once it passes its threshold, each further failure
    /// doubling the lock.
    async fn count_failure(&self, key: &str, threshold: u32) -> Result<()> {
        let mut conn = self.pool.get().await?;
        let failures = store::record_failure(&mut conn, key).await?;
        let over = failures - threshold as i32;
        if over >= 0 {
            let factor = 1u64 << over.min(20);
            let secs = (u64::from(self.sessions.lockout_base_secs) * factor)
                .min(u64::from(self.sessions.lockout_max_secs));
            store::lock(&mut conn, key, Utc::now() + Duration::seconds(secs as i64)).await?;
            tracing::warn!(
                key_kind = key.split(':').next().unwrap_or(""),
                failures,
                lock_secs = secs,
                "sign-in locked"
            );
        }
        Ok(())
    }

    /// Signs in. Unknown identifiers and wrong passwords fail alike, after the same hashing work,
    /// and count against the same lock.
    pub async fn login(
        &self,
        identifier: &str,
        password: &str,
        client: &ClientInfo,
    ) -> Result<SessionTokens> {
        let invalid = || {
            Error::unauthenticated(
                "INVALID_CREDENTIALS",
                "the identifier or the password is wrong",
            )
        };
        let (account_key, ip_key) = Self::throttle_keys(identifier, client);
        let keys: Vec<String> = std::iter::once(account_key.clone())
            .chain(ip_key.clone())
            .collect();
        let user = {
            let mut conn = self.pool.get().await?;
            if let Some(until) = store::locked_until(&mut conn, &keys).await? {
                return Err(too_many_attempts(until));
            }
            // Only the primary identifier signs in; `emailOrMobile` detects which by format.
            match (parse_identifier(identifier), self.policy.primary) {
                (Some(Identifier::Email(e)), Primary::Email | Primary::EmailOrMobile) => {
                    users::find_by_email(&mut conn, &e).await?
                }
                (Some(Identifier::Mobile(m)), Primary::Mobile | Primary::EmailOrMobile) => {
                    users::find_by_mobile(&mut conn, &m).await?
                }
                _ => None,
            }
        };
        let hash = user.as_ref().and_then(|u| u.password_hash.clone());
        if !self.hasher.verify(password.to_string(), hash).await? {
            self.count_failure(&account_key, self.sessions.lockout_threshold)
                .await?;
            if let Some(ip_key) = &ip_key {
                self.count_failure(ip_key, self.sessions.ip_lockout_threshold)
                    .await?;
            }
            return Err(invalid());
        }
        let user = user.ok_or_else(invalid)?;
        if user.status != "active" {
            return Err(Error::permission_denied(
                "USER_SUSPENDED",
                "this account is suspended",
            ));
        }
        if self.policy.email_verification_required && user.email.is_some() && !user.email_verified {
            return Err(Error::permission_denied(
                "EMAIL_VERIFICATION_NEEDED",
                "the email address is not verified",
            ));
        }
        if self.policy.mobile_verification_required
            && user.mobile.is_some()
            && !user.mobile_verified
        {
            return Err(Error::permission_denied(
                "MOBILE_VERIFICATION_NEEDED",
                "the mobile number is not verified",
            ));
        }
        if user
            .password_hash
            .as_deref()
            .is_some_and(|h| self.hasher.needs_rehash(h))
        {
            self.rehash_in_background(user.id, password.to_string());
        }
        let mut conn = self.pool.get().await?;
        store::clear_throttle(&mut conn, std::slice::from_ref(&account_key)).await?;
        drop(conn);
        self.start_session(&user, vec!["pwd".into()], client).await
    }

    /// Creates a session for a user who just proved `amr` (password, magic link, ...) and issues
    /// its tokens. When the user owes a second factor (an enrolled authenticator, or an email or
    /// SMS code the deployment requires) the session is created flagged with it and, for a code,
    /// the code is sent in the same transaction.
    pub(crate) async fn start_session(
        &self,
        user: &UserRow,
        amr: Vec<String>,
        client: &ClientInfo,
    ) -> Result<SessionTokens> {
        let mut conn = self.pool.get().await?;
        let now = Utc::now();
        let session_expires = now + Duration::seconds(i64::from(self.sessions.max_lifetime_secs));
        let refresh_token = format!("{REFRESH_TOKEN_PREFIX}{}", secret::random_token(32));
        let refresh_expires = (now
            + Duration::seconds(i64::from(self.sessions.refresh_token_ttl_secs)))
        .min(session_expires);
        let digest = secret::digest(&refresh_token);
        let (session, pending) = conn
            .transaction(async |conn| {
                let pending = self.next_factor(conn, user, &amr).await?;
                let new_session = NewSession {
                    id: Uuid::now_v7(),
                    user_id: user.id,
                    user_agent: client.user_agent.chars().take(512).collect(),
                    ip_address: client.ip.map(|ip| ip.to_string()).unwrap_or_default(),
                    amr: amr.clone(),
                    pending_second_factor: pending.map(str::to_string),
                    expires_at: session_expires,
                };
                let session = store::insert_session(conn, new_session).await?;
                store::insert_refresh_token(conn, session.id, digest, refresh_expires).await?;
                if let Some(factor) = pending {
                    self.send_factor_code(conn, user, session.id, factor, true)
                        .await?;
                }
                Ok::<_, Error>((session, pending))
            })
            .await?;
        // The issuer takes connections of its own: holding this one while waiting for them would
        // starve the pool under load.
        drop(conn);
        let access = self
            .tokens
            .issue(
                user.id,
                user.email.clone(),
                user.roles.clone(),
                Some(session.id),
            )
            .await?;
        tracing::info!(user_id = %user.id, session_id = %session.id, pending_second_factor = pending.unwrap_or(""), "signed in");
        Ok(SessionTokens {
            access,
            refresh_token,
            session_id: session.id,
            user_id: user.id,
            pending_second_factor: pending.map(str::to_string),
        })
    }

    /// Replaces a hash made with older parameters, without making the sign-in wait for it.
    fn rehash_in_background(&self, user_id: Uuid, password: String) {
        let this = self.clone();
        tokio::spawn(async move {
            let result = async {
                let hash = this.hasher.hash(password).await?;
                let mut conn = this.pool.get().await?;
                users::set_password(&mut conn, user_id, &hash).await
            }
            .await;
            match result {
                Ok(()) => tracing::info!(%user_id, "password rehashed with the current parameters"),
                Err(err) => tracing::warn!(%user_id, error = %err, "password rehash failed"),
            }
        });
    }

    /// Exchanges a refresh token for new tokens, rotating it. A token used twice revokes its
    /// session: the legitimate holder and the thief both lose it, and the holder signs in again.
    pub async fn refresh(&self, refresh_token: &str) -> Result<SessionTokens> {
        enum Outcome {
            Rotated {
                session_id: Uuid,
                user_id: Uuid,
                token: String,
            },
            Reused,
            Invalid,
        }
        let digest = secret::digest(refresh_token);
        let ttl = Duration::seconds(i64::from(self.sessions.refresh_token_ttl_secs));
        let mut conn = self.pool.get().await?;
        let outcome = conn
            .transaction(async |conn| {
                let Some(row) = store::lock_refresh_token(conn, &digest).await? else {
                    return Ok(Outcome::Invalid);
                };
                let Some(session) = store::get_session(conn, row.session_id).await? else {
                    return Ok(Outcome::Invalid);
                };
                // Refresh tokens of OAuth grants belong to their client and its token endpoint.
                if !session.application_id.is_empty() {
                    return Ok(Outcome::Invalid);
                }
                if row.used_at.is_some() {
                    store::revoke(
                        conn,
                        session.user_id,
                        Some(session.id),
                        None,
                        "refresh_token_reused",
                    )
                    .await?;
                    return Ok(Outcome::Reused);
                }
                let now = Utc::now();
                if session.revoked_at.is_some()
                    || session.expires_at <= now
                    || row.expires_at <= now
                {
                    return Ok(Outcome::Invalid);
                }
                store::mark_refresh_token_used(conn, &digest).await?;
                let token = format!("{REFRESH_TOKEN_PREFIX}{}", secret::random_token(32));
                store::insert_refresh_token(
                    conn,
                    session.id,
                    secret::digest(&token),
                    (now + ttl).min(session.expires_at),
                )
                .await?;
                store::touch_session(conn, session.id).await?;
                Ok::<_, Error>(Outcome::Rotated {
                    session_id: session.id,
                    user_id: session.user_id,
                    token,
                })
            })
            .await?;
        let (session_id, user_id, token) = match outcome {
            Outcome::Rotated {
                session_id,
                user_id,
                token,
            } => (session_id, user_id, token),
            Outcome::Reused => {
                tracing::warn!("refresh token reused; session revoked");
                return Err(Error::unauthenticated(
                    "REFRESH_TOKEN_REUSED",
                    "this refresh token was already used; its session is revoked",
                ));
            }
            Outcome::Invalid => {
                return Err(Error::invalid(
                    "INVALID_GRANT",
                    "refresh_token",
                    "the refresh token is invalid or expired",
                ));
            }
        };
        let user = users::get(&mut conn, user_id)
            .await?
            .ok_or_else(not_found)?;
        drop(conn);
        if user.status != "active" {
            return Err(Error::permission_denied(
                "USER_SUSPENDED",
                "this account is suspended",
            ));
        }
        let access = self
            .tokens
            .issue(user.id, user.email, user.roles, Some(session_id))
            .await?;
        Ok(SessionTokens {
            access,
            refresh_token: token,
            session_id,
            user_id,
            pending_second_factor: None,
        })
    }

    /// A page of a user's active sessions.
    pub async fn list_sessions(
        &self,
        user_id: Uuid,
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<SessionRow>, String)> {
        let page = Page::parse(page_size, page_token)?;
        let mut conn = self.pool.get().await?;
        let rows = store::list_active(&mut conn, user_id, page.fetch(), page.after).await?;
        Ok(page.finish(rows, |r| (r.created_at, r.id)))
    }

    /// Revokes one session of a user.
    pub async fn revoke_session(
        &self,
        user_id: Uuid,
        session_id: &str,
        reason: &str,
    ) -> Result<()> {
        let session_id = Uuid::parse_str(session_id)
            .map_err(|_| Error::invalid("INVALID_ID", "session_id", "not a session id"))?;
        let mut conn = self.pool.get().await?;
        match store::revoke(&mut conn, user_id, Some(session_id), None, reason).await? {
            0 => Err(Error::not_found(
                "SESSION_NOT_FOUND",
                "no such active session",
            )),
            _ => Ok(()),
        }
    }

    /// Revokes every session of a user except `keep`; returns how many.
    pub async fn revoke_sessions(
        &self,
        user_id: Uuid,
        keep: Option<Uuid>,
        reason: &str,
    ) -> Result<usize> {
        let mut conn = self.pool.get().await?;
        store::revoke(&mut conn, user_id, None, keep, reason).await
    }

    /// Resolves a user id given as text, checking that the user exists.
    pub async fn existing_user(&self, user_id: &str) -> Result<Uuid> {
        let id = parse_id(user_id)?;
        let mut conn = self.pool.get().await?;
        users::get(&mut conn, id)
            .await?
            .map(|u| u.id)
            .ok_or_else(not_found)
    }

    /// Clears the sign-in lock of a user's identifiers.
    pub async fn unlock_user(&self, user_id: &str) -> Result<()> {
        let id = parse_id(user_id)?;
        let mut conn = self.pool.get().await?;
        let user = users::get(&mut conn, id).await?.ok_or_else(not_found)?;
        let keys: Vec<String> = [user.email, user.mobile]
            .into_iter()
            .flatten()
            .map(|i| format!("account:{}", i.to_lowercase()))
            .collect();
        store::clear_throttle(&mut conn, &keys).await
    }

    /// The absolute lifetime of sessions, however often they are refreshed.
    pub fn session_max_lifetime_secs(&self) -> u32 {
        self.sessions.max_lifetime_secs
    }

    /// Whether a session may still be used, for the auth layer.
    pub async fn session_active(&self, session_id: Uuid) -> Result<bool> {
        Ok(self.session_state(session_id).await?.0)
    }

    /// Whether a session may still be used, and the second factor it still owes.
    pub async fn session_state(&self, session_id: Uuid) -> Result<(bool, Option<String>)> {
        let mut conn = self.pool.get().await?;
        Ok(store::session_state(&mut conn, session_id)
            .await?
            .unwrap_or((false, None)))
    }
}
