//! The bus over RabbitMQ (127.0.0.1:5672, guest/guest; `STRATUS_TEST_AMQP`
//! overrides the URI, `off` leaves these tests out on purpose). A broker that
//! is down is reported loudly on stderr, never skipped in silence.
//!
//! Each test uses topics of its own (`test.<uuid>.*`) and each transport is
//! its own connection, as separate services would have. At the end (also when
//! the test fails) the transports are closed and the test's queues and
//! exchanges deleted.
//!
//! Connection loss is tested three ways: the client closing its connection
//! (`Amqp::sever`), the broker closing it (`rabbitmqctl close_connection`, when
//! rabbitmqctl can be run here), and the network failing (a TCP proxy in the
//! test that cuts every connection and refuses new ones for a while). A broker
//! restart is not tested: the broker is shared with every other test running
//! at the same time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lapin::options::{BasicPublishOptions, ExchangeDeleteOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde::{Deserialize, Serialize};
use stratus_bus::amqp::{Amqp, AmqpOptions};
use stratus_bus::{Bus, BusError, Envelope, Message, RemoteError, Transport, handler};
use tokio::sync::watch;

const DEFAULT_URI: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const T: Duration = Duration::from_secs(10);

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Add {
    a: i64,
    b: i64,
}
impl Message for Add {
    const NAME: &'static str = "test.add";
    const VERSION: u32 = 2;
}

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

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Ping(u32);
impl Message for Ping {
    const NAME: &'static str = "test.ping";
    const VERSION: u32 = 1;
}

fn adder() -> Arc<dyn stratus_bus::Handler> {
    handler(|m: Add, _env: Envelope| async move {
        if m.a < 0 {
            return Err(RemoteError::new("Negative", "a must not be negative"));
        }
        Ok(m.a + m.b)
    })
}

/// A handler that records the pings it got.
fn recorder(seen: Arc<Mutex<Vec<u32>>>) -> Arc<dyn stratus_bus::Handler> {
    handler(move |p: Ping, _| {
        let seen = seen.clone();
        async move {
            seen.lock().unwrap().push(p.0);
            Ok(())
        }
    })
}

fn ping(i: u32) -> Envelope {
    Envelope::new(&Ping(i), "req-test").unwrap()
}

fn uri() -> String {
    std::env::var("STRATUS_TEST_AMQP").unwrap_or_else(|_| DEFAULT_URI.to_string())
}

/// `host:port` of an `amqp://` URI.
fn broker_addr(uri: &str) -> String {
    let rest = uri.split_once("://").map(|(_, r)| r).unwrap_or(uri);
    let authority = rest.split('/').next().unwrap_or(rest);
    let host = authority.rsplit_once('@').map(|(_, h)| h).unwrap_or(authority);
    if host.contains(':') { host.to_string() } else { format!("{host}:5672") }
}

/// Waits until `cond` holds, for at most `within`.
async fn eventually(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cond()
}

/// One test's use of the broker: its transports and its topics, cleaned up on drop.
struct Rig {
    uri: String,
    tag: String,
    topics: Mutex<Vec<String>>,
    transports: Vec<Arc<Amqp>>,
}

impl Rig {
    /// None (after a loud line on stderr) when the broker is down.
    async fn new(test: &str) -> Option<Rig> {
        let uri = uri();
        if uri == "off" {
            eprintln!("!!! SKIPPING {test}: STRATUS_TEST_AMQP=off");
            return None;
        }
        match Amqp::connect(&uri).await {
            Ok(probe) => probe.close().await,
            Err(e) => {
                eprintln!("!!! SKIPPING {test}: RabbitMQ on {} is down: {e}", broker_addr(&uri));
                return None;
            }
        }
        let tag = uuid::Uuid::new_v4().simple().to_string();
        Some(Rig { uri, tag, topics: Mutex::new(Vec::new()), transports: Vec::new() })
    }

    /// A topic of this test's own (its queue and exchange are deleted at the end).
    fn topic(&self, name: &str) -> String {
        let t = format!("test.{}.{name}", self.tag);
        self.topics.lock().unwrap().push(t.clone());
        t
    }

    async fn transport(&mut self) -> Arc<Amqp> {
        self.transport_at(&self.uri.clone(), AmqpOptions::default()).await
    }

    async fn transport_at(&mut self, uri: &str, options: AmqpOptions) -> Arc<Amqp> {
        let t = Arc::new(Amqp::connect_with(uri, options).await.unwrap());
        self.transports.push(t.clone());
        t
    }

    async fn bus(&mut self) -> (Arc<Amqp>, Bus) {
        let t = self.transport().await;
        let b = Bus::new(t.clone()).await.unwrap();
        (t, b)
    }

    /// Messages ready in a topic's queue.
    async fn depth(&self, topic: &str) -> u32 {
        let conn = Connection::connect(&self.uri, ConnectionProperties::default()).await.unwrap();
        let ch = conn.create_channel().await.unwrap();
        let q = ch
            .queue_declare(
                format!("stratus.{topic}").as_str().into(),
                QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let _ = conn.close(200, "OK".into()).await;
        q.message_count()
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        let transports = std::mem::take(&mut self.transports);
        let topics = std::mem::take(&mut *self.topics.lock().unwrap_or_else(|p| p.into_inner()));
        let uri = self.uri.clone();
        // on a runtime of its own: this runs in a destructor, maybe while a failed test unwinds
        let cleanup = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            rt.block_on(async move {
                // first the consumers, so that none declares a queue again once it is deleted
                for t in &transports {
                    let _ = tokio::time::timeout(Duration::from_secs(5), t.close()).await;
                }
                drop(transports);
                let Ok(conn) = Connection::connect(&uri, ConnectionProperties::default()).await else { return };
                for topic in topics {
                    if let Ok(ch) = conn.create_channel().await {
                        let q = format!("stratus.{topic}");
                        let _ = ch.queue_delete(q.as_str().into(), QueueDeleteOptions::default()).await;
                        let x = format!("stratus.fanout.{topic}");
                        let _ = ch.exchange_delete(x.as_str().into(), ExchangeDeleteOptions::default()).await;
                        let _ = ch.close(200, "OK".into()).await;
                    }
                }
                let _ = conn.close(200, "OK".into()).await;
            });
        });
        let _ = cleanup.join();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_gets_the_reply_of_its_handler_and_its_errors() {
    let Some(mut rig) = Rig::new("call_gets_the_reply_of_its_handler_and_its_errors").await else { return };
    let conductor = rig.topic("conductor");
    let (_, server) = rig.bus().await;
    server.serve(&conductor, adder()).await.unwrap();
    let (_, client) = rig.bus().await;
    let sum: i64 = client.call(&conductor, &Add { a: 2, b: 40 }, "req-1", T).await.unwrap();
    assert_eq!(sum, 42);
    match client.call::<_, i64>(&conductor, &Add { a: -1, b: 0 }, "req-2", T).await {
        Err(BusError::Remote(e)) => assert_eq!(e.kind, "Negative"),
        other => panic!("expected a remote error, got {other:?}"),
    }
    match client.call::<_, i64>(&conductor, &AddV3 { a: 1, b: 2, c: 3 }, "req-3", T).await {
        Err(BusError::Remote(e)) => assert_eq!(e.kind, "UnsupportedVersion", "{e}"),
        other => panic!("expected UnsupportedVersion, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_times_out_when_nobody_serves_the_topic() {
    let Some(mut rig) = Rig::new("call_times_out_when_nobody_serves_the_topic").await else { return };
    let scheduler = rig.topic("scheduler");
    let (_, client) = rig.bus().await;
    let started = Instant::now();
    match client.call::<_, i64>(&scheduler, &Add { a: 1, b: 1 }, "req", Duration::from_millis(300)).await {
        Err(BusError::Timeout { topic, .. }) => assert_eq!(topic, scheduler),
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    // the request waits in the durable queue for a consumer
    assert_eq!(rig.depth(&scheduler).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_calls_each_get_their_own_reply() {
    let Some(mut rig) = Rig::new("many_concurrent_calls_each_get_their_own_reply").await else { return };
    let conductor = rig.topic("conductor");
    for _ in 0..2 {
        rig.bus().await.1.serve(&conductor, adder()).await.unwrap();
    }
    let (_, client) = rig.bus().await;
    let mut set = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (client, topic) = (client.clone(), conductor.clone());
        set.spawn(async move { (i, client.call::<_, i64>(&topic, &Add { a: i, b: 1000 }, "req", T).await.unwrap()) });
    }
    while let Some(r) = set.join_next().await {
        let (i, sum) = r.unwrap();
        assert_eq!(sum, i + 1000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn casts_go_to_exactly_one_of_the_competing_consumers() {
    let Some(mut rig) = Rig::new("casts_go_to_exactly_one_of_the_competing_consumers").await else { return };
    let compute = rig.topic("compute.host1");
    let seen: Vec<Arc<Mutex<Vec<u32>>>> = (0..3).map(|_| Arc::default()).collect();
    for s in &seen {
        rig.bus().await.1.serve(&compute, recorder(s.clone())).await.unwrap();
    }
    let (_, client) = rig.bus().await;
    for i in 0..300 {
        client.cast(&compute, &Ping(i), "req").await.unwrap();
    }
    let total = || seen.iter().map(|s| s.lock().unwrap().len()).sum::<usize>();
    assert!(eventually(Duration::from_secs(20), || total() >= 300).await, "handled {} of 300", total());
    // nothing more comes (no duplicate)
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(total(), 300);
    let all: HashSet<u32> = seen.iter().flat_map(|s| s.lock().unwrap().clone()).collect();
    assert_eq!(all.len(), 300, "each cast handled exactly once");
    let counts: Vec<usize> = seen.iter().map(|s| s.lock().unwrap().len()).collect();
    assert!(counts.iter().all(|c| *c > 0), "every consumer took a share: {counts:?}");
    assert_eq!(rig.depth(&compute).await, 0, "all acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_reaches_every_current_listener_once() {
    let Some(mut rig) = Rig::new("fanout_reaches_every_current_listener_once").await else { return };
    let services = rig.topic("services");
    let seen: Vec<Arc<Mutex<Vec<u32>>>> = (0..3).map(|_| Arc::default()).collect();
    for s in &seen {
        rig.bus().await.1.listen(&services, recorder(s.clone())).await.unwrap();
    }
    let (_, client) = rig.bus().await;
    client.fanout(&services, &Ping(7), "req").await.unwrap();
    let all_got = |n: usize| seen.iter().all(|s| s.lock().unwrap().len() >= n);
    assert!(eventually(T, || all_got(1)).await, "fanout seen {seen:?}");
    // a listener that comes later gets what is published from then on only
    let late: Arc<Mutex<Vec<u32>>> = Arc::default();
    rig.bus().await.1.listen(&services, recorder(late.clone())).await.unwrap();
    client.fanout(&services, &Ping(8), "req").await.unwrap();
    assert!(eventually(T, || all_got(2) && !late.lock().unwrap().is_empty()).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    for s in &seen {
        assert_eq!(*s.lock().unwrap(), vec![7, 8]);
    }
    assert_eq!(*late.lock().unwrap(), vec![8]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cast_sent_before_any_consumer_is_delivered_when_one_starts() {
    let Some(mut rig) = Rig::new("a_cast_sent_before_any_consumer_is_delivered_when_one_starts").await else {
        return;
    };
    let scheduler = rig.topic("scheduler");
    let (sender, client) = rig.bus().await;
    client.cast(&scheduler, &Ping(1), "req").await.unwrap();
    client.cast(&scheduler, &Ping(2), "req").await.unwrap();
    // the sender is gone before anyone consumes
    sender.close().await;
    assert!(matches!(client.cast(&scheduler, &Ping(3), "req").await, Err(BusError::Closed)));
    assert_eq!(rig.depth(&scheduler).await, 2);
    let got: Arc<Mutex<Vec<u32>>> = Arc::default();
    rig.bus().await.1.serve(&scheduler, recorder(got.clone())).await.unwrap();
    assert!(eventually(T, || got.lock().unwrap().len() == 2).await, "{got:?}");
    // handlers run side by side: both arrive, in either order
    let mut both = got.lock().unwrap().clone();
    both.sort_unstable();
    assert_eq!(both, vec![1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_never_acknowledged_is_redelivered_to_another_consumer() {
    let Some(mut rig) = Rig::new("a_delivery_never_acknowledged_is_redelivered_to_another_consumer").await else {
        return;
    };
    let compute = rig.topic("compute.h");
    let dying = rig.transport().await;
    let mut sub = dying.consume(&compute).await.unwrap();
    let sender = rig.transport().await;
    sender.send(&compute, ping(5)).await.unwrap();
    let d = tokio::time::timeout(T, sub.rx.recv()).await.unwrap().unwrap();
    assert_eq!(d.envelope, ping(5));
    assert!(d.ack.is_some());
    // the consumer dies with the message in hand: no ack
    drop(sub);
    drop(d);
    let survivor = rig.transport().await;
    let mut sub2 = survivor.consume(&compute).await.unwrap();
    let mut d2 = tokio::time::timeout(T, sub2.rx.recv()).await.unwrap().unwrap();
    assert_eq!(d2.envelope, ping(5));
    d2.ack().await;
    // acknowledged: gone for good
    drop(sub2);
    let mut sub3 = survivor.consume(&compute).await.unwrap();
    assert!(tokio::time::timeout(Duration::from_millis(500), sub3.rx.recv()).await.is_err());
    assert_eq!(rig.depth(&compute).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_body_is_rejected_not_requeued() {
    let Some(mut rig) = Rig::new("an_undecodable_body_is_rejected_not_requeued").await else { return };
    let conductor = rig.topic("conductor");
    let t = rig.transport().await;
    let mut sub = t.consume(&conductor).await.unwrap();
    // garbage, straight onto the queue
    let conn = Connection::connect(&rig.uri, ConnectionProperties::default()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let queue = format!("stratus.{conductor}");
    for body in [&b"not json"[..], br#"{"name":"x"}"#] {
        ch.basic_publish(
            "".into(),
            queue.as_str().into(),
            BasicPublishOptions::default(),
            body,
            BasicProperties::default(),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    let _ = conn.close(200, "OK".into()).await;
    t.send(&conductor, ping(1)).await.unwrap();
    let mut d = tokio::time::timeout(T, sub.rx.recv()).await.unwrap().unwrap();
    assert_eq!(d.envelope, ping(1), "the bad bodies were skipped");
    d.ack().await;
    assert!(tokio::time::timeout(Duration::from_millis(300), sub.rx.recv()).await.is_err());
    assert_eq!(rig.depth(&conductor).await, 0, "rejected without requeue");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_to_missing_queues() {
    let Some(mut rig) = Rig::new("sends_to_missing_queues").await else { return };
    let t = rig.transport().await;
    // a reply inbox is never declared by its sender: its caller is gone
    let inbox = format!("reply.{}", uuid::Uuid::new_v4().simple());
    match t.send(&inbox, ping(1)).await {
        Err(BusError::Transport(e)) => assert!(e.to_string().contains("is gone"), "{e}"),
        other => panic!("expected the inbox to be gone, got {other:?}"),
    }
    // a topic's queue deleted behind the transport's back is declared again
    let conductor = rig.topic("conductor");
    t.send(&conductor, ping(1)).await.unwrap();
    let conn = Connection::connect(&rig.uri, ConnectionProperties::default()).await.unwrap();
    let ch = conn.create_channel().await.unwrap();
    let queue = format!("stratus.{conductor}");
    ch.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await.unwrap();
    let _ = conn.close(200, "OK".into()).await;
    t.send(&conductor, ping(2)).await.unwrap();
    assert_eq!(rig.depth(&conductor).await, 1);
    // closing the transport ends its subscriptions and its sends
    let mut sub = t.consume(&conductor).await.unwrap();
    let mut d = tokio::time::timeout(T, sub.rx.recv()).await.unwrap().unwrap();
    assert_eq!(d.envelope, ping(2));
    d.ack().await;
    t.close().await;
    assert!(tokio::time::timeout(T, sub.rx.recv()).await.unwrap().is_none());
    assert!(matches!(t.send(&conductor, ping(3)).await, Err(BusError::Closed)));
    assert!(matches!(t.consume(&conductor).await, Err(BusError::Closed)));
    assert!(!t.is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_connection_is_severed_everything_resumes() {
    let Some(mut rig) = Rig::new("after_the_connection_is_severed_everything_resumes").await else { return };
    let (conductor, compute, services) = (rig.topic("conductor"), rig.topic("compute.h"), rig.topic("services"));
    let (server_t, server) = rig.bus().await;
    server.serve(&conductor, adder()).await.unwrap();
    let heard: Arc<Mutex<Vec<u32>>> = Arc::default();
    server.listen(&services, recorder(heard.clone())).await.unwrap();
    let mut raw = server_t.consume(&compute).await.unwrap();
    let (client_t, client) = rig.bus().await;
    assert_eq!(client.call::<_, i64>(&conductor, &Add { a: 1, b: 2 }, "req", T).await.unwrap(), 3);
    client_t.send(&compute, ping(9)).await.unwrap();
    let held = tokio::time::timeout(T, raw.rx.recv()).await.unwrap().unwrap();
    assert_eq!(held.envelope, ping(9));

    server_t.sever().await.unwrap();
    client_t.sever().await.unwrap();
    // the message held unacknowledged when the connection went comes again, on the same subscription
    let mut again = tokio::time::timeout(T, raw.rx.recv()).await.unwrap().unwrap();
    assert_eq!(again.envelope, ping(9));
    again.ack().await;
    drop(held);
    assert!(eventually(T, || server_t.reconnections() == 1 && client_t.reconnections() == 1).await);
    assert!(server_t.is_connected() && client_t.is_connected());
    // consumers come back right after the connection; give them a moment
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(client.call::<_, i64>(&conductor, &Add { a: 20, b: 22 }, "req", T).await.unwrap(), 42);
    // the listener is bound again (fanout is at most once: publish until it hears)
    let mut i = 0;
    let heard_one = eventually(T, || !heard.lock().unwrap().is_empty());
    tokio::pin!(heard_one);
    loop {
        tokio::select! {
            ok = &mut heard_one => { assert!(ok, "the listener did not come back"); break; }
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                i += 1;
                client.fanout(&services, &Ping(i), "req").await.unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_broker_closes_is_reopened() {
    let Some(mut rig) = Rig::new("a_connection_the_broker_closes_is_reopened").await else { return };
    let compute = rig.topic("compute.h");
    let t = rig.transport().await;
    let mut sub = t.consume(&compute).await.unwrap();
    let name = t.connection_name().to_string();
    let closed = tokio::task::spawn_blocking(move || close_on_broker(&name)).await.unwrap();
    if let Err(why) = closed {
        eprintln!("!!! SKIPPING a_connection_the_broker_closes_is_reopened: {why}");
        return;
    }
    assert!(eventually(T, || t.reconnections() == 1).await, "no reconnection");
    // sends wait for the new connection; the consumer is set up again on it
    t.send(&compute, ping(3)).await.unwrap();
    let mut d = tokio::time::timeout(T, sub.rx.recv()).await.unwrap().unwrap();
    assert_eq!(d.envelope, ping(3));
    d.ack().await;
}

/// Has the broker close the connection named `name` (through rabbitmqctl).
fn close_on_broker(name: &str) -> Result<(), String> {
    let run = |args: &[&str]| -> Result<String, String> {
        let out = std::process::Command::new("rabbitmqctl")
            .args(args)
            .output()
            .map_err(|e| format!("cannot run rabbitmqctl: {e}"))?;
        if !out.status.success() {
            return Err(format!("rabbitmqctl {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    // the connection shows up in the broker's list shortly after it opened
    for _ in 0..20 {
        let list = run(&["-q", "list_connections", "pid", "client_properties"])?;
        if let Some(line) = list.lines().find(|l| l.contains(name)) {
            let pid = line.split('\t').next().unwrap_or_default().trim();
            run(&["close_connection", pid, "closed by a stratus-bus test"])?;
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(format!("connection {name} not in rabbitmqctl list_connections"))
}

/// A TCP proxy to the broker that the test can cut: while down, every
/// connection through it is dropped and new ones are closed at once.
async fn proxy(broker: String) -> (u16, watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (up_tx, up) = watch::channel(true);
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else { continue };
            if !*up.borrow() {
                continue;
            }
            let mut up = up.clone();
            let broker = broker.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = tokio::net::TcpStream::connect(broker).await else { return };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = up.wait_for(|up| !*up) => {}
                }
            });
        }
    });
    (port, up_tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_outage_is_waited_out_and_bounded() {
    let Some(mut rig) = Rig::new("a_network_outage_is_waited_out_and_bounded").await else { return };
    let compute = rig.topic("compute.h");
    let (port, up) = proxy(broker_addr(&rig.uri)).await;
    let via_proxy = {
        let rest = rig.uri.split_once("://").map(|(_, r)| r).unwrap_or_default();
        let userinfo = rest.split('/').next().unwrap_or_default().rsplit_once('@').map(|(u, _)| format!("{u}@"));
        let vhost = rest.split_once('/').map(|(_, v)| v).unwrap_or("%2f");
        format!("amqp://{}127.0.0.1:{port}/{vhost}", userinfo.unwrap_or_default())
    };
    // `patient` waits out outages of up to 20 s, `hasty` gives up after 2 s
    let patient =
        rig.transport_at(&via_proxy, AmqpOptions { send_wait: Duration::from_secs(20), ..Default::default() }).await;
    let wait = Duration::from_secs(2);
    let hasty = rig.transport_at(&via_proxy, AmqpOptions { send_wait: wait, ..AmqpOptions::default() }).await;
    let mut sub = patient.consume(&compute).await.unwrap();
    let direct = rig.transport().await;
    direct.send(&compute, ping(1)).await.unwrap();
    let held = tokio::time::timeout(T, sub.rx.recv()).await.unwrap().unwrap();
    assert_eq!(held.envelope, ping(1));

    // the network goes: the broker requeues what the consumer held
    up.send_replace(false);
    assert!(eventually(T, || !patient.is_connected() && !hasty.is_connected()).await, "the loss was not noticed");
    drop(held);
    let started = Instant::now();
    match hasty.send(&compute, ping(2)).await {
        Err(BusError::Transport(e)) => assert!(e.to_string().contains("not connected"), "{e}"),
        other => panic!("expected a transport error after {wait:?}, got {other:?}"),
    }
    let waited = started.elapsed();
    assert!(waited >= wait - Duration::from_millis(50) && waited < wait * 3, "failed after {waited:?}");

    // a send during the outage waits for the network to come back, then goes through
    let (t, topic) = (patient.clone(), compute.clone());
    let pending = tokio::spawn(async move { t.send(&topic, ping(3)).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!pending.is_finished(), "the send did not wait: {:?}", pending.await);
    up.send_replace(true);
    tokio::time::timeout(Duration::from_secs(20), pending).await.unwrap().unwrap().unwrap();
    // the same subscription gets the requeued message and the new one
    let mut got = Vec::new();
    while got.len() < 2 {
        let mut d = tokio::time::timeout(T, sub.rx.recv()).await.unwrap().unwrap();
        got.push(d.envelope.decode::<Ping>().unwrap().0);
        d.ack().await;
    }
    got.sort();
    assert_eq!(got, vec![1, 3]);
    assert_eq!(patient.reconnections(), 1);
    // and the hasty one is back too
    hasty.send(&compute, ping(4)).await.unwrap();
    let mut d = tokio::time::timeout(T, sub.rx.recv()).await.unwrap().unwrap();
    assert_eq!(d.envelope, ping(4));
    d.ack().await;
}
