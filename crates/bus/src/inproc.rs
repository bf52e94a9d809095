//! The in-process transport: topics are queues in memory. A message sent to a
//! topic nobody consumes yet waits for its first consumer; consumers of one
//! topic take turns (round robin); a consumer that went away is skipped.
//! Delivery is at most once, and nothing survives the process.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use tokio::sync::mpsc;

use crate::{BusError, Delivery, Envelope, Subscription, Transport};

/// Most messages a topic without consumers holds before sends fail.
const MAX_WAITING: usize = 100_000;

#[derive(Default)]
struct Queue {
    waiting: VecDeque<Envelope>,
    consumers: Vec<mpsc::UnboundedSender<Delivery>>,
    next: usize,
}

#[derive(Default)]
pub struct InProcess {
    queues: Mutex<HashMap<String, Queue>>,
    listeners: Mutex<HashMap<String, Vec<mpsc::UnboundedSender<Delivery>>>>,
}

impl InProcess {
    pub fn new() -> InProcess {
        InProcess::default()
    }
}

fn poisoned() -> BusError {
    BusError::Transport(anyhow::anyhow!("in-process bus state poisoned"))
}

#[async_trait::async_trait]
impl Transport for InProcess {
    async fn send(&self, topic: &str, env: Envelope) -> Result<(), BusError> {
        let mut queues = self.queues.lock().map_err(|_| poisoned())?;
        let q = queues.entry(topic.to_string()).or_default();
        let mut env = env;
        while !q.consumers.is_empty() {
            let i = q.next % q.consumers.len();
            match q.consumers[i].send(Delivery::new(env)) {
                Ok(()) => {
                    q.next = i + 1;
                    return Ok(());
                }
                Err(mpsc::error::SendError(d)) => {
                    // that consumer is gone: try the next one
                    env = d.envelope;
                    q.consumers.remove(i);
                }
            }
        }
        if q.waiting.len() >= MAX_WAITING {
            return Err(BusError::Transport(anyhow::anyhow!(
                "topic {topic} has {MAX_WAITING} messages and no consumer"
            )));
        }
        q.waiting.push_back(env);
        Ok(())
    }

    async fn publish(&self, topic: &str, env: Envelope) -> Result<(), BusError> {
        let mut listeners = self.listeners.lock().map_err(|_| poisoned())?;
        if let Some(ls) = listeners.get_mut(topic) {
            ls.retain(|l| l.send(Delivery::new(env.clone())).is_ok());
        }
        Ok(())
    }

    async fn consume(&self, topic: &str) -> Result<Subscription, BusError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut queues = self.queues.lock().map_err(|_| poisoned())?;
        let q = queues.entry(topic.to_string()).or_default();
        while let Some(env) = q.waiting.pop_front() {
            let _ = tx.send(Delivery::new(env));
        }
        q.consumers.push(tx);
        Ok(Subscription { rx })
    }

    async fn listen(&self, topic: &str) -> Result<Subscription, BusError> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.listeners.lock().map_err(|_| poisoned())?.entry(topic.to_string()).or_default().push(tx);
        Ok(Subscription { rx })
    }
}
