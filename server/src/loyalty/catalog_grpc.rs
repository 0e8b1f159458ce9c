//! Serves `mgpass.loyalty.v1.CatalogService` and `RedemptionService`: protobuf in, domain call,
//! protobuf out.

use mgpass_proto::loyalty::{
    self as pb, catalog_service_server::CatalogService as CatalogApi,
    redemption_service_server::RedemptionService as RedemptionApi,
};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{
    catalog_service::{CatalogService, ItemFields},
    catalog_store::{ItemFilter, ItemRow},
    order_store::{OrderFilter, OrderRow},
    redemption_service::RedemptionService,
};
use crate::{
    auth::principal,
    convert::{from_timestamp, json_to_struct, struct_to_json, timestamp},
    error::Error,
};

pub struct CatalogGrpc(pub CatalogService);
pub struct RedemptionGrpc(pub RedemptionService);

fn item_to_proto(r: ItemRow) -> pb::CatalogItem {
    pb::CatalogItem {
        id: r.id.to_string(),
        name: r.name,
        description: r.description,
        image_url: r.image_url,
        points_cost: r.points_cost,
        unlimited_stock: r.unlimited_stock,
        stock: r.stock,
        per_user_limit: r.per_user_limit,
        eligible_tier_ids: r.eligible_tier_ids.iter().map(Uuid::to_string).collect(),
        start_time: r.starts_at.map(timestamp),
        end_time: r.ends_at.map(timestamp),
        status: if r.status == "active" { pb::CatalogItemStatus::Active } else { pb::CatalogItemStatus::Disabled }
            as i32,
        redeemed_count: r.redeemed_count,
        create_time: Some(timestamp(r.created_at)),
        update_time: Some(timestamp(r.updated_at)),
    }
}

fn order_to_proto(r: OrderRow) -> pb::Order {
    pb::Order {
        id: r.id.to_string(),
        user_id: r.user_id.to_string(),
        catalog_item_id: r.catalog_item_id.to_string(),
        item_name: r.item_name,
        quantity: r.quantity,
        points: r.points,
        status: match r.status.as_str() {
            "pending" => pb::OrderStatus::Pending,
            "fulfilled" => pb::OrderStatus::Fulfilled,
            _ => pb::OrderStatus::Cancelled,
        } as i32,
        details: Some(json_to_struct(r.details.as_object().cloned().unwrap_or_default())),
        fulfillment_reference: r.fulfillment_reference,
        cancel_reason: r.cancel_reason,
        debit_transaction_id: r.debit_transaction_id.to_string(),
        refund_transaction_id: r.refund_transaction_id.map(|t| t.to_string()).unwrap_or_default(),
        create_time: Some(timestamp(r.created_at)),
        fulfill_time: r.fulfilled_at.map(timestamp),
        cancel_time: r.cancelled_at.map(timestamp),
    }
}

fn item_status(n: i32) -> Result<Option<&'static str>, Error> {
    match pb::CatalogItemStatus::try_from(n) {
        Ok(pb::CatalogItemStatus::Unspecified) => Ok(None),
        Ok(pb::CatalogItemStatus::Active) => Ok(Some("active")),
        Ok(pb::CatalogItemStatus::Disabled) => Ok(Some("disabled")),
        Err(_) => Err(Error::invalid("INVALID_ARGUMENT", "status", format!("{n} is not a catalog item status"))),
    }
}

fn order_status(n: i32) -> Result<Option<&'static str>, Error> {
    match pb::OrderStatus::try_from(n) {
        Ok(pb::OrderStatus::Unspecified) => Ok(None),
        Ok(pb::OrderStatus::Pending) => Ok(Some("pending")),
        Ok(pb::OrderStatus::Fulfilled) => Ok(Some("fulfilled")),
        Ok(pb::OrderStatus::Cancelled) => Ok(Some("cancelled")),
        Err(_) => Err(Error::invalid("INVALID_ARGUMENT", "status", format!("{n} is not an order status"))),
    }
}

fn time(
    t: Option<prost_types::Timestamp>,
    field: &'static str,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, Error> {
    match t {
        None => Ok(None),
        Some(t) => {
            from_timestamp(&t).map(Some).ok_or_else(|| Error::invalid("INVALID_ARGUMENT", field, "not a valid time"))
        }
    }
}

fn optional_uuid(s: &str, field: &'static str) -> Result<Option<Uuid>, Error> {
    if s.is_empty() {
        return Ok(None);
    }
    Uuid::parse_str(s).map(Some).map_err(|_| Error::invalid("INVALID_ARGUMENT", field, format!("`{s}` is not an id")))
}

fn fields(i: pb::CatalogItem) -> Result<ItemFields, Error> {
    Ok(ItemFields {
        name: i.name,
        description: i.description,
        image_url: i.image_url,
        points_cost: i.points_cost,
        unlimited_stock: i.unlimited_stock,
        stock: i.stock,
        per_user_limit: i.per_user_limit,
        eligible_tier_ids: i.eligible_tier_ids,
        starts_at: time(i.start_time, "catalog_item.start_time")?,
        ends_at: time(i.end_time, "catalog_item.end_time")?,
        status: item_status(i.status)?,
    })
}

fn required<T>(value: Option<T>, field: &'static str) -> Result<T, Error> {
    value.ok_or_else(|| Error::invalid("INVALID_ARGUMENT", field, format!("`{field}` is required")))
}

#[tonic::async_trait]
impl CatalogApi for CatalogGrpc {
    async fn create_catalog_item(
        &self,
        request: Request<pb::CreateCatalogItemRequest>,
    ) -> Result<Response<pb::CreateCatalogItemResponse>, Status> {
        let item = required(request.into_inner().catalog_item, "catalog_item")?;
        let row = self.0.create(fields(item)?).await?;
        Ok(Response::new(pb::CreateCatalogItemResponse { catalog_item: Some(item_to_proto(row)) }))
    }

    async fn get_catalog_item(
        &self,
        request: Request<pb::GetCatalogItemRequest>,
    ) -> Result<Response<pb::GetCatalogItemResponse>, Status> {
        let row = self.0.get(&request.into_inner().catalog_item_id).await?;
        Ok(Response::new(pb::GetCatalogItemResponse { catalog_item: Some(item_to_proto(row)) }))
    }

    async fn list_catalog_items(
        &self,
        request: Request<pb::ListCatalogItemsRequest>,
    ) -> Result<Response<pb::ListCatalogItemsResponse>, Status> {
        let r = request.into_inner();
        let query = r.query.trim();
        let filter = ItemFilter {
            query: (!query.is_empty()).then(|| query.to_string()),
            status: item_status(r.status)?,
            tier_id: optional_uuid(&r.tier_id, "tier_id")?,
            offered_at: None,
        };
        let (rows, next_page_token) = self.0.list(r.page_size, &r.page_token, filter).await?;
        Ok(Response::new(pb::ListCatalogItemsResponse {
            catalog_items: rows.into_iter().map(item_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_catalog_item(
        &self,
        request: Request<pb::UpdateCatalogItemRequest>,
    ) -> Result<Response<pb::UpdateCatalogItemResponse>, Status> {
        let r = request.into_inner();
        let item = required(r.catalog_item, "catalog_item")?;
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let id = item.id.clone();
        let row = self.0.update(&id, fields(item)?, &paths).await?;
        Ok(Response::new(pb::UpdateCatalogItemResponse { catalog_item: Some(item_to_proto(row)) }))
    }

    async fn delete_catalog_item(
        &self,
        request: Request<pb::DeleteCatalogItemRequest>,
    ) -> Result<Response<pb::DeleteCatalogItemResponse>, Status> {
        self.0.delete(&request.into_inner().catalog_item_id).await?;
        Ok(Response::new(pb::DeleteCatalogItemResponse {}))
    }

    async fn adjust_catalog_item_stock(
        &self,
        request: Request<pb::AdjustCatalogItemStockRequest>,
    ) -> Result<Response<pb::AdjustCatalogItemStockResponse>, Status> {
        let r = request.into_inner();
        let row = self.0.adjust_stock(&r.catalog_item_id, r.delta).await?;
        Ok(Response::new(pb::AdjustCatalogItemStockResponse { catalog_item: Some(item_to_proto(row)) }))
    }

    async fn list_my_catalog_items(
        &self,
        request: Request<pb::ListMyCatalogItemsRequest>,
    ) -> Result<Response<pb::ListMyCatalogItemsResponse>, Status> {
        let me = principal(&request)?.user_id;
        let r = request.into_inner();
        let (offers, next_page_token) = self.0.offers(me, r.page_size, &r.page_token, r.affordable_only).await?;
        Ok(Response::new(pb::ListMyCatalogItemsResponse {
            items: offers
                .into_iter()
                .map(|o| pb::RedeemableItem {
                    affordable: o.affordable,
                    in_stock: o.in_stock,
                    redeemed_by_me: i32::try_from(o.redeemed_by_me).unwrap_or(i32::MAX),
                    limit_reached: o.limit_reached,
                    catalog_item: Some(item_to_proto(o.item)),
                })
                .collect(),
            next_page_token,
        }))
    }
}

#[tonic::async_trait]
impl RedemptionApi for RedemptionGrpc {
    async fn redeem_catalog_item(
        &self,
        request: Request<pb::RedeemCatalogItemRequest>,
    ) -> Result<Response<pb::RedeemCatalogItemResponse>, Status> {
        let me = principal(&request)?.user_id;
        let r = request.into_inner();
        let details = r.details.map(struct_to_json).unwrap_or_default();
        let order = self.0.redeem(me, &r.catalog_item_id, r.quantity, &r.request_id, details).await?;
        Ok(Response::new(pb::RedeemCatalogItemResponse { order: Some(order_to_proto(order)) }))
    }

    async fn list_my_orders(
        &self,
        request: Request<pb::ListMyOrdersRequest>,
    ) -> Result<Response<pb::ListMyOrdersResponse>, Status> {
        let me = principal(&request)?.user_id;
        let r = request.into_inner();
        let filter = OrderFilter { user_id: Some(me), status: order_status(r.status)?, ..Default::default() };
        let (rows, next_page_token) = self.0.list(filter, r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListMyOrdersResponse {
            orders: rows.into_iter().map(order_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn get_my_order(
        &self,
        request: Request<pb::GetMyOrderRequest>,
    ) -> Result<Response<pb::GetMyOrderResponse>, Status> {
        let me = principal(&request)?.user_id;
        let order = self.0.get(&request.into_inner().order_id, Some(me)).await?;
        Ok(Response::new(pb::GetMyOrderResponse { order: Some(order_to_proto(order)) }))
    }

    async fn list_orders(
        &self,
        request: Request<pb::ListOrdersRequest>,
    ) -> Result<Response<pb::ListOrdersResponse>, Status> {
        let r = request.into_inner();
        let filter = OrderFilter {
            user_id: optional_uuid(&r.user_id, "user_id")?,
            catalog_item_id: optional_uuid(&r.catalog_item_id, "catalog_item_id")?,
            status: order_status(r.status)?,
            created_after: time(r.create_after, "create_after")?,
            created_before: time(r.create_before, "create_before")?,
        };
        let (rows, next_page_token) = self.0.list(filter, r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListOrdersResponse {
            orders: rows.into_iter().map(order_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn get_order(&self, request: Request<pb::GetOrderRequest>) -> Result<Response<pb::GetOrderResponse>, Status> {
        let order = self.0.get(&request.into_inner().order_id, None).await?;
        Ok(Response::new(pb::GetOrderResponse { order: Some(order_to_proto(order)) }))
    }

    async fn fulfill_order(
        &self,
        request: Request<pb::FulfillOrderRequest>,
    ) -> Result<Response<pb::FulfillOrderResponse>, Status> {
        let r = request.into_inner();
        let order = self.0.fulfill(&r.order_id, &r.fulfillment_reference).await?;
        Ok(Response::new(pb::FulfillOrderResponse { order: Some(order_to_proto(order)) }))
    }

    async fn cancel_order(
        &self,
        request: Request<pb::CancelOrderRequest>,
    ) -> Result<Response<pb::CancelOrderResponse>, Status> {
        let actor = principal(&request)?.user_id;
        let r = request.into_inner();
        let order = self.0.cancel(&r.order_id, &r.reason, actor).await?;
        Ok(Response::new(pb::CancelOrderResponse { order: Some(order_to_proto(order)) }))
    }
}
