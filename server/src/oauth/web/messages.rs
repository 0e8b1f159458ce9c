//! Errors as sentences for the person in front of the page. Reason codes never reach the page
//! on their own, internal details never at all, and nothing tells whether an account exists.

use axum::http::StatusCode;

use crate::error::Error;

/// A message to show, and the status of the page that shows it.
pub(super) struct Shown {
    pub status: StatusCode,
    pub message: String,
}

fn shown(status: StatusCode, message: impl Into<String>) -> Shown {
    Shown {
        status,
        message: message.into(),
    }
}

/// The number of seconds in a message such as `try again in 30 s`.
fn seconds_in(message: &str) -> Option<u64> {
    message
        .split(|c: char| !c.is_ascii_digit())
        .rfind(|w| !w.is_empty())
        .and_then(|w| w.parse().ok())
}

fn wait_phrase(secs: Option<u64>) -> String {
    match secs {
        Some(s) if s >= 120 => format!("in about {} minutes", s.div_ceil(60)),
        Some(1) => "in 1 second".into(),
        Some(s) => format!("in {s} seconds"),
        None => "later".into(),
    }
}

/// What to say about `err`. `identifier_word` names what the user signs in with ("email
/// address", "mobile number", ...).
pub(super) fn human(err: &Error, identifier_word: &str) -> Shown {
    use StatusCode as S;
    match err {
        Error::Unauthenticated {
            reason: "INVALID_CREDENTIALS",
            ..
        } => shown(
            S::UNAUTHORIZED,
            format!("The {identifier_word} or the password is incorrect."),
        ),
        Error::ResourceExhausted {
            reason: "TOO_MANY_ATTEMPTS",
            message,
        } => {
            if message.contains("sign-in") {
                shown(
                    S::TOO_MANY_REQUESTS,
                    format!(
                        "Too many failed attempts. Sign-in is locked for now; try again {}.",
                        wait_phrase(seconds_in(message))
                    ),
                )
            } else {
                shown(
                    S::TOO_MANY_REQUESTS,
                    "Too many wrong codes. Request a new code, or start again.",
                )
            }
        }
        Error::RetryLater {
            reason: "RESEND_TOO_SOON",
            retry_after_secs,
            ..
        } => shown(
            S::TOO_MANY_REQUESTS,
            format!(
                "A message was sent a moment ago. You can ask for another one {}.",
                wait_phrase(Some(*retry_after_secs))
            ),
        ),
        Error::ResourceExhausted {
            reason: "RATE_LIMITED",
            ..
        }
        | Error::RetryLater { .. } => shown(
            S::TOO_MANY_REQUESTS,
            "Too many requests from this device. Please wait a while and try again.",
        ),
        Error::PermissionDenied {
            reason: "USER_SUSPENDED",
            ..
        } => shown(
            S::FORBIDDEN,
            "This account is suspended. Contact support if you think this is a mistake.",
        ),
        Error::PermissionDenied {
            reason: "EMAIL_VERIFICATION_NEEDED",
            ..
        } => shown(
            S::FORBIDDEN,
            "Your email address is not verified yet. Verify it to sign in.",
        ),
        Error::PermissionDenied {
            reason: "MOBILE_VERIFICATION_NEEDED",
            ..
        } => shown(
            S::FORBIDDEN,
            "Your mobile number is not verified yet. Verify it to sign in.",
        ),
        Error::PermissionDenied {
            reason: "REGISTRATION_RESTRICTED",
            ..
        } => shown(
            S::FORBIDDEN,
            "Sign-up is closed. Ask an administrator for an account.",
        ),
        Error::InvalidArgument {
            reason: "INVALID_CODE",
            ..
        } => shown(
            S::BAD_REQUEST,
            "That code or link is not valid. Check it, or request a new one.",
        ),
        Error::FailedPrecondition {
            reason: "CODE_EXPIRED",
            ..
        } => shown(
            S::BAD_REQUEST,
            "That code or link has expired. Request a new one.",
        ),
        Error::FailedPrecondition {
            reason: "FEATURE_DISABLED",
            ..
        } => shown(S::NOT_FOUND, "This option is not available here."),
        Error::FailedPrecondition {
            reason: "SECOND_FACTOR_NOT_PENDING",
            ..
        } => shown(
            S::BAD_REQUEST,
            "No verification is waiting for this sign-in. Please sign in again.",
        ),
        Error::InvalidArgument {
            reason: "INVALID_EMAIL",
            ..
        } => shown(S::BAD_REQUEST, "Enter a valid email address."),
        Error::InvalidArgument {
            reason: "INVALID_MOBILE",
            ..
        } => shown(
            S::BAD_REQUEST,
            "Enter a valid mobile number, with its country code (for example +233 20 123 4567).",
        ),
        Error::InvalidArgument {
            reason: "WEAK_PASSWORD",
            message,
            ..
        } => shown(
            S::BAD_REQUEST,
            format!("Choose another password: {}.", sentence_tail(message)),
        ),
        Error::InvalidArgument {
            reason: "IDENTIFIER_REQUIRED",
            message,
            ..
        } => shown(S::BAD_REQUEST, format!("{}.", capitalized(message))),
        // Sign-up: the same answer whichever identifier exists, and it does not say which.
        Error::AlreadyExists {
            reason: "EMAIL_TAKEN" | "MOBILE_TAKEN",
            ..
        } => shown(
            S::CONFLICT,
            "We could not create an account with these details. If you already have an account, sign in or reset your password.",
        ),
        Error::InvalidArgument { message, .. } => {
            shown(S::BAD_REQUEST, format!("{}.", capitalized(message)))
        }
        Error::Unauthenticated { .. } => shown(
            S::UNAUTHORIZED,
            "Your sign-in has ended. Please sign in again.",
        ),
        Error::NotFound { .. } => shown(S::NOT_FOUND, "We could not find what you asked for."),
        Error::Unavailable(_) => shown(
            S::SERVICE_UNAVAILABLE,
            "The service is briefly unavailable. Please try again in a moment.",
        ),
        Error::Internal(detail) => {
            tracing::error!(detail = %detail, "hosted page failed");
            shown(
                S::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side. Please try again.",
            )
        }
        other => shown(
            S::BAD_REQUEST,
            format!("{}.", capitalized(&other.to_string())),
        ),
    }
}

fn capitalized(s: &str) -> String {
    let s = s.trim().trim_end_matches('.');
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// `password must have at least 8 characters` → `it must have at least 8 characters`.
fn sentence_tail(message: &str) -> String {
    let m = message.trim().trim_end_matches('.');
    m.strip_prefix("password ")
        .map(|rest| format!("it {rest}"))
        .unwrap_or_else(|| m.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_message_keeps_the_wait() {
        let err = Error::ResourceExhausted {
            reason: "TOO_MANY_ATTEMPTS",
            message: "too many failed sign-ins; try again in 30 s".into(),
        };
        let shown = human(&err, "email address");
        assert_eq!(shown.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(shown.message.contains("in 30 seconds"), "{}", shown.message);
        let err = Error::unauthenticated("INVALID_CREDENTIALS", "x");
        assert_eq!(
            human(&err, "email address").message,
            "The email address or the password is incorrect."
        );
        let err = Error::invalid(
            "WEAK_PASSWORD",
            "password",
            "password must have at least 8 characters",
        );
        assert_eq!(
            human(&err, "").message,
            "Choose another password: it must have at least 8 characters."
        );
    }
}
