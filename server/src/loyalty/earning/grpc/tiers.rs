//! Serves `mgpass.loyalty.v1.TierService`.

use mgpass_proto::loyalty::{self as pb, tier_service_server::TierService};
use tonic::{Request, Response, Status};

use super::{opt_uuid, required};
use crate::{
    auth::principal,
    convert::timestamp,
    loyalty::earning::{
        tier_service::{self as svc, Standing, TierSpec},
        tier_store::{TierChangeRow, TierRow},
    },
};

pub(crate) fn tier_to_proto(t: TierRow) -> pb::Tier {
    pb::Tier {
        id: t.id.to_string(),
        name: t.name,
        description: t.description,
        threshold_points: t.threshold_points,
        earning_multiplier_bps: t.earning_multiplier_bps,
        perks: t.perks,
        image_url: t.image_url,
        create_time: Some(timestamp(t.created_at)),
        update_time: Some(timestamp(t.updated_at)),
    }
}

fn change_to_proto(c: TierChangeRow) -> pb::TierChange {
    pb::TierChange {
        id: c.id.to_string(),
        user_id: c.user_id.to_string(),
        from_tier_id: opt_uuid(c.from_tier_id),
        to_tier_id: opt_uuid(c.to_tier_id),
        reason: i32::from(c.reason),
        window_points: c.window_points,
        change_time: Some(timestamp(c.created_at)),
    }
}

fn status_to_proto(s: Standing) -> pb::TierStatus {
    let points_to_next_tier = s
        .next_tier
        .as_ref()
        .map_or(0, |t| (t.threshold_points - s.window_points).max(0));
    pb::TierStatus {
        user_id: s.user_id.to_string(),
        tier: s.tier.map(tier_to_proto),
        window_points: s.window_points,
        window_start_time: Some(timestamp(s.window_start)),
        next_tier: s.next_tier.map(tier_to_proto),
        points_to_next_tier,
        tier_since_time: s.tier_since.map(timestamp),
        next_evaluation_time: Some(timestamp(s.next_evaluation)),
    }
}

fn spec(t: pb::Tier) -> TierSpec {
    TierSpec {
        name: t.name,
        description: t.description,
        threshold_points: t.threshold_points,
        earning_multiplier_bps: t.earning_multiplier_bps,
        perks: t.perks,
        image_url: t.image_url,
    }
}

pub struct TierGrpc(pub svc::TierService);

#[tonic::async_trait]
impl TierService for TierGrpc {
    async fn create_tier(
        &self,
        request: Request<pb::CreateTierRequest>,
    ) -> Result<Response<pb::CreateTierResponse>, Status> {
        let tier = required(request.into_inner().tier, "tier")?;
        let created = self.0.create(spec(tier)).await?;
        Ok(Response::new(pb::CreateTierResponse {
            tier: Some(tier_to_proto(created)),
        }))
    }

    async fn get_tier(
        &self,
        request: Request<pb::GetTierRequest>,
    ) -> Result<Response<pb::GetTierResponse>, Status> {
        let tier = self.0.get(&request.into_inner().tier_id).await?;
        Ok(Response::new(pb::GetTierResponse {
            tier: Some(tier_to_proto(tier)),
        }))
    }

    async fn list_tiers(
        &self,
        request: Request<pb::ListTiersRequest>,
    ) -> Result<Response<pb::ListTiersResponse>, Status> {
        let req = request.into_inner();
        let (tiers, next_page_token) = self.0.list(req.page_size, &req.page_token).await?;
        Ok(Response::new(pb::ListTiersResponse {
            tiers: tiers.into_iter().map(tier_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_tier(
        &self,
        request: Request<pb::UpdateTierRequest>,
    ) -> Result<Response<pb::UpdateTierResponse>, Status> {
        let req = request.into_inner();
        let tier = required(req.tier, "tier")?;
        let mask = required(req.update_mask, "update_mask")?;
        let id = tier.id.clone();
        let updated = self.0.update(&id, spec(tier), &mask.paths).await?;
        Ok(Response::new(pb::UpdateTierResponse {
            tier: Some(tier_to_proto(updated)),
        }))
    }

    async fn delete_tier(
        &self,
        request: Request<pb::DeleteTierRequest>,
    ) -> Result<Response<pb::DeleteTierResponse>, Status> {
        self.0.delete(&request.into_inner().tier_id).await?;
        Ok(Response::new(pb::DeleteTierResponse {}))
    }

    async fn get_my_tier_status(
        &self,
        request: Request<pb::GetMyTierStatusRequest>,
    ) -> Result<Response<pb::GetMyTierStatusResponse>, Status> {
        let me = principal(&request)?.user_id;
        let standing = self.0.standing_of(me).await?;
        Ok(Response::new(pb::GetMyTierStatusResponse {
            status: Some(status_to_proto(standing)),
        }))
    }

    async fn list_my_tier_changes(
        &self,
        request: Request<pb::ListMyTierChangesRequest>,
    ) -> Result<Response<pb::ListMyTierChangesResponse>, Status> {
        let me = principal(&request)?.user_id;
        let req = request.into_inner();
        let (changes, next_page_token) = self
            .0
            .changes_of(me, req.page_size, &req.page_token, false)
            .await?;
        Ok(Response::new(pb::ListMyTierChangesResponse {
            tier_changes: changes.into_iter().map(change_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn get_tier_status(
        &self,
        request: Request<pb::GetTierStatusRequest>,
    ) -> Result<Response<pb::GetTierStatusResponse>, Status> {
        let standing = self.0.standing(&request.into_inner().user_id).await?;
        Ok(Response::new(pb::GetTierStatusResponse {
            status: Some(status_to_proto(standing)),
        }))
    }

    async fn list_tier_changes(
        &self,
        request: Request<pb::ListTierChangesRequest>,
    ) -> Result<Response<pb::ListTierChangesResponse>, Status> {
        let req = request.into_inner();
        let (changes, next_page_token) = self
            .0
            .changes(&req.user_id, req.page_size, &req.page_token)
            .await?;
        Ok(Response::new(pb::ListTierChangesResponse {
            tier_changes: changes.into_iter().map(change_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn reevaluate_tiers(
        &self,
        request: Request<pb::ReevaluateTiersRequest>,
    ) -> Result<Response<pb::ReevaluateTiersResponse>, Status> {
        let counts = self.0.reevaluate(&request.into_inner().user_id).await?;
        Ok(Response::new(pb::ReevaluateTiersResponse {
            evaluated_count: counts.evaluated,
            upgraded_count: counts.upgraded,
            downgraded_count: counts.downgraded,
        }))
    }
}
