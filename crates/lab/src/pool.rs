//! Many agent phones at once, named from a pattern (`agent{n}`), as `dialer lab` and
//! `dialer demo` run them.

use crate::LabError;
use crate::agent::{AgentConfig, AgentCounters, AgentPhone, PhoneState};
use crate::audio::Bank;
use crate::plan::stable_hash;
use std::collections::BTreeMap;
use std::time::Duration;

/// `pattern` with `{n}` replaced by `n` (`agent{n}`, 7: `agent7`).
pub fn expand(pattern: &str, n: u32) -> String {
    pattern.replace("{n}", &n.to_string())
}

/// A group of agent phones.
#[derive(Debug, Default)]
pub struct Agents {
    phones: Vec<AgentPhone>,
}

impl Agents {
    /// Starts `count` phones numbered from `first`, each a copy of `template` with the username
    /// and password from the patterns and a seed of its own.
    pub async fn start(
        template: &AgentConfig,
        count: u32,
        first: u32,
        username: &str,
        password: &str,
        bank: &Bank,
    ) -> Result<Agents, LabError> {
        if count > 1 && !username.contains("{n}") {
            return Err(LabError::config(
                format!("username pattern {username:?}"),
                "several agents need {n} in their username pattern",
            ));
        }
        let mut phones = Vec::with_capacity(count as usize);
        for n in first..first.saturating_add(count) {
            let mut config = template.clone();
            config.username = expand(username, n);
            config.password = expand(password, n);
            config.seed = template.seed ^ stable_hash(config.username.as_bytes());
            phones.push(AgentPhone::start(config, bank).await?);
            // Spread the registrations a little, as people logging in do.
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Agents { phones })
    }

    /// The phones.
    pub fn phones(&self) -> &[AgentPhone] {
        &self.phones
    }

    /// How many phones are in each state.
    pub fn by_state(&self) -> BTreeMap<PhoneState, usize> {
        let mut states = BTreeMap::new();
        for phone in &self.phones {
            *states.entry(phone.state().0).or_insert(0) += 1;
        }
        states
    }

    /// Every phone's counters, summed.
    pub fn counters(&self) -> AgentCounters {
        let mut total = AgentCounters::default();
        for phone in &self.phones {
            total.add(&phone.counters());
        }
        total
    }

    /// Logs every phone out (BYE, unregister), all at once.
    pub async fn logout(self) {
        let mut tasks = tokio::task::JoinSet::new();
        for phone in self.phones {
            tasks.spawn(phone.logout());
        }
        while tasks.join_next().await.is_some() {}
    }
}
