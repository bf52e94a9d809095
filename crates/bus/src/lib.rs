//! The message bus inside a service (API -> conductor -> scheduler -> compute):
//! `call` (request and reply, with a timeout), `cast` (one way, to one
//! consumer of a topic) and `fanout` (to every listener of a topic), addressed
//! by topic (`conductor`, `scheduler`, `compute.<host>`).
//!
//! Messages are typed and versioned ([`Message`]): each has a wire name and a
//! version; a receiver decodes the versions it knows and refuses newer ones
//! with a clear error, so services can be upgraded one at a time.
//!
//! A subscription runs its handlers side by side (up to
//! [`HANDLER_CONCURRENCY`] at once), so messages of one topic are not handled
//! in the order they were sent.
//!
//! Backends implement [`Transport`]. [`inproc::InProcess`] (the default of
//! `stratus up`) delivers within one process: at most once, and what is queued
//! is lost when the process ends. [`amqp::Amqp`] (RabbitMQ, AMQP 0-9-1) uses
//! durable queues and acknowledgements after the handler ran, so a consumer
//! that dies mid-message gets it redelivered to another (at least once), and
//! reconnects with backoff; its module documents the semantics in full.

pub mod amqp;
pub mod inproc;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

/// A typed, versioned message.
pub trait Message: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The name on the wire, e.g. `scheduler.select_destinations`.
    const NAME: &'static str;
    /// The payload's version. Receivers accept this version and older ones.
    const VERSION: u32;
}

/// What travels: a message, or a reply to one.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Envelope {
    pub name: String,
    pub version: u32,
    pub payload: Value,
    /// Set on calls (and copied on their replies).
    pub correlation_id: Option<String>,
    /// Where a call wants its reply.
    pub reply_to: Option<String>,
    /// The API request this work serves (`req-...`), for logs across services.
    pub request_id: String,
    /// On a reply: the handler's error instead of a payload.
    pub error: Option<RemoteError>,
}

impl Envelope {
    pub fn new<M: Message>(msg: &M, request_id: &str) -> Result<Envelope, BusError> {
        Ok(Envelope {
            name: M::NAME.to_string(),
            version: M::VERSION,
            payload: serde_json::to_value(msg).map_err(|e| BusError::Encode(e.to_string()))?,
            correlation_id: None,
            reply_to: None,
            request_id: request_id.to_string(),
            error: None,
        })
    }

    /// Decode as `M`, checking the name and that the version is one `M` knows.
    pub fn decode<M: Message>(&self) -> Result<M, RemoteError> {
        if self.name != M::NAME {
            return Err(RemoteError::new("UnexpectedMessage", format!("expected {}, got {}", M::NAME, self.name)));
        }
        if self.version > M::VERSION {
            return Err(RemoteError::new(
                "UnsupportedVersion",
                format!(
                    "{} version {} is newer than this service understands ({})",
                    self.name,
                    self.version,
                    M::VERSION
                ),
            ));
        }
        serde_json::from_value(self.payload.clone())
            .map_err(|e| RemoteError::new("BadPayload", format!("{} v{}: {e}", self.name, self.version)))
    }
}

/// An error a handler returned, carried back to the caller.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct RemoteError {
    pub kind: String,
    pub message: String,
}

impl RemoteError {
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> RemoteError {
        RemoteError { kind: kind.into(), message: message.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("no reply from {topic} within {after:?}")]
    Timeout { topic: String, after: Duration },
    #[error("the remote side failed: {0}")]
    Remote(RemoteError),
    #[error("cannot encode the message: {0}")]
    Encode(String),
    #[error("cannot decode the reply: {0}")]
    Decode(String),
    #[error("the bus is closed")]
    Closed,
    #[error("transport: {0}")]
    Transport(#[from] anyhow::Error),
}

/// A message handed to a consumer.
pub struct Delivery {
    pub envelope: Envelope,
    /// Confirms the message was handled (a broker then forgets it; until then a
    /// consumer that dies gets it redelivered to another). None: nothing to confirm.
    pub ack: Option<Ack>,
}

/// The confirmation of one delivery.
pub type Ack = Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()> + Send>;

impl Delivery {
    pub fn new(envelope: Envelope) -> Delivery {
        Delivery { envelope, ack: None }
    }

    /// Confirm the message (after it was handled).
    pub async fn ack(&mut self) {
        if let Some(a) = self.ack.take() {
            a().await;
        }
    }
}

/// Deliveries of a topic, as a consumer or a fanout listener receives them.
pub struct Subscription {
    pub rx: mpsc::UnboundedReceiver<Delivery>,
}

/// How messages move: one backend per deployment.
#[async_trait::async_trait]
pub trait Transport: Send + Sync + 'static {
    /// Deliver to one consumer of `topic` (queued until one consumes).
    async fn send(&self, topic: &str, env: Envelope) -> Result<(), BusError>;
    /// Deliver to every current listener of `topic`.
    async fn publish(&self, topic: &str, env: Envelope) -> Result<(), BusError>;
    /// Consume `topic`, competing with its other consumers.
    async fn consume(&self, topic: &str) -> Result<Subscription, BusError>;
    /// Listen to `topic`'s fanout.
    async fn listen(&self, topic: &str) -> Result<Subscription, BusError>;
}

/// What serves a topic: turns a message into a reply payload (or an error).
#[async_trait::async_trait]
pub trait Handler: Send + Sync + 'static {
    async fn handle(&self, env: Envelope) -> Result<Value, RemoteError>;
}

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Envelope>>>>;

/// A service's handle on the bus: calls with replies routed back to it.
#[derive(Clone)]
pub struct Bus {
    transport: Arc<dyn Transport>,
    inbox: String,
    pending: Pending,
}

impl Bus {
    /// Join the bus: a private reply inbox is consumed from now on.
    pub async fn new(transport: Arc<dyn Transport>) -> Result<Bus, BusError> {
        let inbox = format!("reply.{}", uuid::Uuid::new_v4().simple());
        let mut sub = transport.consume(&inbox).await?;
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let routes = pending.clone();
        tokio::spawn(async move {
            while let Some(mut d) = sub.rx.recv().await {
                d.ack().await;
                let Some(id) = d.envelope.correlation_id.clone() else { continue };
                let waiter = routes.lock().ok().and_then(|mut p| p.remove(&id));
                match waiter {
                    Some(w) => {
                        let _ = w.send(d.envelope);
                    }
                    // the caller gave up (timeout) before the reply came
                    None => tracing::debug!(correlation_id = %id, "late reply dropped"),
                }
            }
        });
        Ok(Bus { transport, inbox, pending })
    }

    /// Send `msg` to one consumer of `topic` and wait for its reply.
    pub async fn call<M: Message, R: DeserializeOwned>(
        &self,
        topic: &str,
        msg: &M,
        request_id: &str,
        timeout: Duration,
    ) -> Result<R, BusError> {
        let id = uuid::Uuid::new_v4().to_string();
        let mut env = Envelope::new(msg, request_id)?;
        env.correlation_id = Some(id.clone());
        env.reply_to = Some(self.inbox.clone());
        let (tx, rx) = oneshot::channel();
        self.pending.lock().map_err(|_| BusError::Closed)?.insert(id.clone(), tx);
        if let Err(e) = self.transport.send(topic, env).await {
            self.forget(&id);
            return Err(e);
        }
        let reply = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => return Err(BusError::Closed),
            Err(_) => {
                self.forget(&id);
                return Err(BusError::Timeout { topic: topic.to_string(), after: timeout });
            }
        };
        if let Some(e) = reply.error {
            return Err(BusError::Remote(e));
        }
        serde_json::from_value(reply.payload).map_err(|e| BusError::Decode(e.to_string()))
    }

    fn forget(&self, id: &str) {
        if let Ok(mut p) = self.pending.lock() {
            p.remove(id);
        }
    }

    /// Send `msg` to one consumer of `topic`; no reply.
    pub async fn cast<M: Message>(&self, topic: &str, msg: &M, request_id: &str) -> Result<(), BusError> {
        self.transport.send(topic, Envelope::new(msg, request_id)?).await
    }

    /// Send `msg` to every listener of `topic`.
    pub async fn fanout<M: Message>(&self, topic: &str, msg: &M, request_id: &str) -> Result<(), BusError> {
        self.transport.publish(topic, Envelope::new(msg, request_id)?).await
    }

    /// Serve `topic` with `handler` (as one of its competing consumers); calls get replies.
    pub async fn serve(&self, topic: &str, handler: Arc<dyn Handler>) -> Result<tokio::task::JoinHandle<()>, BusError> {
        let sub = self.transport.consume(topic).await?;
        Ok(self.run(sub, handler))
    }

    /// Listen to `topic`'s fanout with `handler` (replies, if any, are dropped).
    pub async fn listen(
        &self,
        topic: &str,
        handler: Arc<dyn Handler>,
    ) -> Result<tokio::task::JoinHandle<()>, BusError> {
        let sub = self.transport.listen(topic).await?;
        Ok(self.run(sub, handler))
    }

    fn run(&self, mut sub: Subscription, handler: Arc<dyn Handler>) -> tokio::task::JoinHandle<()> {
        let transport = self.transport.clone();
        // messages are handled side by side, up to a bound (a slow one does not hold up the rest)
        let slots = Arc::new(tokio::sync::Semaphore::new(HANDLER_CONCURRENCY));
        tokio::spawn(async move {
            while let Some(d) = sub.rx.recv().await {
                let Ok(permit) = slots.clone().acquire_owned().await else { break };
                let (transport, handler) = (transport.clone(), handler.clone());
                tokio::spawn(async move {
                    handle_one(d, &*handler, &*transport).await;
                    drop(permit);
                });
            }
        })
    }
}

/// Messages one subscription handles at once.
pub const HANDLER_CONCURRENCY: usize = 64;

async fn handle_one(mut d: Delivery, handler: &dyn Handler, transport: &dyn Transport) {
    let env = d.envelope.clone();
    let (reply_to, correlation_id) = (env.reply_to.clone(), env.correlation_id.clone());
    let (name, request_id) = (env.name.clone(), env.request_id.clone());
    let result = handler.handle(env).await;
    // handled: only now may the transport forget the message
    d.ack().await;
    let Some(reply_to) = reply_to else {
        if let Err(e) = result {
            tracing::warn!(message = %name, request_id = %request_id, error = %e, "cast handler failed");
        }
        return;
    };
    let (payload, error) = match result {
        Ok(v) => (v, None),
        Err(e) => (Value::Null, Some(e)),
    };
    let reply = Envelope {
        name: format!("{name}.reply"),
        version: 1,
        payload,
        correlation_id,
        reply_to: None,
        request_id,
        error,
    };
    if let Err(e) = transport.send(&reply_to, reply).await {
        tracing::warn!(message = %name, error = %e, "could not send a reply");
    }
}

/// A handler from an async function of one typed message.
pub fn handler<M, R, F, Fut>(f: F) -> Arc<dyn Handler>
where
    M: Message,
    R: Serialize + Send + 'static,
    F: Fn(M, Envelope) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<R, RemoteError>> + Send + 'static,
{
    struct Typed<F, M>(F, std::marker::PhantomData<fn() -> M>);
    #[async_trait::async_trait]
    impl<M, R, F, Fut> Handler for Typed<F, M>
    where
        M: Message,
        R: Serialize + Send + 'static,
        F: Fn(M, Envelope) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<R, RemoteError>> + Send + 'static,
    {
        async fn handle(&self, env: Envelope) -> Result<Value, RemoteError> {
            let msg = env.decode::<M>()?;
            let r = (self.0)(msg, env).await?;
            serde_json::to_value(r).map_err(|e| RemoteError::new("BadReply", e.to_string()))
        }
    }
    Arc::new(Typed(f, std::marker::PhantomData))
}
