//! The verification flows: email and mobile verification (and the email/mobile changes they
//! confirm), password reset by email or by mobile, magic-link sign-in, and the administrator's
//! forced reset. Start calls answer alike whether or not the identifier has an account.

use diesel_async::AsyncConnection;
use uuid::Uuid;

use crate::{
    error::{Error, Result},
    identity::{
        identifiers::{normalize_email, normalize_mobile},
        service::{IdentityService, not_found},
        session_service::{ClientInfo, SessionTokens},
        session_store,
        store::{self as users, UserRow},
        verification::{Checked, Dispatch, Flow, Presented, Target, Verifier},
        verification_store as vstore,
    },
};

/// The secret a confirmation carries.
#[derive(Debug, Clone)]
pub enum SecretInput {
    /// A typed code (`byCode`), checked against the identifier it was sent to.
    Code(String),
    /// A link token (`byLink`).
    Token(String),
}

/// Which identifier a password reset goes to.
#[derive(Debug, Clone)]
pub enum ResetBy {
    Email(String),
    Mobile(String),
}

/// The outcome of `ChangeMyEmail` / `ChangeMyMobile`.
pub struct IdentifierChange {
    pub user: UserRow,
    /// The value waiting for confirmation; `None` when the change applied at once.
    pub pending: Option<String>,
    pub dispatch: Option<Dispatch>,
}

fn display_name(user: &UserRow) -> String {
    if user.full_name.is_empty() {
        user.given_name.clone()
    } else {
        user.full_name.clone()
    }
}

fn target(user: Option<&UserRow>, to: &str) -> Target {
    Target {
        user_id: user.map(|u| u.id),
        to: to.to_string(),
        session_id: None,
        name: user.map(display_name).unwrap_or_default(),
    }
}

/// What a confirmation presents: the token alone, or the code with its normalised destination.
fn presented<'a>(
    destination: &'a Option<String>,
    secret: &'a SecretInput,
) -> Result<Presented<'a>> {
    match secret {
        SecretInput::Token(token) => Ok(Presented::Link(token)),
        SecretInput::Code(code) => match destination {
            Some(d) => Ok(Presented::Code {
                destination: d,
                session: None,
                code,
            }),
            None => Err(Error::invalid(
                "INVALID_ARGUMENT",
                "email",
                "the identifier the code was sent to is required with a code",
            )),
        },
    }
}

/// The normalised email of a confirmation (needed only with a code).
fn email_for_code(email: &str, secret: &SecretInput) -> Result<Option<String>> {
    match secret {
        SecretInput::Code(_) if !email.trim().is_empty() => normalize_email(email).map(Some),
        _ => Ok(None),
    }
}

fn mobile_for_code(mobile: &str, secret: &SecretInput) -> Result<Option<String>> {
    match secret {
        SecretInput::Code(_) if !mobile.trim().is_empty() => normalize_mobile(mobile).map(Some),
        _ => Ok(None),
    }
}

fn same_email(a: Option<&str>, b: &str) -> bool {
    a.is_some_and(|a| a.eq_ignore_ascii_case(b))
}

impl IdentityService {
    async fn issue_in_tx(
        &self,
        flow: Flow,
        target: Target,
        enforce_resend: bool,
    ) -> Result<Dispatch> {
        let v = self.verifier()?;
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| v.issue(conn, flow, target, enforce_resend).await)
            .await
    }

    fn verifier_for(&self, flow: Flow) -> Result<&Verifier> {
        let v = self.verifier()?;
        v.require(flow)?;
        Ok(v)
    }

    pub async fn send_email_verification(
        &self,
        email: &str,
        client: &ClientInfo,
    ) -> Result<Dispatch> {
        let v = self.verifier_for(Flow::EmailVerification)?;
        v.check_rate(client.ip)?;
        let email = normalize_email(email)?;
        let mut conn = self.pool.get().await?;
        let user = match users::find_by_email(&mut conn, &email).await? {
            Some(u) if !u.email_verified => Some(u),
            _ => match vstore::user_with_pending(&mut conn, "email", &email).await? {
                Some(id) => users::get(&mut conn, id).await?,
                None => None,
            },
        };
        drop(conn);
        self.issue_in_tx(Flow::EmailVerification, target(user.as_ref(), &email), true)
            .await
    }

    /// Marks the address verified, or applies the pending change to it; returns the address.
    pub async fn confirm_email_verification(
        &self,
        email: &str,
        secret: SecretInput,
    ) -> Result<String> {
        let v = self.verifier_for(Flow::EmailVerification)?;
        let dest = email_for_code(email, &secret)?;
        let presented = presented(&dest, &secret)?;
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            let checked = v.check(conn, Flow::EmailVerification, presented).await?;
            let Checked::Valid(row) = checked else {
                return Ok::<Result<String>, Error>(Err(checked.error()));
            };
            let user = users::get_for_update(conn, row.user_id.unwrap_or_default())
                .await?
                .ok_or_else(not_found)?;
            if same_email(user.email.as_deref(), &row.destination) {
                users::set_email_verified(conn, user.id).await?;
                tracing::info!(user_id = %user.id, "email verified");
                return Ok(Ok(user.email.unwrap_or_default()));
            }
            match vstore::pending_change(conn, user.id, "email").await? {
                Some(new) if new.eq_ignore_ascii_case(&row.destination) => {
                    users::set_email(conn, user.id, &new, true).await?;
                    vstore::clear_pending_change(conn, user.id, "email").await?;
                    tracing::info!(user_id = %user.id, "email changed");
                    Ok(Ok(new))
                }
                _ => Ok(Err(Checked::Wrong.error())),
            }
        })
        .await?
    }

    pub async fn send_mobile_verification(
        &self,
        mobile: &str,
        client: &ClientInfo,
    ) -> Result<Dispatch> {
        let v = self.verifier_for(Flow::MobileVerification)?;
        v.check_rate(client.ip)?;
        let mobile = normalize_mobile(mobile)?;
        let mut conn = self.pool.get().await?;
        let user = match users::find_by_mobile(&mut conn, &mobile).await? {
            Some(u) if !u.mobile_verified => Some(u),
            _ => match vstore::user_with_pending(&mut conn, "mobile", &mobile).await? {
                Some(id) => users::get(&mut conn, id).await?,
                None => None,
            },
        };
        drop(conn);
        self.issue_in_tx(
            Flow::MobileVerification,
            target(user.as_ref(), &mobile),
            true,
        )
        .await
    }

    /// Marks the number verified, or applies the pending change to it; returns the number.
    pub async fn confirm_mobile_verification(
        &self,
        mobile: &str,
        secret: SecretInput,
    ) -> Result<String> {
        let v = self.verifier_for(Flow::MobileVerification)?;
        let dest = mobile_for_code(mobile, &secret)?;
        let presented = presented(&dest, &secret)?;
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            let checked = v.check(conn, Flow::MobileVerification, presented).await?;
            let Checked::Valid(row) = checked else {
                return Ok::<Result<String>, Error>(Err(checked.error()));
            };
            let user = users::get_for_update(conn, row.user_id.unwrap_or_default())
                .await?
                .ok_or_else(not_found)?;
            if user.mobile.as_deref() == Some(row.destination.as_str()) {
                users::set_mobile_verified(conn, user.id).await?;
                tracing::info!(user_id = %user.id, "mobile verified");
                return Ok(Ok(row.destination));
            }
            match vstore::pending_change(conn, user.id, "mobile").await? {
                Some(new) if new == row.destination => {
                    users::set_mobile(conn, user.id, &new, true).await?;
                    vstore::clear_pending_change(conn, user.id, "mobile").await?;
                    tracing::info!(user_id = %user.id, "mobile changed");
                    Ok(Ok(new))
                }
                _ => Ok(Err(Checked::Wrong.error())),
            }
        })
        .await?
    }

    pub async fn request_password_reset(
        &self,
        by: ResetBy,
        client: &ClientInfo,
    ) -> Result<Dispatch> {
        let (flow, to, user) = {
            let mut conn = self.pool.get().await?;
            match by {
                ResetBy::Email(e) => {
                    let e = normalize_email(&e)?;
                    (
                        Flow::PasswordResetByEmail,
                        e.clone(),
                        users::find_by_email(&mut conn, &e).await?,
                    )
                }
                ResetBy::Mobile(m) => {
                    let m = normalize_mobile(&m)?;
                    (
                        Flow::PasswordResetByMobile,
                        m.clone(),
                        users::find_by_mobile(&mut conn, &m).await?,
                    )
                }
            }
        };
        let v = self.verifier_for(flow)?;
        v.check_rate(client.ip)?;
        let to = user
            .as_ref()
            .and_then(|u| {
                if flow == Flow::PasswordResetByEmail {
                    u.email.clone()
                } else {
                    u.mobile.clone()
                }
            })
            .unwrap_or(to);
        self.issue_in_tx(flow, target(user.as_ref(), &to), true)
            .await
    }

    /// Sets a new password with a reset code or token: every session ends, the sign-in lock is
    /// cleared, and the identifier the reset went to counts as verified.
    pub async fn confirm_password_reset(
        &self,
        by: Option<ResetBy>,
        secret: SecretInput,
        new_password: String,
    ) -> Result<()> {
        let (flow, dest) = match &by {
            Some(ResetBy::Email(e)) => (Flow::PasswordResetByEmail, email_for_code(e, &secret)?),
            Some(ResetBy::Mobile(m)) => (Flow::PasswordResetByMobile, mobile_for_code(m, &secret)?),
            // A token alone: it is looked up in both flows.
            None => (Flow::PasswordResetByEmail, None),
        };
        let v = self.verifier()?;
        // The policy first: a weak password leaves the code usable.
        self.hasher.check_policy(&new_password)?;
        let hash = self.hasher.hash(new_password).await?;
        let mut flows = vec![flow];
        if by.is_none() {
            flows.push(Flow::PasswordResetByMobile);
        }
        flows.retain(|f| v.active(*f));
        if flows.is_empty() {
            v.require(flow)?;
        }
        let presented_secret = presented(&dest, &secret)?;
        let mut conn = self.pool.get().await?;
        let user_id = conn
            .transaction(async |conn| {
                let mut checked = Checked::Wrong;
                let mut used = flow;
                for f in &flows {
                    let p = match &presented_secret {
                        Presented::Link(t) => Presented::Link(t),
                        Presented::Code {
                            destination,
                            session,
                            code,
                        } => Presented::Code {
                            destination,
                            session: *session,
                            code,
                        },
                    };
                    checked = v.check(conn, *f, p).await?;
                    used = *f;
                    if !matches!(checked, Checked::Wrong) {
                        break;
                    }
                }
                let Checked::Valid(row) = checked else {
                    return Ok(Err(checked.error()));
                };
                let user = users::get_for_update(conn, row.user_id.unwrap_or_default())
                    .await?
                    .ok_or_else(not_found)?;
                users::set_password(conn, user.id, &hash).await?;
                vstore::supersede_user(
                    conn,
                    user.id,
                    &[
                        Flow::PasswordResetByEmail.name(),
                        Flow::PasswordResetByMobile.name(),
                    ],
                )
                .await?;
                let revoked =
                    session_store::revoke(conn, user.id, None, None, "password_reset").await?;
                let keys: Vec<String> = [user.email.clone(), user.mobile.clone()]
                    .into_iter()
                    .flatten()
                    .map(|i| format!("account:{}", i.to_lowercase()))
                    .collect();
                session_store::clear_throttle(conn, &keys).await?;
                if used == Flow::PasswordResetByEmail
                    && same_email(user.email.as_deref(), &row.destination)
                {
                    users::set_email_verified(conn, user.id).await?;
                } else if used == Flow::PasswordResetByMobile
                    && user.mobile.as_deref() == Some(row.destination.as_str())
                {
                    users::set_mobile_verified(conn, user.id).await?;
                }
                tracing::info!(user_id = %user.id, revoked, "password reset");
                Ok::<_, Error>(Ok(user.id))
            })
            .await??;
        tracing::debug!(%user_id, "reset applied");
        Ok(())
    }

    pub async fn request_magic_link(&self, email: &str, client: &ClientInfo) -> Result<Dispatch> {
        let v = self.verifier_for(Flow::MagicLink)?;
        v.check_rate(client.ip)?;
        let email = normalize_email(email)?;
        let user = {
            let mut conn = self.pool.get().await?;
            users::find_by_email(&mut conn, &email).await?
        };
        let to = user.as_ref().and_then(|u| u.email.clone()).unwrap_or(email);
        self.issue_in_tx(Flow::MagicLink, target(user.as_ref(), &to), true)
            .await
    }

    /// Signs in with a magic link (or its code): the email counts as verified and a session
    /// starts with `amr` `email`; a second factor may still be owed.
    pub async fn confirm_magic_link(
        &self,
        email: &str,
        secret: SecretInput,
        client: &ClientInfo,
    ) -> Result<SessionTokens> {
        let v = self.verifier_for(Flow::MagicLink)?;
        let dest = email_for_code(email, &secret)?;
        let presented = presented(&dest, &secret)?;
        let mut conn = self.pool.get().await?;
        let user = conn
            .transaction(async |conn| {
                let checked = v.check(conn, Flow::MagicLink, presented).await?;
                let Checked::Valid(row) = checked else {
                    return Ok(Err(checked.error()));
                };
                let user = users::get_for_update(conn, row.user_id.unwrap_or_default())
                    .await?
                    .ok_or_else(not_found)?;
                if user.status != "active" {
                    return Ok(Err(Error::permission_denied(
                        "USER_SUSPENDED",
                        "this account is suspended",
                    )));
                }
                if same_email(user.email.as_deref(), &row.destination) && !user.email_verified {
                    users::set_email_verified(conn, user.id).await?;
                }
                Ok::<_, Error>(Ok(users::get(conn, user.id)
                    .await?
                    .ok_or_else(not_found)?))
            })
            .await??;
        drop(conn);
        if self.policy.mobile_verification_required
            && user.mobile.is_some()
            && !user.mobile_verified
        {
            return Err(Error::permission_denied(
                "MOBILE_VERIFICATION_NEEDED",
                "the mobile number is not verified",
            ));
        }
        self.start_session(&user, vec!["email".into()], client)
            .await
    }

    /// An administrator forces a reset: the password stops working, every session ends, and a
    /// reset message goes to the user's email (or, without one, mobile).
    pub async fn force_password_reset(&self, user_id: &str) -> Result<()> {
        let v = self.verifier()?;
        let id = self.existing_user(user_id).await?;
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            let user = users::get_for_update(conn, id).await?.ok_or_else(not_found)?;
            let (flow, to) = match (&user.email, &user.mobile) {
                (Some(e), _) if v.active(Flow::PasswordResetByEmail) => (Flow::PasswordResetByEmail, e.clone()),
                (_, Some(m)) if v.active(Flow::PasswordResetByMobile) => (Flow::PasswordResetByMobile, m.clone()),
                _ => {
                    return Err(crate::identity::verification::feature_disabled(
                        "verification.password_reset_by_email.is_active / password_reset_by_mobile.is_active",
                    ));
                }
            };
            users::clear_password(conn, user.id).await?;
            let revoked = session_store::revoke(conn, user.id, None, None, "password_reset_forced").await?;
            v.issue(conn, flow, target(Some(&user), &to), false).await?;
            tracing::info!(user_id = %user.id, revoked, "password reset forced by an administrator");
            Ok(())
        })
        .await
    }

    async fn change_identifier(
        &self,
        user_id: Uuid,
        password: &str,
        kind: &'static str,
        value: &str,
    ) -> Result<IdentifierChange> {
        let user = self.my_profile(user_id).await?;
        self.reauthenticate(&user, password).await?;
        let (value, current, flow) = match kind {
            "email" => (
                normalize_email(value)?,
                user.email.clone(),
                Flow::EmailVerification,
            ),
            _ => (
                normalize_mobile(value)?,
                user.mobile.clone(),
                Flow::MobileVerification,
            ),
        };
        let unchanged = match kind {
            "email" => same_email(current.as_deref(), &value),
            _ => current.as_deref() == Some(value.as_str()),
        };
        if unchanged {
            return Ok(IdentifierChange {
                user,
                pending: None,
                dispatch: None,
            });
        }
        let mut conn = self.pool.get().await?;
        let other = match kind {
            "email" => users::find_by_email(&mut conn, &value).await?,
            _ => users::find_by_mobile(&mut conn, &value).await?,
        };
        if other.is_some_and(|o| o.id != user_id) {
            return Err(match kind {
                "email" => {
                    Error::already_exists("EMAIL_TAKEN", "a user with this email address exists")
                }
                _ => Error::already_exists("MOBILE_TAKEN", "a user with this mobile number exists"),
            });
        }
        let verifier = self.verifier.as_deref().filter(|v| v.active(flow));
        let Some(v) = verifier else {
            // No verification flow: the change applies at once, unverified.
            match kind {
                "email" => users::set_email(&mut conn, user_id, &value, false).await?,
                _ => users::set_mobile(&mut conn, user_id, &value, false).await?,
            }
            tracing::info!(%user_id, kind, "identifier changed (unverified)");
            let user = users::get(&mut conn, user_id)
                .await?
                .ok_or_else(not_found)?;
            return Ok(IdentifierChange {
                user,
                pending: None,
                dispatch: None,
            });
        };
        let dispatch = conn
            .transaction(async |conn| {
                vstore::set_pending_change(conn, user_id, kind, &value).await?;
                v.issue(conn, flow, target(Some(&user), &value), true).await
            })
            .await?;
        Ok(IdentifierChange {
            user,
            pending: Some(value),
            dispatch: Some(dispatch),
        })
    }

    pub async fn change_my_email(
        &self,
        user_id: Uuid,
        new_email: &str,
        password: &str,
    ) -> Result<IdentifierChange> {
        self.change_identifier(user_id, password, "email", new_email)
            .await
    }

    pub async fn change_my_mobile(
        &self,
        user_id: Uuid,
        new_mobile: &str,
        password: &str,
    ) -> Result<IdentifierChange> {
        self.change_identifier(user_id, password, "mobile", new_mobile)
            .await
    }

    /// Sends the verification messages a new account needs (flows active, identifier present
    /// and unverified). The account exists already, so a failure is logged, not returned: the
    /// user can ask again with `SendEmailVerification` / `SendMobileVerification`.
    pub async fn dispatch_registration(
        &self,
        user: &UserRow,
    ) -> (Option<Dispatch>, Option<Dispatch>) {
        let Some(v) = self.verifier.as_deref() else {
            return (None, None);
        };
        let mut out = (None, None);
        if let (true, Some(email), false) = (
            v.active(Flow::EmailVerification),
            &user.email,
            user.email_verified,
        ) {
            match self
                .issue_in_tx(Flow::EmailVerification, target(Some(user), email), false)
                .await
            {
                Ok(d) => out.0 = Some(d),
                Err(err) => {
                    tracing::warn!(user_id = %user.id, error = %err, "email verification not sent at registration")
                }
            }
        }
        if let (true, Some(mobile), false) = (
            v.active(Flow::MobileVerification),
            &user.mobile,
            user.mobile_verified,
        ) {
            match self
                .issue_in_tx(Flow::MobileVerification, target(Some(user), mobile), false)
                .await
            {
                Ok(d) => out.1 = Some(d),
                Err(err) => {
                    tracing::warn!(user_id = %user.id, error = %err, "mobile verification not sent at registration")
                }
            }
        }
        out
    }
}
