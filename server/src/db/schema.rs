//! Diesel table definitions, kept by hand in step with `migrations/`.

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Nullable<Text>,
        mobile -> Nullable<Text>,
        given_name -> Text,
        family_name -> Text,
        full_name -> Text,
        avatar_url -> Text,
        password_hash -> Nullable<Text>,
        email_verified -> Bool,
        mobile_verified -> Bool,
        roles -> Array<Text>,
        status -> Text,
        properties -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        algorithm -> Text,
        private_sealed -> Nullable<Bytea>,
        public_jwk -> Jsonb,
        created_at -> Timestamptz,
        activates_at -> Timestamptz,
        retired_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    sessions (id) {
        id -> Uuid,
        user_id -> Uuid,
        application_id -> Text,
        user_agent -> Text,
        ip_address -> Text,
        amr -> Array<Text>,
        pending_second_factor -> Nullable<Text>,
        created_at -> Timestamptz,
        last_used_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        revoked_reason -> Nullable<Text>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Bytea,
        session_id -> Uuid,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    login_throttle (key) {
        key -> Text,
        failures -> Integer,
        locked_until -> Nullable<Timestamptz>,
        last_failure_at -> Timestamptz,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::allow_tables_to_appear_in_same_query!(users, sessions, refresh_tokens);

diesel::table! {
    outbox (id) {
        id -> Uuid,
        channel -> Text,
        recipient -> Text,
        template -> Text,
        locale -> Text,
        sealed_body -> Nullable<Bytea>,
        status -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    verification_codes (id) {
        id -> Uuid,
        flow -> Text,
        user_id -> Nullable<Uuid>,
        session_id -> Nullable<Uuid>,
        destination -> Text,
        kind -> Text,
        secret_hash -> Bytea,
        attempts -> Int4,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        consumed_at -> Nullable<Timestamptz>,
        consumed_reason -> Nullable<Text>,
    }
}

diesel::table! {
    pending_identifier_changes (user_id, kind) {
        user_id -> Uuid,
        kind -> Text,
        new_value -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    totp_factors (user_id) {
        user_id -> Uuid,
        secret_sealed -> Bytea,
        confirmed_at -> Nullable<Timestamptz>,
        pending_expires_at -> Nullable<Timestamptz>,
        last_used_step -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    recovery_codes (id) {
        id -> Uuid,
        user_id -> Uuid,
        code_hash -> Bytea,
        created_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}
