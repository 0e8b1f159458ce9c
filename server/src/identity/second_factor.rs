//! Second factors: what a new session still owes (an enrolled authenticator app, or the email or
//! SMS code the deployment requires), sending and checking those codes, and the TOTP
//! authenticators (RFC 6238) users enrol and remove, with their single-use recovery codes.
//!
//! A session's `amr` records what it proved: `pwd`, `email` (a code or link sent by email),
//! `sms`, `otp` (an authenticator code), `rec` (a recovery code), and `mfa` once a second factor
//! completed.

use chrono::{DateTime, Duration, Utc};
use diesel_async::{AsyncConnection, AsyncPgConnection};
use ring::rand::{SecureRandom, SystemRandom};
use totp_rs::{Builder, Secret, Totp};
use uuid::Uuid;

use crate::{
    crypto::secret,
    error::{Error, Result},
    identity::{
        service::{IdentityService, not_found},
        session_store::{self, SessionRow},
        store::{self as users, UserRow},
        verification::{Checked, Dispatch, Flow, Presented, Target, Verifier, feature_disabled},
        verification_store as vstore,
    },
};

/// Recovery codes handed out at once.
pub const RECOVERY_CODE_COUNT: usize = 10;
/// How long TOTP checks stay locked after too many wrong codes.
const TOTP_LOCK_SECS: i64 = 300;
const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// What `EnrollTotp` returns.
pub struct TotpEnrollment {
    pub secret_base32: String,
    pub otpauth_uri: String,
    pub expire_time: DateTime<Utc>,
}

/// The caller's second-factor state.
pub struct SecondFactorState {
    pub totp_enrolled: bool,
    pub totp_enroll_time: Option<DateTime<Utc>>,
    pub recovery_codes_remaining: i64,
    pub email_code_required: bool,
    pub mobile_code_required: bool,
    pub totp_available: bool,
}

/// How `VerifySecondFactor` is asked to check its code.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FactorMethod {
    Pending,
    Email,
    Mobile,
    Totp,
    RecoveryCode,
}

fn display_name(user: &UserRow) -> String {
    if user.full_name.is_empty() {
        user.given_name.clone()
    } else {
        user.full_name.clone()
    }
}

fn totp_context(user_id: Uuid) -> String {
    format!("totp:{user_id}")
}

fn recovery_digest(user_id: Uuid, code: &str) -> Vec<u8> {
    let normalized: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    secret::digest(&format!("{user_id}:{normalized}"))
}

fn random_recovery_code() -> String {
    let rng = SystemRandom::new();
    let mut out = String::with_capacity(11);
    while out.len() < 11 {
        let mut b = [0u8; 1];
        rng.fill(&mut b).expect("the OS random generator works");
        // 31 symbols: reject the top of the byte range so every symbol is equally likely.
        if (b[0] as usize) < 248 {
            if out.len() == 5 {
                out.push('-');
            }
            out.push(RECOVERY_ALPHABET[(b[0] as usize) % RECOVERY_ALPHABET.len()] as char);
        }
    }
    out
}

fn totp_for(secret: Vec<u8>, account: &str, issuer: &str) -> Result<Totp> {
    let account = account.replace(':', "");
    Builder::new()
        .with_secret(secret)
        .with_account_name(account)
        .with_issuer(Some(issuer.replace(':', "")))
        .build()
        .map_err(|e| Error::internal(format!("totp: {e}")))
}

fn invalid_code() -> Error {
    Error::invalid(
        "INVALID_CODE",
        "code",
        "the code is wrong, unknown or already used",
    )
}

fn too_many() -> Error {
    Error::ResourceExhausted {
        reason: "TOO_MANY_ATTEMPTS",
        message: "too many wrong codes; try again later".into(),
    }
}

fn not_pending() -> Error {
    Error::FailedPrecondition {
        reason: "SECOND_FACTOR_NOT_PENDING",
        message: "this session waits for no such second factor".into(),
    }
}

/// The outcome of an authenticator or recovery code check (errors counted, not raised, so the
/// failure counter commits).
enum CodeCheck {
    Totp,
    Recovery,
    Wrong,
    Locked,
}

impl IdentityService {
    pub(super) fn verifier(&self) -> Result<&Verifier> {
        self.verifier
            .as_deref()
            .ok_or_else(|| feature_disabled("verification"))
    }

    /// The next second factor a session of `user` owes after proving `amr`: TOTP when the user
    /// enrolled an authenticator (satisfied by `otp` or `rec`), otherwise the email then the SMS
    /// code the deployment requires (satisfied by `email` / `sms`).
    pub(super) async fn next_factor(
        &self,
        conn: &mut AsyncPgConnection,
        user: &UserRow,
        amr: &[String],
    ) -> Result<Option<&'static str>> {
        let Some(v) = self.verifier.as_deref() else {
            return Ok(None);
        };
        let has = |m: &str| amr.iter().any(|a| a == m);
        if vstore::totp_enrolled(conn, user.id).await? {
            return Ok((!has("otp") && !has("rec")).then_some("totp"));
        }
        let c = v.config();
        if c.email_2fa_required_for_login && user.email.is_some() && !has("email") {
            return Ok(Some("email"));
        }
        if c.mobile_2fa_required_for_login && user.mobile.is_some() && !has("sms") {
            return Ok(Some("mobile"));
        }
        Ok(None)
    }

    /// Sends the code of a pending `email` or `mobile` factor (nothing for `totp`).
    pub(super) async fn send_factor_code(
        &self,
        conn: &mut AsyncPgConnection,
        user: &UserRow,
        session_id: Uuid,
        factor: &str,
        enforce_resend: bool,
    ) -> Result<Option<Dispatch>> {
        let (flow, to) = match factor {
            "email" => (Flow::Email2fa, user.email.clone()),
            "mobile" => (Flow::Mobile2fa, user.mobile.clone()),
            _ => return Ok(None),
        };
        let to = to.ok_or_else(not_pending)?;
        let target = Target {
            user_id: Some(user.id),
            to,
            session_id: Some(session_id),
            name: display_name(user),
        };
        Ok(Some(
            self.verifier()?
                .issue(conn, flow, target, enforce_resend)
                .await?,
        ))
    }

    /// The calling session, which must belong to `user_id` and be alive.
    async fn own_session(
        &self,
        conn: &mut AsyncPgConnection,
        user_id: Uuid,
        session_id: Option<Uuid>,
    ) -> Result<SessionRow> {
        let id = session_id.ok_or_else(not_pending)?;
        let session = session_store::get_session(conn, id)
            .await?
            .ok_or_else(not_pending)?;
        if session.user_id != user_id
            || session.revoked_at.is_some()
            || session.expires_at <= Utc::now()
        {
            return Err(Error::unauthenticated(
                "UNAUTHENTICATED",
                "the session of this token has ended",
            ));
        }
        Ok(session)
    }

    pub async fn my_second_factors(&self, user_id: Uuid) -> Result<SecondFactorState> {
        let mut conn = self.pool.get().await?;
        let totp = vstore::totp(&mut conn, user_id)
            .await?
            .filter(|t| t.confirmed_at.is_some());
        let remaining = if totp.is_some() {
            vstore::recovery_codes_left(&mut conn, user_id).await?
        } else {
            0
        };
        let c = self.verifier.as_deref().map(|v| v.config());
        Ok(SecondFactorState {
            totp_enrolled: totp.is_some(),
            totp_enroll_time: totp.and_then(|t| t.confirmed_at),
            recovery_codes_remaining: remaining,
            email_code_required: c.is_some_and(|c| c.email_2fa_required_for_login),
            mobile_code_required: c.is_some_and(|c| c.mobile_2fa_required_for_login),
            totp_available: c.is_some_and(|c| c.totp_enabled),
        })
    }

    /// Sends (again) the code of the calling session's pending email or SMS factor.
    pub async fn send_second_factor_code(
        &self,
        user_id: Uuid,
        session_id: Option<Uuid>,
    ) -> Result<Dispatch> {
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            let session = self.own_session(conn, user_id, session_id).await?;
            let factor = session
                .pending_second_factor
                .clone()
                .ok_or_else(not_pending)?;
            let user = users::get(conn, user_id).await?.ok_or_else(not_found)?;
            self.send_factor_code(conn, &user, session.id, &factor, true)
                .await?
                .ok_or_else(not_pending)
        })
        .await
    }

    /// Completes the calling session's pending second factor; returns the session and, when a
    /// recovery code was used, how many remain. Too many wrong codes revoke the session.
    pub async fn verify_second_factor(
        &self,
        user_id: Uuid,
        session_id: Option<Uuid>,
        method: FactorMethod,
        code: &str,
    ) -> Result<(SessionRow, Option<i64>)> {
        let mut conn = self.pool.get().await?;
        let session = self.own_session(&mut conn, user_id, session_id).await?;
        let pending = session
            .pending_second_factor
            .clone()
            .ok_or_else(not_pending)?;
        let asked = match method {
            FactorMethod::Pending => pending.as_str(),
            FactorMethod::Email => "email",
            FactorMethod::Mobile => "mobile",
            FactorMethod::Totp => "totp",
            FactorMethod::RecoveryCode => "totp",
        };
        if asked != pending {
            return Err(not_pending());
        }
        let user = users::get(&mut conn, user_id)
            .await?
            .ok_or_else(not_found)?;
        let proved = match pending.as_str() {
            "email" | "mobile" => {
                let flow = if pending == "email" {
                    Flow::Email2fa
                } else {
                    Flow::Mobile2fa
                };
                let v = self.verifier()?;
                let checked = conn
                    .transaction(async |conn| {
                        let presented = Presented::Code {
                            destination: "",
                            session: Some(session.id),
                            code,
                        };
                        let checked = v.check(conn, flow, presented).await?;
                        if matches!(checked, Checked::Burnt) {
                            session_store::revoke(
                                conn,
                                user_id,
                                Some(session.id),
                                None,
                                "second_factor_failed",
                            )
                            .await?;
                        }
                        Ok::<_, Error>(checked)
                    })
                    .await?;
                match checked {
                    Checked::Valid(_) => {
                        if pending == "email" {
                            "email"
                        } else {
                            "sms"
                        }
                    }
                    other => return Err(other.error()),
                }
            }
            "totp" => {
                let throttle = format!("2fa:{}", session.id);
                let allow = match method {
                    FactorMethod::RecoveryCode => (false, true),
                    FactorMethod::Totp => (true, false),
                    _ => (true, true),
                };
                match self
                    .check_authenticator(&mut conn, user_id, code, allow, &throttle)
                    .await?
                {
                    CodeCheck::Totp => "otp",
                    CodeCheck::Recovery => "rec",
                    CodeCheck::Wrong => return Err(invalid_code()),
                    CodeCheck::Locked => {
                        session_store::revoke(
                            &mut conn,
                            user_id,
                            Some(session.id),
                            None,
                            "second_factor_failed",
                        )
                        .await?;
                        return Err(too_many());
                    }
                }
            }
            _ => return Err(not_pending()),
        };
        let updated = conn
            .transaction(async |conn| {
                let mut amr = session.amr.clone();
                if !amr.iter().any(|a| a == proved) {
                    amr.push(proved.to_string());
                }
                let next = self.next_factor(conn, &user, &amr).await?;
                if next.is_none() && !amr.iter().any(|a| a == "mfa") {
                    amr.push("mfa".into());
                }
                vstore::set_session_factor(conn, session.id, next, &amr).await?;
                if let Some(factor) = next {
                    self.send_factor_code(conn, &user, session.id, factor, false)
                        .await?;
                }
                session_store::get_session(conn, session.id)
                    .await?
                    .ok_or_else(not_pending)
            })
            .await?;
        let remaining = if proved == "rec" {
            Some(vstore::recovery_codes_left(&mut conn, user_id).await?)
        } else {
            None
        };
        tracing::info!(%user_id, session_id = %session.id, factor = proved, "second factor verified");
        Ok((updated, remaining))
    }

    /// Checks an authenticator code (`allow.0`) or a recovery code (`allow.1`), counting wrong
    /// ones under `throttle_key`; past `max_attempts` the key locks for a while.
    async fn check_authenticator(
        &self,
        conn: &mut AsyncPgConnection,
        user_id: Uuid,
        code: &str,
        allow: (bool, bool),
        throttle_key: &str,
    ) -> Result<CodeCheck> {
        let v = self.verifier()?;
        let keys = [throttle_key.to_string()];
        if session_store::locked_until(conn, &keys).await?.is_some() {
            return Ok(CodeCheck::Locked);
        }
        let code = code.trim();
        let digits: String = code.chars().filter(|c| !c.is_whitespace()).collect();
        let looks_totp = digits.len() == 6 && digits.chars().all(|c| c.is_ascii_digit());
        let mut outcome = CodeCheck::Wrong;
        if allow.0 && looks_totp {
            if let Some(row) = vstore::totp(conn, user_id).await? {
                let secret = v
                    .master()
                    .open(&totp_context(user_id), &row.secret_sealed)?;
                let totp = totp_for(secret, "", &v.config().totp_issuer)?;
                let now = Utc::now().timestamp() as u64;
                if let Some(step) = totp.check(&digits, now) {
                    // A code is accepted once: a replay within its window fails.
                    if vstore::use_totp_step(conn, user_id, step as i64).await? {
                        outcome = CodeCheck::Totp;
                    }
                }
            }
        }
        if matches!(outcome, CodeCheck::Wrong) && allow.1 && !looks_totp {
            if vstore::use_recovery_code(conn, user_id, &recovery_digest(user_id, code)).await? {
                outcome = CodeCheck::Recovery;
            }
        }
        if matches!(outcome, CodeCheck::Wrong) {
            let failures = session_store::record_failure(conn, throttle_key).await?;
            if failures >= v.config().max_attempts as i32 {
                session_store::lock(
                    conn,
                    throttle_key,
                    Utc::now() + Duration::seconds(TOTP_LOCK_SECS),
                )
                .await?;
                tracing::warn!(%user_id, "authenticator checks locked after too many wrong codes");
                return Ok(CodeCheck::Locked);
            }
        } else {
            session_store::clear_throttle(conn, &keys).await?;
        }
        Ok(outcome)
    }

    fn totp_available(&self) -> Result<&Verifier> {
        let v = self.verifier()?;
        if !v.config().totp_enabled {
            return Err(feature_disabled("verification.totp_enabled"));
        }
        Ok(v)
    }

    /// Starts enrolling an authenticator: a new secret, sealed at rest, effective once confirmed.
    pub async fn enroll_totp(&self, user_id: Uuid, password: &str) -> Result<TotpEnrollment> {
        let v = self.totp_available()?;
        let user = self.my_profile(user_id).await?;
        self.reauthenticate(&user, password).await?;
        let mut conn = self.pool.get().await?;
        if vstore::totp_enrolled(&mut conn, user_id).await? {
            return Err(already_enrolled());
        }
        let mut bytes = vec![0u8; 20];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| Error::internal("random generator failed"))?;
        let account = user
            .email
            .clone()
            .or(user.mobile.clone())
            .unwrap_or_else(|| user.id.to_string());
        let totp = totp_for(bytes.clone(), &account, &v.config().totp_issuer)?;
        let sealed = v.master().seal(&totp_context(user_id), &bytes)?;
        let expire_time =
            Utc::now() + Duration::seconds(i64::from(v.config().totp_enrollment_ttl_secs));
        if !vstore::put_pending_totp(&mut conn, user_id, sealed, expire_time).await? {
            return Err(already_enrolled());
        }
        Ok(TotpEnrollment {
            secret_base32: Secret::from(bytes)
                .to_base32()
                .trim_end_matches('=')
                .to_string(),
            otpauth_uri: totp
                .to_url()
                .map_err(|e| Error::internal(format!("totp url: {e}")))?,
            expire_time,
        })
    }

    /// Confirms the enrolment with a current code; returns the recovery codes, shown once.
    pub async fn confirm_totp_enrollment(&self, user_id: Uuid, code: &str) -> Result<Vec<String>> {
        self.totp_available()?;
        let mut conn = self.pool.get().await?;
        let row =
            vstore::totp(&mut conn, user_id)
                .await?
                .ok_or_else(|| Error::FailedPrecondition {
                    reason: "TOTP_ENROLLMENT_NOT_STARTED",
                    message: "start with EnrollTotp".into(),
                })?;
        if row.confirmed_at.is_some() {
            return Err(already_enrolled());
        }
        if row.pending_expires_at.is_some_and(|t| t <= Utc::now()) {
            return Err(Error::FailedPrecondition {
                reason: "CODE_EXPIRED",
                message: "the unconfirmed secret expired; start again with EnrollTotp".into(),
            });
        }
        match self
            .check_authenticator(
                &mut conn,
                user_id,
                code,
                (true, false),
                &format!("totp:{user_id}"),
            )
            .await?
        {
            CodeCheck::Totp => {}
            CodeCheck::Locked => return Err(too_many()),
            _ => return Err(invalid_code()),
        }
        let codes: Vec<String> = (0..RECOVERY_CODE_COUNT)
            .map(|_| random_recovery_code())
            .collect();
        let hashes = codes.iter().map(|c| recovery_digest(user_id, c)).collect();
        conn.transaction(async |conn| {
            vstore::confirm_totp(conn, user_id).await?;
            vstore::replace_recovery_codes(conn, user_id, hashes).await
        })
        .await?;
        tracing::info!(%user_id, "authenticator enrolled");
        Ok(codes)
    }

    async fn enrolled_or_fail(&self, conn: &mut AsyncPgConnection, user_id: Uuid) -> Result<()> {
        if vstore::totp_enrolled(conn, user_id).await? {
            Ok(())
        } else {
            Err(Error::FailedPrecondition {
                reason: "TOTP_NOT_ENROLLED",
                message: "no authenticator is enrolled".into(),
            })
        }
    }

    /// Removes the authenticator and recovery codes, proven with a current code or a recovery code.
    pub async fn disable_totp(&self, user_id: Uuid, code: &str) -> Result<()> {
        self.verifier()?;
        let mut conn = self.pool.get().await?;
        self.enrolled_or_fail(&mut conn, user_id).await?;
        match self
            .check_authenticator(
                &mut conn,
                user_id,
                code,
                (true, true),
                &format!("totp:{user_id}"),
            )
            .await?
        {
            CodeCheck::Totp | CodeCheck::Recovery => {}
            CodeCheck::Locked => return Err(too_many()),
            CodeCheck::Wrong => return Err(invalid_code()),
        }
        vstore::delete_totp(&mut conn, user_id).await?;
        tracing::info!(%user_id, "authenticator removed by its owner");
        Ok(())
    }

    /// New recovery codes, proven with a current authenticator code.
    pub async fn regenerate_recovery_codes(
        &self,
        user_id: Uuid,
        code: &str,
    ) -> Result<Vec<String>> {
        self.verifier()?;
        let mut conn = self.pool.get().await?;
        self.enrolled_or_fail(&mut conn, user_id).await?;
        match self
            .check_authenticator(
                &mut conn,
                user_id,
                code,
                (true, false),
                &format!("totp:{user_id}"),
            )
            .await?
        {
            CodeCheck::Totp => {}
            CodeCheck::Locked => return Err(too_many()),
            _ => return Err(invalid_code()),
        }
        let codes: Vec<String> = (0..RECOVERY_CODE_COUNT)
            .map(|_| random_recovery_code())
            .collect();
        vstore::replace_recovery_codes(
            &mut conn,
            user_id,
            codes.iter().map(|c| recovery_digest(user_id, c)).collect(),
        )
        .await?;
        Ok(codes)
    }

    /// An administrator removes a user's authenticator and recovery codes; the user's sessions end.
    pub async fn reset_user_second_factors(&self, user_id: &str) -> Result<()> {
        let id = self.existing_user(user_id).await?;
        let mut conn = self.pool.get().await?;
        conn.transaction(async |conn| {
            vstore::delete_totp(conn, id).await?;
            session_store::revoke(conn, id, None, None, "second_factors_reset").await?;
            Ok::<_, Error>(())
        })
        .await?;
        tracing::info!(user_id = %id, "second factors reset by an administrator");
        Ok(())
    }
}

fn already_enrolled() -> Error {
    Error::FailedPrecondition {
        reason: "TOTP_ALREADY_ENROLLED",
        message: "an authenticator is already enrolled".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_random_and_normalised() {
        let a = random_recovery_code();
        assert_eq!(a.len(), 11);
        assert_eq!(a.as_bytes()[5], b'-');
        assert_ne!(a, random_recovery_code());
        let user = Uuid::now_v7();
        assert_eq!(
            recovery_digest(user, &a),
            recovery_digest(user, &a.to_uppercase().replace('-', " "))
        );
        assert_ne!(
            recovery_digest(user, &a),
            recovery_digest(Uuid::now_v7(), &a)
        );
    }

    #[test]
    fn totp_codes_check_within_the_window() {
        let totp = totp_for(vec![7u8; 20], "a@example.com", "mgpass").unwrap();
        let now = 1_900_000_000;
        let code = totp.generate(now).to_string();
        assert!(totp.check(&code, now).is_some());
        assert!(totp.check(&code, now + 30).is_some(), "one step of skew");
        assert!(totp.check(&code, now + 300).is_none());
        assert!(totp.to_url().unwrap().starts_with("otpauth://totp/mgpass:"));
    }
}
