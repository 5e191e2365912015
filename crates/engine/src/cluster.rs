//! The state several nodes share: agent presence and states, live per-campaign counters, the
//! trunk's calls-per-second budget, and the event fan-out. One trait, so that a Redis
//! implementation can replace [`InProcess`] without the engine changing.

use crate::error::ClusterError;
use crate::view::{AgentView, EngineEvent};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;

/// Live counters of one campaign, summed over every node (the abandon rate is global).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Calls placed.
    pub placed: i64,
    /// Calls in flight (placed and not ended).
    pub in_flight: i64,
    /// Live answers (connected or abandoned).
    pub live: i64,
    /// Abandoned live answers.
    pub abandoned: i64,
    /// Connected live answers.
    pub connected: i64,
    /// Answering machines.
    pub machines: i64,
}

impl Counters {
    /// Adds `delta` field by field.
    pub fn add(&mut self, delta: &Counters) {
        self.placed += delta.placed;
        self.in_flight += delta.in_flight;
        self.live += delta.live;
        self.abandoned += delta.abandoned;
        self.connected += delta.connected;
        self.machines += delta.machines;
    }
}

/// The state shared by every node of a cluster. Every method is async and may fail (a shared
/// backend can be down); the engine logs failures and carries on with its local view.
#[async_trait]
pub trait ClusterState: Send + Sync + 'static {
    /// Records an agent's presence and state, replacing the previous record of that agent
    /// (a logged-out agent is recorded with [`crate::AgentState::LoggedOut`]).
    async fn put_agent(&self, agent: &AgentView) -> Result<(), ClusterError>;

    /// The latest record of every agent any node has put.
    async fn agents(&self) -> Result<Vec<AgentView>, ClusterError>;

    /// Adds `delta` to a campaign's counters and returns the new totals.
    async fn add_counters(
        &self,
        campaign_id: i64,
        delta: &Counters,
    ) -> Result<Counters, ClusterError>;

    /// A campaign's counters.
    async fn counters(&self, campaign_id: i64) -> Result<Counters, ClusterError>;

    /// Reserves the next slot of the calls-per-second budget of `trunk` (its URI), shared by
    /// every node, at `cps` calls per second evenly spaced: `Ok(None)` when it is now,
    /// `Ok(Some(wait))` when it is `wait` from now (the caller sends then, without asking again:
    /// slots are reserved in turn, so a late wake-up never shifts the ones after it).
    async fn take_cps(&self, trunk: &str, cps: u32) -> Result<Option<Duration>, ClusterError>;

    /// Sends an event to the subscribers of every node.
    async fn publish(&self, event: &EngineEvent) -> Result<(), ClusterError>;

    /// Receives every node's events from now on.
    fn subscribe(&self) -> broadcast::Receiver<EngineEvent>;
}

/// The cluster state of a single node, in memory.
pub struct InProcess {
    agents: Mutex<HashMap<i64, AgentView>>,
    counters: Mutex<HashMap<i64, Counters>>,
    /// Each trunk's next free slot.
    slots: Mutex<HashMap<(String, u32), std::time::Instant>>,
    events: broadcast::Sender<EngineEvent>,
}

impl InProcess {
    /// An empty state whose subscribers may lag up to 4096 events behind before they miss
    /// some (they are told how many with `RecvError::Lagged`).
    pub fn new() -> Self {
        InProcess {
            agents: Mutex::default(),
            counters: Mutex::default(),
            slots: Mutex::default(),
            events: broadcast::channel(4096).0,
        }
    }

    /// The same, behind the `Arc<dyn ClusterState>` [`crate::Engine::start`] takes.
    pub fn shared() -> Arc<dyn ClusterState> {
        Arc::new(InProcess::new())
    }
}

impl Default for InProcess {
    fn default() -> Self {
        InProcess::new()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere cannot leave these maps half-updated (single inserts), so poisoning is
    // not a reason to stop serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait]
impl ClusterState for InProcess {
    async fn put_agent(&self, agent: &AgentView) -> Result<(), ClusterError> {
        lock(&self.agents).insert(agent.id, agent.clone());
        Ok(())
    }

    async fn agents(&self) -> Result<Vec<AgentView>, ClusterError> {
        let mut agents: Vec<AgentView> = lock(&self.agents).values().cloned().collect();
        agents.sort_by_key(|a| a.id);
        Ok(agents)
    }

    async fn add_counters(
        &self,
        campaign_id: i64,
        delta: &Counters,
    ) -> Result<Counters, ClusterError> {
        let mut all = lock(&self.counters);
        let entry = all.entry(campaign_id).or_default();
        entry.add(delta);
        Ok(*entry)
    }

    async fn counters(&self, campaign_id: i64) -> Result<Counters, ClusterError> {
        Ok(lock(&self.counters)
            .get(&campaign_id)
            .copied()
            .unwrap_or_default())
    }

    async fn take_cps(&self, trunk: &str, cps: u32) -> Result<Option<Duration>, ClusterError> {
        let Some(rate) = NonZeroU32::new(cps) else {
            return Ok(Some(Duration::from_secs(1)));
        };
        let now = std::time::Instant::now();
        let mut slots = lock(&self.slots);
        let next = slots.entry((trunk.to_owned(), cps)).or_insert(now);
        let slot = (*next).max(now);
        *next = slot + Duration::from_secs(1) / rate.get();
        let wait = slot - now;
        Ok((!wait.is_zero()).then_some(wait))
    }

    async fn publish(&self, event: &EngineEvent) -> Result<(), ClusterError> {
        // No subscriber is not an error: nobody is watching.
        let _ = self.events.send(event.clone());
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn cps_budget_spaces_calls_evenly() {
        let state = InProcess::new();
        assert_eq!(state.take_cps("sip:t", 10).await.unwrap(), None);
        // Burst of one: the second call right away must wait about 100 ms.
        let wait = state
            .take_cps("sip:t", 10)
            .await
            .unwrap()
            .expect("must wait");
        assert!(wait > Duration::from_millis(50) && wait <= Duration::from_millis(100));
        // Slots are reserved in turn: the third is a period after the second, whoever wakes
        // late.
        let third = state
            .take_cps("sip:t", 10)
            .await
            .unwrap()
            .expect("must wait");
        let gap = third.saturating_sub(wait);
        assert!(
            gap > Duration::from_millis(95) && gap <= Duration::from_millis(100),
            "{gap:?}"
        );
        // Another trunk has its own budget.
        assert_eq!(state.take_cps("sip:other", 10).await.unwrap(), None);
    }

    #[tokio::test]
    async fn counters_add_up() {
        let state = InProcess::new();
        let delta = Counters {
            live: 2,
            abandoned: 1,
            ..Default::default()
        };
        state.add_counters(7, &delta).await.unwrap();
        let total = state.add_counters(7, &delta).await.unwrap();
        assert_eq!((total.live, total.abandoned), (4, 2));
        assert_eq!(state.counters(8).await.unwrap(), Counters::default());
    }
}
