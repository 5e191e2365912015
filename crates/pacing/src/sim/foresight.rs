//! The perfect-foresight bound: a dialer that knows every contact's fate and every agent's
//! free time places each live call so it is answered the moment an agent frees up. No call is
//! abandoned and no agent waits, except for the very first call of the day.

use super::scenario::{FateKind, Scenario, fate};
use super::{Report, Sample};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

pub(super) fn run(s: &Scenario) -> Report {
    // Agents by the time they are next free, earliest first: contacts are used in time order.
    let mut free: BinaryHeap<Reverse<(u64, u32)>> =
        (0..s.agents).map(|a| Reverse((0, a))).collect();
    let mut next_contact = 0u64;
    let (mut busy, mut connects, mut placed) = (0.0, 0u64, 0u64);
    let bins = ((s.duration / s.sample_every).ceil() as usize).max(1);
    let mut bin_busy = vec![0.0; bins];
    let us = 1e6;
    while let Some(Reverse((at, agent))) = free.pop() {
        let t = at as f64 / us;
        if t >= s.duration {
            continue;
        }
        // Dial (in hindsight, early enough) until a contact answers live.
        let f = loop {
            let f = fate(s, next_contact, t);
            next_contact += 1;
            placed += 1;
            if f.outcome == FateKind::Live {
                break f;
            }
        };
        let connect = t.max(f.ring + f.amd);
        let end = connect + f.talk + f.wrap;
        connects += 1;
        let (from, to) = (connect.min(s.duration), end.min(s.duration));
        busy += to - from;
        let mut x = from;
        while x < to {
            let b = ((x / s.sample_every) as usize).min(bins - 1);
            let stop = ((b + 1) as f64 * s.sample_every).min(to);
            let stop = if stop <= x { to } else { stop };
            bin_busy[b] += stop - x;
            x = stop;
        }
        free.push(Reverse(((end * us) as u64, agent)));
    }
    let logged = s.agents as f64 * s.duration;
    let agent_hours = logged / 3600.0;
    let timeline = bin_busy
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let len = (s.sample_every).min(s.duration - i as f64 * s.sample_every);
            Sample {
                minute: ((i + 1) as f64 * s.sample_every).min(s.duration) / 60.0,
                occupancy: b / (len * s.agents as f64).max(1e-9),
                abandon_rate: 0.0,
                window_abandon_rate: 0.0,
                threshold: None,
            }
        })
        .collect();
    Report {
        policy: "perfect foresight".into(),
        agents: s.agents,
        hours: s.duration / 3600.0,
        seed: s.seed,
        occupancy: if logged > 0.0 { busy / logged } else { 0.0 },
        agent_wait: if connects > 0 {
            (logged - busy) / connects as f64
        } else {
            0.0
        },
        abandon_rate: 0.0,
        worst_hour_abandon_rate: 0.0,
        max_window_abandon_rate: 0.0,
        calls_per_agent_hour: placed as f64 / agent_hours.max(1e-9),
        connects_per_agent_hour: connects as f64 / agent_hours.max(1e-9),
        placed,
        live: connects,
        abandoned: 0,
        connects,
        cancelled: 0,
        model_check: None,
        timeline,
    }
}
