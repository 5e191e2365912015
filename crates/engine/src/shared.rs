//! What every part of a running engine shares: settings, store, cluster state, the SIP endpoint,
//! the RTP ports and media runtime, the engine's clock, and the publisher that carries events
//! out in order.

use crate::cluster::ClusterState;
use crate::config::EngineConfig;
use crate::days::AgentDays;
use crate::view::{AgentState, AgentView, CallUpdate, EngineEvent};
use chrono::{DateTime, Utc};
use media::{MediaRuntime, PortAllocator};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use store::Store;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Something to send to the cluster state, in order.
#[derive(Debug)]
pub(crate) enum Publish {
    /// An agent's new state: recorded and published.
    Agent(AgentView),
    /// An event: published.
    Event(EngineEvent),
}

/// The engine's shared parts.
pub(crate) struct Shared {
    pub(crate) config: EngineConfig,
    pub(crate) store: Store,
    pub(crate) cluster: Arc<dyn ClusterState>,
    pub(crate) endpoint: sip::Endpoint,
    pub(crate) ports: PortAllocator,
    /// The receive loops legs are opened on.
    pub(crate) media: MediaRuntime,
    /// The engine's clock starts here (pacer and cores count from it).
    pub(crate) epoch: Instant,
    /// The same instant on the wall clock.
    pub(crate) epoch_wall: DateTime<Utc>,
    publisher: mpsc::UnboundedSender<Publish>,
    /// Calls in flight on this node, by attempt, in their latest state.
    pub(crate) calls: Mutex<HashMap<i64, CallUpdate>>,
    /// Which campaign each logged-in agent is on, with the id of the session's leg.
    pub(crate) directory: Mutex<HashMap<i64, (String, u64)>>,
    /// Agents' days on this node: their finished sessions' figures summed.
    days: Mutex<AgentDays>,
    /// Agents' states on this node, for the `dialer_agents` gauge.
    agent_states: Mutex<HashMap<i64, AgentState>>,
    /// Calls placed and not finished on this node.
    pub(crate) in_flight: AtomicI64,
    /// Call keys, unique on this node.
    next_key: AtomicU64,
    /// Set once shutdown has begun.
    pub(crate) shutting_down: AtomicBool,
    /// The DTLS certificate of browser agents' legs, made on first use.
    pub(crate) webrtc_identity: std::sync::OnceLock<media::webrtc::DtlsIdentity>,
    /// Browser agents' running sessions on this node, by agent: where a new offer goes.
    pub(crate) webrtc_sessions: Mutex<HashMap<i64, mpsc::UnboundedSender<crate::webrtc::Reoffer>>>,
}

/// Locks a mutex, ignoring poisoning (every critical section is a single map update).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Builds the shared parts and starts the publisher task.
    pub(crate) fn new(
        config: EngineConfig,
        store: Store,
        cluster: Arc<dyn ClusterState>,
        endpoint: sip::Endpoint,
        ports: PortAllocator,
        media: MediaRuntime,
    ) -> Arc<Shared> {
        let zone = config.agent_day_time_zone;
        let (publisher, mut rx) = mpsc::unbounded_channel::<Publish>();
        let shared = Arc::new(Shared {
            config,
            store,
            cluster: cluster.clone(),
            endpoint,
            ports,
            media,
            epoch: Instant::now(),
            epoch_wall: Utc::now(),
            publisher,
            calls: Mutex::default(),
            directory: Mutex::default(),
            days: Mutex::new(AgentDays::new(zone)),
            agent_states: Mutex::default(),
            in_flight: AtomicI64::new(0),
            next_key: AtomicU64::new(1),
            shutting_down: AtomicBool::new(false),
            webrtc_identity: std::sync::OnceLock::new(),
            webrtc_sessions: Mutex::default(),
        });
        // One task, so a shared backend sees each agent's changes in the order they happened.
        tokio::spawn(async move {
            while let Some(item) = rx.recv().await {
                let result = match item {
                    Publish::Agent(view) => match cluster.put_agent(&view).await {
                        Ok(()) => cluster.publish(&EngineEvent::Agent(view)).await,
                        Err(err) => Err(err),
                    },
                    Publish::Event(event) => cluster.publish(&event).await,
                };
                if let Err(err) = result {
                    tracing::warn!(%err, "cluster state: publishing failed");
                }
            }
        });
        shared
    }

    /// Now on the engine's clock.
    pub(crate) fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// A time of the engine's clock on the wall clock.
    pub(crate) fn wall(&self, at: Duration) -> DateTime<Utc> {
        self.epoch_wall + chrono::Duration::from_std(at).unwrap_or_default()
    }

    /// A fresh call key.
    pub(crate) fn next_key(&self) -> u64 {
        self.next_key.fetch_add(1, Ordering::Relaxed)
    }

    /// Publishes an agent's state (and updates the agents gauge).
    pub(crate) fn publish_agent(&self, view: AgentView) {
        {
            let mut states = lock(&self.agent_states);
            if view.state == AgentState::LoggedOut {
                states.remove(&view.id);
            } else {
                states.insert(view.id, view.state);
            }
            let mut counts: HashMap<&'static str, f64> = HashMap::new();
            for state in states.values() {
                *counts.entry(state.as_str()).or_default() += 1.0;
            }
            for state in [
                AgentState::Ready,
                AgentState::Reserved,
                AgentState::OnCall,
                AgentState::WrapUp,
                AgentState::Paused,
            ] {
                let n = counts.get(state.as_str()).copied().unwrap_or(0.0);
                metrics::gauge!("dialer_agents", "state" => state.as_str()).set(n);
            }
        }
        let _ = self.publisher.send(Publish::Agent(view));
    }

    /// The agents' days on this node.
    pub(crate) fn days(&self) -> MutexGuard<'_, AgentDays> {
        lock(&self.days)
    }

    /// Publishes a call's state, and keeps the latest state of calls in flight.
    pub(crate) fn publish_call(&self, update: CallUpdate) {
        {
            let mut calls = lock(&self.calls);
            if update.state == crate::view::CallState::Ended {
                calls.remove(&update.attempt_id);
            } else {
                calls.insert(update.attempt_id, update.clone());
            }
        }
        let _ = self
            .publisher
            .send(Publish::Event(EngineEvent::Call(update)));
    }

    /// The campaign an agent is logged in to.
    pub(crate) fn campaign_of(&self, agent: i64) -> Option<String> {
        lock(&self.directory).get(&agent).map(|(c, _)| c.clone())
    }

    /// Forgets an agent's session (only if it is still the session with this leg).
    pub(crate) fn forget_session(&self, agent: i64, leg: u64) {
        let mut directory = lock(&self.directory);
        if directory.get(&agent).is_some_and(|(_, l)| *l == leg) {
            directory.remove(&agent);
        }
    }

    /// Publishes any event.
    pub(crate) fn publish(&self, event: EngineEvent) {
        let _ = self.publisher.send(Publish::Event(event));
    }

    /// One more (or one fewer) call in flight.
    pub(crate) fn add_in_flight(&self, delta: i64) {
        let now = self.in_flight.fetch_add(delta, Ordering::AcqRel) + delta;
        metrics::gauge!("dialer_calls_in_flight").set(now as f64);
    }
}
