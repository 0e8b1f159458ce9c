//! Serves `mgpass.loyalty.v1.PayoutService`: protobuf in, domain call, protobuf out; no rules here.

use mgpass_proto::loyalty::{self as pb, PayoutStatus, payout_service_server::PayoutService as PayoutApi};
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    auth::principal,
    convert::{from_timestamp, struct_to_json, timestamp},
    error::Error,
    loyalty::{
        payout_flow::Outcome,
        payout_service::PayoutService,
        payout_store::{ListFilter, PayoutRow, QuoteRow},
    },
};

pub struct PayoutGrpc(pub PayoutService);

fn money(amount_minor: i64, currency: &str) -> pb::Money {
    pb::Money { amount_minor, currency: currency.to_string() }
}

fn status_to_proto(status: &str) -> PayoutStatus {
    match status {
        "pending" => PayoutStatus::Pending,
        "succeeded" => PayoutStatus::Succeeded,
        "failed" => PayoutStatus::Failed,
        "manual_review" => PayoutStatus::ManualReview,
        _ => PayoutStatus::Unspecified,
    }
}

fn status_from_proto(status: i32) -> Result<Option<&'static str>, Error> {
    match PayoutStatus::try_from(status) {
        Ok(PayoutStatus::Unspecified) => Ok(None),
        Ok(PayoutStatus::Pending) => Ok(Some("pending")),
        Ok(PayoutStatus::Succeeded) => Ok(Some("succeeded")),
        Ok(PayoutStatus::Failed) => Ok(Some("failed")),
        Ok(PayoutStatus::ManualReview) => Ok(Some("manual_review")),
        Err(_) => Err(Error::invalid("INVALID_ARGUMENT", "status", "unknown payout status")),
    }
}

fn id_or_empty(id: Option<Uuid>) -> String {
    id.map(|i| i.to_string()).unwrap_or_default()
}

fn quote_to_proto(q: QuoteRow) -> pb::PayoutQuote {
    pb::PayoutQuote {
        id: q.id.to_string(),
        points: q.points,
        amount: Some(money(q.amount_minor, &q.currency)),
        rate_points: q.rate_points,
        rate_amount: Some(money(q.rate_amount_minor, &q.currency)),
        mobile: q.mobile,
        expire_time: Some(timestamp(q.expires_at)),
    }
}

pub(crate) fn payout_to_proto(r: PayoutRow) -> pb::Payout {
    pb::Payout {
        id: r.id.to_string(),
        user_id: r.user_id.to_string(),
        quote_id: r.quote_id.to_string(),
        points: r.points,
        amount: Some(money(r.amount_minor, &r.currency)),
        mobile: r.mobile,
        provider: r.provider,
        reference_id: r.reference_id.to_string(),
        provider_transaction_id: r.provider_transaction_id.unwrap_or_default(),
        status: status_to_proto(&r.status) as i32,
        failure_reason: r.failure_reason.unwrap_or_default(),
        status_check_count: r.status_check_count,
        last_status_check_time: r.last_status_check_at.map(timestamp),
        hold_transaction_id: r.hold_transaction_id.to_string(),
        settle_transaction_id: id_or_empty(r.settle_transaction_id),
        resolver_user_id: id_or_empty(r.resolver_user_id),
        resolution_note: r.resolution_note.unwrap_or_default(),
        create_time: Some(timestamp(r.created_at)),
        update_time: Some(timestamp(r.updated_at)),
        complete_time: r.completed_at.map(timestamp),
    }
}

#[tonic::async_trait]
impl PayoutApi for PayoutGrpc {
    async fn quote_payout(
        &self,
        request: Request<pb::QuotePayoutRequest>,
    ) -> Result<Response<pb::QuotePayoutResponse>, Status> {
        let user = principal(&request)?.user_id;
        let quote = self.0.quote(user, request.into_inner().points).await?;
        Ok(Response::new(pb::QuotePayoutResponse { quote: Some(quote_to_proto(quote)) }))
    }

    async fn request_payout(
        &self,
        request: Request<pb::RequestPayoutRequest>,
    ) -> Result<Response<pb::RequestPayoutResponse>, Status> {
        let user = principal(&request)?.user_id;
        let payout = self.0.request(user, &request.into_inner().quote_id).await?;
        Ok(Response::new(pb::RequestPayoutResponse { payout: Some(payout_to_proto(payout)) }))
    }

    async fn list_my_payouts(
        &self,
        request: Request<pb::ListMyPayoutsRequest>,
    ) -> Result<Response<pb::ListMyPayoutsResponse>, Status> {
        let user = principal(&request)?.user_id;
        let req = request.into_inner();
        let filter = ListFilter { user_id: Some(user), ..Default::default() };
        let (rows, next_page_token) = self.0.list(filter, req.page_size, &req.page_token).await?;
        Ok(Response::new(pb::ListMyPayoutsResponse {
            payouts: rows.into_iter().map(payout_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn get_my_payout(
        &self,
        request: Request<pb::GetMyPayoutRequest>,
    ) -> Result<Response<pb::GetMyPayoutResponse>, Status> {
        let user = principal(&request)?.user_id;
        let payout = self.0.get_mine(user, &request.into_inner().payout_id).await?;
        Ok(Response::new(pb::GetMyPayoutResponse { payout: Some(payout_to_proto(payout)) }))
    }

    async fn list_payouts(
        &self,
        request: Request<pb::ListPayoutsRequest>,
    ) -> Result<Response<pb::ListPayoutsResponse>, Status> {
        let req = request.into_inner();
        let user_id = if req.user_id.is_empty() {
            None
        } else {
            Some(Uuid::parse_str(&req.user_id).map_err(|_| Error::invalid("INVALID_ARGUMENT", "user_id", "not a user id"))?)
        };
        let filter = ListFilter {
            user_id,
            status: status_from_proto(req.status)?,
            created_after: req.create_after.as_ref().and_then(from_timestamp),
            created_before: req.create_before.as_ref().and_then(from_timestamp),
        };
        let (rows, next_page_token) = self.0.list(filter, req.page_size, &req.page_token).await?;
        Ok(Response::new(pb::ListPayoutsResponse { payouts: rows.into_iter().map(payout_to_proto).collect(), next_page_token }))
    }

    async fn get_payout(&self, request: Request<pb::GetPayoutRequest>) -> Result<Response<pb::GetPayoutResponse>, Status> {
        let payout = self.0.get(&request.into_inner().payout_id).await?;
        Ok(Response::new(pb::GetPayoutResponse { payout: Some(payout_to_proto(payout)) }))
    }

    async fn refresh_payout_status(
        &self,
        request: Request<pb::RefreshPayoutStatusRequest>,
    ) -> Result<Response<pb::RefreshPayoutStatusResponse>, Status> {
        let payout = self.0.refresh(&request.into_inner().payout_id).await?;
        Ok(Response::new(pb::RefreshPayoutStatusResponse { payout: Some(payout_to_proto(payout)) }))
    }

    async fn resolve_payout(
        &self,
        request: Request<pb::ResolvePayoutRequest>,
    ) -> Result<Response<pb::ResolvePayoutResponse>, Status> {
        let actor = principal(&request)?.user_id;
        let req = request.into_inner();
        let outcome = match PayoutStatus::try_from(req.outcome) {
            Ok(PayoutStatus::Succeeded) => Some(Outcome::Succeeded),
            Ok(PayoutStatus::Failed) => Some(Outcome::Failed),
            _ => None,
        };
        let payout = self.0.resolve(actor, &req.payout_id, outcome, &req.note).await?;
        Ok(Response::new(pb::ResolvePayoutResponse { payout: Some(payout_to_proto(payout)) }))
    }

    async fn receive_payout_callback(
        &self,
        request: Request<pb::ReceivePayoutCallbackRequest>,
    ) -> Result<Response<pb::ReceivePayoutCallbackResponse>, Status> {
        let req = request.into_inner();
        let payload = req.payload.map(struct_to_json).unwrap_or_default();
        self.0.callback(&req.provider, &payload).await?;
        Ok(Response::new(pb::ReceivePayoutCallbackResponse {}))
    }
}
