//! Serves `mgpass.loyalty.v1.LedgerService`: protobuf in, domain call, protobuf out.

use mgpass_proto::loyalty::{self as pb, ledger_service_server::LedgerService as LedgerApi};
use tonic::{Request, Response, Status};

use super::{
    TransactionKind,
    queries::{LotRow, TransactionFilter},
    service::{BalanceView, LedgerService, TransactionView},
};
use crate::{
    auth::principal,
    convert::{from_timestamp, timestamp},
    error::Error,
};

pub struct LedgerGrpc(pub LedgerService);

fn balance_to_proto(b: BalanceView) -> pb::Balance {
    pb::Balance {
        user_id: b.user_id.to_string(),
        points: b.points,
        held_points: b.held_points,
        lifetime_earned_points: b.lifetime_earned_points,
        next_expiry_points: b.next_expiry.as_ref().map(|n| n.points).unwrap_or(0),
        next_expire_time: b.next_expiry.map(|n| timestamp(n.expire_at)),
    }
}

fn kind_to_proto(kind: &str) -> i32 {
    use pb::TransactionKind as K;
    (match TransactionKind::parse(kind) {
        Some(TransactionKind::Award) => K::Award,
        Some(TransactionKind::Reversal) => K::Reversal,
        Some(TransactionKind::Redemption) => K::Redemption,
        Some(TransactionKind::Refund) => K::Refund,
        Some(TransactionKind::Expiry) => K::Expiry,
        Some(TransactionKind::Adjustment) => K::Adjustment,
        Some(TransactionKind::PayoutHold) => K::PayoutHold,
        Some(TransactionKind::PayoutCapture) => K::PayoutCapture,
        Some(TransactionKind::PayoutRelease) => K::PayoutRelease,
        None => K::Unspecified,
    }) as i32
}

/// The `kind` filter: `None` for UNSPECIFIED.
fn kind_filter(n: i32) -> Result<Option<&'static str>, Error> {
    use pb::TransactionKind as K;
    let kind = match K::try_from(n) {
        Ok(K::Unspecified) => return Ok(None),
        Ok(K::Award) => TransactionKind::Award,
        Ok(K::Reversal) => TransactionKind::Reversal,
        Ok(K::Redemption) => TransactionKind::Redemption,
        Ok(K::Refund) => TransactionKind::Refund,
        Ok(K::Expiry) => TransactionKind::Expiry,
        Ok(K::Adjustment) => TransactionKind::Adjustment,
        Ok(K::PayoutHold) => TransactionKind::PayoutHold,
        Ok(K::PayoutCapture) => TransactionKind::PayoutCapture,
        Ok(K::PayoutRelease) => TransactionKind::PayoutRelease,
        Err(_) => return Err(Error::invalid("INVALID_ARGUMENT", "kind", format!("{n} is not a transaction kind"))),
    };
    Ok(Some(kind.as_str()))
}

fn account_type(name: &str) -> i32 {
    use pb::AccountType as A;
    (match name {
        "user" => A::User,
        "user_hold" => A::UserHold,
        "partner_issuance" => A::PartnerIssuance,
        "redemptions" => A::Redemptions,
        "expiry" => A::Expiry,
        "adjustments" => A::Adjustments,
        "payouts" => A::Payouts,
        _ => A::Unspecified,
    }) as i32
}

fn opt(id: Option<uuid::Uuid>) -> String {
    id.map(|i| i.to_string()).unwrap_or_default()
}

pub fn transaction_to_proto(t: TransactionView) -> pb::Transaction {
    let r = t.row;
    pb::Transaction {
        id: r.id.to_string(),
        kind: kind_to_proto(&r.kind),
        user_id: r.user_id.to_string(),
        points: r.points,
        entries: t
            .entries
            .into_iter()
            .map(|e| pb::Entry {
                account: Some(pb::LedgerAccount {
                    account_type: account_type(&e.account_type),
                    owner_id: if e.owner_id.is_nil() { String::new() } else { e.owner_id.to_string() },
                }),
                points: e.points,
                rule_id: opt(e.rule_id),
                rule_version: e.rule_version.unwrap_or(0),
                lot_id: opt(e.lot_id),
            })
            .collect(),
        event_id: opt(r.event_id),
        order_id: opt(r.order_id),
        payout_id: opt(r.payout_id),
        reversed_transaction_id: opt(r.reversed_transaction_id),
        reason: r.reason.unwrap_or_default(),
        actor_user_id: opt(r.actor_user_id),
        create_time: Some(timestamp(r.created_at)),
    }
}

fn lot_to_proto(l: LotRow) -> pb::Lot {
    pb::Lot {
        id: l.id.to_string(),
        user_id: l.user_id.to_string(),
        earned_points: l.earned_points,
        remaining_points: l.remaining_points,
        earn_time: Some(timestamp(l.earned_at)),
        expire_time: l.expire_at.map(timestamp),
        transaction_id: l.transaction_id.to_string(),
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

fn optional_uuid(s: &str, field: &'static str) -> Result<Option<uuid::Uuid>, Error> {
    if s.is_empty() {
        return Ok(None);
    }
    uuid::Uuid::parse_str(s).map(Some).map_err(|_| Error::invalid("INVALID_ID", field, format!("`{s}` is not an id")))
}

#[tonic::async_trait]
impl LedgerApi for LedgerGrpc {
    async fn get_my_balance(
        &self,
        request: Request<pb::GetMyBalanceRequest>,
    ) -> Result<Response<pb::GetMyBalanceResponse>, Status> {
        let me = principal(&request)?.user_id;
        let balance = self.0.balance(me).await?;
        Ok(Response::new(pb::GetMyBalanceResponse { balance: Some(balance_to_proto(balance)) }))
    }

    async fn list_my_transactions(
        &self,
        request: Request<pb::ListMyTransactionsRequest>,
    ) -> Result<Response<pb::ListMyTransactionsResponse>, Status> {
        let me = principal(&request)?.user_id;
        let r = request.into_inner();
        let filter = TransactionFilter { user_id: Some(me), kind: kind_filter(r.kind)?, ..Default::default() };
        let (rows, next_page_token) = self.0.list_transactions(filter, None, r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListMyTransactionsResponse {
            transactions: rows.into_iter().map(transaction_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn list_my_lots(
        &self,
        request: Request<pb::ListMyLotsRequest>,
    ) -> Result<Response<pb::ListMyLotsResponse>, Status> {
        let me = principal(&request)?.user_id;
        let r = request.into_inner();
        let before = time(r.expire_before, "expire_before")?;
        let (rows, next_page_token) = self.0.lots(me, false, before, r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListMyLotsResponse {
            lots: rows.into_iter().map(lot_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn get_balance(
        &self,
        request: Request<pb::GetBalanceRequest>,
    ) -> Result<Response<pb::GetBalanceResponse>, Status> {
        let balance = self.0.member_balance(&request.into_inner().user_id).await?;
        Ok(Response::new(pb::GetBalanceResponse { balance: Some(balance_to_proto(balance)) }))
    }

    async fn list_transactions(
        &self,
        request: Request<pb::ListTransactionsRequest>,
    ) -> Result<Response<pb::ListTransactionsResponse>, Status> {
        let r = request.into_inner();
        let filter = TransactionFilter {
            user_id: None,
            kind: kind_filter(r.kind)?,
            partner_id: optional_uuid(&r.partner_id, "partner_id")?,
            created_after: time(r.create_after, "create_after")?,
            created_before: time(r.create_before, "create_before")?,
        };
        let member = (!r.user_id.is_empty()).then_some(r.user_id.as_str());
        let (rows, next_page_token) = self.0.list_transactions(filter, member, r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListTransactionsResponse {
            transactions: rows.into_iter().map(transaction_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn get_transaction(
        &self,
        request: Request<pb::GetTransactionRequest>,
    ) -> Result<Response<pb::GetTransactionResponse>, Status> {
        let view = self.0.transaction(&request.into_inner().transaction_id).await?;
        Ok(Response::new(pb::GetTransactionResponse { transaction: Some(transaction_to_proto(view)) }))
    }

    async fn list_lots(&self, request: Request<pb::ListLotsRequest>) -> Result<Response<pb::ListLotsResponse>, Status> {
        let r = request.into_inner();
        let (rows, next_page_token) =
            self.0.member_lots(&r.user_id, r.include_exhausted, r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListLotsResponse { lots: rows.into_iter().map(lot_to_proto).collect(), next_page_token }))
    }

    async fn adjust_points(
        &self,
        request: Request<pb::AdjustPointsRequest>,
    ) -> Result<Response<pb::AdjustPointsResponse>, Status> {
        let actor = principal(&request)?.user_id;
        let r = request.into_inner();
        let (tx, balance) = self.0.adjust(&r.user_id, r.points, &r.reason, &r.request_id, actor).await?;
        Ok(Response::new(pb::AdjustPointsResponse {
            transaction: Some(transaction_to_proto(tx)),
            balance: Some(balance_to_proto(balance)),
        }))
    }

    async fn list_partner_issuance(
        &self,
        request: Request<pb::ListPartnerIssuanceRequest>,
    ) -> Result<Response<pb::ListPartnerIssuanceResponse>, Status> {
        let r = request.into_inner();
        let (rows, next_page_token) =
            self.0.partner_issuance(&r.partner_id, &r.start_day, &r.end_day, r.page_size, &r.page_token).await?;
        Ok(Response::new(pb::ListPartnerIssuanceResponse {
            rows: rows
                .into_iter()
                .map(|r| pb::PartnerIssuance {
                    partner_id: r.partner_id.to_string(),
                    day: r.day.format("%Y-%m-%d").to_string(),
                    points_awarded: r.awarded,
                    points_reversed: r.reversed,
                    event_count: r.events,
                })
                .collect(),
            next_page_token,
        }))
    }

    async fn get_liabilities(
        &self,
        _request: Request<pb::GetLiabilitiesRequest>,
    ) -> Result<Response<pb::GetLiabilitiesResponse>, Status> {
        let l = self.0.liabilities().await?;
        Ok(Response::new(pb::GetLiabilitiesResponse {
            liabilities: Some(pb::Liabilities {
                outstanding_points: l.outstanding,
                held_points: l.held,
                member_count: l.members,
                // Cashback (the rate) belongs to the payouts module; unset until it is configured.
                cash_equivalent: None,
                expiring_points_30_days: l.expiring_30_days,
                as_of_time: Some(timestamp(l.as_of)),
            }),
        }))
    }
}
