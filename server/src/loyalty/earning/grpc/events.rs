//! Serves `mgpass.loyalty.v1.EventService`.

use mgpass_proto::loyalty::{
    self as pb, event::User as PbUser, event_service_server::EventService,
};
use prost::Message;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use super::{non_empty, opt_id, opt_uuid, required};
use crate::{
    convert::{from_timestamp, json_to_struct, struct_to_json, timestamp},
    error::Error,
    loyalty::earning::{
        event_service::{self as svc, Customer, IncomingEvent, Outcome},
        event_store::{EventFilter, EventRow},
    },
};

pub(crate) fn event_to_proto(row: EventRow) -> pb::Event {
    let awards = svc::awards(&row)
        .into_iter()
        .map(|a| pb::Award {
            rule_id: a.rule_id.to_string(),
            rule_version: a.rule_version,
            base_points: a.base_points,
            multiplier_bps: a.multiplier_bps,
            points: a.points,
            capped: a.capped,
        })
        .collect();
    let user = match (row.user_id, row.email, row.mobile) {
        (Some(id), ..) => Some(PbUser::UserId(id.to_string())),
        (None, Some(email), _) => Some(PbUser::Email(email)),
        (None, None, Some(mobile)) => Some(PbUser::Mobile(mobile)),
        _ => None,
    };
    pb::Event {
        id: row.id.to_string(),
        partner_id: row.partner_id.to_string(),
        partner_event_id: row.partner_event_id,
        event_type: row.event_type,
        user,
        occur_time: Some(timestamp(row.occur_at)),
        amount: row.amount_minor.map(|a| pb::Money {
            amount_minor: a,
            currency: row.currency.unwrap_or_default(),
        }),
        attributes: Some(json_to_struct(
            row.attributes.as_object().cloned().unwrap_or_default(),
        )),
        status: i32::from(row.status),
        resolved_user_id: opt_uuid(row.resolved_user_id),
        points: row.points,
        awards,
        transaction_id: opt_uuid(row.transaction_id),
        reversal_transaction_id: opt_uuid(row.reversal_transaction_id),
        receive_time: Some(timestamp(row.received_at)),
        pending_expire_time: row.pending_expires_at.map(timestamp),
        reverse_time: row.reversed_at.map(timestamp),
    }
}

pub(crate) fn incoming(event: pb::Event) -> IncomingEvent {
    IncomingEvent {
        partner_event_id: event.partner_event_id,
        event_type: event.event_type,
        customer: match event.user {
            Some(PbUser::UserId(u)) => Customer::UserId(u),
            Some(PbUser::Email(e)) => Customer::Email(e),
            Some(PbUser::Mobile(m)) => Customer::Mobile(m),
            None => Customer::None,
        },
        occur_at: event.occur_time.as_ref().and_then(from_timestamp),
        amount: event.amount.map(|m| (m.amount_minor, m.currency)),
        attributes: serde_json::Value::Object(
            event.attributes.map(struct_to_json).unwrap_or_default(),
        ),
    }
}

/// The partner the auth layer authenticated from the `X-API-Key`.
fn partner_of<T>(request: &Request<T>) -> Result<Uuid, Error> {
    crate::auth::principal(request)?.partner_id.ok_or_else(|| {
        Error::unauthenticated("UNAUTHENTICATED", "a valid partner X-API-Key is required")
    })
}

/// An error as the `google.rpc.Status` of a batch result: the same code, message and details
/// (ErrorInfo with the reason) a single call would send.
fn rpc_status(err: Error) -> mgpass_proto::google::rpc::Status {
    let status = Status::from(err);
    mgpass_proto::google::rpc::Status::decode(status.details()).unwrap_or_else(|_| {
        mgpass_proto::google::rpc::Status {
            code: status.code() as i32,
            message: status.message().to_string(),
            details: Vec::new(),
        }
    })
}

pub struct EventGrpc(pub svc::EventService);

#[tonic::async_trait]
impl EventService for EventGrpc {
    async fn ingest_event(
        &self,
        request: Request<pb::IngestEventRequest>,
    ) -> Result<Response<pb::IngestEventResponse>, Status> {
        let partner = partner_of(&request)?;
        let event = required(request.into_inner().event, "event")?;
        let Outcome { event, replayed } = self.0.ingest(partner, incoming(event)).await?;
        Ok(Response::new(pb::IngestEventResponse {
            event: Some(event_to_proto(event)),
            replayed,
        }))
    }

    async fn batch_ingest_events(
        &self,
        request: Request<pb::BatchIngestEventsRequest>,
    ) -> Result<Response<pb::BatchIngestEventsResponse>, Status> {
        let partner = partner_of(&request)?;
        let events = request
            .into_inner()
            .events
            .into_iter()
            .map(incoming)
            .collect();
        let results = self
            .0
            .ingest_batch(partner, events)
            .await?
            .into_iter()
            .map(|r| match r {
                Ok(Outcome { event, replayed }) => pb::BatchIngestEventResult {
                    event: Some(event_to_proto(event)),
                    replayed,
                    error: None,
                },
                Err(err) => pb::BatchIngestEventResult {
                    event: None,
                    replayed: false,
                    error: Some(rpc_status(err)),
                },
            })
            .collect();
        Ok(Response::new(pb::BatchIngestEventsResponse { results }))
    }

    async fn reverse_event(
        &self,
        request: Request<pb::ReverseEventRequest>,
    ) -> Result<Response<pb::ReverseEventResponse>, Status> {
        let partner = partner_of(&request)?;
        let req = request.into_inner();
        let Outcome { event, replayed } = self
            .0
            .reverse(partner, &req.partner_event_id, &req.reason)
            .await?;
        Ok(Response::new(pb::ReverseEventResponse {
            event: Some(event_to_proto(event)),
            replayed,
        }))
    }

    async fn get_event(
        &self,
        request: Request<pb::GetEventRequest>,
    ) -> Result<Response<pb::GetEventResponse>, Status> {
        let event = self.0.get(&request.into_inner().event_id).await?;
        Ok(Response::new(pb::GetEventResponse {
            event: Some(event_to_proto(event)),
        }))
    }

    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let req = request.into_inner();
        let status = match req.status {
            0 => None,
            s @ 1..=4 => Some(s as i16),
            _ => {
                return Err(
                    Error::invalid("INVALID_ARGUMENT", "status", "unknown event status").into(),
                );
            }
        };
        let bad_time =
            || Error::invalid("INVALID_ARGUMENT", "occur_after", "not a valid timestamp");
        let filter = EventFilter {
            partner_id: opt_id(&req.partner_id, "partner_id")?,
            user_id: opt_id(&req.user_id, "user_id")?,
            event_type: non_empty(req.event_type),
            status,
            partner_event_id: non_empty(req.partner_event_id),
            occur_after: req
                .occur_after
                .as_ref()
                .map(|t| from_timestamp(t).ok_or_else(bad_time))
                .transpose()?,
            occur_before: req
                .occur_before
                .as_ref()
                .map(|t| from_timestamp(t).ok_or_else(bad_time))
                .transpose()?,
        };
        let (events, next_page_token) = self.0.list(filter, req.page_size, &req.page_token).await?;
        Ok(Response::new(pb::ListEventsResponse {
            events: events.into_iter().map(event_to_proto).collect(),
            next_page_token,
        }))
    }
}
