//! Partner events: ingestion with the partner's real `X-API-Key` over REST and gRPC,
//! idempotency (in sequence, concurrently, within and across batches), conflicts, bad input,
//! pending events applied when their user appears, reversals and who may read events.

use mgpass_e2e::{authed, grpc_reason, proto::loyalty as pb, rest, rest_reason};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::loyalty_earning_support::{
    Loyalty, create_partner, eventually, flag, int, now, partner_call, purchase,
};

fn with_key<T>(message: T, key: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(message);
    req.metadata_mut().insert("x-api-key", key.parse().unwrap());
    req
}

async fn fixed_rule(l: &Loyalty, points: i64) -> String {
    l.rule(json!({"name": "ten per purchase", "eventType": "purchase", "fixedPoints": points.to_string()})).await
}

fn transactions_of_event(l: &Loyalty, event_id: &str) -> i64 {
    l.sql(&format!(
        "SELECT count(*) FROM loyalty_transactions WHERE event_id = '{event_id}' AND kind = 'award'"
    ))
    .parse()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_awards_once_and_replays_answer_the_original_over_rest_and_grpc() {
    let l = Loyalty::start().await;
    let rule = fixed_rule(&l, 10).await;
    let user = l.user("ama@example.com").await;

    let (status, first) = l.ingest(purchase("order-1", &user, 1500)).await;
    assert_eq!(status, 200, "{first}");
    assert!(!flag(&first["replayed"]));
    let event = &first["event"];
    assert_eq!(event["status"], "EVENT_STATUS_PROCESSED");
    assert_eq!(int(&event["points"]), 10);
    assert_eq!(event["resolvedUserId"], user.as_str());
    assert_eq!(event["awards"][0]["ruleId"], rule.as_str());
    assert_eq!(event["awards"][0]["ruleVersion"], 1);
    assert!(!event["transactionId"].as_str().unwrap().is_empty());

    // The same event again, over REST then gRPC: the original result, nothing more awarded.
    let (status, again) = l.ingest(purchase("order-1", &user, 1500)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["replayed"], json!(true));
    assert_eq!(again["event"]["id"], event["id"]);
    assert_eq!(again["event"]["transactionId"], event["transactionId"]);

    let mut client = pb::event_service_client::EventServiceClient::new(l.server.channel().await);
    let grpc_event = pb::Event {
        partner_event_id: "order-1".into(),
        event_type: "purchase".into(),
        user: Some(pb::event::User::UserId(user.clone())),
        occur_time: None,
        amount: Some(pb::Money {
            amount_minor: 1500,
            currency: "GHS".into(),
        }),
        ..Default::default()
    };
    // Without an occur time the event is invalid, whatever the key: nothing is written.
    let err = client
        .ingest_event(with_key(
            pb::IngestEventRequest {
                event: Some(grpc_event.clone()),
            },
            &l.key,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);

    // A new event over gRPC, then its replay.
    let fresh = pb::Event {
        partner_event_id: "order-2".into(),
        occur_time: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        ..grpc_event
    };
    let one = client
        .ingest_event(with_key(
            pb::IngestEventRequest {
                event: Some(fresh.clone()),
            },
            &l.key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!one.replayed);
    assert_eq!(one.event.as_ref().unwrap().points, 10);
    let two = client
        .ingest_event(with_key(
            pb::IngestEventRequest { event: Some(fresh) },
            &l.key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(two.replayed);
    assert_eq!(two.event.unwrap().id, one.event.unwrap().id);

    assert_eq!(l.points_of(&user), 20, "two events, ten points each");
    assert_eq!(transactions_of_event(&l, event["id"].as_str().unwrap()), 1);
    // Ingestion is recorded by the events themselves, not one audit entry per event.
    assert_eq!(
        l.sql("SELECT count(*) FROM audit_events WHERE action LIKE '%EventService/Ingest%'"),
        "0"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn identical_events_sent_concurrently_award_exactly_once() {
    let l = Loyalty::start().await;
    fixed_rule(&l, 7).await;
    let user = l.user("kofi@example.com").await;
    let occur = now();
    let event = |i: usize| {
        let mut e = purchase(&format!("burst-{i}"), &user, 100);
        e["occurTime"] = json!(occur);
        e
    };
    // 5 distinct events, each sent 8 times alone and twice inside concurrent batches.
    let mut set = JoinSet::new();
    for copy in 0..8 {
        for i in 0..5 {
            let (server_url, key, body) =
                (l.server.url("/v1/loyalty/events"), l.key.clone(), event(i));
            let http = l.server.http.clone();
            set.spawn(async move {
                let resp = http
                    .post(server_url)
                    .header("x-api-key", key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                let body: Value = resp.json().await.unwrap();
                (copy, status, vec![body])
            });
        }
    }
    for copy in 0..2 {
        let (url, key) = (
            l.server.url("/v1/loyalty/events:batchIngest"),
            l.key.clone(),
        );
        let events: Vec<Value> = (0..5).chain(0..5).map(event).collect();
        let http = l.server.http.clone();
        set.spawn(async move {
            let resp = http
                .post(url)
                .header("x-api-key", key)
                .json(&json!({"events": events}))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap();
            let results = body["results"].as_array().cloned().unwrap_or_default();
            (copy, status, results)
        });
    }
    let mut originals = 0;
    let mut ids = std::collections::HashMap::<String, String>::new();
    while let Some(joined) = set.join_next().await {
        let (_, status, results) = joined.unwrap();
        assert_eq!(status, 200, "{results:?}");
        for r in results {
            assert!(r.get("error").is_none_or(Value::is_null), "{r}");
            if r["replayed"] != json!(true) {
                originals += 1;
            }
            let e = &r["event"];
            let key = e["partnerEventId"].as_str().unwrap().to_string();
            let id = e["id"].as_str().unwrap().to_string();
            assert_eq!(
                ids.entry(key).or_insert_with(|| id.clone()),
                &id,
                "every copy answers the same event"
            );
            assert_eq!(int(&e["points"]), 7);
        }
    }
    assert_eq!(originals, 5, "one original answer per distinct event");
    assert_eq!(l.points_of(&user), 35);
    assert_eq!(l.sql("SELECT count(*) FROM loyalty_events"), "5");
    assert_eq!(
        l.sql("SELECT count(*) FROM loyalty_transactions WHERE kind = 'award'"),
        "5"
    );
    l.assert_ledger_verified();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_id_with_another_body_is_refused_and_never_awarded() {
    let l = Loyalty::start().await;
    fixed_rule(&l, 10).await;
    let user = l.user("efua@example.com").await;
    let original = purchase("order-9", &user, 1000);
    assert_eq!(l.ingest(original.clone()).await.0, 200);

    let mut changed = original.clone();
    changed["amount"]["amountMinor"] = json!("1001");
    let (status, body) = l.ingest(changed.clone()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(rest_reason(&body), "IDEMPOTENCY_KEY_REUSED");

    let mut other_attrs = original.clone();
    other_attrs["attributes"] = json!({"store": "kumasi-2"});
    let (status, body) = l.ingest(other_attrs).await;
    assert_eq!(
        (status, rest_reason(&body).as_str()),
        (409, "IDEMPOTENCY_KEY_REUSED")
    );

    // Over gRPC too, and inside a batch the conflicting event fails alone.
    let mut client = pb::event_service_client::EventServiceClient::new(l.server.channel().await);
    let grpc = pb::Event {
        partner_event_id: "order-9".into(),
        event_type: "purchase".into(),
        user: Some(pb::event::User::UserId(user.clone())),
        occur_time: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
        ..Default::default()
    };
    let err = client
        .ingest_event(with_key(
            pb::IngestEventRequest { event: Some(grpc) },
            &l.key,
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::AlreadyExists);
    assert_eq!(grpc_reason(&err), "IDEMPOTENCY_KEY_REUSED");

    let (status, body) = l
        .partner(
            "POST",
            "/v1/loyalty/events:batchIngest",
            json!({"events": [changed, original]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let results = body["results"].as_array().unwrap();
    assert_eq!(
        results[0]["error"]["details"][0]["reason"], "IDEMPOTENCY_KEY_REUSED",
        "{body}"
    );
    assert_eq!(results[0]["error"]["code"], 6);
    assert_eq!(results[1]["replayed"], json!(true));

    assert_eq!(l.points_of(&user), 10);
    assert_eq!(l.sql("SELECT count(*) FROM loyalty_transactions"), "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn batches_answer_in_order_with_errors_alone_and_repeats_as_replays() {
    let l = Loyalty::start().await;
    fixed_rule(&l, 5).await;
    let user = l.user("yaw@example.com").await;
    let mut negative = purchase("b-neg", &user, 100);
    negative["amount"]["amountMinor"] = json!("-1");
    let mut unknown_type = purchase("b-type", &user, 100);
    unknown_type["eventType"] = json!("refund.issued");
    let events = json!({"events": [purchase("b-1", &user, 100), purchase("b-1", &user, 100), negative, unknown_type, purchase("b-2", &user, 100)]});
    let (status, body) = l
        .partner("POST", "/v1/loyalty/events:batchIngest", events)
        .await;
    assert_eq!(status, 200, "{body}");
    let r = body["results"].as_array().unwrap();
    assert_eq!(r.len(), 5);
    assert_eq!(
        (
            r[0]["replayed"].as_bool().unwrap_or(false),
            r[0]["event"]["partnerEventId"].as_str()
        ),
        (false, Some("b-1"))
    );
    assert!(flag(&r[1]["replayed"]));
    assert_eq!(r[1]["event"]["id"], r[0]["event"]["id"]);
    assert_eq!(
        r[2]["error"]["details"][0]["reason"], "INVALID_AMOUNT",
        "{body}"
    );
    assert_eq!(r[3]["error"]["details"][0]["reason"], "UNKNOWN_EVENT_TYPE");
    assert_eq!(r[4]["event"]["partnerEventId"], "b-2");

    // Across batches: the second batch replays.
    let (_, body) = l
        .partner(
            "POST",
            "/v1/loyalty/events:batchIngest",
            json!({"events": [purchase("b-2", &user, 100)]}),
        )
        .await;
    assert_eq!(body["results"][0]["replayed"], json!(true));

    // Too large: refused whole, nothing written.
    let big: Vec<Value> = (0..1001)
        .map(|i| purchase(&format!("big-{i}"), &user, 1))
        .collect();
    let (status, body) = l
        .partner(
            "POST",
            "/v1/loyalty/events:batchIngest",
            json!({"events": big}),
        )
        .await;
    assert_eq!(
        (status, rest_reason(&body).as_str()),
        (400, "BATCH_TOO_LARGE")
    );
    assert_eq!(l.sql("SELECT count(*) FROM loyalty_events"), "2");
    assert_eq!(l.points_of(&user), 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_events_and_bad_keys_are_refused_and_write_nothing() {
    let l = Loyalty::start().await;
    fixed_rule(&l, 5).await;
    let user = l.user("abena@example.com").await;
    let base = purchase("bad-1", &user, 100);
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"eventType": "purchase", "userId": user, "occurTime": now()}),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            {
                let mut e = base.clone();
                e.as_object_mut().unwrap().remove("occurTime");
                e
            },
            400,
            "INVALID_ARGUMENT",
        ),
        (
            {
                let mut e = base.clone();
                e["occurTime"] = json!("2099-01-01T00:00:00Z");
                e
            },
            400,
            "INVALID_ARGUMENT",
        ),
        (
            {
                let mut e = base.clone();
                e["amount"]["currency"] = json!("cedi");
                e
            },
            400,
            "INVALID_CURRENCY",
        ),
        (
            {
                let mut e = base.clone();
                e["amount"]["amountMinor"] = json!("-5");
                e
            },
            400,
            "INVALID_AMOUNT",
        ),
        (
            {
                let mut e = base.clone();
                e["eventType"] = json!("unknown");
                e
            },
            400,
            "UNKNOWN_EVENT_TYPE",
        ),
        (
            {
                let mut e = base.clone();
                e.as_object_mut().unwrap().remove("userId");
                e["email"] = json!("not an email");
                e
            },
            400,
            "INVALID_EMAIL",
        ),
        (
            {
                let mut e = base.clone();
                e.as_object_mut().unwrap().remove("userId");
                e["mobile"] = json!("12");
                e
            },
            400,
            "INVALID_MOBILE",
        ),
        (
            {
                let mut e = base.clone();
                e["userId"] = json!(uuid::Uuid::new_v4().to_string());
                e
            },
            404,
            "USER_NOT_FOUND",
        ),
        (
            {
                let mut e = base.clone();
                e["attributes"] = json!({"blob": "x".repeat(17 * 1024)});
                e
            },
            400,
            "INVALID_ARGUMENT",
        ),
        (
            {
                let mut e = base.clone();
                e.as_object_mut().unwrap().remove("userId");
                e
            },
            400,
            "INVALID_ARGUMENT",
        ),
    ];
    for (event, status, reason) in cases {
        let (got, body) = l.ingest(event.clone()).await;
        assert_eq!(
            (got, rest_reason(&body).as_str()),
            (status, reason),
            "{event}: {body}"
        );
    }
    // No key, a wrong key, a user's token: unauthenticated.
    let (status, body) = rest(
        &l.server,
        "",
        "POST",
        "/v1/loyalty/events",
        Some(base.clone()),
    )
    .await;
    assert_eq!(
        (status, rest_reason(&body).as_str()),
        (401, "UNAUTHENTICATED")
    );
    let (status, _) = partner_call(
        &l.server,
        "mgpp_wrong",
        "POST",
        "/v1/loyalty/events",
        base.clone(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = rest(
        &l.server,
        &l.admin,
        "POST",
        "/v1/loyalty/events",
        Some(base.clone()),
    )
    .await;
    assert_eq!(status, 401, "an admin token is no partner key");
    assert_eq!(l.sql("SELECT count(*) FROM loyalty_events"), "0");
    assert_eq!(l.sql("SELECT count(*) FROM loyalty_transactions"), "0");
}

#[tokio::test(flavor = "multi_thread")]
async fn pending_events_wait_for_their_user_and_expire() {
    let l = Loyalty::start().await;
    fixed_rule(&l, 25).await;
    let event = json!({"partnerEventId": "walk-in-1", "eventType": "purchase", "email": "Newcomer@Example.com", "occurTime": now()});
    let (status, body) = l.ingest(event.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["event"]["status"], "EVENT_STATUS_PENDING_USER");
    assert!(body["event"]["pendingExpireTime"].is_string());
    assert_eq!(int(&body["event"]["points"]), 0);
    let event_id = body["event"]["id"].as_str().unwrap().to_string();
    let mobile_event = json!({"partnerEventId": "walk-in-2", "eventType": "purchase", "mobile": "+233 20 123 4567", "occurTime": now()});
    assert_eq!(
        l.ingest(mobile_event).await.1["event"]["status"],
        "EVENT_STATUS_PENDING_USER"
    );

    // Someone registers with that email: nothing yet, the email is not verified.
    let (status, body) = rest(&l.server, "", "POST", "/v1/auth/register",
        Some(json!({"user": {"email": "newcomer@example.com", "givenName": "New"}, "password": crate::loyalty_earning_support::PW}))).await;
    assert_eq!(status, 200, "{body}");
    let user = body["user"]["id"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(l.points_of(&user), 0, "an unverified email earns nothing");
    // The verification (its own flow is tested in verification.rs) marks the email verified.
    l.sql(&format!(
        "UPDATE users SET email_verified = true WHERE id = '{user}'"
    ));
    assert!(
        eventually(|| l.points_of(&user) == 25).await,
        "the pending event was applied"
    );
    let (_, got) = l
        .admin("GET", &format!("/v1/loyalty/events/{event_id}"), None)
        .await;
    assert_eq!(got["event"]["status"], "EVENT_STATUS_PROCESSED");
    assert_eq!(got["event"]["resolvedUserId"], user.as_str());
    // A replay still answers the first result, now applied.
    let (_, again) = l.ingest(event).await;
    assert_eq!(
        (again["replayed"].clone(), again["event"]["status"].clone()),
        (json!(true), json!("EVENT_STATUS_PROCESSED"))
    );

    // The mobile event expires unawarded once past its expiry; reversing it then is refused.
    l.sql("UPDATE loyalty_events SET pending_expires_at = now() - interval '1 second' WHERE partner_event_id = 'walk-in-2'");
    assert!(
        eventually(|| l
            .sql("SELECT status FROM loyalty_events WHERE partner_event_id = 'walk-in-2'")
            == "4")
        .await
    );
    let (status, body) = l
        .partner(
            "POST",
            "/v1/loyalty/events:reverse",
            json!({"partnerEventId": "walk-in-2"}),
        )
        .await;
    assert_eq!(
        (status, rest_reason(&body).as_str()),
        (400, "EVENT_EXPIRED")
    );
    assert_eq!(l.sql("SELECT count(*) FROM loyalty_transactions"), "1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reversal_takes_back_exactly_what_the_event_awarded() {
    let l = Loyalty::start().await;
    fixed_rule(&l, 10).await;
    l.rule(json!({"name": "rate", "eventType": "purchase", "rate": {"points": "1", "perAmountMinor": "100", "currency": "GHS"}})).await;
    let user = l.user("kwame@example.com").await;
    let (_, body) = l.ingest(purchase("r-1", &user, 1234)).await;
    assert_eq!(
        int(&body["event"]["points"]),
        22,
        "10 fixed + 12 by rate: {body}"
    );
    l.ingest(purchase("r-2", &user, 100)).await;
    assert_eq!(l.points_of(&user), 33);

    let (status, body) = l
        .partner(
            "POST",
            "/v1/loyalty/events:reverse",
            json!({"partnerEventId": "r-1", "reason": "refund"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["event"]["status"], "EVENT_STATUS_REVERSED");
    assert!(!flag(&body["replayed"]));
    let reversal = body["event"]["reversalTransactionId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(l.points_of(&user), 11);
    assert_eq!(
        l.sql(&format!(
            "SELECT points FROM loyalty_transactions WHERE id = '{reversal}'"
        )),
        "-22"
    );

    let (_, again) = l
        .partner(
            "POST",
            "/v1/loyalty/events:reverse",
            json!({"partnerEventId": "r-1"}),
        )
        .await;
    assert_eq!(again["replayed"], json!(true));
    assert_eq!(l.points_of(&user), 11, "reversed once");
    let (status, body) = l
        .partner(
            "POST",
            "/v1/loyalty/events:reverse",
            json!({"partnerEventId": "nope"}),
        )
        .await;
    assert_eq!(
        (status, rest_reason(&body).as_str()),
        (404, "EVENT_NOT_FOUND")
    );

    // Another partner cannot reverse, nor even see, this partner's events.
    let (_, other_key) = create_partner(&l.server, &l.admin, "Other").await;
    let (status, body) = partner_call(
        &l.server,
        &other_key,
        "POST",
        "/v1/loyalty/events:reverse",
        json!({"partnerEventId": "r-2"}),
    )
    .await;
    assert_eq!(
        (status, rest_reason(&body).as_str()),
        (404, "EVENT_NOT_FOUND")
    );
    assert_eq!(l.points_of(&user), 11);

    // Points already spent cannot be taken back: INSUFFICIENT_POINTS, and nothing changes.
    crate::loyalty_support::adjust(&l.server, &l.admin, &user, -5).await;
    let (status, body) = l
        .partner(
            "POST",
            "/v1/loyalty/events:reverse",
            json!({"partnerEventId": "r-2"}),
        )
        .await;
    assert_eq!(
        (status, rest_reason(&body).as_str()),
        (400, "INSUFFICIENT_POINTS"),
        "{body}"
    );
    assert_eq!(l.points_of(&user), 6);
    assert_eq!(
        l.sql("SELECT status FROM loyalty_events WHERE partner_event_id = 'r-2'"),
        "1"
    );
    l.assert_ledger_verified();
}

#[tokio::test(flavor = "multi_thread")]
async fn events_are_read_by_administrators_only() {
    let l = Loyalty::start().await;
    fixed_rule(&l, 1).await;
    let user = l.user("akua@example.com").await;
    for i in 0..3 {
        l.ingest(purchase(&format!("list-{i}"), &user, 100)).await;
    }
    let (status, body) = l
        .admin(
            "GET",
            &format!("/v1/loyalty/events?userId={user}&pageSize=2"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events"].as_array().unwrap().len(), 2);
    assert_eq!(
        body["events"][0]["partnerEventId"], "list-2",
        "newest first"
    );
    let token = body["nextPageToken"].as_str().unwrap();
    let (_, next) = l
        .admin(
            "GET",
            &format!("/v1/loyalty/events?userId={user}&pageSize=2&pageToken={token}"),
            None,
        )
        .await;
    assert_eq!(next["events"].as_array().unwrap().len(), 1);
    let (_, by_key) = l
        .admin(
            "GET",
            &format!(
                "/v1/loyalty/events?partnerId={}&partnerEventId=list-1",
                l.partner_id
            ),
            None,
        )
        .await;
    assert_eq!(by_key["events"].as_array().unwrap().len(), 1);

    let member = l
        .server
        .login("akua@example.com", crate::loyalty_earning_support::PW)
        .await;
    let (status, body) = rest(&l.server, &member, "GET", "/v1/loyalty/events", None).await;
    assert_eq!(
        (status, rest_reason(&body).as_str()),
        (403, "PERMISSION_DENIED")
    );
    let (status, _) =
        partner_call(&l.server, &l.key, "GET", "/v1/loyalty/events", Value::Null).await;
    assert_eq!(status, 401, "a partner key reads nothing");
    let (status, body) = l.admin("GET", "/v1/loyalty/events/not-a-uuid", None).await;
    assert_eq!((status, rest_reason(&body).as_str()), (400, "INVALID_ID"));
    let mut client = pb::event_service_client::EventServiceClient::new(l.server.channel().await);
    let err = client
        .get_event(authed(
            pb::GetEventRequest {
                event_id: uuid::Uuid::new_v4().to_string(),
            },
            &l.admin,
        ))
        .await
        .unwrap_err();
    assert_eq!(grpc_reason(&err), "EVENT_NOT_FOUND");
}
