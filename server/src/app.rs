//! Wiring: builds the services from the configuration and assembles the one-port router. No
//! domain logic lives here.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::State, http::StatusCode, response::Html, routing::get};
use mgpass_gateway::{GatewayOptions, GrpcService};
use mgpass_proto::identity::{
    authentication_service_server::AuthenticationServiceServer, profile_service_server::ProfileServiceServer,
    registration_service_server::RegistrationServiceServer, second_factor_service_server::SecondFactorServiceServer,
    session_service_server::SessionServiceServer, user_service_server::UserServiceServer,
    verification_service_server::VerificationServiceServer,
};
use tower::ServiceBuilder;

// API keys and the audit log.
use crate::{
    access::{api_key_service::ApiKeyService, grpc::ApiKeyGrpc},
    admin::{audit_layer::AuditLayer, audit_service::AuditLog, grpc::AuditGrpc},
    auth::api_keys::ApiKeyAuthenticator,
};
use mgpass_proto::{access::api_key_service_server::ApiKeyServiceServer, admin::audit_service_server::AuditServiceServer};

// Organizations: their members, roles, invitations and feature flags.
use crate::org::{
    access::OrgAccess,
    flag_service::FlagService,
    grpc::{InvitationGrpc, OrgRoleGrpc, OrganizationGrpc},
    invitation_service::InvitationService,
    org_role_service::OrgRoleService,
    organization_service::OrganizationService,
};
use mgpass_proto::org::{
    invitation_service_server::InvitationServiceServer, org_role_service_server::OrgRoleServiceServer,
    organization_service_server::OrganizationServiceServer,
};

// User groups, permissions and decisions.
use crate::access::{
    group_service::GroupService,
    grpc::{GroupGrpc, PermissionGrpc},
    permission_service::PermissionService,
};
use mgpass_proto::access::{group_service_server::GroupServiceServer, permission_service_server::PermissionServiceServer};

// The admin APIs of applications, API resources and roles.
use crate::{
    access::{grpc::RoleGrpc, role_service::RoleService},
    oauth::{
        api_resource_service::ApiResourceService,
        application_service::ApplicationService,
        grpc::{ApiResourceGrpc, ApplicationGrpc, TokenGrpc},
    },
};
use mgpass_proto::{
    access::role_service_server::RoleServiceServer,
    oauth::{
        api_resource_service_server::ApiResourceServiceServer, application_service_server::ApplicationServiceServer,
        token_service_server::TokenServiceServer,
    },
};

// Mobile-money cashback.
use crate::loyalty::{payout_grpc::PayoutGrpc, payout_service::PayoutService, payout_worker::PayoutWorker};
use mgpass_proto::loyalty::payout_service_server::PayoutServiceServer;
// Loyalty earning: partner events, rules and tiers.
use crate::loyalty::earning::{
    event_service::{EarningSettings, EventService},
    grpc::{EventGrpc, RuleGrpc, TierGrpc},
    rule_service::RuleService as LoyaltyRuleService,
    tier_service::TierService,
};
use mgpass_proto::loyalty::{
    event_service_server::EventServiceServer, rule_service_server::RuleServiceServer,
    tier_service_server::TierServiceServer,
};

use crate::{
    auth::{
        AuthLayer, MethodRules,
        rate_limit::{IpRateLimit, limit_http},
        revocation::RevocationList,
        session_check::SessionCheck,
        tokens::TokenIssuer,
    },
    config::Config,
    crypto::{keys::KeyRing, password::PasswordHasherService},
    db::{self, DbPool},
    identity::{
        grpc::{
            AuthenticationGrpc, ProfileGrpc, RegistrationGrpc, SecondFactorGrpc, SessionGrpc, UserGrpc, VerificationGrpc,
        },
        policy::IdentityPolicy,
        registration::RegistrationLimits,
        service::IdentityService,
    },
    oauth::OAuthService,
};

/// Everything a running mgpass holds.
#[derive(Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub pool: DbPool,
    pub keys: KeyRing,
    pub identity: IdentityService,
    pub oauth: OAuthService,
    pub revoked: RevocationList,
    pub session_check: SessionCheck,
    /// Cached permission decisions, dropped on every access change (groups and permissions).
    pub decisions: crate::access::decision::Decisions,
    /// One per-IP budget for every transport and route of the port.
    pub rate_limit: IpRateLimit,
    /// One registration throttle for the API and the hosted sign-up page.
    pub registration_limits: RegistrationLimits,
    /// Mobile-money payouts (disabled without `loyalty.payouts.momo_base_url`).
    pub payouts: PayoutService,
    latest_migration: Arc<String>,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        if let Some(code) = config.identity.default_country_code {
            crate::identity::identifiers::set_default_country_code(&code.to_string());
        }
        crate::loyalty::ledger::configure_expiry(config.loyalty.points_expire_after_months);
        let pool = db::pool(&config.database.url, config.database.pool_size)?;
        let keys = KeyRing::load(pool.clone(), &config).await?;
        let revoked = RevocationList::new(pool.clone());
        revoked.poll().await?;
        let tokens = TokenIssuer::new(
            pool.clone(),
            keys.clone(),
            revoked.clone(),
            config.issuer(),
            config.tokens.audience.clone(),
            config.tokens.access_token_ttl_secs,
        );
        let hasher = PasswordHasherService::new(&config.password)?;
        let identity = IdentityService::new(
            pool.clone(),
            hasher,
            tokens,
            config.sessions.clone(),
            IdentityPolicy::from_config(&config.identity).map_err(|e| anyhow::anyhow!(e.join("; ")))?,
            config.identity.avatar_template.clone(),
        )
        .with_verifier(crate::identity::verification::Verifier::new(
            config.verification.clone(),
            crate::delivery::Outbox::new(&config.delivery, config.master_key())?,
            config.master_key(),
            &config.issuer(),
        )?);
        identity.ensure_property_indexes().await?;
        // One session cache, shared by the auth layer, the OAuth grants and the call that
        // completes a second factor.
        let session_check = SessionCheck::new(identity.clone());
        let oauth = OAuthService::new(
            pool.clone(),
            keys.clone(),
            identity.clone(),
            config.oauth.clone(),
            config.issuer(),
            config.tokens.audience.clone(),
            revoked.clone(),
            session_check.clone(),
        );
        let decisions = crate::access::decision::Decisions::new(pool.clone());
        let payouts = payout_service(&pool, &config)?;
        Ok(Self {
            decisions,
            rate_limit: IpRateLimit::per_second(config.server.rate_limit_per_ip),
            registration_limits: RegistrationLimits::new(config.identity.registrations_per_ip_per_hour),
            payouts,
            config: Arc::new(config),
            pool,
            keys,
            identity,
            oauth,
            revoked,
            session_check,
            latest_migration: Arc::new(db::latest_migration()),
        })
    }

    fn tokens(&self) -> TokenIssuer {
        TokenIssuer::new(
            self.pool.clone(),
            self.keys.clone(),
            self.revoked.clone(),
            self.config.issuer(),
            self.config.tokens.audience.clone(),
            self.config.tokens.access_token_ttl_secs,
        )
    }

    /// The earning services, shared by the API and their background jobs.
    fn earning(&self) -> (EventService, TierService) {
        let settings = EarningSettings::from_config(&self.config);
        let earning = &self.config.loyalty.earning;
        let tiers = TierService::new(
            self.pool.clone(),
            settings.tier_window,
            chrono::Duration::seconds(earning.tier_reevaluation_interval_secs as i64),
        );
        (EventService::new(self.pool.clone(), settings), tiers)
    }

    /// The gRPC side: every service behind the auth layer, plus health and reflection.
    pub async fn grpc_service(&self) -> anyhow::Result<GrpcService> {
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<UserServiceServer<UserGrpc>>().await;
        health.set_serving::<AuthenticationServiceServer<AuthenticationGrpc>>().await;
        health.set_serving::<SessionServiceServer<SessionGrpc>>().await;
        health.set_serving::<ProfileServiceServer<ProfileGrpc>>().await;
        health.set_serving::<RegistrationServiceServer<RegistrationGrpc>>().await;
        health.set_serving::<VerificationServiceServer<VerificationGrpc>>().await;
        health.set_serving::<SecondFactorServiceServer<SecondFactorGrpc>>().await;
        health.set_serving::<ApplicationServiceServer<ApplicationGrpc>>().await;
        health.set_serving::<ApiResourceServiceServer<ApiResourceGrpc>>().await;
        health.set_serving::<RoleServiceServer<RoleGrpc>>().await;
        health.set_serving::<TokenServiceServer<TokenGrpc>>().await;
        let clients = self.oauth.clients.clone();
        let applications = ApplicationService::new(self.pool.clone(), clients.clone(), self.config.oauth.clone())
            .with_keys(self.oauth.keys().clone());
        let api_resources = ApiResourceService::new(self.pool.clone(), clients.clone());
        let roles = RoleService::new(self.pool.clone(), clients);
        let session_check = self.session_check.clone();
        health.set_serving::<ApiKeyServiceServer<ApiKeyGrpc>>().await;
        // User groups, the backends' permissions and the decision API.
        let groups = GroupService::new(self.pool.clone(), self.config.access.clone(), self.decisions.clone());
        let permission_service = PermissionService::new(self.pool.clone(), self.decisions.clone());
        health.set_serving::<GroupServiceServer<GroupGrpc>>().await;
        health.set_serving::<PermissionServiceServer<PermissionGrpc>>().await;
        health.set_serving::<AuditServiceServer<AuditGrpc>>().await;
        let api_key_auth = ApiKeyAuthenticator::new(self.pool.clone());
        let permissions = crate::oauth::api_resource_service::mgpass_permission_scopes().iter().map(|s| s.name.clone());
        let audit_log = AuditLog::new(self.pool.clone());
        let org_access = OrgAccess::new(self.pool.clone());
        let api_keys =
            ApiKeyService::new(self.pool.clone(), permissions, api_key_auth.clone()).with_org_access(org_access.clone());
        let organizations = OrganizationService::new(self.pool.clone(), org_access.clone(), &self.config.organizations)?;
        let org_roles = OrgRoleService::new(self.pool.clone(), org_access.clone());
        let invitations = InvitationService::new(
            self.pool.clone(),
            org_access.clone(),
            crate::delivery::Outbox::new(&self.config.delivery, self.config.master_key())?,
            &self.config.organizations,
            &self.config.issuer(),
        );
        health.set_serving::<OrganizationServiceServer<OrganizationGrpc>>().await;
        health.set_serving::<OrgRoleServiceServer<OrgRoleGrpc>>().await;
        health.set_serving::<InvitationServiceServer<InvitationGrpc>>().await;
        health.set_serving::<PayoutServiceServer<PayoutGrpc>>().await;
        let partner_keys = crate::loyalty::partner_keys::PartnerKeyAuthenticator::new(self.pool.clone());
        let partners = crate::loyalty::partner_service::PartnerService::new(self.pool.clone(), partner_keys.clone());
        let ledger = crate::loyalty::ledger::service::LedgerService::new(self.pool.clone(), self.config.loyalty.clone());
        let (loyalty_events, loyalty_tiers) = self.earning();
        let loyalty_rules = LoyaltyRuleService::new(self.pool.clone(), crate::loyalty::earning::event_service::time_zone(&self.config));
        health.set_serving::<EventServiceServer<EventGrpc>>().await;
        health.set_serving::<RuleServiceServer<RuleGrpc>>().await;
        health.set_serving::<TierServiceServer<TierGrpc>>().await;
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(mgpass_proto::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        let reflection_alpha = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(mgpass_proto::FILE_DESCRIPTOR_SET)
            .build_v1alpha()?;
        let routes = tonic::service::Routes::new(UserServiceServer::new(UserGrpc(self.identity.clone())))
            .add_service(AuthenticationServiceServer::new(AuthenticationGrpc(self.identity.clone(), self.keys.clone())))
            .add_service(SessionServiceServer::new(SessionGrpc(self.identity.clone())))
            .add_service(ProfileServiceServer::new(ProfileGrpc(self.identity.clone())))
            .add_service(RegistrationServiceServer::new(RegistrationGrpc {
                identity: self.identity.clone(),
                invitations: invitations.clone(),
                limits: self.registration_limits.clone(),
                password_min_length: self.config.password.min_length,
                refuse_common_passwords: self.config.password.refuse_common_passwords,
            }))
            .add_service(VerificationServiceServer::new(VerificationGrpc(self.identity.clone())))
            .add_service(SecondFactorServiceServer::new(SecondFactorGrpc {
                identity: self.identity.clone(),
                sessions: session_check.clone(),
            }))
            .add_service(ApplicationServiceServer::new(ApplicationGrpc(applications)))
            .add_service(ApiResourceServiceServer::new(ApiResourceGrpc(api_resources)))
            .add_service(RoleServiceServer::new(RoleGrpc(roles)))
            .add_service(TokenServiceServer::new(TokenGrpc(self.oauth.clone())))
            .add_service(ApiKeyServiceServer::new(ApiKeyGrpc(api_keys)))
            .add_service(GroupServiceServer::new(GroupGrpc(groups)))
            .add_service(PermissionServiceServer::new(PermissionGrpc(permission_service)))
            .add_service(AuditServiceServer::new(AuditGrpc(audit_log.clone())))
            .add_service(OrganizationServiceServer::new(OrganizationGrpc {
                orgs: organizations,
                flags: FlagService::new(self.pool.clone()),
            }))
            .add_service(OrgRoleServiceServer::new(OrgRoleGrpc(org_roles)))
            .add_service(InvitationServiceServer::new(InvitationGrpc(invitations)))
            .add_service(PayoutServiceServer::new(PayoutGrpc(self.payouts.clone())))
            .add_service(mgpass_proto::loyalty::partner_service_server::PartnerServiceServer::new(
                crate::loyalty::partner_grpc::PartnerGrpc(partners),
            ))
            .add_service(mgpass_proto::loyalty::ledger_service_server::LedgerServiceServer::new(
                crate::loyalty::ledger::grpc::LedgerGrpc(ledger),
            ))
            .add_service(EventServiceServer::new(EventGrpc(loyalty_events)))
            .add_service(RuleServiceServer::new(RuleGrpc(loyalty_rules)))
            .add_service(TierServiceServer::new(TierGrpc(loyalty_tiers)))
            .add_service(mgpass_proto::loyalty::catalog_service_server::CatalogServiceServer::new(
                crate::loyalty::catalog_grpc::CatalogGrpc(crate::loyalty::catalog_service::CatalogService::new(self.pool.clone())),
            ))
            .add_service(mgpass_proto::loyalty::redemption_service_server::RedemptionServiceServer::new(
                crate::loyalty::catalog_grpc::RedemptionGrpc(crate::loyalty::redemption_service::RedemptionService::new(
                    self.pool.clone(),
                )),
            ))
            .add_service(health_service)
            .add_service(reflection)
            .add_service(reflection_alpha);
        let rules = MethodRules::from_pool(&mgpass_proto::descriptor_pool());
        let layered = ServiceBuilder::new()
            .layer(AuthLayer::new(
                rules,
                self.tokens(),
                session_check,
                self.rate_limit.clone(),
                self.config.server.allow_query_access_token,
            )
            .with_api_keys(api_key_auth)
            .with_partner_keys(partner_keys)
            .with_org_scope(crate::auth::org_scope::OrgScope::from_pool(&mgpass_proto::descriptor_pool(), org_access)))
            // Inside the auth layer: it sees the caller's principal.
            .layer(AuditLayer::new(&mgpass_proto::descriptor_pool(), audit_log))
            .service(routes);
        Ok(GrpcService::new(layered))
    }

    /// The whole port: gRPC, grpc-web, REST and the HTML/health routes.
    pub async fn router(&self) -> anyhow::Result<Router> {
        let pages = Router::new()
            .route("/", get(home))
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(ready))
            .route("/openapi.json", get(openapi))
            .with_state(self.clone())
            .merge(
                crate::oauth::http::router(self.oauth.clone())
                    .merge(crate::oauth::web::router(self.oauth.clone(), &self.config, self.registration_limits.clone()))
                    .layer(axum::middleware::from_fn_with_state(self.rate_limit.clone(), limit_http)),
            );
        Ok(mgpass_gateway::router(
            self.grpc_service().await?,
            mgpass_proto::descriptor_pool(),
            pages,
            GatewayOptions { max_body_bytes: self.config.server.max_body_bytes },
        ))
    }
}

/// The payout service, with the MoMo adapter when `loyalty.payouts.momo_base_url` is set.
fn payout_service(pool: &DbPool, config: &Config) -> anyhow::Result<PayoutService> {
    let settings = &config.loyalty.payouts;
    let provider: Option<Arc<dyn crate::loyalty::momo::PayoutProvider>> = if settings.enabled() {
        let client = crate::loyalty::momo::MomoClient::new(settings.momo_settings())
            .map_err(|e| anyhow::anyhow!("MoMo client: {e}"))?;
        Some(Arc::new(client))
    } else {
        None
    };
    Ok(PayoutService::new(pool.clone(), settings.clone(), provider))
}

async fn ready(State(app): State<App>) -> (StatusCode, &'static str) {
    match db::check_ready(&app.pool, &app.latest_migration).await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(err) => {
            tracing::warn!(error = %err, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready")
        }
    }
}

/// The OpenAPI document of the REST surface, generated from proto/ by scripts/sdk-generate.sh
/// (drift-checked by `make test`) and compiled in, so it always matches this build's contract.
async fn openapi() -> ([(axum::http::header::HeaderName, &'static str); 1], &'static str) {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], include_str!("../../docs/openapi.json"))
}

async fn home() -> Html<&'static str> {
    Html(include_str!("home.html"))
}

/// Serves until SIGTERM or Ctrl-C, then lets in-flight calls finish within the grace period.
pub async fn serve(app: App) -> anyhow::Result<()> {
    let addr: SocketAddr = app.config.server.listen.parse()?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let router = app.router().await?;
    app.keys.spawn_refresher();
    app.revoked.spawn_poller();
    db::janitor::spawn(app.pool.clone(), Duration::from_secs(app.config.server.janitor_interval_secs));
    app.decisions.spawn_listener(app.config.database.url.clone());
    crate::loyalty::ledger::expiry::spawn(app.pool.clone(), Duration::from_secs(app.config.loyalty.expiry_interval_secs));
    crate::crypto::password::spawn_memory_trimmer();
    let (loyalty_events, loyalty_tiers) = app.earning();
    crate::loyalty::earning::jobs::spawn(
        loyalty_events,
        loyalty_tiers,
        Duration::from_secs(app.config.loyalty.earning.pending_match_interval_secs),
        Duration::from_secs(app.config.loyalty.earning.tier_reevaluation_interval_secs),
    );
    tracing::info!(%addr, issuer = %app.config.issuer(), "mgpass listening");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut stopped = stop_rx.clone();
    let delivery = if app.config.delivery.worker_enabled {
        let config = app.config.delivery.clone();
        Some(crate::delivery::Worker::spawn(app.pool.clone(), config, app.config.master_key(), stop_rx.clone())?)
    } else {
        None
    };
    let payout_worker = app
        .config
        .loyalty
        .payouts
        .enabled()
        .then(|| PayoutWorker::spawn(app.payouts.clone(), stop_rx.clone()));
    let server = tokio::spawn(async move {
        axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
    });
    shutdown_signal().await;
    tracing::info!("shutdown requested; finishing in-flight calls");
    let _ = stop_tx.send(true);
    let grace = Duration::from_secs(app.config.server.shutdown_grace_secs);
    match tokio::time::timeout(grace, server).await {
        Ok(result) => result??,
        Err(_) => tracing::warn!(grace_secs = grace.as_secs(), "grace period over; closing remaining connections"),
    }
    if let Some(worker) = delivery {
        // Sends in flight finish (each within delivery.send_timeout_secs); the rest stay queued.
        if tokio::time::timeout(grace, worker.join()).await.is_err() {
            tracing::warn!("delivery worker still sending after the grace period; its claims will be retried");
        }
    }
    if let Some(worker) = payout_worker {
        // Its payouts in flight finish their step or are taken up again after their lease.
        if tokio::time::timeout(grace, worker.join()).await.is_err() {
            tracing::warn!("payout worker still busy after the grace period");
        }
    }
    app.pool.close();
    tracing::info!("mgpass stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
