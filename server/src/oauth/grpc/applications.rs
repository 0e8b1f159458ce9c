//! Serves `mgpass.oauth.v1.ApplicationService`.

use mgpass_proto::oauth::{
    self as pb, application_service_server::ApplicationService as ApplicationRpc,
};
use tonic::{Request, Response, Status};

use crate::{
    convert::timestamp,
    error::Error,
    oauth::{
        application_service::{
            Application, ApplicationFields, ApplicationService, ApplicationUpdate,
        },
        model::{AppType, Branding, ClientSecretRow, GrantKind, ResourceScopes},
    },
};

fn app_type_to_proto(kind: AppType) -> pb::ApplicationType {
    match kind {
        AppType::Web => pb::ApplicationType::Web,
        AppType::Spa => pb::ApplicationType::Spa,
        AppType::Native => pb::ApplicationType::Native,
        AppType::M2m => pb::ApplicationType::M2m,
    }
}

fn app_type_from_proto(value: i32) -> Option<AppType> {
    match pb::ApplicationType::try_from(value).ok()? {
        pb::ApplicationType::Web => Some(AppType::Web),
        pb::ApplicationType::Spa => Some(AppType::Spa),
        pb::ApplicationType::Native => Some(AppType::Native),
        pb::ApplicationType::M2m => Some(AppType::M2m),
        pb::ApplicationType::Unspecified => None,
    }
}

fn grant_to_proto(name: &str) -> pb::GrantType {
    match GrantKind::parse(name) {
        Some(GrantKind::AuthorizationCode) => pb::GrantType::AuthorizationCode,
        Some(GrantKind::RefreshToken) => pb::GrantType::RefreshToken,
        Some(GrantKind::ClientCredentials) => pb::GrantType::ClientCredentials,
        Some(GrantKind::DeviceCode) => pb::GrantType::DeviceCode,
        Some(GrantKind::TokenExchange) => pb::GrantType::TokenExchange,
        None => pb::GrantType::Unspecified,
    }
}

/// The stored name of a grant; an unset or unknown value becomes a name the service refuses.
fn grant_from_proto(value: i32) -> String {
    let kind = match pb::GrantType::try_from(value) {
        Ok(pb::GrantType::AuthorizationCode) => GrantKind::AuthorizationCode,
        Ok(pb::GrantType::RefreshToken) => GrantKind::RefreshToken,
        Ok(pb::GrantType::ClientCredentials) => GrantKind::ClientCredentials,
        Ok(pb::GrantType::DeviceCode) => GrantKind::DeviceCode,
        Ok(pb::GrantType::TokenExchange) => GrantKind::TokenExchange,
        Ok(pb::GrantType::Unspecified) | Err(_) => return format!("unspecified ({value})"),
    };
    kind.as_str().to_string()
}

fn duration(secs: i32) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::from(secs),
        nanos: 0,
    }
}

/// Whole seconds; a negative fraction stays negative so that the service refuses it.
fn seconds(d: &prost_types::Duration) -> i64 {
    if d.seconds == 0 && d.nanos < 0 {
        -1
    } else {
        d.seconds
    }
}

fn secret_to_proto(s: ClientSecretRow) -> pb::ClientSecret {
    pb::ClientSecret {
        id: s.id.to_string(),
        hint: s.hint,
        create_time: Some(timestamp(s.created_at)),
        expire_time: s.expires_at.map(timestamp),
        last_use_time: s.last_used_at.map(timestamp),
    }
}

fn app_to_proto(app: Application) -> pb::Application {
    let row = app.row;
    let branding = row.branding();
    pb::Application {
        application_type: app_type_to_proto(row.app_type()) as i32,
        grant_types: row
            .grant_types
            .iter()
            .map(|g| grant_to_proto(g) as i32)
            .collect(),
        allowed_resources: row
            .resources()
            .into_iter()
            .map(|r| pb::ResourceScopes {
                resource: r.resource,
                scopes: r.scopes,
            })
            .collect(),
        id: row.id.to_string(),
        client_id: row.client_id,
        name: row.name,
        description: row.description,
        redirect_uris: row.redirect_uris,
        post_logout_redirect_uris: row.post_logout_redirect_uris,
        allowed_scopes: row.allowed_scopes,
        allowed_origins: row.allowed_origins,
        access_token_lifetime: Some(duration(row.access_token_ttl_secs)),
        refresh_token_lifetime: Some(duration(row.refresh_token_ttl_secs)),
        id_token_lifetime: Some(duration(row.id_token_ttl_secs)),
        first_party: row.first_party,
        require_pkce: Some(row.require_pkce),
        id_token_signing_alg: row.id_token_signing_alg,
        secrets: app.secrets.into_iter().map(secret_to_proto).collect(),
        branding: Some(pb::ApplicationBranding {
            logo_uri: branding.logo_uri,
            primary_color: branding.primary_color,
            background_color: branding.background_color,
        }),
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
    }
}

fn app_fields(app: pb::Application) -> ApplicationFields {
    let branding = app.branding.unwrap_or_default();
    ApplicationFields {
        name: app.name,
        description: app.description,
        app_type: app_type_from_proto(app.application_type),
        redirect_uris: app.redirect_uris,
        post_logout_redirect_uris: app.post_logout_redirect_uris,
        grant_types: app.grant_types.into_iter().map(grant_from_proto).collect(),
        allowed_scopes: app.allowed_scopes,
        allowed_resources: app
            .allowed_resources
            .into_iter()
            .map(|r| ResourceScopes {
                resource: r.resource,
                scopes: r.scopes,
            })
            .collect(),
        allowed_origins: app.allowed_origins,
        access_token_ttl_secs: app.access_token_lifetime.as_ref().map(seconds),
        refresh_token_ttl_secs: app.refresh_token_lifetime.as_ref().map(seconds),
        id_token_ttl_secs: app.id_token_lifetime.as_ref().map(seconds),
        first_party: app.first_party,
        require_pkce: app.require_pkce,
        id_token_signing_alg: app.id_token_signing_alg,
        branding: Branding {
            logo_uri: branding.logo_uri,
            primary_color: branding.primary_color,
            background_color: branding.background_color,
        },
    }
}

fn required<T>(value: Option<T>, field: &'static str) -> Result<T, Error> {
    value.ok_or_else(|| Error::invalid("INVALID_ARGUMENT", field, format!("`{field}` is required")))
}

/// Serves `mgpass.oauth.v1.ApplicationService`.
pub struct ApplicationGrpc(pub ApplicationService);

#[tonic::async_trait]
impl ApplicationRpc for ApplicationGrpc {
    async fn create_application(
        &self,
        request: Request<pb::CreateApplicationRequest>,
    ) -> Result<Response<pb::CreateApplicationResponse>, Status> {
        let app = required(request.into_inner().application, "application")?;
        let (app, secret) = self.0.create(app_fields(app)).await?;
        Ok(Response::new(pb::CreateApplicationResponse {
            application: Some(app_to_proto(app)),
            client_secret: secret.unwrap_or_default(),
        }))
    }

    async fn get_application(
        &self,
        request: Request<pb::GetApplicationRequest>,
    ) -> Result<Response<pb::GetApplicationResponse>, Status> {
        let app = self.0.get(&request.into_inner().application_id).await?;
        Ok(Response::new(pb::GetApplicationResponse {
            application: Some(app_to_proto(app)),
        }))
    }

    async fn list_applications(
        &self,
        request: Request<pb::ListApplicationsRequest>,
    ) -> Result<Response<pb::ListApplicationsResponse>, Status> {
        let req = request.into_inner();
        let query = (!req.query.is_empty()).then_some(req.query);
        let (apps, next_page_token) = self
            .0
            .list(
                query,
                app_type_from_proto(req.application_type),
                req.page_size,
                &req.page_token,
            )
            .await?;
        Ok(Response::new(pb::ListApplicationsResponse {
            applications: apps.into_iter().map(app_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_application(
        &self,
        request: Request<pb::UpdateApplicationRequest>,
    ) -> Result<Response<pb::UpdateApplicationResponse>, Status> {
        let req = request.into_inner();
        let app = required(req.application, "application")?;
        let mask = required(req.update_mask, "update_mask")?;
        let id = app.id.clone();
        let app = self
            .0
            .update(
                &id,
                ApplicationUpdate {
                    fields: app_fields(app),
                    paths: mask.paths,
                },
            )
            .await?;
        Ok(Response::new(pb::UpdateApplicationResponse {
            application: Some(app_to_proto(app)),
        }))
    }

    async fn delete_application(
        &self,
        request: Request<pb::DeleteApplicationRequest>,
    ) -> Result<Response<pb::DeleteApplicationResponse>, Status> {
        self.0.delete(&request.into_inner().application_id).await?;
        Ok(Response::new(pb::DeleteApplicationResponse {}))
    }

    async fn rotate_application_secret(
        &self,
        request: Request<pb::RotateApplicationSecretRequest>,
    ) -> Result<Response<pb::RotateApplicationSecretResponse>, Status> {
        let req = request.into_inner();
        // The API contract: unset, like 0, stops the previous secret at once.
        let overlap = req.overlap.as_ref().map(seconds).unwrap_or(0);
        let (app, secret) = self.0.rotate_secret(&req.application_id, overlap).await?;
        Ok(Response::new(pb::RotateApplicationSecretResponse {
            application: Some(app_to_proto(app)),
            client_secret: secret,
        }))
    }
}
