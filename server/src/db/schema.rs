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
        private_der -> Bytea,
        public_jwk -> Jsonb,
        created_at -> Timestamptz,
        activates_at -> Timestamptz,
        retired_at -> Nullable<Timestamptz>,
    }
}
