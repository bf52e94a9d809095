//! The RabbitMQ transport (AMQP 0-9-1, through `lapin`).
//!
//! # Mapping
//!
//! - `send(topic)` publishes to the default exchange with routing key
//!   `stratus.<topic>`, a durable queue (declared by the sender too, so a
//!   message waits for its first consumer), as a persistent message
//!   (delivery mode 2) that survives a broker restart. Publishes are confirmed
//!   by the broker (publisher confirms) before `send` returns.
//! - `consume(topic)` declares the same queue and consumes it with manual
//!   acknowledgements and a prefetch (`basic.qos`) of [`AmqpOptions::prefetch`];
//!   the consumers of one queue compete (the broker hands each message to one).
//!   [`Delivery::ack`](crate::Delivery::ack) sends `basic.ack`.
//! - `publish(topic)` publishes to the fanout exchange `stratus.fanout.<topic>`;
//!   `listen(topic)` binds an exclusive, auto-delete, server-named queue to it,
//!   so a listener gets what is published while it listens, nothing older.
//! - Reply inboxes (topics `reply.<id>`, see [`Bus::call`](crate::Bus::call))
//!   are exclusive, auto-delete, non-durable queues `stratus.reply.<id>`: they
//!   go away with their connection. A reply to an inbox that is gone is
//!   returned by the broker (mandatory publish) and `send` fails.
//! - Envelopes travel as JSON (`application/json`). A body that does not decode
//!   is rejected without requeue (dropped, or dead-lettered if the operator set
//!   a policy) and logged.
//!
//! # Semantics
//!
//! - **send/consume: at least once.** A message is removed from its queue only
//!   when a consumer acknowledges it, which the [`Bus`](crate::Bus) does after
//!   its handler ran. A consumer that dies (its subscription dropped, its
//!   process killed, its connection lost) before acknowledging has its
//!   messages redelivered, to another consumer or to itself once reconnected.
//!   A send that failed on a dropped connection is retried and may reach the
//!   queue twice. So a handler can see a message more than once: handlers must
//!   be idempotent (or a saga must tell a duplicate from new work); the bus
//!   does not deduplicate.
//! - **fanout: at most once.** A listener's queue lives as long as its
//!   connection; what is published while a listener is disconnected is lost
//!   for it, and nothing is kept for listeners that do not exist yet.
//! - **Calls in flight when a connection drops:** the request is redelivered
//!   (it is a send), but the caller's reply inbox vanished with the caller's
//!   connection (and is declared anew, empty, on reconnection), and a reply
//!   sent while the inbox was gone is lost. The caller then gets
//!   [`BusError::Timeout`]; the handler may have run (once or more). A request
//!   whose caller timed out stays queued until a consumer takes it; its late
//!   reply is dropped.
//!
//! # Connection loss
//!
//! One connection per [`Amqp`]. When it drops, it is reopened with a backoff of
//! 100 ms doubling to 5 s, for as long as the transport lives, and every
//! consumer and listener is set up again on the new connection (same
//! [`Subscription`], nothing for its owner to do). Sends, publishes and new
//! subscriptions during an outage wait for the connection, at most
//! [`AmqpOptions::send_wait`] (30 s by default), then fail with
//! [`BusError::Transport`]. The first connection is not retried:
//! [`Amqp::connect`] fails at once when the broker cannot be reached. A closed
//! socket or a broker closing the connection is noticed at once; a network that
//! silently stops carrying packets only through AMQP heartbeats (the interval
//! the broker proposes, 60 s by RabbitMQ's default, or `?heartbeat=<s>` in the URI).
//!
//! A [`Bus`](crate::Bus) serving or listening keeps its transport alive: a
//! service stops with [`Amqp::close`], which closes the connection (what its
//! consumers held unacknowledged goes back to their queues) and ends every
//! subscription; later sends fail with [`BusError::Closed`].

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::anyhow;
use futures::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, Consumer, ExchangeKind};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::{Ack, BusError, Delivery, Envelope, Subscription, Transport};

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often the supervisor looks at the connection's state.
const WATCH_EVERY: Duration = Duration::from_millis(100);
/// Longest wait for one TCP connect and AMQP handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two attempts of one send.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

const JSON: &str = "application/json";
const PERSISTENT: u8 = 2;
const TRANSIENT: u8 = 1;

/// Settings of an [`Amqp`] transport.
#[derive(Clone, Debug)]
pub struct AmqpOptions {
    /// Unacknowledged messages a consumer holds at most (`basic.qos`).
    pub prefetch: u16,
    /// How long a send, publish or new subscription waits for a lost
    /// connection to come back before it fails.
    pub send_wait: Duration,
}

impl Default for AmqpOptions {
    fn default() -> AmqpOptions {
        AmqpOptions { prefetch: 16, send_wait: Duration::from_secs(30) }
    }
}

/// The RabbitMQ transport: one connection, kept open. Dropping it (or
/// [`Amqp::close`]) closes the connection and ends its subscriptions.
pub struct Amqp {
    name: String,
    options: AmqpOptions,
    link: watch::Receiver<Link>,
    shutdown: watch::Sender<bool>,
    reconnections: Arc<AtomicU64>,
}

/// The state of the transport's connection, as its supervisor publishes it.
#[derive(Clone)]
enum Link {
    Up(Arc<Conn>),
    Down,
    Closed,
}

/// One open connection, with what was set up on it.
struct Conn {
    connection: Connection,
    /// The channel sends and publishes go through, in confirm mode.
    publisher: tokio::sync::Mutex<Option<Channel>>,
    /// Queues and exchanges declared on this connection already.
    declared: Mutex<HashSet<String>>,
}

/// What a subscription consumes.
#[derive(Clone, Debug)]
enum Source {
    /// A named queue: a topic's durable queue, or an exclusive reply inbox.
    Queue { name: String, durable: bool },
    /// A fresh exclusive queue bound to a fanout exchange.
    Fanout { exchange: String },
}

impl Source {
    fn of_topic(topic: &str) -> Source {
        Source::Queue { name: queue_name(topic), durable: !is_reply(topic) }
    }
}

fn queue_name(topic: &str) -> String {
    format!("stratus.{topic}")
}

fn exchange_name(topic: &str) -> String {
    format!("stratus.fanout.{topic}")
}

fn is_reply(topic: &str) -> bool {
    topic.starts_with("reply.")
}

fn queue_options(durable: bool) -> QueueDeclareOptions {
    if durable {
        QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() }
    } else {
        QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() }
    }
}

fn properties(delivery_mode: u8) -> BasicProperties {
    BasicProperties::default().with_content_type(JSON.into()).with_delivery_mode(delivery_mode)
}

fn transport(e: impl std::fmt::Display) -> BusError {
    BusError::Transport(anyhow!("rabbitmq: {e}"))
}

/// The URI without its password, for messages.
fn redact(uri: &str) -> String {
    let Some((scheme, rest)) = uri.split_once("://") else { return uri.to_string() };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map(|(u, _)| u).unwrap_or(userinfo);
            format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..])
        }
        None => uri.to_string(),
    }
}

async fn open(uri: &str, name: &str) -> anyhow::Result<Arc<Conn>> {
    let props = ConnectionProperties::default().with_connection_name(name.into());
    let connection = tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(uri, props))
        .await
        .map_err(|_| anyhow!("no AMQP handshake within {CONNECT_TIMEOUT:?}"))??;
    Ok(Arc::new(Conn { connection, publisher: tokio::sync::Mutex::new(None), declared: Mutex::new(HashSet::new()) }))
}

/// Why waiting for a connection ended without one.
enum NoLink {
    Closed,
    TimedOut,
}

/// The current connection, waiting (until `deadline`, if any) while it is down.
async fn wait_up(link: &mut watch::Receiver<Link>, deadline: Option<Instant>) -> Result<Arc<Conn>, NoLink> {
    loop {
        match &*link.borrow_and_update() {
            Link::Up(c) => return Ok(c.clone()),
            Link::Closed => return Err(NoLink::Closed),
            Link::Down => {}
        }
        let changed = match deadline {
            Some(d) => tokio::time::timeout_at(d, link.changed()).await.map_err(|_| NoLink::TimedOut)?,
            None => link.changed().await,
        };
        changed.map_err(|_| NoLink::Closed)?;
    }
}

/// A future that ends when the transport shuts down (or its handle is gone).
async fn shut(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// Keeps the transport connected: watches the connection, reopens it with
/// backoff when it drops, and closes it on shutdown.
async fn supervise(
    uri: String,
    name: String,
    mut conn: Arc<Conn>,
    link: watch::Sender<Link>,
    mut shutdown: watch::Receiver<bool>,
    reconnections: Arc<AtomicU64>,
) {
    loop {
        // until the connection drops or the transport shuts down
        loop {
            if !conn.connection.status().connected() {
                break;
            }
            tokio::select! {
                _ = shut(&mut shutdown) => {
                    // subscriptions end on seeing Closed, without trying to set themselves up again
                    link.send_replace(Link::Closed);
                    if conn.connection.status().connected() {
                        let _ = tokio::time::timeout(CONNECT_TIMEOUT, conn.connection.close(200, "OK".into())).await;
                    }
                    return;
                }
                _ = tokio::time::sleep(WATCH_EVERY) => {}
            }
        }
        tracing::warn!(connection = %name, uri = %redact(&uri), "RabbitMQ connection lost; reconnecting");
        link.send_replace(Link::Down);
        let mut backoff = BACKOFF_MIN;
        conn = loop {
            tokio::select! {
                _ = shut(&mut shutdown) => {
                    link.send_replace(Link::Closed);
                    return;
                }
                _ = tokio::time::sleep(backoff) => {}
            }
            match open(&uri, &name).await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(connection = %name, error = %e, retry_in = ?backoff * 2, "RabbitMQ reconnection failed");
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        };
        reconnections.fetch_add(1, Ordering::Relaxed);
        tracing::info!(connection = %name, "RabbitMQ connection re-established");
        link.send_replace(Link::Up(conn.clone()));
    }
}

/// Where a message goes.
enum Target<'a> {
    Queue { name: &'a str, durable: bool },
    Fanout { exchange: &'a str },
}

/// What the broker did with a published message.
enum Published {
    Routed,
    /// Returned as unroutable: its queue does not exist.
    Unroutable,
}

impl Conn {
    /// The confirm-mode channel for sends, opened anew if the last one closed.
    async fn publisher(&self) -> lapin::Result<Channel> {
        let mut slot = self.publisher.lock().await;
        if let Some(ch) = slot.as_ref()
            && ch.status().connected()
        {
            return Ok(ch.clone());
        }
        let ch = self.connection.create_channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default()).await?;
        *slot = Some(ch.clone());
        Ok(ch)
    }

    fn is_declared(&self, name: &str) -> bool {
        self.declared.lock().map(|d| d.contains(name)).unwrap_or(false)
    }

    fn mark_declared(&self, name: &str, declared: bool) {
        if let Ok(mut d) = self.declared.lock() {
            if declared {
                d.insert(name.to_string());
            } else {
                d.remove(name);
            }
        }
    }

    async fn declare_queue(&self, ch: &Channel, name: &str) -> lapin::Result<()> {
        if !self.is_declared(name) {
            ch.queue_declare(name.into(), queue_options(true), FieldTable::default()).await?;
            self.mark_declared(name, true);
        }
        Ok(())
    }

    async fn declare_exchange(&self, ch: &Channel, name: &str) -> lapin::Result<()> {
        if !self.is_declared(name) {
            declare_fanout(ch, name).await?;
            self.mark_declared(name, true);
        }
        Ok(())
    }

    async fn publish(&self, target: &Target<'_>, body: &[u8]) -> anyhow::Result<Published> {
        let ch = self.publisher().await?;
        let (exchange, routing_key, props, mandatory) = match *target {
            Target::Queue { name, durable } => {
                // a reply inbox belongs to its caller's connection: never declared here
                if durable {
                    self.declare_queue(&ch, name).await?;
                }
                ("", name, properties(if durable { PERSISTENT } else { TRANSIENT }), true)
            }
            Target::Fanout { exchange } => {
                self.declare_exchange(&ch, exchange).await?;
                (exchange, "", properties(TRANSIENT), false)
            }
        };
        let options = BasicPublishOptions { mandatory, ..BasicPublishOptions::default() };
        let confirmation = ch.basic_publish(exchange.into(), routing_key.into(), options, body, props).await?.await?;
        match confirmation {
            Confirmation::Ack(None) | Confirmation::NotRequested => Ok(Published::Routed),
            Confirmation::Ack(Some(_)) => Ok(Published::Unroutable),
            Confirmation::Nack(_) => Err(anyhow!("the broker refused the message (nack)")),
        }
    }
}

async fn declare_fanout(ch: &Channel, name: &str) -> lapin::Result<()> {
    let options = ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() };
    ch.exchange_declare(name.into(), ExchangeKind::Fanout, options, FieldTable::default()).await
}

/// Declares what `source` needs on a new channel and starts consuming it.
async fn open_consumer(conn: &Conn, source: &Source, prefetch: u16) -> lapin::Result<(Channel, Consumer)> {
    let ch = conn.connection.create_channel().await?;
    let queue = match source {
        Source::Queue { name, durable } => {
            ch.queue_declare(name.as_str().into(), queue_options(*durable), FieldTable::default()).await?;
            name.clone()
        }
        Source::Fanout { exchange } => {
            declare_fanout(&ch, exchange).await?;
            let q = ch.queue_declare("".into(), queue_options(false), FieldTable::default()).await?;
            let name = q.name().to_string();
            ch.queue_bind(
                name.as_str().into(),
                exchange.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
            name
        }
    };
    ch.basic_qos(prefetch, BasicQosOptions::default()).await?;
    let tag = format!("stratus-{}", uuid::Uuid::new_v4().simple());
    let consumer = ch
        .basic_consume(
            queue.as_str().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok((ch, consumer))
}

/// Why a consumer stopped.
enum Stop {
    /// The subscription was dropped.
    Dropped,
    /// The transport shut down.
    Closed,
    /// The connection or channel was lost, or the broker cancelled the consumer.
    Lost,
}

/// Hands a consumer's deliveries to its subscription until something stops it.
async fn forward(
    source: &Source,
    conn: &Arc<Conn>,
    consumer: &mut Consumer,
    tx: &mpsc::UnboundedSender<Delivery>,
    link: &mut watch::Receiver<Link>,
) -> Stop {
    loop {
        tokio::select! {
            _ = tx.closed() => return Stop::Dropped,
            changed = link.changed() => {
                if changed.is_err() {
                    return Stop::Closed;
                }
                match &*link.borrow_and_update() {
                    Link::Up(c) if Arc::ptr_eq(c, conn) => {}
                    Link::Closed => return Stop::Closed,
                    _ => return Stop::Lost,
                }
            }
            item = consumer.next() => match item {
                Some(Ok(d)) => {
                    if !hand_over(source, d, tx).await {
                        return Stop::Dropped;
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!(source = ?source, error = %e, "consumer stopped");
                    return Stop::Lost;
                }
                None => return Stop::Lost,
            },
        }
    }
}

/// Decodes one delivery and passes it on (false: the subscription is gone).
async fn hand_over(source: &Source, d: lapin::message::Delivery, tx: &mpsc::UnboundedSender<Delivery>) -> bool {
    let envelope = match serde_json::from_slice::<Envelope>(&d.data) {
        Ok(env) => env,
        Err(e) => {
            tracing::warn!(
                source = ?source,
                error = %e,
                bytes = d.data.len(),
                "undecodable message rejected (not requeued)"
            );
            if let Err(e) = d.acker.reject(BasicRejectOptions { requeue: false }).await {
                tracing::debug!(error = %e, "reject failed");
            }
            return true;
        }
    };
    let acker = d.acker;
    let ack: Ack = Box::new(move || {
        Box::pin(async move {
            if let Err(e) = acker.ack(BasicAckOptions::default()).await {
                // the channel is gone: the broker redelivers the message
                tracing::debug!(error = %e, "ack failed; the message will be redelivered");
            }
        })
    });
    tx.send(Delivery { envelope, ack: Some(ack) }).is_ok()
}

/// Runs one subscription for as long as its owner keeps it and the transport
/// lives, setting its consumer up again after each connection loss.
async fn pump(
    source: Source,
    prefetch: u16,
    mut link: watch::Receiver<Link>,
    tx: mpsc::UnboundedSender<Delivery>,
    mut conn: Arc<Conn>,
    mut ch: Channel,
    mut consumer: Consumer,
) {
    loop {
        match forward(&source, &conn, &mut consumer, &tx, &mut link).await {
            Stop::Dropped => {
                // what this consumer held unacknowledged goes back to the queue
                if ch.status().connected() {
                    let _ = ch.close(200, "subscription dropped".into()).await;
                }
                return;
            }
            Stop::Closed => return,
            Stop::Lost => {}
        }
        let mut backoff = BACKOFF_MIN;
        loop {
            let c = tokio::select! {
                _ = tx.closed() => return,
                c = wait_up(&mut link, None) => match c {
                    Ok(c) => c,
                    Err(_) => return,
                },
            };
            match open_consumer(&c, &source, prefetch).await {
                Ok((new_ch, new_consumer)) => {
                    tracing::info!(source = ?source, "consumer set up again");
                    (conn, ch, consumer) = (c, new_ch, new_consumer);
                    break;
                }
                Err(e) => {
                    tracing::warn!(source = ?source, error = %e, retry_in = ?backoff, "cannot set the consumer up again");
                    tokio::select! {
                        _ = tx.closed() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}

impl Amqp {
    /// Connect to RabbitMQ at `uri` (`amqp://user:password@host:5672/%2f`).
    pub async fn connect(uri: &str) -> Result<Amqp, BusError> {
        Amqp::connect_with(uri, AmqpOptions::default()).await
    }

    /// Connect with explicit settings.
    pub async fn connect_with(uri: &str, options: AmqpOptions) -> Result<Amqp, BusError> {
        let name = format!("stratus-bus-{}", uuid::Uuid::new_v4().simple());
        let conn = open(uri, &name).await.map_err(|e| transport(format!("cannot connect to {}: {e}", redact(uri))))?;
        let (link_tx, link) = watch::channel(Link::Up(conn.clone()));
        let (shutdown, shutdown_rx) = watch::channel(false);
        let reconnections = Arc::new(AtomicU64::new(0));
        tokio::spawn(supervise(uri.to_string(), name.clone(), conn, link_tx, shutdown_rx, reconnections.clone()));
        Ok(Amqp { name, options, link, shutdown, reconnections })
    }

    /// The connection's name as the broker shows it (`connection_name`).
    pub fn connection_name(&self) -> &str {
        &self.name
    }

    /// How many times the connection was lost and opened again.
    pub fn reconnections(&self) -> u64 {
        self.reconnections.load(Ordering::Relaxed)
    }

    /// Whether the transport is connected right now.
    pub fn is_connected(&self) -> bool {
        matches!(&*self.link.borrow(), Link::Up(c) if c.connection.status().connected())
    }

    /// Close the connection and end every subscription; later sends fail with
    /// [`BusError::Closed`].
    pub async fn close(&self) {
        self.shutdown.send_replace(true);
        let mut link = self.link.clone();
        // the supervisor lets go of its end once the connection is closed
        while link.changed().await.is_ok() {}
    }

    /// Close the current connection the way a failure would, without shutting
    /// the transport down: it reconnects as after any connection loss. For
    /// tests of reconnection.
    #[doc(hidden)]
    pub async fn sever(&self) -> Result<(), BusError> {
        let conn = match &*self.link.borrow() {
            Link::Up(c) => c.clone(),
            _ => return Err(transport("not connected")),
        };
        conn.connection.close(320, "severed for a test".into()).await.map_err(transport)
    }

    async fn deliver(&self, target: Target<'_>, body: &[u8]) -> Result<(), BusError> {
        let deadline = Instant::now() + self.options.send_wait;
        let mut link = self.link.clone();
        let mut failures_while_connected = 0;
        loop {
            let conn = match wait_up(&mut link, Some(deadline)).await {
                Ok(c) => c,
                Err(NoLink::Closed) => return Err(BusError::Closed),
                Err(NoLink::TimedOut) => {
                    return Err(transport(format!("not connected for {:?}", self.options.send_wait)));
                }
            };
            let error = match tokio::time::timeout_at(deadline, conn.publish(&target, body)).await {
                Ok(Ok(Published::Routed)) => return Ok(()),
                Ok(Ok(Published::Unroutable)) => match target {
                    Target::Queue { name, durable: false } => {
                        return Err(transport(format!("reply inbox {name} is gone")));
                    }
                    Target::Queue { name, .. } => {
                        // deleted behind our back: declare it again
                        conn.mark_declared(name, false);
                        anyhow!("queue {name} did not exist")
                    }
                    Target::Fanout { .. } => return Ok(()),
                },
                Ok(Err(e)) => e,
                Err(_) => anyhow!("no confirmation within {:?}", self.options.send_wait),
            };
            if conn.connection.status().connected() {
                failures_while_connected += 1;
                if failures_while_connected >= 3 {
                    return Err(transport(error));
                }
            }
            if Instant::now() + RETRY_PAUSE >= deadline {
                return Err(transport(error));
            }
            tracing::debug!(connection = %self.name, error = %error, "send failed; retrying");
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    async fn subscribe(&self, source: Source) -> Result<Subscription, BusError> {
        let deadline = Instant::now() + self.options.send_wait;
        let mut link = self.link.clone();
        loop {
            let conn = match wait_up(&mut link, Some(deadline)).await {
                Ok(c) => c,
                Err(NoLink::Closed) => return Err(BusError::Closed),
                Err(NoLink::TimedOut) => {
                    return Err(transport(format!("not connected for {:?}", self.options.send_wait)));
                }
            };
            let error =
                match tokio::time::timeout_at(deadline, open_consumer(&conn, &source, self.options.prefetch)).await {
                    Ok(Ok((ch, consumer))) => {
                        let (tx, rx) = mpsc::unbounded_channel();
                        tokio::spawn(pump(source, self.options.prefetch, link, tx, conn, ch, consumer));
                        return Ok(Subscription { rx });
                    }
                    Ok(Err(e)) => anyhow::Error::from(e),
                    Err(_) => anyhow!("no consumer within {:?}", self.options.send_wait),
                };
            // refused on a live connection (e.g. an inbox another connection holds): final
            if conn.connection.status().connected() || Instant::now() + RETRY_PAUSE >= deadline {
                return Err(transport(format!("cannot consume {source:?}: {error}")));
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }
}

impl Drop for Amqp {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

fn encode(env: &Envelope) -> Result<Vec<u8>, BusError> {
    serde_json::to_vec(env).map_err(|e| BusError::Encode(e.to_string()))
}

#[async_trait::async_trait]
impl Transport for Amqp {
    async fn send(&self, topic: &str, env: Envelope) -> Result<(), BusError> {
        let name = queue_name(topic);
        self.deliver(Target::Queue { name: &name, durable: !is_reply(topic) }, &encode(&env)?).await
    }

    async fn publish(&self, topic: &str, env: Envelope) -> Result<(), BusError> {
        let exchange = exchange_name(topic);
        self.deliver(Target::Fanout { exchange: &exchange }, &encode(&env)?).await
    }

    async fn consume(&self, topic: &str) -> Result<Subscription, BusError> {
        self.subscribe(Source::of_topic(topic)).await
    }

    async fn listen(&self, topic: &str) -> Result<Subscription, BusError> {
        self.subscribe(Source::Fanout { exchange: exchange_name(topic) }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(queue_name("compute.host1"), "stratus.compute.host1");
        assert_eq!(exchange_name("services"), "stratus.fanout.services");
        assert!(is_reply("reply.abc"));
        assert!(!is_reply("replyish"));
        assert!(matches!(Source::of_topic("reply.x"), Source::Queue { durable: false, .. }));
        assert!(matches!(Source::of_topic("conductor"), Source::Queue { durable: true, .. }));
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("amqp://guest:secret@127.0.0.1:5672/%2f"), "amqp://guest:***@127.0.0.1:5672/%2f");
        assert_eq!(redact("amqp://127.0.0.1:5672"), "amqp://127.0.0.1:5672");
        assert_eq!(redact("amqp://u:p@w@h/v"), "amqp://u:***@h/v");
    }
}
