//! The load test of partner events: many tasks sending the same events, duplicates
//! included, award each event exactly once and leave a ledger that `mgpass ledger verify` accepts.

use serde_json::{Value, json};
use tokio::task::JoinSet;

use crate::loyalty_earning_support::{Loyalty, int, now, purchase};

const TASKS: usize = 50;
const EVENTS_PER_BATCH: usize = 1_000;
/// 30% of each batch repeats events that are already in it.
const DISTINCT: usize = 700;
const POINTS: i64 = 7;

/// 50 tasks each send the same batch of 1,000 events (700 distinct, 300 duplicates spread through
/// the batch), all at once: 700 awards in all, one per distinct event, every answer naming the
/// same event for the same id.
#[tokio::test(flavor = "multi_thread")]
async fn fifty_tasks_sending_the_same_thousand_events_with_duplicates_award_each_once() {
    let l = Loyalty::start().await;
    l.rule(json!({"name": "seven per purchase", "eventType": "purchase", "fixedPoints": POINTS.to_string()})).await;
    let mut users = Vec::new();
    for i in 0..10 {
        users.push(l.user(&format!("member{i}@example.com")).await);
    }
    let occur = now();
    let batch: Vec<Value> = (0..EVENTS_PER_BATCH)
        .map(|n| {
            // The first 700 positions are new ids; the other 300 repeat some of them.
            let i = if n < DISTINCT { n } else { (n * 7919) % DISTINCT };
            let mut e = purchase(&format!("load-{i}"), &users[i % users.len()], 100);
            e["occurTime"] = json!(occur);
            e
        })
        .collect();
    // Shuffle the duplicates in among the originals, the same way for every task.
    let mut batch = batch;
    for n in (1..batch.len()).rev() {
        batch.swap(n, (n * 104_729) % (n + 1));
    }

    let mut tasks = JoinSet::new();
    for _ in 0..TASKS {
        let (http, url, key) = (l.server.http.clone(), l.server.url("/v1/loyalty/events:batchIngest"), l.key.clone());
        let body = json!({"events": batch});
        tasks.spawn(async move {
            let resp = http.post(url).header("x-api-key", key).json(&body).send().await.unwrap();
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap();
            (status, body["results"].as_array().cloned().unwrap_or_default())
        });
    }
    let mut originals = 0;
    let mut ids = std::collections::HashMap::<String, String>::new();
    while let Some(joined) = tasks.join_next().await {
        let (status, results) = joined.unwrap();
        assert_eq!(status, 200);
        assert_eq!(results.len(), EVENTS_PER_BATCH, "one result per event, in order");
        for r in results {
            assert!(r.get("error").is_none_or(Value::is_null), "{r}");
            if r["replayed"] != json!(true) {
                originals += 1;
            }
            let e = &r["event"];
            let id = e["id"].as_str().unwrap().to_string();
            let key = e["partnerEventId"].as_str().unwrap().to_string();
            assert_eq!(ids.entry(key).or_insert_with(|| id.clone()), &id, "every copy answers the same event");
            assert_eq!(int(&e["points"]), POINTS);
        }
    }
    assert_eq!(ids.len(), DISTINCT);
    assert_eq!(originals, DISTINCT, "one original answer per distinct event, whatever the task");
    assert_eq!(l.sql("SELECT count(*) FROM loyalty_events"), DISTINCT.to_string());
    assert_eq!(l.sql("SELECT count(*) FROM loyalty_transactions WHERE kind = 'award'"), DISTINCT.to_string());
    let total: i64 = users.iter().map(|u| l.points_of(u)).sum();
    assert_eq!(total, DISTINCT as i64 * POINTS);
    l.assert_ledger_verified();
}

/// SIGKILL of the server while partners are sending events, then a restart: the partners resend
/// everything (they cannot know what landed), and every event is awarded exactly once. Events
/// acknowledged before the kill are still there (answered as replays, with the same id); the ones
/// cut off are awarded on the resend.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_server_loses_and_doubles_no_event() {
    const EVENTS: usize = 400;
    const SENDERS: usize = 16;
    let mut l = Loyalty::start().await;
    l.rule(json!({"name": "seven per purchase", "eventType": "purchase", "fixedPoints": POINTS.to_string()})).await;
    let mut users = Vec::new();
    for i in 0..5 {
        users.push(l.user(&format!("rider{i}@example.com")).await);
    }
    let occur = now();
    let events: Vec<Value> = (0..EVENTS)
        .map(|i| {
            let mut e = purchase(&format!("crash-{i}"), &users[i % users.len()], 100);
            e["occurTime"] = json!(occur);
            e
        })
        .collect();

    // Senders, each with its share of the events, one call at a time, until the server dies.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::<String, String>::new()));
    let mut senders = JoinSet::new();
    for s in 0..SENDERS {
        let (http, url, key, acked) =
            (l.server.http.clone(), l.server.url("/v1/loyalty/events"), l.key.clone(), acked.clone());
        let mine: Vec<Value> = events.iter().skip(s).step_by(SENDERS).cloned().collect();
        senders.spawn(async move {
            for event in mine {
                let Ok(resp) = http.post(&url).header("x-api-key", &key).json(&event).send().await else { return };
                if resp.status() != 200 {
                    return;
                }
                let Ok(body) = resp.json::<Value>().await else { return };
                let id = body["event"]["id"].as_str().unwrap().to_string();
                acked.lock().unwrap().insert(event["partnerEventId"].as_str().unwrap().to_string(), id);
            }
        });
    }
    // Kill it mid-load: some events acknowledged, others not yet sent or in flight.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while acked.lock().unwrap().len() < EVENTS / 4 {
        assert!(std::time::Instant::now() < deadline, "the load did not start");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    l.server.kill();
    while senders.join_next().await.is_some() {}
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() < EVENTS, "the kill came before the end of the load ({} acknowledged)", acked.len());

    // Restart on the same database; the partners resend every event.
    let server = mgpass_e2e::TestServer::start_on(l.server.database_url.clone(), &[]).await;
    let mut originals = 0;
    for chunk in events.chunks(100) {
        let resp = server
            .http
            .post(server.url("/v1/loyalty/events:batchIngest"))
            .header("x-api-key", &l.key)
            .json(&json!({"events": chunk}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        for r in body["results"].as_array().unwrap() {
            assert!(r.get("error").is_none_or(Value::is_null), "{r}");
            let e = &r["event"];
            let key = e["partnerEventId"].as_str().unwrap();
            if let Some(id) = acked.get(key) {
                assert_eq!(r["replayed"], json!(true), "an acknowledged event survived the kill: {r}");
                assert_eq!(e["id"].as_str().unwrap(), id);
            }
            if r["replayed"] != json!(true) {
                originals += 1;
            }
        }
    }
    assert!(originals <= EVENTS - acked.len(), "only events never acknowledged are new after the restart");
    let sql = |q: &str| mgpass_e2e::psql(&server.database_url, q);
    assert_eq!(sql("SELECT count(*) FROM loyalty_events"), EVENTS.to_string());
    assert_eq!(sql("SELECT count(*) FROM loyalty_transactions WHERE kind = 'award'"), EVENTS.to_string());
    let total: i64 = users.iter().map(|u| l.points_of(u)).sum();
    assert_eq!(total, EVENTS as i64 * POINTS);
    l.assert_ledger_verified();
}
