//! The bus's semantics over the in-process transport: calls and replies,
//! timeouts, remote errors, competing consumers, fanout, queueing before a
//! consumer exists, message versions, many concurrent calls.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stratus_bus::inproc::InProcess;
use stratus_bus::{Bus, BusError, Envelope, Message, RemoteError, Transport, handler};

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Add {
    a: i64,
    b: i64,
}
impl Message for Add {
    const NAME: &'static str = "test.add";
    const VERSION: u32 = 2;
}

/// The same message as a newer sender would send it.
#[derive(Serialize, Deserialize)]
struct AddV3 {
    a: i64,
    b: i64,
    c: i64,
}
impl Message for AddV3 {
    const NAME: &'static str = "test.add";
    const VERSION: u32 = 3;
}

#[derive(Serialize, Deserialize)]
struct Ping(u32);
impl Message for Ping {
    const NAME: &'static str = "test.ping";
    const VERSION: u32 = 1;
}

const T: Duration = Duration::from_secs(5);

async fn bus() -> (Arc<InProcess>, Bus) {
    let t = Arc::new(InProcess::new());
    let b = Bus::new(t.clone()).await.unwrap();
    (t, b)
}

fn adder() -> Arc<dyn stratus_bus::Handler> {
    handler(|m: Add, _env: Envelope| async move {
        if m.a < 0 {
            return Err(RemoteError::new("Negative", "a must not be negative"));
        }
        Ok(m.a + m.b)
    })
}

#[tokio::test]
async fn call_gets_the_reply_of_its_handler() {
    let (t, client) = bus().await;
    let server = Bus::new(t.clone()).await.unwrap();
    server.serve("conductor", adder()).await.unwrap();
    let sum: i64 = client.call("conductor", &Add { a: 2, b: 40 }, "req-1", T).await.unwrap();
    assert_eq!(sum, 42);
    match client.call::<_, i64>("conductor", &Add { a: -1, b: 0 }, "req-2", T).await {
        Err(BusError::Remote(e)) => assert_eq!(e.kind, "Negative"),
        other => panic!("expected a remote error, got {other:?}"),
    }
}

#[tokio::test]
async fn call_times_out_when_nobody_serves_the_topic() {
    let (_, client) = bus().await;
    let started = std::time::Instant::now();
    match client.call::<_, i64>("scheduler", &Add { a: 1, b: 1 }, "req", Duration::from_millis(200)).await {
        Err(BusError::Timeout { topic, .. }) => assert_eq!(topic, "scheduler"),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn newer_versions_are_refused_older_and_equal_accepted() {
    let (t, client) = bus().await;
    Bus::new(t.clone()).await.unwrap().serve("conductor", adder()).await.unwrap();
    match client.call::<_, i64>("conductor", &AddV3 { a: 1, b: 2, c: 3 }, "req", T).await {
        Err(BusError::Remote(e)) => assert_eq!(e.kind, "UnsupportedVersion", "{e}"),
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
    // a v1 sender's payload decodes as v2
    let mut env = Envelope::new(&Add { a: 1, b: 2 }, "req").unwrap();
    env.version = 1;
    assert_eq!(env.decode::<Add>().unwrap(), Add { a: 1, b: 2 });
    // the wrong message
    let env = Envelope::new(&Ping(1), "req").unwrap();
    assert_eq!(env.decode::<Add>().unwrap_err().kind, "UnexpectedMessage");
}

#[tokio::test]
async fn casts_go_to_one_of_the_competing_consumers_each() {
    let (t, client) = bus().await;
    let counts: Vec<Arc<AtomicUsize>> = (0..3).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    for c in &counts {
        let c = c.clone();
        let worker = Bus::new(t.clone()).await.unwrap();
        worker
            .serve(
                "compute.host1",
                handler(move |_: Ping, _| {
                    let c = c.clone();
                    async move {
                        c.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    }
                }),
            )
            .await
            .unwrap();
    }
    for i in 0..300 {
        client.cast("compute.host1", &Ping(i), "req").await.unwrap();
    }
    let total = || counts.iter().map(|c| c.load(Ordering::SeqCst)).sum::<usize>();
    for _ in 0..100 {
        if total() == 300 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(total(), 300, "every cast handled exactly once");
    assert!(counts.iter().all(|c| c.load(Ordering::SeqCst) == 100), "round robin: {counts:?}");
}

#[tokio::test]
async fn fanout_reaches_every_listener_and_casts_wait_for_a_consumer() {
    let (t, client) = bus().await;
    let seen: Vec<Arc<AtomicUsize>> = (0..3).map(|_| Arc::new(AtomicUsize::new(0))).collect();
    for s in &seen {
        let s = s.clone();
        Bus::new(t.clone())
            .await
            .unwrap()
            .listen(
                "services",
                handler(move |_: Ping, _| {
                    let s = s.clone();
                    async move {
                        s.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    }
                }),
            )
            .await
            .unwrap();
    }
    client.fanout("services", &Ping(7), "req").await.unwrap();
    // sent before anyone consumes: kept, then delivered to the first consumer
    client.cast("scheduler", &Ping(1), "req").await.unwrap();
    client.cast("scheduler", &Ping(2), "req").await.unwrap();
    let got = Arc::new(AtomicUsize::new(0));
    let g = got.clone();
    Bus::new(t.clone())
        .await
        .unwrap()
        .serve(
            "scheduler",
            handler(move |p: Ping, _| {
                let g = g.clone();
                async move {
                    g.fetch_add(p.0 as usize, Ordering::SeqCst);
                    Ok(())
                }
            }),
        )
        .await
        .unwrap();
    for _ in 0..100 {
        if got.load(Ordering::SeqCst) == 3 && seen.iter().all(|s| s.load(Ordering::SeqCst) == 1) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fanout seen {seen:?}, queued casts summed {}", got.load(Ordering::SeqCst));
}

#[tokio::test]
async fn many_concurrent_calls_each_get_their_own_reply() {
    let (t, client) = bus().await;
    for _ in 0..2 {
        Bus::new(t.clone()).await.unwrap().serve("conductor", adder()).await.unwrap();
    }
    let calls = (0..500).map(|i| {
        let client = client.clone();
        async move { (i, client.call::<_, i64>("conductor", &Add { a: i, b: 1000 }, "req", T).await.unwrap()) }
    });
    let mut set = tokio::task::JoinSet::new();
    for c in calls {
        set.spawn(c);
    }
    while let Some(r) = set.join_next().await {
        let (i, sum) = r.unwrap();
        assert_eq!(sum, i + 1000);
    }
}

#[tokio::test]
async fn a_consumer_that_went_away_is_skipped() {
    let t = Arc::new(InProcess::new());
    let gone = t.consume("compute.h").await.unwrap();
    drop(gone);
    let mut alive = t.consume("compute.h").await.unwrap();
    t.send("compute.h", Envelope::new(&Ping(5), "req").unwrap()).await.unwrap();
    let d = tokio::time::timeout(T, alive.rx.recv()).await.unwrap().unwrap();
    assert_eq!(d.envelope.decode::<Ping>().unwrap().0, 5);
}
