//! The agent pool of one campaign: who is logged in, in which state since when, and who gets
//! the next live answer (the agent ready the longest). Sans-IO: every change takes the time
//! (`Duration` since the engine's epoch) and nothing here sleeps or does I/O.

use crate::view::AgentState;
use std::collections::BTreeMap;
use std::time::Duration;

/// One logged-in agent.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PoolAgent {
    /// Store id.
    pub(crate) id: i64,
    /// State.
    pub(crate) state: AgentState,
    /// When the state was entered.
    pub(crate) since: Duration,
    /// Place in the queue of ready agents: when the agent became ready (kept through a
    /// reservation that fell through, so the agent does not lose its turn).
    pub(crate) ready_since: Duration,
    /// Why the agent is paused.
    pub(crate) pause_reason: Option<String>,
    /// A pause asked for during a call, taken when the call and its wrap-up end.
    pub(crate) pause_after: Option<String>,
    /// The call being connected or talked on (the engine's call key).
    pub(crate) call: Option<u64>,
    /// The attempt on the agent's line (on a call or in wrap-up).
    pub(crate) attempt: Option<i64>,
    /// When wrap-up ends by itself.
    pub(crate) wrap_until: Option<Duration>,
    /// Calls connected since login.
    pub(crate) calls: u64,
    /// Time spent talking.
    pub(crate) talk: Duration,
    /// Time spent in wrap-up.
    pub(crate) wrap: Duration,
    /// Time spent ready.
    pub(crate) wait: Duration,
    /// When the agent logged in.
    pub(crate) login_at: Duration,
}

impl PoolAgent {
    /// Back from a call or a reservation: paused if a pause was asked for meanwhile, else ready.
    fn ready_or_paused(&mut self, now: Duration) {
        match self.pause_after.take() {
            Some(reason) => {
                self.enter(AgentState::Paused, now);
                self.pause_reason = Some(reason);
            }
            None => self.enter(AgentState::Ready, now),
        }
    }

    fn enter(&mut self, state: AgentState, now: Duration) {
        let spent = now.saturating_sub(self.since);
        match self.state {
            AgentState::OnCall => self.talk += spent,
            AgentState::WrapUp => self.wrap += spent,
            AgentState::Ready | AgentState::Reserved => self.wait += spent,
            _ => {}
        }
        if state == AgentState::Ready && self.state != AgentState::Reserved {
            self.ready_since = now;
        }
        if state != AgentState::Paused {
            self.pause_reason = None;
        }
        self.state = state;
        self.since = now;
    }
}

/// What went wrong with a pool operation: the agent is not there, or not in a state where the
/// operation makes sense.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PoolError {
    /// Not logged in to this campaign.
    Unknown,
    /// The operation does not fit the state.
    State(AgentState),
}

/// A wrap-up that ended by its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WrapUpExpired {
    /// The agent.
    pub(crate) agent: i64,
    /// The attempt being wrapped up.
    pub(crate) attempt: Option<i64>,
}

/// The logged-in agents of one campaign.
#[derive(Debug, Default)]
pub(crate) struct AgentPool {
    agents: BTreeMap<i64, PoolAgent>,
}

impl AgentPool {
    /// An agent's phone opened its leg: logged in and ready at once.
    pub(crate) fn login(&mut self, id: i64, now: Duration) -> &PoolAgent {
        self.agents.entry(id).or_insert(PoolAgent {
            id,
            state: AgentState::Ready,
            since: now,
            ready_since: now,
            pause_reason: None,
            pause_after: None,
            call: None,
            attempt: None,
            wrap_until: None,
            calls: 0,
            talk: Duration::ZERO,
            wrap: Duration::ZERO,
            wait: Duration::ZERO,
            login_at: now,
        })
    }

    /// The agent left; returns its last record (with the call it was on, if any).
    pub(crate) fn logout(&mut self, id: i64, now: Duration) -> Option<PoolAgent> {
        let mut agent = self.agents.remove(&id)?;
        agent.enter(AgentState::LoggedOut, now);
        Some(agent)
    }

    /// One agent.
    pub(crate) fn get(&self, id: i64) -> Option<&PoolAgent> {
        self.agents.get(&id)
    }

    /// Every logged-in agent, by id.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &PoolAgent> {
        self.agents.values()
    }

    fn agent_mut(&mut self, id: i64) -> Result<&mut PoolAgent, PoolError> {
        self.agents.get_mut(&id).ok_or(PoolError::Unknown)
    }

    /// The agent, if it is in `state` (a transition from any other state is refused).
    fn agent_in(&mut self, id: i64, state: AgentState) -> Result<&mut PoolAgent, PoolError> {
        let agent = self.agent_mut(id)?;
        if agent.state != state {
            return Err(PoolError::State(agent.state));
        }
        Ok(agent)
    }

    /// The ready agent waiting the longest (ties by id), preferring `preferred` if it is ready
    /// (a personal callback goes to the agent who promised it).
    pub(crate) fn longest_idle(&self, preferred: Option<i64>) -> Option<i64> {
        if let Some(p) = preferred
            && self.agents.get(&p).map(|a| a.state) == Some(AgentState::Ready)
        {
            return Some(p);
        }
        self.agents
            .values()
            .filter(|a| a.state == AgentState::Ready)
            .min_by_key(|a| (a.ready_since, a.id))
            .map(|a| a.id)
    }

    /// Ids of the ready agents (for leasing their personal callbacks).
    pub(crate) fn ready_ids(&self) -> Vec<i64> {
        self.agents
            .values()
            .filter(|a| a.state == AgentState::Ready)
            .map(|a| a.id)
            .collect()
    }

    /// Holds a ready agent for a live call being connected.
    pub(crate) fn reserve(&mut self, id: i64, call: u64, now: Duration) -> Result<(), PoolError> {
        let agent = self.agent_in(id, AgentState::Ready)?;
        agent.call = Some(call);
        agent.enter(AgentState::Reserved, now);
        Ok(())
    }

    /// The reserved agent's call was bridged.
    pub(crate) fn bridged(
        &mut self,
        id: i64,
        attempt: i64,
        now: Duration,
    ) -> Result<(), PoolError> {
        let agent = self.agent_in(id, AgentState::Reserved)?;
        agent.attempt = Some(attempt);
        agent.calls += 1;
        agent.enter(AgentState::OnCall, now);
        Ok(())
    }

    /// The call the agent was reserved for went away before the bridge: ready again, keeping
    /// its place in the queue (or paused, if a pause was asked for meanwhile).
    pub(crate) fn unreserve(&mut self, id: i64, now: Duration) -> Result<(), PoolError> {
        let agent = self.agent_in(id, AgentState::Reserved)?;
        agent.call = None;
        agent.ready_or_paused(now);
        Ok(())
    }

    /// The agent's call ended: wrap-up until `wrap_up` has passed (or a disposition comes).
    pub(crate) fn call_ended(
        &mut self,
        id: i64,
        now: Duration,
        wrap_up: Duration,
    ) -> Result<(), PoolError> {
        let agent = self.agent_in(id, AgentState::OnCall)?;
        agent.call = None;
        agent.wrap_until = Some(now + wrap_up);
        agent.enter(AgentState::WrapUp, now);
        Ok(())
    }

    /// Ends wrap-up (a disposition was set): ready, or paused if a pause was asked for.
    pub(crate) fn wrap_up_done(&mut self, id: i64, now: Duration) -> Result<(), PoolError> {
        let agent = self.agent_in(id, AgentState::WrapUp)?;
        agent.wrap_until = None;
        agent.attempt = None;
        agent.ready_or_paused(now);
        Ok(())
    }

    /// Pauses an agent. Ready or in wrap-up: at once (a wrap-up ends without disposition);
    /// reserved or on a call: after the call and its wrap-up. Paused: the reason changes.
    /// Returns whether the pause took effect now.
    pub(crate) fn pause(
        &mut self,
        id: i64,
        reason: &str,
        now: Duration,
    ) -> Result<bool, PoolError> {
        let agent = self.agent_mut(id)?;
        match agent.state {
            AgentState::Ready | AgentState::WrapUp | AgentState::Paused => {
                agent.wrap_until = None;
                if agent.state == AgentState::WrapUp {
                    agent.attempt = None;
                }
                agent.enter(AgentState::Paused, now);
                agent.pause_reason = Some(reason.to_owned());
                Ok(true)
            }
            AgentState::Reserved | AgentState::OnCall => {
                agent.pause_after = Some(reason.to_owned());
                Ok(false)
            }
            AgentState::LoggedOut => Err(PoolError::Unknown),
        }
    }

    /// Makes an agent ready: ends a pause or a wrap-up (without disposition); cancels a pause
    /// asked for during a call. Returns whether the state changed.
    pub(crate) fn ready(&mut self, id: i64, now: Duration) -> Result<bool, PoolError> {
        let agent = self.agent_mut(id)?;
        match agent.state {
            AgentState::Paused | AgentState::WrapUp => {
                agent.wrap_until = None;
                agent.attempt = None;
                agent.enter(AgentState::Ready, now);
                Ok(true)
            }
            AgentState::Reserved | AgentState::OnCall => {
                agent.pause_after = None;
                Ok(false)
            }
            AgentState::Ready => Ok(false),
            AgentState::LoggedOut => Err(PoolError::Unknown),
        }
    }

    /// Wrap-ups whose time ran out by `now`; those agents are made ready (or paused).
    pub(crate) fn expire_wrap_ups(&mut self, now: Duration) -> Vec<WrapUpExpired> {
        let due: Vec<(i64, Option<i64>)> = self
            .agents
            .values()
            .filter(|a| a.state == AgentState::WrapUp && a.wrap_until.is_some_and(|t| t <= now))
            .map(|a| (a.id, a.attempt))
            .collect();
        let mut expired = Vec::with_capacity(due.len());
        for (agent, attempt) in due {
            if self.wrap_up_done(agent, now).is_ok() {
                expired.push(WrapUpExpired { agent, attempt });
            }
        }
        expired
    }

    /// The earliest wrap-up timeout.
    pub(crate) fn next_deadline(&self) -> Option<Duration> {
        self.agents.values().filter_map(|a| a.wrap_until).min()
    }

    /// How many agents are in each state: (ready, reserved, on call, wrap-up, paused).
    pub(crate) fn counts(&self) -> [u32; 5] {
        let mut c = [0u32; 5];
        for a in self.agents.values() {
            let i = match a.state {
                AgentState::Ready => 0,
                AgentState::Reserved => 1,
                AgentState::OnCall => 2,
                AgentState::WrapUp => 3,
                AgentState::Paused => 4,
                AgentState::LoggedOut => continue,
            };
            c[i] += 1;
        }
        c
    }

    /// Number of logged-in agents.
    pub(crate) fn len(&self) -> usize {
        self.agents.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn longest_idle_agent_first() {
        let mut pool = AgentPool::default();
        pool.login(1, s(0));
        pool.login(2, s(1));
        pool.login(3, s(2));
        assert_eq!(pool.longest_idle(None), Some(1));
        pool.reserve(1, 100, s(3)).unwrap();
        assert_eq!(pool.longest_idle(None), Some(2));
        pool.bridged(1, 7, s(3)).unwrap();
        pool.call_ended(1, s(10), s(5)).unwrap();
        pool.wrap_up_done(1, s(11)).unwrap();
        // Agent 1 is ready again, but since 11 s: agents 2 and 3 wait longer.
        assert_eq!(pool.longest_idle(None), Some(2));
        pool.reserve(2, 101, s(12)).unwrap();
        pool.reserve(3, 102, s(12)).unwrap();
        assert_eq!(pool.longest_idle(None), Some(1));
        // A preferred agent (personal callback) wins when ready.
        pool.unreserve(3, s(13)).unwrap();
        assert_eq!(pool.longest_idle(Some(1)), Some(1));
        assert_eq!(
            pool.longest_idle(None),
            Some(3),
            "3 keeps its place in the queue"
        );
    }

    #[test]
    fn wrap_up_times_out_and_pause_waits_for_the_call() {
        let mut pool = AgentPool::default();
        pool.login(1, s(0));
        pool.reserve(1, 5, s(1)).unwrap();
        pool.bridged(1, 42, s(1)).unwrap();
        assert_eq!(pool.pause(1, "lunch", s(2)), Ok(false));
        assert_eq!(pool.get(1).unwrap().state, AgentState::OnCall);
        pool.call_ended(1, s(31), s(10)).unwrap();
        assert_eq!(pool.next_deadline(), Some(s(41)));
        assert!(pool.expire_wrap_ups(s(40)).is_empty());
        let expired = pool.expire_wrap_ups(s(41));
        assert_eq!(
            expired,
            vec![WrapUpExpired {
                agent: 1,
                attempt: Some(42)
            }]
        );
        let agent = pool.get(1).unwrap();
        assert_eq!(agent.state, AgentState::Paused);
        assert_eq!(agent.pause_reason.as_deref(), Some("lunch"));
        assert_eq!(agent.talk, s(30));
        assert_eq!(agent.wrap, s(10));
        assert_eq!(pool.ready(1, s(50)), Ok(true));
        assert_eq!(pool.longest_idle(None), Some(1));
    }

    #[test]
    fn operations_out_of_state_are_refused() {
        let mut pool = AgentPool::default();
        assert_eq!(pool.reserve(9, 1, s(0)), Err(PoolError::Unknown));
        pool.login(1, s(0));
        assert_eq!(
            pool.bridged(1, 1, s(0)),
            Err(PoolError::State(AgentState::Ready))
        );
        assert_eq!(
            pool.call_ended(1, s(0), s(1)),
            Err(PoolError::State(AgentState::Ready))
        );
        pool.pause(1, "break", s(1)).unwrap();
        assert_eq!(
            pool.reserve(1, 1, s(2)),
            Err(PoolError::State(AgentState::Paused))
        );
        assert_eq!(pool.longest_idle(None), None);
        assert_eq!(pool.counts(), [0, 0, 0, 0, 1]);
        let gone = pool.logout(1, s(3)).unwrap();
        assert_eq!(gone.state, AgentState::LoggedOut);
        assert_eq!(pool.len(), 0);
    }
}
