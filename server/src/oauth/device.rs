//! The device authorization grant (RFC 8628): a TV or console shows a user code, the user types
//! it on `/oauth2/device` (or approves it over the API), and the device polls the token endpoint.

use chrono::{Duration, Utc};
use diesel_async::AsyncConnection;
use ring::rand::{SecureRandom, SystemRandom};
use uuid::Uuid;

use crate::{
    crypto::secret,
    error::{Error, Result},
    identity::store as users,
    oauth::{
        OAuthService,
        grant_store::{self as store, DeviceRow, NewGrantSession},
        grants::{TokenResponse, UserGrant, invalid_request, unauthorized_client},
        model::{GrantKind, OIDC_SCOPES},
        scopes,
    },
};

/// What the device page shows before the user approves a code.
#[derive(Debug, Clone)]
pub struct DeviceRequestInfo {
    pub client_id: String,
    pub application_name: String,
    pub scopes: Vec<String>,
}

/// The answer of the device authorization endpoint (RFC 8628 §3.2).
#[derive(Debug, Clone)]
pub struct DeviceStart {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: u32,
    pub interval: u32,
}

/// Consonants only (RFC 8628 §6.1): no vowels, so no words; no lookalikes (0/O, 1/I).
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

fn new_user_code() -> String {
    let mut bytes = [0u8; 8];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the OS random generator works");
    // 256 is not a multiple of 20; drawing from the first 240 values keeps the letters uniform.
    let mut code = String::with_capacity(8);
    let mut pool = bytes.to_vec();
    while code.len() < 8 {
        let b = match pool.pop() {
            Some(b) => b,
            None => {
                let mut more = [0u8; 8];
                SystemRandom::new()
                    .fill(&mut more)
                    .expect("the OS random generator works");
                pool.extend_from_slice(&more);
                continue;
            }
        };
        if b < 240 {
            code.push(USER_CODE_ALPHABET[(b % 20) as usize] as char);
        }
    }
    code
}

/// The stored form of a user code: upper case, without the dash or spaces people type.
pub fn normalize_user_code(input: &str) -> String {
    input
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// `BCDF-GHJK`, as shown to people.
pub fn display_user_code(code: &str) -> String {
    if code.len() == 8 {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_string()
    }
}

fn unknown_code() -> Error {
    Error::invalid(
        "INVALID_USER_CODE",
        "user_code",
        "this code is unknown, expired or already used",
    )
}

impl OAuthService {
    /// Starts a device authorization (RFC 8628 §3.1).
    pub async fn start_device(
        &self,
        client_id: &str,
        client_secret: Option<&str>,
        scope: &str,
        resource: Option<&str>,
    ) -> Result<DeviceStart> {
        let client = self.clients.authenticate(client_id, client_secret).await?;
        let app = &client.app;
        if !app.allows_grant(GrantKind::DeviceCode) {
            return Err(unauthorized_client(GrantKind::DeviceCode));
        }
        let requested = scopes::check_requested(
            app,
            &scopes::parse_scope(scope),
            resource,
            &self.default_audience,
        )?;
        let device_code = secret::random_token(32);
        let ttl = self.config.device_code_ttl_secs;
        let interval = self.config.device_poll_interval_secs;
        let mut conn = self.pool.get().await?;
        // A collision on the user code (20^8 values) is retried with a fresh one.
        let mut user_code = new_user_code();
        for attempt in 0..3 {
            let row = DeviceRow {
                device_code_hash: secret::digest(&device_code),
                user_code: user_code.clone(),
                application_id: app.id,
                scope: scopes::join(&requested.oidc, &requested.api),
                resource: Some(requested.audience.clone()),
                status: "pending".into(),
                user_id: None,
                auth_time: None,
                amr: Vec::new(),
                interval_secs: interval as i32,
                last_polled_at: None,
                created_at: Utc::now(),
                expires_at: Utc::now() + Duration::seconds(i64::from(ttl)),
            };
            match store::insert_device(&mut conn, &row).await {
                Ok(()) => break,
                Err(Error::AlreadyExists { .. }) | Err(Error::Internal(_)) if attempt < 2 => {
                    user_code = new_user_code()
                }
                Err(err) => return Err(err),
            }
        }
        let verification_uri = format!("{}/oauth2/device", self.issuer);
        let display = display_user_code(&user_code);
        Ok(DeviceStart {
            verification_uri_complete: format!("{verification_uri}?user_code={display}"),
            verification_uri,
            user_code: display,
            device_code,
            expires_in: ttl,
            interval,
        })
    }

    /// Looks up a pending device authorization by the code the user typed (case and dashes
    /// ignored). Unknown, expired or already decided codes are `INVALID_USER_CODE`.
    pub async fn describe_user_code(&self, user_code: &str) -> Result<DeviceRequestInfo> {
        let mut conn = self.pool.get().await?;
        let row = store::find_device_by_user_code(&mut conn, &normalize_user_code(user_code))
            .await?
            .filter(|r| r.status == "pending" && r.expires_at > Utc::now())
            .ok_or_else(unknown_code)?;
        drop(conn);
        self.device_info(&row).await
    }

    async fn device_info(&self, row: &DeviceRow) -> Result<DeviceRequestInfo> {
        let app = self.application_by_id(row.application_id).await?;
        Ok(DeviceRequestInfo {
            client_id: app.client_id.clone(),
            application_name: app.name.clone(),
            scopes: scopes::parse_scope(&row.scope),
        })
    }

    /// Approves (or, with `deny`, refuses) a pending device authorization for a signed-in user.
    pub async fn decide_user_code(
        &self,
        user_code: &str,
        user_id: Uuid,
        session_id: Option<Uuid>,
        deny: bool,
    ) -> Result<DeviceRequestInfo> {
        let mut conn = self.pool.get().await?;
        let (auth_time, amr) = match session_id {
            Some(sid) => store::get_grant_session(&mut conn, sid)
                .await?
                .map(|s| (s.auth_time, s.amr))
                .unwrap_or_else(|| (Utc::now(), Vec::new())),
            None => (Utc::now(), Vec::new()),
        };
        let status = if deny { "denied" } else { "approved" };
        let row = store::decide_device(
            &mut conn,
            &normalize_user_code(user_code),
            status,
            user_id,
            auth_time,
            &amr,
        )
        .await?
        .ok_or_else(unknown_code)?;
        drop(conn);
        tracing::info!(%user_id, status, "device authorization decided");
        self.device_info(&row).await
    }

    /// The device's poll of the token endpoint (RFC 8628 §3.4, §3.5).
    pub async fn poll_device(
        &self,
        client_id: &str,
        client_secret: Option<&str>,
        device_code: &str,
    ) -> Result<TokenResponse> {
        enum Outcome {
            Pending,
            SlowDown,
            Denied,
            Expired,
            Approved(DeviceRow, Uuid),
        }
        let client = self.clients.authenticate(client_id, client_secret).await?;
        let app = client.app.clone();
        if !app.allows_grant(GrantKind::DeviceCode) {
            return Err(unauthorized_client(GrantKind::DeviceCode));
        }
        if device_code.is_empty() {
            return Err(invalid_request("device_code", "device_code is required"));
        }
        let hash = secret::digest(device_code);
        let app_id = app.id;
        let session_ttl = Duration::seconds(i64::from(self.identity.session_max_lifetime_secs()));
        let mut conn = self.pool.get().await?;
        let outcome = conn
            .transaction(async |conn| {
                let Some(row) = store::lock_device(conn, &hash)
                    .await?
                    .filter(|r| r.application_id == app_id)
                else {
                    return Err(crate::oauth::grants::invalid_grant(
                        "the device code is unknown",
                    ));
                };
                let now = Utc::now();
                if row.expires_at <= now {
                    return Ok(Outcome::Expired);
                }
                match row.status.as_str() {
                    "denied" => return Ok(Outcome::Denied),
                    "consumed" => {
                        return Err(crate::oauth::grants::invalid_grant(
                            "the device code was already used",
                        ));
                    }
                    "approved" => {
                        let session_id = Uuid::new_v4();
                        let user_id = row
                            .user_id
                            .ok_or_else(|| Error::internal("approved device without user"))?;
                        store::set_device_status(conn, &hash, "consumed").await?;
                        store::insert_grant_session(
                            conn,
                            NewGrantSession {
                                id: session_id,
                                user_id,
                                application_id: app_id,
                                scope: row.scope.clone(),
                                resource: row.resource.clone(),
                                auth_time: row.auth_time.unwrap_or(now),
                                amr: row.amr.clone(),
                                expires_at: now + session_ttl,
                                // The device grant has no `organization` parameter.
                                organization_id: None,
                            },
                        )
                        .await?;
                        return Ok(Outcome::Approved(row, session_id));
                    }
                    _ => {}
                }
                // Polling faster than the interval earns `slow_down` and 5 more seconds (§3.5).
                let too_fast = row.last_polled_at.is_some_and(|at| {
                    (now - at).num_milliseconds() < i64::from(row.interval_secs) * 1000 - 200
                });
                let interval = if too_fast {
                    row.interval_secs + 5
                } else {
                    row.interval_secs
                };
                store::set_device_polled(conn, &hash, interval).await?;
                Ok::<_, Error>(if too_fast {
                    Outcome::SlowDown
                } else {
                    Outcome::Pending
                })
            })
            .await?;
        let (row, session_id) = match outcome {
            Outcome::Pending => {
                return Err(Error::FailedPrecondition {
                    reason: "AUTHORIZATION_PENDING",
                    message: "the user has not approved the request yet".into(),
                });
            }
            Outcome::SlowDown => {
                return Err(Error::RetryLater {
                    reason: "SLOW_DOWN",
                    message: "polling too fast; wait 5 more seconds between polls".into(),
                    retry_after_secs: 5,
                });
            }
            Outcome::Denied => {
                return Err(Error::permission_denied(
                    "ACCESS_DENIED",
                    "the user denied the request",
                ));
            }
            Outcome::Expired => {
                return Err(Error::FailedPrecondition {
                    reason: "DEVICE_CODE_EXPIRED",
                    message: "the device code has expired".into(),
                });
            }
            Outcome::Approved(row, session_id) => (row, session_id),
        };
        let user_id = row
            .user_id
            .ok_or_else(|| Error::internal("approved device without user"))?;
        let user = users::get(&mut conn, user_id)
            .await?
            .filter(|u| u.status == "active")
            .ok_or_else(|| crate::oauth::grants::invalid_grant("the user is not active"))?;
        drop(conn);
        let requested = scopes::parse_scope(&row.scope);
        let (oidc, api): (Vec<String>, Vec<String>) = requested
            .into_iter()
            .partition(|s| OIDC_SCOPES.contains(&s.as_str()));
        let audience = row
            .resource
            .clone()
            .unwrap_or_else(|| self.default_audience.to_string());
        let checked = scopes::RequestedScopes {
            oidc: oidc.clone(),
            api,
            audience: audience.clone(),
            empty: false,
        };
        let api = self.user_scopes(&app, &user, &checked).await?;
        let refresh =
            oidc.iter().any(|s| s == "offline_access") && app.allows_grant(GrantKind::RefreshToken);
        self.issue_user_tokens(UserGrant {
            app: &app,
            user: &user,
            session_id,
            oidc,
            api,
            audience,
            nonce: None,
            auth_time: row.auth_time.unwrap_or_else(Utc::now),
            amr: row.amr.clone(),
            refresh,
            organization: None,
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_use_the_consonant_alphabet() {
        for _ in 0..100 {
            let code = new_user_code();
            assert_eq!(code.len(), 8);
            assert!(code.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
        }
        assert_eq!(normalize_user_code(" bcdf-ghjk "), "BCDFGHJK");
        assert_eq!(display_user_code("BCDFGHJK"), "BCDF-GHJK");
    }
}
