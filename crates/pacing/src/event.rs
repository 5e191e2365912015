//! What the engine tells the pacer, and what the pacer answers.

use serde::Serialize;

/// The engine's own identifier of an agent (opaque to the pacer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AgentId(pub u64);

/// The engine's own identifier of a call attempt (opaque to the pacer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct CallId(pub u64);

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EndReason {
    /// Busy (486, 600).
    Busy,
    /// Not answered before the ring timeout.
    NoAnswer,
    /// Failed before an answer (4xx/5xx, special information tones, network).
    Failed,
    /// Cancelled by the engine before an answer (for example on [`crate::Decision::cancel`]).
    Canceled,
    /// Hung up after an answer: talk over, machine hung up on, abandon message played.
    Completed,
}

/// One thing that happened, fed to [`crate::Pacer::handle`] with its time.
///
/// Events for unknown ids, or out of their usual order, are tolerated: the pacer adjusts its
/// picture and never panics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Event {
    /// An agent logged in (not yet ready).
    AgentLoggedIn(AgentId),
    /// An agent is ready for a call (after login, a pause or wrap-up).
    AgentReady(AgentId),
    /// An agent paused (or went not-ready); from wrap-up this also ends the wrap-up.
    AgentPaused(AgentId),
    /// An agent logged out.
    AgentLoggedOut(AgentId),
    /// An agent's talk ended (the agent is now in wrap-up). Optional: a bridged call's
    /// [`Event::CallEnded`] says the same.
    TalkEnded(AgentId),
    /// An agent finished wrap-up and is ready (the same as [`Event::AgentReady`]).
    WrapUpEnded(AgentId),
    /// A call was sent to the trunk (one of the calls a [`crate::Decision`] asked for).
    CallPlaced(CallId),
    /// The callee's phone rings (180/183).
    CallRinging(CallId),
    /// The call was answered (200 OK); answering-machine detection starts.
    CallAnswered(CallId),
    /// AMD said human or not sure (or there is no AMD): the call needs an agent now.
    CallLive(CallId),
    /// AMD said machine: the call needs no agent.
    CallMachine(CallId),
    /// A live call was connected to an agent.
    CallBridged {
        /// The call.
        call: CallId,
        /// The agent it reached.
        agent: AgentId,
    },
    /// A live call found no agent in time and was abandoned (counts against the abandon rate).
    CallAbandoned(CallId),
    /// The call ended.
    CallEnded {
        /// The call.
        call: CallId,
        /// How.
        reason: EndReason,
    },
    /// The engine could not place this many of the calls it was asked to start (no due
    /// contact, trunk down); the pacer stops waiting for them.
    NotPlaced {
        /// How many.
        count: u32,
    },
}

/// What the pacer's decision rests on: shown to the supervisor as "why".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Reason {
    /// Preview mode: the agents start calls.
    Preview,
    /// No agent is logged in and not paused.
    NoAgents,
    /// Progressive mode at the supervisor's ratio.
    Progressive,
    /// Predictive mode with fewer agents than `min_agents`: progressive at 1:1.
    FewAgents,
    /// The abandon window has too little headroom left: progressive at 1:1 until it recovers.
    Guard,
    /// Predictive mode: the model's abandon probability for one more call reached the
    /// controller's threshold.
    Model,
    /// Agentless mode: lines and calls-per-second caps.
    Agentless,
    /// A cap (lines in flight, max ratio, calls per second) stopped the decision.
    Cap,
}

/// The answer to [`crate::Pacer::decide`].
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Decision {
    /// Start this many new calls now (beyond those asked for earlier and not yet reported
    /// placed with [`Event::CallPlaced`] or given back with [`Event::NotPlaced`]).
    pub start: u32,
    /// Cancel these ringing calls (the longest-ringing first, each past `cancel_after`): the
    /// pacer has over-dialed and they are the least likely to reach a person.
    pub cancel: Vec<CallId>,
    /// Why.
    pub reason: Option<Reason>,
}
