//! Reward partners and their API keys over REST and gRPC: validation with reasons, keys shown
//! once and stored as SHA-256, `X-API-Key` accepted on partner methods only (and nothing else
//! accepted there), revocation and suspension effective within a second on another instance.

use std::time::{Duration, Instant};

use mgpass_e2e::{TestServer, authed, grpc_reason, proto::loyalty as pb, psql, rest, rest_reason};
use serde_json::json;

use crate::loyalty_support::{create_partner, partner_key, plain_user, with_api_key};

/// Whether the auth layer let a partner call through (the event service answers whatever it
/// answers; the layer's refusals are 401 and 403).
fn admitted(status: u16) -> bool {
    status != 401 && status != 403
}

#[tokio::test(flavor = "multi_thread")]
async fn partners_are_created_listed_and_updated_with_clear_errors() {
    let server = TestServer::start().await;
    let admin = server.admin_token().await;
    let (status, created) = rest(
        &server,
        &admin,
        "POST",
        "/v1/loyalty/partners",
        Some(json!({"name": " Kampala Coffee ", "contactEmail": "ops@coffee.example", "contactPhone": "+256772123456",
                    "eventTypes": ["purchase", "trip.completed", "purchase"]})),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let created = &created["partner"];
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["name"], "Kampala Coffee");
    assert_eq!(created["status"], "PARTNER_STATUS_ACTIVE");
    assert_eq!(created["eventTypes"], json!(["purchase", "trip.completed"]));

    for (body, http, reason) in [
        (json!({"name": "kampala coffee"}), 409, "PARTNER_NAME_TAKEN"),
        (json!({"name": "X", "contactEmail": "nope"}), 400, "INVALID_EMAIL"),
        (json!({"name": "X", "contactPhone": "12"}), 400, "INVALID_MOBILE"),
        (json!({"name": "X", "eventTypes": ["Purchase"]}), 400, "INVALID_ARGUMENT"),
        (json!({"name": "  "}), 400, "INVALID_ARGUMENT"),
    ] {
        let (status, err) = rest(&server, &admin, "POST", "/v1/loyalty/partners", Some(body.clone())).await;
        assert_eq!((status, rest_reason(&err).as_str()), (http, reason), "{body}: {err}");
    }
    assert_eq!(psql(&server.database_url, "SELECT count(*) FROM loyalty_partners"), "1", "refusals wrote nothing");

    let (status, got) = rest(&server, &admin, "GET", format!("/v1/loyalty/partners/{id}"), None).await;
    assert_eq!((status, got["partner"]["contactPhone"].as_str()), (200, Some("+256772123456")));
    let (status, err) = rest(&server, &admin, "GET", "/v1/loyalty/partners/not-a-uuid", None).await;
    assert_eq!((status, rest_reason(&err).as_str()), (400, "INVALID_ID"));
    let (status, err) =
        rest(&server, &admin, "GET", format!("/v1/loyalty/partners/{}", uuid::Uuid::new_v4()), None).await;
    assert_eq!((status, rest_reason(&err).as_str()), (404, "PARTNER_NOT_FOUND"));

    create_partner(&server, &admin, "Boda Rides").await;
    create_partner(&server, &admin, "Airtel Shop").await;
    let (_, page) = rest(&server, &admin, "GET", "/v1/loyalty/partners?pageSize=2", None).await;
    let names: Vec<&str> = page["partners"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Airtel Shop", "Boda Rides"]);
    let token = page["nextPageToken"].as_str().unwrap();
    let (_, page2) =
        rest(&server, &admin, "GET", format!("/v1/loyalty/partners?pageSize=2&pageToken={token}"), None).await;
    assert_eq!(page2["partners"][0]["name"], "Kampala Coffee");
    assert!(page2["nextPageToken"].as_str().unwrap_or_default().is_empty());
    let (_, found) = rest(&server, &admin, "GET", "/v1/loyalty/partners?query=RIDE", None).await;
    assert_eq!(found["partners"].as_array().unwrap().len(), 1);

    let (status, updated) = rest(
        &server,
        &admin,
        "PATCH",
        format!("/v1/loyalty/partners/{id}?updateMask=status,description"),
        Some(json!({"status": "PARTNER_STATUS_SUSPENDED", "description": "beans", "name": "ignored"})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    let updated = &updated["partner"];
    assert_eq!(
        (updated["status"].as_str(), updated["description"].as_str(), updated["name"].as_str()),
        (Some("PARTNER_STATUS_SUSPENDED"), Some("beans"), Some("Kampala Coffee"))
    );
    let (_, suspended) =
        rest(&server, &admin, "GET", "/v1/loyalty/partners?status=PARTNER_STATUS_SUSPENDED", None).await;
    assert_eq!(suspended["partners"].as_array().unwrap().len(), 1);
    for (mask, body, reason) in [
        ("id", json!({}), "INVALID_UPDATE_MASK"),
        ("name", json!({"name": "Boda Rides"}), "PARTNER_NAME_TAKEN"),
        ("contactEmail", json!({"contactEmail": "bad"}), "INVALID_EMAIL"),
    ] {
        let (_, err) =
            rest(&server, &admin, "PATCH", format!("/v1/loyalty/partners/{id}?updateMask={mask}"), Some(body)).await;
        assert_eq!(rest_reason(&err), reason, "{mask}: {err}");
    }

    // gRPC, and a plain user who holds none of the partner permissions.
    let mut client = pb::partner_service_client::PartnerServiceClient::new(server.channel().await);
    let got = client
        .get_partner(authed(pb::GetPartnerRequest { partner_id: id.clone() }, &admin))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.partner.unwrap().description, "beans");
    let (_, user) = plain_user(&server, &admin, "plain@example.com").await;
    let denied = client.list_partners(authed(pb::ListPartnersRequest::default(), &user)).await.unwrap_err();
    assert_eq!(grpc_reason(&denied), "PERMISSION_DENIED");
    let (status, _) = rest(&server, &user, "POST", "/v1/loyalty/partners", Some(json!({"name": "Mine"}))).await;
    assert_eq!(status, 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn partner_keys_open_partner_methods_only_and_stop_within_a_second() {
    let first = TestServer::start().await;
    let second = TestServer::start_on(first.database_url.clone(), &[]).await;
    let admin = first.admin_token().await;
    let partner = create_partner(&first, &admin, "Kampala Coffee").await;
    let (key_id, key) = partner_key(&first, &admin, &partner).await;
    assert!(key.starts_with("mgpp_") && key.len() == 48, "{key}");
    let stored = psql(
        &first.database_url,
        &format!("SELECT prefix || ' ' || encode(key_hash, 'hex') FROM loyalty_partner_api_keys WHERE id = '{key_id}'"),
    );
    let expected = psql(&first.database_url, &format!("SELECT encode(sha256('{key}'::bytea), 'hex')"));
    assert_eq!(stored, format!("{} {expected}", &key[..13]));
    let (_, listed) = rest(&first, &admin, "GET", format!("/v1/loyalty/partners/{partner}/apiKeys"), None).await;
    assert_eq!(listed["apiKeys"][0]["prefix"], key[..13]);
    assert!(!listed.to_string().contains(&key[13..]), "listings never show the key");
    let audited = psql(
        &first.database_url,
        &format!(
            "SELECT count(*) FROM audit_events WHERE position('{}' in row_to_json(audit_events)::text) > 0",
            &key[13..]
        ),
    );
    assert_eq!(audited, "0", "the audit log keeps no key");

    let event = json!({"partnerEventId": "e-1", "eventType": "purchase", "userId": uuid::Uuid::new_v4().to_string()});
    // The key opens the partner endpoint on both instances, over REST and gRPC.
    for server in [&first, &second] {
        let (status, body) = with_api_key(server, &key, "POST", "/v1/loyalty/events", Some(event.clone())).await;
        assert!(admitted(status), "{status} {body}");
    }
    let mut events = pb::event_service_client::EventServiceClient::new(first.channel().await);
    let mut request = tonic::Request::new(pb::IngestEventRequest::default());
    request.metadata_mut().insert("x-api-key", key.parse().unwrap());
    if let Err(status) = events.ingest_event(request).await {
        assert!(!matches!(status.code(), tonic::Code::Unauthenticated | tonic::Code::PermissionDenied), "{status:?}");
    }

    // Nothing else opens it, and the key opens nothing else.
    let (_, user) = plain_user(&first, &admin, "plain@example.com").await;
    for bearer in [user.as_str(), admin.as_str(), key.as_str()] {
        let (status, body) = rest(&first, bearer, "POST", "/v1/loyalty/events", Some(event.clone())).await;
        assert_eq!((status, rest_reason(&body).as_str()), (401, "UNAUTHENTICATED"));
    }
    let (status, _) = with_api_key(
        &first,
        "mgpp_wrongwrongwrongwrongwrongwrongwrongwrongwrong",
        "POST",
        "/v1/loyalty/events",
        Some(event.clone()),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = with_api_key(&first, &key, "GET", "/v1/me/loyalty/balance", None).await;
    assert_eq!(status, 401, "a partner key is no user credential");
    let (status, _) = with_api_key(&first, &key, "GET", "/v1/loyalty/partners", None).await;
    assert_eq!(status, 401);

    // Its use is recorded.
    let start = Instant::now();
    while psql(
        &first.database_url,
        &format!("SELECT last_used_at IS NOT NULL FROM loyalty_partner_api_keys WHERE id = '{key_id}'"),
    ) != "t"
    {
        assert!(start.elapsed() < Duration::from_secs(5), "last use never recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Suspending the partner refuses its key with PARTNER_SUSPENDED, here at once, there within 1 s.
    let suspend = |status: &str| json!({"status": status});
    let (status, _) = rest(
        &first,
        &admin,
        "PATCH",
        format!("/v1/loyalty/partners/{partner}?updateMask=status"),
        Some(suspend("PARTNER_STATUS_SUSPENDED")),
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = with_api_key(&first, &key, "POST", "/v1/loyalty/events", Some(event.clone())).await;
    assert_eq!((status, rest_reason(&body).as_str()), (403, "PARTNER_SUSPENDED"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, body) = with_api_key(&second, &key, "POST", "/v1/loyalty/events", Some(event.clone())).await;
    assert_eq!((status, rest_reason(&body).as_str()), (403, "PARTNER_SUSPENDED"));
    rest(
        &first,
        &admin,
        "PATCH",
        format!("/v1/loyalty/partners/{partner}?updateMask=status"),
        Some(suspend("PARTNER_STATUS_ACTIVE")),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = with_api_key(&second, &key, "POST", "/v1/loyalty/events", Some(event.clone())).await;
    assert!(admitted(status));

    // Revocation: here at once, on the other instance within a second; revoking again is fine.
    let revoke = format!("/v1/loyalty/partners/{partner}/apiKeys/{key_id}:revoke");
    let (status, revoked) = rest(&first, &admin, "POST", &revoke, Some(json!({}))).await;
    assert_eq!(status, 200, "{revoked}");
    let revoke_time = revoked["apiKey"]["revokeTime"].clone();
    assert!(revoke_time.is_string());
    let (status, _) = with_api_key(&first, &key, "POST", "/v1/loyalty/events", Some(event.clone())).await;
    assert_eq!(status, 401);
    let start = Instant::now();
    loop {
        let (status, _) = with_api_key(&second, &key, "POST", "/v1/loyalty/events", Some(event.clone())).await;
        if status == 401 {
            break;
        }
        assert!(start.elapsed() < Duration::from_millis(1500), "the other instance still accepts the revoked key");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, again) = rest(&first, &admin, "POST", &revoke, Some(json!({}))).await;
    assert_eq!((status, &again["apiKey"]["revokeTime"]), (200, &revoke_time), "the first revocation time stays");

    // Key errors.
    let (status, err) = rest(
        &first,
        &admin,
        "POST",
        format!("/v1/loyalty/partners/{partner}/apiKeys/{}:revoke", uuid::Uuid::new_v4()),
        Some(json!({})),
    )
    .await;
    assert_eq!((status, rest_reason(&err).as_str()), (404, "PARTNER_API_KEY_NOT_FOUND"));
    let (status, err) = rest(
        &first,
        &admin,
        "POST",
        format!("/v1/loyalty/partners/{}/apiKeys", uuid::Uuid::new_v4()),
        Some(json!({"name": "x"})),
    )
    .await;
    assert_eq!((status, rest_reason(&err).as_str()), (404, "PARTNER_NOT_FOUND"));
    let (status, err) =
        rest(&first, &admin, "POST", format!("/v1/loyalty/partners/{partner}/apiKeys"), Some(json!({"name": ""})))
            .await;
    assert_eq!((status, rest_reason(&err).as_str()), (400, "INVALID_ARGUMENT"));
    let (status, err) = rest(
        &first,
        &admin,
        "POST",
        format!("/v1/loyalty/partners/{partner}/apiKeys"),
        Some(json!({"name": "old", "expireTime": "2020-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!((status, rest_reason(&err).as_str()), (400, "INVALID_ARGUMENT"));

    // An expired key stops working.
    let (status, soon) = rest(
        &first,
        &admin,
        "POST",
        format!("/v1/loyalty/partners/{partner}/apiKeys"),
        Some(json!({"name": "short", "expireTime": in_two_seconds(&first)})),
    )
    .await;
    assert_eq!(status, 200, "{soon}");
    let short = soon["key"].as_str().unwrap();
    let (status, _) = with_api_key(&first, short, "POST", "/v1/loyalty/events", Some(event.clone())).await;
    assert!(admitted(status));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, _) = with_api_key(&first, short, "POST", "/v1/loyalty/events", Some(event.clone())).await;
    assert_eq!(status, 401);
}

/// RFC 3339 time two seconds from now.
fn in_two_seconds(server: &TestServer) -> String {
    psql(
        &server.database_url,
        "SELECT to_char(now() AT TIME ZONE 'UTC' + interval '2 seconds', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')",
    )
}
