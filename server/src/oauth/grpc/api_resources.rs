//! Serves `mgpass.oauth.v1.ApiResourceService`.

use mgpass_proto::oauth::{
    self as pb, api_resource_service_server::ApiResourceService as ApiResourceRpc,
};
use tonic::{Request, Response, Status};

use crate::{
    convert::timestamp,
    error::Error,
    oauth::{
        api_resource_service::{
            ApiResourceFields, ApiResourceService, ApiResourceUpdate, defined_scopes,
        },
        model::{ApiResourceRow, ApiScope},
    },
};

fn resource_to_proto(row: ApiResourceRow) -> pb::ApiResource {
    pb::ApiResource {
        scopes: defined_scopes(&row)
            .into_iter()
            .map(|s| pb::ApiScope {
                name: s.name,
                description: s.description,
            })
            .collect(),
        id: row.id.to_string(),
        indicator: row.indicator,
        name: row.name,
        description: row.description,
        system: row.system,
        create_time: Some(timestamp(row.created_at)),
        update_time: Some(timestamp(row.updated_at)),
    }
}

fn resource_fields(r: pb::ApiResource) -> ApiResourceFields {
    ApiResourceFields {
        indicator: r.indicator,
        name: r.name,
        description: r.description,
        scopes: r
            .scopes
            .into_iter()
            .map(|s| ApiScope {
                name: s.name,
                description: s.description,
            })
            .collect(),
    }
}

fn required<T>(value: Option<T>, field: &'static str) -> Result<T, Error> {
    value.ok_or_else(|| Error::invalid("INVALID_ARGUMENT", field, format!("`{field}` is required")))
}

/// Serves `mgpass.oauth.v1.ApiResourceService`.
pub struct ApiResourceGrpc(pub ApiResourceService);

#[tonic::async_trait]
impl ApiResourceRpc for ApiResourceGrpc {
    async fn create_api_resource(
        &self,
        request: Request<pb::CreateApiResourceRequest>,
    ) -> Result<Response<pb::CreateApiResourceResponse>, Status> {
        let resource = required(request.into_inner().api_resource, "api_resource")?;
        let row = self.0.create(resource_fields(resource)).await?;
        Ok(Response::new(pb::CreateApiResourceResponse {
            api_resource: Some(resource_to_proto(row)),
        }))
    }

    async fn get_api_resource(
        &self,
        request: Request<pb::GetApiResourceRequest>,
    ) -> Result<Response<pb::GetApiResourceResponse>, Status> {
        let row = self.0.get(&request.into_inner().api_resource_id).await?;
        Ok(Response::new(pb::GetApiResourceResponse {
            api_resource: Some(resource_to_proto(row)),
        }))
    }

    async fn list_api_resources(
        &self,
        request: Request<pb::ListApiResourcesRequest>,
    ) -> Result<Response<pb::ListApiResourcesResponse>, Status> {
        let req = request.into_inner();
        let query = (!req.query.is_empty()).then_some(req.query);
        let (rows, next_page_token) = self.0.list(query, req.page_size, &req.page_token).await?;
        Ok(Response::new(pb::ListApiResourcesResponse {
            api_resources: rows.into_iter().map(resource_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_api_resource(
        &self,
        request: Request<pb::UpdateApiResourceRequest>,
    ) -> Result<Response<pb::UpdateApiResourceResponse>, Status> {
        let req = request.into_inner();
        let resource = required(req.api_resource, "api_resource")?;
        let mask = required(req.update_mask, "update_mask")?;
        let id = resource.id.clone();
        let row = self
            .0
            .update(
                &id,
                ApiResourceUpdate {
                    fields: resource_fields(resource),
                    paths: mask.paths,
                },
            )
            .await?;
        Ok(Response::new(pb::UpdateApiResourceResponse {
            api_resource: Some(resource_to_proto(row)),
        }))
    }

    async fn delete_api_resource(
        &self,
        request: Request<pb::DeleteApiResourceRequest>,
    ) -> Result<Response<pb::DeleteApiResourceResponse>, Status> {
        self.0.delete(&request.into_inner().api_resource_id).await?;
        Ok(Response::new(pb::DeleteApiResourceResponse {}))
    }
}
