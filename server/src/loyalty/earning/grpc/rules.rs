//! Serves `mgpass.loyalty.v1.RuleService`.

use mgpass_proto::loyalty::{
    self as pb, dry_run_rule_request::Target, rule::Points, rule_service_server::RuleService,
};
use tonic::{Request, Response, Status};

use super::{events::incoming, non_empty, opt_id, opt_uuid, required};
use crate::{
    auth::principal,
    convert::{from_timestamp, timestamp},
    error::Error,
    loyalty::earning::{
        engine::{self, EventFacts, TierMultiplier},
        rule_service::{self as svc, DryRunTarget, PointsSpec, RuleSpec, Sample},
        rule_store::{RuleFilter, RuleRow},
    },
};

pub(crate) fn rule_to_proto(row: RuleRow) -> pb::Rule {
    let caps = engine::caps(&row)
        .into_iter()
        .map(|c| pb::PointsCap {
            period: i32::from(c.period),
            max_points: c.max_points,
        })
        .collect();
    let tier_multipliers = engine::tier_multipliers(&row)
        .into_iter()
        .map(|m| pb::TierMultiplier {
            tier_id: m.tier_id,
            multiplier_bps: m.multiplier_bps,
        })
        .collect();
    let v = row.version;
    let points = match (
        v.fixed_points,
        v.rate_points,
        v.rate_per_amount_minor,
        v.rate_currency,
    ) {
        (Some(f), ..) => Some(Points::FixedPoints(f)),
        (None, Some(points), Some(per_amount_minor), Some(currency)) => {
            Some(Points::Rate(pb::RatePoints {
                points,
                per_amount_minor,
                currency,
            }))
        }
        _ => None,
    };
    pb::Rule {
        id: v.rule_id.to_string(),
        version: v.version,
        name: v.name,
        description: v.description,
        partner_id: opt_uuid(v.partner_id),
        event_type: v.event_type,
        condition: v.condition,
        points,
        rounding: i32::from(v.rounding),
        tier_multipliers,
        caps,
        start_time: v.start_at.map(timestamp),
        end_time: v.end_at.map(timestamp),
        priority: v.priority,
        stacking: i32::from(v.stacking),
        status: i32::from(v.status),
        create_time: Some(timestamp(row.rule_created_at)),
        update_time: Some(timestamp(v.created_at)),
        updater_user_id: opt_uuid(v.updater_user_id),
    }
}

fn spec(rule: pb::Rule) -> Result<RuleSpec, Error> {
    let bad_time = |field| Error::invalid("INVALID_ARGUMENT", field, "not a valid timestamp");
    Ok(RuleSpec {
        name: rule.name,
        description: rule.description,
        partner_id: rule.partner_id,
        event_type: rule.event_type,
        condition: rule.condition,
        points: match rule.points {
            None => PointsSpec::None,
            Some(Points::FixedPoints(n)) => PointsSpec::Fixed(n),
            Some(Points::Rate(r)) => PointsSpec::Rate {
                points: r.points,
                per_amount_minor: r.per_amount_minor,
                currency: r.currency,
            },
        },
        rounding: rule.rounding,
        tier_multipliers: rule
            .tier_multipliers
            .into_iter()
            .map(|m| TierMultiplier {
                tier_id: m.tier_id,
                multiplier_bps: m.multiplier_bps,
            })
            .collect(),
        caps: rule
            .caps
            .into_iter()
            .map(|c| (c.period, c.max_points))
            .collect(),
        start_at: rule
            .start_time
            .as_ref()
            .map(|t| from_timestamp(t).ok_or_else(|| bad_time("rule.start_time")))
            .transpose()?,
        end_at: rule
            .end_time
            .as_ref()
            .map(|t| from_timestamp(t).ok_or_else(|| bad_time("rule.end_time")))
            .transpose()?,
        priority: rule.priority,
        stacking: rule.stacking,
        status: rule.status,
    })
}

pub struct RuleGrpc(pub svc::RuleService);

#[tonic::async_trait]
impl RuleService for RuleGrpc {
    async fn create_rule(
        &self,
        request: Request<pb::CreateRuleRequest>,
    ) -> Result<Response<pb::CreateRuleResponse>, Status> {
        let actor = principal(&request)?.user_id;
        let rule = spec(required(request.into_inner().rule, "rule")?)?;
        let created = self.0.create(rule, Some(actor)).await?;
        Ok(Response::new(pb::CreateRuleResponse {
            rule: Some(rule_to_proto(created)),
        }))
    }

    async fn get_rule(
        &self,
        request: Request<pb::GetRuleRequest>,
    ) -> Result<Response<pb::GetRuleResponse>, Status> {
        let req = request.into_inner();
        let rule = self.0.get(&req.rule_id, req.version).await?;
        Ok(Response::new(pb::GetRuleResponse {
            rule: Some(rule_to_proto(rule)),
        }))
    }

    async fn list_rules(
        &self,
        request: Request<pb::ListRulesRequest>,
    ) -> Result<Response<pb::ListRulesResponse>, Status> {
        let req = request.into_inner();
        let status = match req.status {
            0 => None,
            s @ 1..=2 => Some(s as i16),
            _ => {
                return Err(
                    Error::invalid("INVALID_ARGUMENT", "status", "unknown rule status").into(),
                );
            }
        };
        let filter = RuleFilter {
            partner_id: opt_id(&req.partner_id, "partner_id")?,
            event_type: non_empty(req.event_type),
            status,
        };
        let (rules, next_page_token) = self.0.list(filter, req.page_size, &req.page_token).await?;
        Ok(Response::new(pb::ListRulesResponse {
            rules: rules.into_iter().map(rule_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn update_rule(
        &self,
        request: Request<pb::UpdateRuleRequest>,
    ) -> Result<Response<pb::UpdateRuleResponse>, Status> {
        let actor = principal(&request)?.user_id;
        let req = request.into_inner();
        let rule = required(req.rule, "rule")?;
        let mask = required(req.update_mask, "update_mask")?;
        let id = rule.id.clone();
        let updated = self
            .0
            .update(&id, spec(rule)?, &mask.paths, Some(actor))
            .await?;
        Ok(Response::new(pb::UpdateRuleResponse {
            rule: Some(rule_to_proto(updated)),
        }))
    }

    async fn list_rule_versions(
        &self,
        request: Request<pb::ListRuleVersionsRequest>,
    ) -> Result<Response<pb::ListRuleVersionsResponse>, Status> {
        let req = request.into_inner();
        let (rules, next_page_token) = self
            .0
            .versions(&req.rule_id, req.page_size, &req.page_token)
            .await?;
        Ok(Response::new(pb::ListRuleVersionsResponse {
            rules: rules.into_iter().map(rule_to_proto).collect(),
            next_page_token,
        }))
    }

    async fn dry_run_rule(
        &self,
        request: Request<pb::DryRunRuleRequest>,
    ) -> Result<Response<pb::DryRunRuleResponse>, Status> {
        let req = request.into_inner();
        let target = match req.target {
            Some(Target::RuleId(rule_id)) => DryRunTarget::Saved {
                rule_id,
                version: req.version,
            },
            Some(Target::Rule(rule)) => DryRunTarget::Draft(spec(rule)?),
            None => {
                return Err(Error::invalid(
                    "INVALID_ARGUMENT",
                    "target",
                    "a `rule_id` or a draft `rule` is required",
                )
                .into());
            }
        };
        let event = incoming(required(req.event, "event")?);
        let partner_id = opt_id(&req.partner_id, "partner_id")?.unwrap_or_default();
        let sample = Sample {
            event: EventFacts {
                partner_id,
                event_type: event.event_type,
                occur_at: event.occur_at.unwrap_or_else(chrono::Utc::now),
                amount_minor: event.amount.as_ref().map(|a| a.0),
                currency: event.amount.map(|a| a.1),
                attributes: event.attributes,
            },
            user_id: req.user_id,
        };
        let out = self.0.dry_run(target, sample).await?;
        Ok(Response::new(pb::DryRunRuleResponse {
            matched: out.matched,
            mismatch_reason: out.mismatch_reason,
            condition_error: out.condition_error,
            base_points: out.base_points,
            multiplier_bps: out.multiplier_bps,
            uncapped_points: out.uncapped_points,
            points: out.points,
            capped: out.capped,
        }))
    }
}
