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
        scope -> Text,
        resource -> Nullable<Text>,
        auth_time -> Timestamptz,
        organization_id -> Nullable<Uuid>,
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

diesel::table! {
    api_resources (id) {
        id -> Uuid,
        indicator -> Text,
        name -> Text,
        description -> Text,
        scopes -> Jsonb,
        system -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    applications (id) {
        id -> Uuid,
        client_id -> Text,
        name -> Text,
        description -> Text,
        app_type -> Text,
        redirect_uris -> Array<Text>,
        post_logout_redirect_uris -> Array<Text>,
        grant_types -> Array<Text>,
        allowed_scopes -> Array<Text>,
        allowed_resources -> Jsonb,
        allowed_origins -> Array<Text>,
        access_token_ttl_secs -> Int4,
        refresh_token_ttl_secs -> Int4,
        id_token_ttl_secs -> Int4,
        first_party -> Bool,
        require_pkce -> Bool,
        branding -> Jsonb,
        id_token_signing_alg -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    client_secrets (id) {
        id -> Uuid,
        application_id -> Uuid,
        secret_hash -> Bytea,
        hint -> Text,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Bytea,
        application_id -> Uuid,
        user_id -> Uuid,
        browser_session_id -> Nullable<Uuid>,
        redirect_uri -> Text,
        scope -> Text,
        resource -> Nullable<Text>,
        nonce -> Nullable<Text>,
        code_challenge -> Nullable<Text>,
        auth_time -> Timestamptz,
        amr -> Array<Text>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        grant_session_id -> Nullable<Uuid>,
        organization_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    device_authorizations (device_code_hash) {
        device_code_hash -> Bytea,
        user_code -> Text,
        application_id -> Uuid,
        scope -> Text,
        resource -> Nullable<Text>,
        status -> Text,
        user_id -> Nullable<Uuid>,
        auth_time -> Nullable<Timestamptz>,
        amr -> Array<Text>,
        interval_secs -> Int4,
        last_polled_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    consents (user_id, application_id) {
        user_id -> Uuid,
        application_id -> Uuid,
        scopes -> Array<Text>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    browser_sessions (token_hash) {
        token_hash -> Bytea,
        session_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    revoked_access_tokens (jti) {
        jti -> Text,
        expires_at -> Timestamptz,
        revoked_at -> Timestamptz,
    }
}

diesel::table! {
    roles (id) {
        id -> Uuid,
        name -> Text,
        description -> Text,
        scopes -> Jsonb,
        default_for_new_users -> Bool,
        m2m_only -> Bool,
        system -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    application_roles (application_id, role_id) {
        application_id -> Uuid,
        role_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        name -> Text,
        prefix -> Text,
        key_hash -> Bytea,
        previous_key_hash -> Nullable<Bytea>,
        previous_key_expires_at -> Nullable<Timestamptz>,
        user_id -> Nullable<Uuid>,
        organization_id -> Nullable<Uuid>,
        creator_user_id -> Uuid,
        scopes -> Array<Text>,
        expires_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        rotated_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Uuid,
        credential_kind -> Text,
        actor_user_id -> Nullable<Uuid>,
        actor_application_id -> Nullable<Text>,
        actor_api_key_id -> Nullable<Uuid>,
        action -> Text,
        target_type -> Text,
        target_id -> Text,
        organization_id -> Nullable<Uuid>,
        request -> Nullable<Jsonb>,
        before -> Nullable<Jsonb>,
        after -> Nullable<Jsonb>,
        success -> Bool,
        error_reason -> Text,
        ip_address -> Text,
        user_agent -> Text,
        request_id -> Text,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(client_secrets -> applications (application_id));
diesel::joinable!(browser_sessions -> sessions (session_id));
diesel::joinable!(application_roles -> roles (role_id));
diesel::joinable!(application_roles -> applications (application_id));

diesel::table! {
    user_groups (id) {
        id -> Uuid,
        organization_id -> Nullable<Uuid>,
        name -> Text,
        description -> Text,
        avatar_url -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    user_group_members (group_id, user_id) {
        group_id -> Uuid,
        user_id -> Uuid,
        adder_user_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    permission_groups (id) {
        id -> Uuid,
        name -> Text,
        description -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    permissions (id) {
        id -> Uuid,
        group_id -> Uuid,
        name -> Text,
        full_name -> Text,
        description -> Text,
        position -> Int4,
    }
}

diesel::table! {
    permission_grants (id) {
        id -> Uuid,
        permission_id -> Uuid,
        role_id -> Nullable<Uuid>,
        org_role_id -> Nullable<Uuid>,
        user_id -> Nullable<Uuid>,
        group_id -> Nullable<Uuid>,
        organization_id -> Nullable<Uuid>,
        object_type -> Text,
        object_id -> Text,
        creator_user_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    abac_rules (id) {
        id -> Uuid,
        name -> Text,
        description -> Text,
        object_type -> Text,
        condition -> Text,
        enabled -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    abac_rule_permissions (rule_id, permission_id) {
        rule_id -> Uuid,
        permission_id -> Uuid,
    }
}

diesel::joinable!(user_group_members -> user_groups (group_id));
diesel::joinable!(permissions -> permission_groups (group_id));
diesel::joinable!(permission_grants -> permissions (permission_id));
diesel::joinable!(abac_rule_permissions -> permissions (permission_id));
diesel::joinable!(abac_rule_permissions -> abac_rules (rule_id));

diesel::table! {
    organizations (id) {
        id -> Uuid,
        name -> Text,
        description -> Text,
        avatar_url -> Text,
        owner_user_id -> Uuid,
        properties -> Jsonb,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    org_roles (id) {
        id -> Uuid,
        organization_id -> Uuid,
        name -> Text,
        description -> Text,
        scopes -> Jsonb,
        system -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    org_members (organization_id, user_id) {
        organization_id -> Uuid,
        user_id -> Uuid,
        role -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    org_invitations (id) {
        id -> Uuid,
        organization_id -> Uuid,
        email -> Text,
        role -> Text,
        token_hash -> Bytea,
        inviter_user_id -> Nullable<Uuid>,
        status -> Text,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
        closed_at -> Nullable<Timestamptz>,
        accepter_user_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    org_feature_flags (organization_id, name) {
        organization_id -> Uuid,
        name -> Text,
        bool_value -> Nullable<Bool>,
        string_value -> Nullable<Text>,
        include_in_token -> Bool,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    loyalty_rules (id) {
        id -> Uuid,
        current_version -> Int4,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    loyalty_rule_versions (rule_id, version) {
        rule_id -> Uuid,
        version -> Int4,
        name -> Text,
        description -> Text,
        partner_id -> Nullable<Uuid>,
        event_type -> Text,
        condition -> Text,
        fixed_points -> Nullable<Int8>,
        rate_points -> Nullable<Int8>,
        rate_per_amount_minor -> Nullable<Int8>,
        rate_currency -> Nullable<Text>,
        rounding -> Int2,
        tier_multipliers -> Jsonb,
        caps -> Jsonb,
        start_at -> Nullable<Timestamptz>,
        end_at -> Nullable<Timestamptz>,
        priority -> Int4,
        stacking -> Int2,
        status -> Int2,
        updater_user_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    loyalty_tiers (id) {
        id -> Uuid,
        name -> Text,
        description -> Text,
        threshold_points -> Int8,
        earning_multiplier_bps -> Int4,
        perks -> Array<Text>,
        image_url -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    loyalty_user_tiers (user_id) {
        user_id -> Uuid,
        tier_id -> Nullable<Uuid>,
        since -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    loyalty_tier_changes (id) {
        id -> Uuid,
        user_id -> Uuid,
        from_tier_id -> Nullable<Uuid>,
        to_tier_id -> Nullable<Uuid>,
        reason -> Int2,
        window_points -> Int8,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    loyalty_events (id) {
        id -> Uuid,
        partner_id -> Uuid,
        partner_event_id -> Text,
        request_hash -> Bytea,
        event_type -> Text,
        user_id -> Nullable<Uuid>,
        email -> Nullable<Text>,
        mobile -> Nullable<Text>,
        occur_at -> Timestamptz,
        amount_minor -> Nullable<Int8>,
        currency -> Nullable<Text>,
        attributes -> Jsonb,
        status -> Int2,
        resolved_user_id -> Nullable<Uuid>,
        points -> Int8,
        awards -> Jsonb,
        transaction_id -> Nullable<Uuid>,
        reversal_transaction_id -> Nullable<Uuid>,
        received_at -> Timestamptz,
        processed_at -> Nullable<Timestamptz>,
        pending_expires_at -> Nullable<Timestamptz>,
        reversed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    loyalty_cap_counters (rule_id, user_id, period, period_start) {
        rule_id -> Uuid,
        user_id -> Uuid,
        period -> Int2,
        period_start -> Date,
        points -> Int8,
    }
}

diesel::joinable!(org_members -> organizations (organization_id));
diesel::joinable!(org_members -> users (user_id));

diesel::table! {
    loyalty_partners (id) {
        id -> Uuid,
        name -> Text,
        description -> Text,
        contact_name -> Text,
        contact_email -> Text,
        contact_phone -> Text,
        status -> Text,
        event_types -> Array<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    loyalty_partner_api_keys (id) {
        id -> Uuid,
        partner_id -> Uuid,
        name -> Text,
        prefix -> Text,
        key_hash -> Bytea,
        expires_at -> Nullable<Timestamptz>,
        last_used_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    loyalty_accounts (id) {
        id -> Uuid,
        account_type -> Text,
        owner_id -> Uuid,
        balance -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    loyalty_transactions (id) {
        id -> Uuid,
        kind -> Text,
        user_id -> Uuid,
        points -> Int8,
        partner_id -> Nullable<Uuid>,
        event_id -> Nullable<Uuid>,
        order_id -> Nullable<Uuid>,
        payout_id -> Nullable<Uuid>,
        reversed_transaction_id -> Nullable<Uuid>,
        reason -> Nullable<Text>,
        actor_user_id -> Nullable<Uuid>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    loyalty_lots (id) {
        id -> Uuid,
        user_id -> Uuid,
        transaction_id -> Uuid,
        earned_points -> Int8,
        remaining_points -> Int8,
        earned_at -> Timestamptz,
        expire_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    loyalty_entries (id) {
        id -> Int8,
        transaction_id -> Uuid,
        account_id -> Uuid,
        points -> Int8,
        rule_id -> Nullable<Uuid>,
        rule_version -> Nullable<Int4>,
        lot_id -> Nullable<Uuid>,
    }
}

diesel::table! {
    loyalty_adjustment_requests (request_id) {
        request_id -> Uuid,
        user_id -> Uuid,
        points -> Int8,
        reason -> Text,
        transaction_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(loyalty_partner_api_keys -> loyalty_partners (partner_id));
diesel::joinable!(loyalty_entries -> loyalty_transactions (transaction_id));
diesel::joinable!(loyalty_entries -> loyalty_accounts (account_id));

diesel::table! {
    loyalty_catalog_items (id) {
        id -> Uuid,
        name -> Text,
        description -> Text,
        image_url -> Text,
        points_cost -> Int8,
        unlimited_stock -> Bool,
        stock -> Int8,
        per_user_limit -> Int4,
        eligible_tier_ids -> Array<Uuid>,
        starts_at -> Nullable<Timestamptz>,
        ends_at -> Nullable<Timestamptz>,
        status -> Text,
        redeemed_count -> Int8,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    loyalty_orders (id) {
        id -> Uuid,
        user_id -> Uuid,
        catalog_item_id -> Uuid,
        item_name -> Text,
        quantity -> Int4,
        points -> Int8,
        status -> Text,
        details -> Jsonb,
        fulfillment_reference -> Text,
        cancel_reason -> Text,
        debit_transaction_id -> Uuid,
        refund_transaction_id -> Nullable<Uuid>,
        request_id -> Uuid,
        created_at -> Timestamptz,
        fulfilled_at -> Nullable<Timestamptz>,
        cancelled_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(loyalty_orders -> loyalty_catalog_items (catalog_item_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    signing_keys,
    sessions,
    refresh_tokens,
    login_throttle,
    outbox,
    verification_codes,
    pending_identifier_changes,
    totp_factors,
    recovery_codes,
    api_resources,
    applications,
    client_secrets,
    authorization_codes,
    device_authorizations,
    consents,
    browser_sessions,
    revoked_access_tokens,
    roles,
    application_roles,
    api_keys,
    audit_events,
    user_groups,
    user_group_members,
    permission_groups,
    permissions,
    permission_grants,
    abac_rules,
    abac_rule_permissions,
    organizations,
    org_roles,
    org_members,
    org_invitations,
    org_feature_flags,
    loyalty_partners,
    loyalty_partner_api_keys,
    loyalty_accounts,
    loyalty_transactions,
    loyalty_lots,
    loyalty_entries,
    loyalty_adjustment_requests,
    loyalty_rules,
    loyalty_rule_versions,
    loyalty_tiers,
    loyalty_user_tiers,
    loyalty_tier_changes,
    loyalty_events,
    loyalty_cap_counters,
    loyalty_catalog_items,
    loyalty_orders,
    loyalty_payout_quotes,
    loyalty_payouts,
);

diesel::table! {
    loyalty_payout_quotes (id) {
        id -> Uuid,
        user_id -> Uuid,
        points -> Int8,
        amount_minor -> Int8,
        currency -> Text,
        rate_points -> Int8,
        rate_amount_minor -> Int8,
        mobile -> Text,
        expires_at -> Timestamptz,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    loyalty_payouts (id) {
        id -> Uuid,
        user_id -> Uuid,
        quote_id -> Uuid,
        points -> Int8,
        amount_minor -> Int8,
        currency -> Text,
        mobile -> Text,
        provider -> Text,
        reference_id -> Uuid,
        provider_transaction_id -> Nullable<Text>,
        status -> Text,
        phase -> Text,
        failure_reason -> Nullable<Text>,
        submit_count -> Int4,
        status_check_count -> Int4,
        last_status_check_at -> Nullable<Timestamptz>,
        hold_transaction_id -> Uuid,
        settle_transaction_id -> Nullable<Uuid>,
        resolver_user_id -> Nullable<Uuid>,
        resolution_note -> Nullable<Text>,
        next_attempt_at -> Timestamptz,
        last_error -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
    }
}
