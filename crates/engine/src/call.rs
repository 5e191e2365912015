//! One call's life as a sans-IO state machine, from the lease to the outcome: SIP and media
//! happenings go in with the time, what to do comes out (record a step, listen for tones,
//! bridge, play a message, hang up, finish with an outcome). The campaign core
//! (`core.rs`) owns one per call and answers its reports itself (a live answer gets its agent
//! in the same step); the call task in `driver` is a pump that feeds it the real `sip::Call`'s
//! and `media::Leg`'s happenings and carries out its actions.
//!
//! ```text
//! Leased -placed-> Dialing -180-> Ringing -183+SDP-> EarlyMedia (SIT -> hang up: invalid number)
//!    |                |                  |
//!    +-------200------+------------------+--> Answered (AMD) --human/not sure--> Live
//!                                                  |                    (the core assigns an agent,
//!                                                  |                     or abandons at the deadline)
//!                                                  +--machine--> Machine: hang up, or wait for the
//!                                                                beep and leave the message
//! Live -Assigned-> Bridged --callee BYE / agent # --> Ended (connected)
//! Live -Abandon--> Abandoning (message) --played--> hang up (abandoned)
//! ```

use crate::view::CallState;
use domain::{AmdResult, MachineAction, NotSureAction, Outcome};
use pacing::EndReason;
use std::collections::VecDeque;
use std::time::Duration;
use store::AttemptEvent;

/// What the machine needs to know of its campaign.
#[derive(Debug, Clone)]
pub(crate) struct CallConfig {
    /// Answering-machine detection on: live only after a HUMAN or NOTSURE verdict.
    pub(crate) amd: bool,
    /// What to do with machines.
    pub(crate) machine_action: MachineAction,
    /// What to do when the detector is not sure (or hears nothing before `amd_timeout`).
    pub(crate) not_sure_action: NotSureAction,
    /// Agentless mode: every live answer hears the campaign's message, then is released.
    pub(crate) agentless: bool,
    /// How long to wait for a voicemail beep before leaving the message anyway.
    pub(crate) beep_timeout: Duration,
    /// How long after the answer AMD may stay silent (no audio at all) before the call is taken
    /// as NOTSURE (a person is never hung up on for lack of a verdict).
    pub(crate) amd_timeout: Duration,
}

/// Which recorded message to play.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PromptKind {
    /// The abandon message naming the caller.
    Abandon,
    /// The message left on machines.
    Voicemail,
    /// The agentless campaign's message.
    Agentless,
}

/// Why the engine hangs a call up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HangupReason {
    /// The agent pressed `#` or the hang-up button.
    Agent,
    /// The pacer over-dialed and gives up on this ringing call.
    PacerCancel,
    /// The campaign was stopped or the engine is shutting down (ringing calls only).
    Stop,
    /// The shutdown grace ran out.
    Cut,
    /// The agent's phone went away during the call.
    AgentGone,
}

/// A happening, fed to [`CallMachine::handle`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CallInput {
    /// A provisional response (180, 183); `early_media` when it carried SDP.
    Progress {
        /// Status code.
        code: u16,
        /// Whether it carried SDP.
        early_media: bool,
    },
    /// A special information tone in early media.
    Sit {
        /// Whether the tone means the number does not exist.
        invalid: bool,
        /// The tone's name, for the attempt's reason.
        name: String,
    },
    /// 200 OK.
    Answered,
    /// AMD's verdict; `greeting_end` is when the greeting ended on the engine's clock, if known.
    Amd {
        /// The verdict (`None`: the stream ended before one).
        result: Option<AmdResult>,
        /// When the greeting ended.
        greeting_end: Option<Duration>,
        /// The detector's cause, for logs.
        cause: String,
    },
    /// The voicemail beep ended.
    Beep,
    /// The core gave this live call an agent.
    Assigned {
        /// The agent.
        agent: i64,
    },
    /// The core took the agent back before the bridge was made (the agent logged out).
    Unassigned,
    /// The driver connected the callee's leg with this agent's leg.
    Bridged {
        /// The agent whose leg it is.
        agent: i64,
    },
    /// The bridge to this agent could not be made (the agent's leg is gone).
    BridgeFailed {
        /// The agent whose leg it was.
        agent: i64,
    },
    /// The core found no agent in time.
    Abandon,
    /// The message being played finished (or was cut).
    PlaybackFinished,
    /// The engine wants the call over.
    Hangup(HangupReason),
    /// The SIP call ended.
    Ended {
        /// How SIP saw it.
        outcome: sip::InviteResult,
        /// The final status, if any.
        code: Option<u16>,
    },
}

/// What the machine asks for: `Report`s are the core's, the rest the driver's.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CallAction {
    /// The call's state changed (publish it).
    State(CallState),
    /// Write this step to the attempt row.
    Record(AttemptEvent),
    /// Tell the core (and its pacer) what happened.
    Report(Report),
    /// Listen to early media for special information tones.
    ListenSit,
    /// Run answering-machine detection on the callee's audio.
    ListenAmd,
    /// Listen for the voicemail beep.
    ListenBeep,
    /// Stop listening.
    StopListening,
    /// Bridge the callee with the agent's leg.
    Bridge {
        /// The agent.
        agent: i64,
    },
    /// Undo the bridge.
    Unbridge,
    /// Play a message to the callee.
    Play(PromptKind),
    /// Hang up (CANCEL before the answer, BYE after).
    Hangup,
    /// The call is over: write the outcome.
    Finish(Finished),
}

/// What the core hears from a call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Report {
    /// 180/183.
    Ringing,
    /// 200 OK.
    Answered,
    /// A person (or not sure): needs an agent by `deadline` (greeting end + grace is the
    /// core's business; this is the greeting's end).
    Live {
        /// When the greeting ended.
        greeting_end: Duration,
    },
    /// A machine.
    Machine,
    /// Bridged with the assigned agent.
    Bridged {
        /// The agent.
        agent: i64,
    },
    /// The assigned agent was not connected (the call had ended, or the bridge failed).
    Refused {
        /// The agent to put back.
        agent: i64,
    },
}

/// The end of a call.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Finished {
    /// Stored outcome.
    pub(crate) outcome: Outcome,
    /// Final SIP status.
    pub(crate) sip_code: Option<u16>,
    /// Detail.
    pub(crate) reason: Option<String>,
    /// How the pacer should see it.
    pub(crate) pacer: EndReason,
    /// The agent that talked to the callee.
    pub(crate) agent: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Leased; the driver checks the contact, takes a CPS slot and places the INVITE.
    Leased,
    Dialing,
    Ringing,
    EarlyMedia,
    Answered,
    Live,
    Bridged,
    MachineHangup,
    WaitingBeep,
    LeavingMessage,
    Abandoning,
    Agentless,
    Done,
}

/// One call.
#[derive(Debug)]
pub(crate) struct CallMachine {
    cfg: CallConfig,
    phase: Phase,
    agent: Option<i64>,
    /// Outcome decided before our own hang-up (used when SIP reports the end).
    decided: Option<(Outcome, Option<String>, EndReason)>,
    /// Whether the message being played reached its end.
    message_done: bool,
    hung_up: bool,
    /// A hang-up asked for before the INVITE left: the driver skips the contact, or, if the
    /// INVITE crossed it, cancels the call, which then ends for this reason.
    hangup_before_placed: Option<HangupReason>,
    timer: Option<Duration>,
    actions: VecDeque<CallAction>,
}

/// Where a call stands, as the core counts and serves calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// Leased, not yet placed.
    Leased,
    /// INVITE sent, ringing or early media.
    Dialing,
    /// Answered, detection listening.
    Answered,
    /// Live, no agent yet.
    Waiting,
    /// Live, an agent assigned and the bridge being made.
    Reserved,
    /// Connected to an agent.
    Bridged,
    /// A machine, the abandon message, the agentless message.
    Other,
    /// Over.
    Done,
}

impl CallMachine {
    /// A call for a contact just leased.
    pub(crate) fn new(cfg: CallConfig) -> Self {
        CallMachine {
            cfg,
            phase: Phase::Leased,
            agent: None,
            decided: None,
            message_done: false,
            hung_up: false,
            hangup_before_placed: None,
            timer: None,
            actions: VecDeque::new(),
        }
    }

    /// The INVITE left.
    pub(crate) fn placed(&mut self) {
        if self.phase != Phase::Leased {
            return;
        }
        self.phase = Phase::Dialing;
        self.push(CallAction::State(CallState::Dialing));
        if let Some(reason) = self.hangup_before_placed.take() {
            // The driver already cancels the call: only its outcome is decided here.
            self.hung_up = true;
            self.hangup_requested(reason);
        }
    }

    /// Where the call stands.
    pub(crate) fn stage(&self) -> Stage {
        match self.phase {
            Phase::Leased => Stage::Leased,
            Phase::Dialing | Phase::Ringing | Phase::EarlyMedia => Stage::Dialing,
            Phase::Answered => Stage::Answered,
            // Being hung up (the shutdown's cut): no agent is looked for any more.
            Phase::Live if self.hung_up => Stage::Other,
            Phase::Live if self.agent.is_some() => Stage::Reserved,
            Phase::Live => Stage::Waiting,
            Phase::Bridged => Stage::Bridged,
            Phase::MachineHangup
            | Phase::WaitingBeep
            | Phase::LeavingMessage
            | Phase::Abandoning
            | Phase::Agentless => Stage::Other,
            Phase::Done => Stage::Done,
        }
    }

    fn push(&mut self, action: CallAction) {
        self.actions.push_back(action);
    }

    /// The next thing to do.
    pub(crate) fn poll_action(&mut self) -> Option<CallAction> {
        self.actions.pop_front()
    }

    /// When [`CallMachine::handle_timeout`] is due.
    pub(crate) fn poll_timeout(&self) -> Option<Duration> {
        self.timer
    }

    /// The agent on the call.
    #[cfg(test)]
    pub(crate) fn agent(&self) -> Option<i64> {
        self.agent
    }

    /// Whether the call is answered and not yet over.
    pub(crate) fn is_answered(&self) -> bool {
        !matches!(
            self.phase,
            Phase::Leased | Phase::Dialing | Phase::Ringing | Phase::EarlyMedia | Phase::Done
        )
    }

    fn hang_up(&mut self, outcome: Outcome, reason: Option<String>, pacer: EndReason) {
        if self.decided.is_none() {
            self.decided = Some((outcome, reason, pacer));
        }
        if !self.hung_up {
            self.hung_up = true;
            self.push(CallAction::Hangup);
        }
    }

    fn live(&mut self, now: Duration, greeting_end: Duration) {
        if self.cfg.agentless {
            self.phase = Phase::Agentless;
            self.push(CallAction::State(CallState::PlayingMessage));
            self.push(CallAction::Play(PromptKind::Agentless));
            return;
        }
        self.phase = Phase::Live;
        self.push(CallAction::State(CallState::Live));
        self.push(CallAction::Report(Report::Live {
            greeting_end: greeting_end.min(now),
        }));
    }

    fn machine(&mut self, now: Duration, beep_heard: bool) {
        self.push(CallAction::Report(Report::Machine));
        self.push(CallAction::State(CallState::Machine));
        match self.cfg.machine_action {
            MachineAction::HangUp => {
                self.phase = Phase::MachineHangup;
                self.push(CallAction::StopListening);
                self.hang_up(Outcome::MachineHungUp, None, EndReason::Completed);
            }
            MachineAction::LeaveMessage if beep_heard => self.leave_message(),
            MachineAction::LeaveMessage => {
                self.phase = Phase::WaitingBeep;
                self.push(CallAction::ListenBeep);
                self.timer = Some(now + self.cfg.beep_timeout);
            }
        }
    }

    /// NOTSURE: the campaign's choice, an agent (as a person) or a hang-up (as a machine).
    fn not_sure(&mut self, now: Duration, greeting_end: Duration) {
        self.push(CallAction::Record(AttemptEvent::Amd(AmdResult::NotSure)));
        self.push(CallAction::StopListening);
        match self.cfg.not_sure_action {
            NotSureAction::Agent => self.live(now, greeting_end),
            NotSureAction::HangUp => {
                self.push(CallAction::Report(Report::Machine));
                self.push(CallAction::State(CallState::Machine));
                self.phase = Phase::MachineHangup;
                self.hang_up(Outcome::MachineHungUp, None, EndReason::Completed);
            }
        }
    }

    fn leave_message(&mut self) {
        self.phase = Phase::LeavingMessage;
        self.timer = None;
        self.push(CallAction::StopListening);
        self.push(CallAction::State(CallState::LeavingMessage));
        self.push(CallAction::Play(PromptKind::Voicemail));
    }

    /// Takes one happening at `now`.
    pub(crate) fn handle(&mut self, now: Duration, input: CallInput) {
        if self.phase == Phase::Done {
            if let CallInput::Assigned { agent } = input {
                self.push(CallAction::Report(Report::Refused { agent }));
            }
            return;
        }
        match input {
            CallInput::Progress { code, early_media } => {
                if !matches!(
                    self.phase,
                    Phase::Dialing | Phase::Ringing | Phase::EarlyMedia
                ) {
                    return;
                }
                if code == 100 {
                    return;
                }
                if self.phase == Phase::Dialing {
                    self.push(CallAction::Record(AttemptEvent::Ringing));
                    self.push(CallAction::Report(Report::Ringing));
                    self.phase = Phase::Ringing;
                    self.push(CallAction::State(CallState::Ringing));
                }
                if early_media && self.phase != Phase::EarlyMedia {
                    self.phase = Phase::EarlyMedia;
                    self.push(CallAction::Record(AttemptEvent::EarlyMedia));
                    self.push(CallAction::State(CallState::EarlyMedia));
                    self.push(CallAction::ListenSit);
                }
            }
            CallInput::Sit { invalid, name } => {
                if matches!(
                    self.phase,
                    Phase::Ringing | Phase::EarlyMedia | Phase::Dialing
                ) {
                    let outcome = if invalid {
                        Outcome::InvalidNumber
                    } else {
                        Outcome::Failed
                    };
                    self.push(CallAction::StopListening);
                    self.hang_up(
                        outcome,
                        Some(format!("special information tone {name}")),
                        EndReason::Failed,
                    );
                }
            }
            CallInput::Answered => {
                if !matches!(
                    self.phase,
                    Phase::Dialing | Phase::Ringing | Phase::EarlyMedia
                ) {
                    return;
                }
                if self.hung_up {
                    // The 200 crossed our CANCEL; SIP sends the BYE and reports the end.
                    return;
                }
                if self.phase == Phase::Dialing {
                    self.push(CallAction::Report(Report::Ringing));
                }
                self.phase = Phase::Answered;
                self.push(CallAction::Record(AttemptEvent::Answered));
                self.push(CallAction::Report(Report::Answered));
                self.push(CallAction::State(CallState::Answered));
                if self.cfg.amd {
                    self.push(CallAction::ListenAmd);
                    self.timer = Some(now + self.cfg.amd_timeout);
                } else {
                    self.push(CallAction::StopListening);
                    self.live(now, now);
                }
            }
            CallInput::Amd {
                result,
                greeting_end,
                cause,
            } => {
                if self.phase != Phase::Answered {
                    return;
                }
                self.timer = None;
                match result {
                    Some(AmdResult::NotSure) => self.not_sure(now, greeting_end.unwrap_or(now)),
                    Some(AmdResult::Human) => {
                        self.push(CallAction::Record(AttemptEvent::Amd(AmdResult::Human)));
                        self.push(CallAction::StopListening);
                        self.live(now, greeting_end.unwrap_or(now));
                    }
                    Some(AmdResult::Machine) => {
                        self.push(CallAction::Record(AttemptEvent::Amd(AmdResult::Machine)));
                        self.machine(now, cause == "BEEP");
                    }
                    // The stream ended undecided: SIP will report the end.
                    None => {}
                }
            }
            CallInput::Beep => {
                if self.phase == Phase::WaitingBeep {
                    self.leave_message();
                }
            }
            CallInput::Assigned { agent } => {
                if self.phase == Phase::Live && self.agent.is_none() && !self.hung_up {
                    self.agent = Some(agent);
                    self.push(CallAction::Bridge { agent });
                } else {
                    self.push(CallAction::Report(Report::Refused { agent }));
                }
            }
            CallInput::Unassigned => {
                if self.phase == Phase::Live {
                    self.agent = None;
                }
            }
            CallInput::Bridged { agent } => {
                if self.phase == Phase::Live && self.agent == Some(agent) {
                    self.phase = Phase::Bridged;
                    self.push(CallAction::Record(AttemptEvent::Bridged {
                        agent_id: agent,
                    }));
                    self.push(CallAction::Report(Report::Bridged { agent }));
                    self.push(CallAction::State(CallState::Bridged));
                } else if self.phase == Phase::Live && self.agent.is_none() {
                    // The agent was taken back while its bridge was being made.
                    self.push(CallAction::Unbridge);
                }
            }
            CallInput::BridgeFailed { agent } => {
                if self.phase == Phase::Live && self.agent == Some(agent) {
                    // Stays live: the core finds another agent or abandons by the deadline.
                    self.agent = None;
                    self.push(CallAction::Report(Report::Refused { agent }));
                }
            }
            CallInput::Abandon => {
                if self.phase == Phase::Live && self.agent.is_none() {
                    self.phase = Phase::Abandoning;
                    self.push(CallAction::State(CallState::Abandoning));
                    self.push(CallAction::Play(PromptKind::Abandon));
                }
            }
            CallInput::PlaybackFinished => match self.phase {
                Phase::Abandoning => {
                    self.message_done = true;
                    self.hang_up(Outcome::Abandoned, None, EndReason::Completed);
                }
                Phase::LeavingMessage => {
                    self.message_done = true;
                    self.hang_up(Outcome::MachineMessageLeft, None, EndReason::Completed);
                }
                Phase::Agentless => {
                    self.message_done = true;
                    self.hang_up(Outcome::Connected, None, EndReason::Completed);
                }
                _ => {}
            },
            CallInput::Hangup(reason) => self.hangup_requested(reason),
            CallInput::Ended { outcome, code } => self.ended(outcome, code),
        }
    }

    fn hangup_requested(&mut self, reason: HangupReason) {
        match (self.phase, reason) {
            (Phase::Leased, _) if self.hangup_before_placed.is_none() => {
                self.hangup_before_placed = Some(reason);
                self.push(CallAction::Hangup);
            }
            (Phase::Leased, _) => {}
            (Phase::Dialing | Phase::Ringing | Phase::EarlyMedia, HangupReason::PacerCancel) => {
                self.push(CallAction::StopListening);
                self.hang_up(
                    Outcome::NoAnswer,
                    Some("cancelled by the pacer (over-dialed)".into()),
                    EndReason::Canceled,
                );
            }
            (Phase::Dialing | Phase::Ringing | Phase::EarlyMedia, _) => {
                self.push(CallAction::StopListening);
                self.hang_up(
                    Outcome::Failed,
                    Some("cancelled: campaign stopped or engine shutting down".into()),
                    EndReason::Canceled,
                );
            }
            (Phase::Bridged, HangupReason::Agent | HangupReason::AgentGone | HangupReason::Cut) => {
                self.hang_up(Outcome::Connected, None, EndReason::Completed);
            }
            // Answered calls finish their course (an agent, an abandon message, a machine's
            // message) unless the grace is over.
            (_, HangupReason::Cut) => {
                let (outcome, reason) = self.answered_outcome();
                self.hang_up(outcome, reason, EndReason::Completed);
            }
            _ => {}
        }
    }

    /// What an answered call counts as if it ends now.
    fn answered_outcome(&self) -> (Outcome, Option<String>) {
        match self.phase {
            Phase::Bridged => (Outcome::Connected, None),
            Phase::Live => (
                Outcome::Abandoned,
                Some("callee hung up before an agent was connected".into()),
            ),
            Phase::Abandoning => (
                Outcome::Abandoned,
                (!self.message_done).then(|| "abandon message cut short".into()),
            ),
            Phase::Agentless => (Outcome::Connected, None),
            Phase::LeavingMessage if self.message_done => (Outcome::MachineMessageLeft, None),
            Phase::MachineHangup | Phase::WaitingBeep | Phase::LeavingMessage => (
                Outcome::MachineHungUp,
                (self.phase == Phase::LeavingMessage)
                    .then(|| "machine hung up during the message".into()),
            ),
            Phase::Answered => (
                Outcome::Failed,
                Some("callee hung up during answering-machine detection".into()),
            ),
            Phase::Leased | Phase::Dialing | Phase::Ringing | Phase::EarlyMedia | Phase::Done => {
                (Outcome::Failed, None)
            }
        }
    }

    fn ended(&mut self, sip_outcome: sip::InviteResult, code: Option<u16>) {
        let answered = self.is_answered();
        let (outcome, reason, pacer) = if let Some(decided) = self.decided.take() {
            decided
        } else if answered {
            let (outcome, reason) = self.answered_outcome();
            (outcome, reason, EndReason::Completed)
        } else {
            unanswered_outcome(&sip_outcome, code)
        };
        if self.phase == Phase::Bridged {
            self.push(CallAction::Unbridge);
        }
        self.push(CallAction::StopListening);
        self.phase = Phase::Done;
        self.timer = None;
        self.push(CallAction::Finish(Finished {
            outcome,
            sip_code: code,
            reason,
            pacer,
            agent: self.agent,
        }));
    }

    /// Runs the timer (beep wait, AMD without audio).
    pub(crate) fn handle_timeout(&mut self, now: Duration) {
        let Some(due) = self.timer else { return };
        if now < due {
            return;
        }
        self.timer = None;
        match self.phase {
            Phase::WaitingBeep => self.leave_message(),
            Phase::Answered => self.not_sure(now, now),
            _ => {}
        }
    }
}

/// The outcome of a call that ended before an answer, from its SIP end.
fn unanswered_outcome(
    outcome: &sip::InviteResult,
    code: Option<u16>,
) -> (Outcome, Option<String>, EndReason) {
    use sip::InviteResult as S;
    match outcome {
        S::Busy => (Outcome::Busy, None, EndReason::Busy),
        S::NoAnswer => (Outcome::NoAnswer, None, EndReason::NoAnswer),
        S::Rejected => (Outcome::Rejected, None, EndReason::Failed),
        S::NotFound => (Outcome::InvalidNumber, None, EndReason::Failed),
        S::Unavailable if code == Some(480) => (Outcome::Rejected, None, EndReason::Failed),
        S::Unavailable => (Outcome::Failed, None, EndReason::Failed),
        S::Cancelled => (
            Outcome::Failed,
            Some("cancelled before an answer".into()),
            EndReason::Canceled,
        ),
        S::Failed { code, reason } => {
            let outcome = if (400..500).contains(code) && *code != 408 {
                Outcome::Rejected
            } else {
                Outcome::Failed
            };
            (outcome, Some(format!("{code} {reason}")), EndReason::Failed)
        }
        // An end reported as answered without the answer event: nothing was said.
        S::Answered => (
            Outcome::Failed,
            Some("ended without a usable answer".into()),
            EndReason::Failed,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> CallConfig {
        CallConfig {
            amd: true,
            machine_action: MachineAction::HangUp,
            not_sure_action: NotSureAction::Agent,
            agentless: false,
            beep_timeout: Duration::from_secs(20),
            amd_timeout: Duration::from_secs(6),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn placed(cfg: CallConfig) -> CallMachine {
        let mut m = CallMachine::new(cfg);
        m.placed();
        m
    }

    fn drain(m: &mut CallMachine) -> Vec<CallAction> {
        std::iter::from_fn(|| m.poll_action()).collect()
    }

    fn finished(actions: &[CallAction]) -> Option<Finished> {
        actions.iter().find_map(|a| match a {
            CallAction::Finish(f) => Some(f.clone()),
            _ => None,
        })
    }

    fn ended(code: u16) -> CallInput {
        CallInput::Ended {
            outcome: sip::InviteResult::from_status(code, ""),
            code: Some(code),
        }
    }

    #[test]
    fn live_answer_is_bridged_then_connected() {
        let mut m = placed(cfg());
        m.handle(
            ms(0),
            CallInput::Progress {
                code: 180,
                early_media: false,
            },
        );
        m.handle(ms(3000), CallInput::Answered);
        let a = drain(&mut m);
        assert!(a.contains(&CallAction::Record(AttemptEvent::Ringing)));
        assert!(a.contains(&CallAction::Record(AttemptEvent::Answered)));
        assert!(a.contains(&CallAction::ListenAmd));
        m.handle(
            ms(5000),
            CallInput::Amd {
                result: Some(AmdResult::Human),
                greeting_end: Some(ms(4200)),
                cause: "HUMAN".into(),
            },
        );
        let a = drain(&mut m);
        assert!(a.contains(&CallAction::Report(Report::Live {
            greeting_end: ms(4200)
        })));
        m.handle(ms(5100), CallInput::Assigned { agent: 7 });
        assert_eq!(drain(&mut m), vec![CallAction::Bridge { agent: 7 }]);
        m.handle(
            ms(0),
            CallInput::Bridged {
                agent: m.agent().unwrap(),
            },
        );
        let a = drain(&mut m);
        assert!(a.contains(&CallAction::Record(AttemptEvent::Bridged { agent_id: 7 })));
        assert!(a.contains(&CallAction::Report(Report::Bridged { agent: 7 })));
        // The callee hangs up.
        m.handle(
            ms(60_000),
            CallInput::Ended {
                outcome: sip::InviteResult::Answered,
                code: Some(200),
            },
        );
        let f = finished(&drain(&mut m)).unwrap();
        assert_eq!(f.outcome, Outcome::Connected);
        assert_eq!(f.agent, Some(7));
        assert_eq!(f.pacer, EndReason::Completed);
        assert_eq!(m.stage(), Stage::Done);
    }

    #[test]
    fn agent_hash_ends_a_bridged_call() {
        let mut m = placed(CallConfig {
            amd: false,
            ..cfg()
        });
        m.handle(ms(0), CallInput::Answered);
        m.handle(ms(10), CallInput::Assigned { agent: 3 });
        m.handle(
            ms(0),
            CallInput::Bridged {
                agent: m.agent().unwrap(),
            },
        );
        drain(&mut m);
        m.handle(ms(20_000), CallInput::Hangup(HangupReason::Agent));
        assert_eq!(drain(&mut m), vec![CallAction::Hangup]);
        m.handle(
            ms(20_050),
            CallInput::Ended {
                outcome: sip::InviteResult::Answered,
                code: Some(200),
            },
        );
        let a = drain(&mut m);
        assert!(a.contains(&CallAction::Unbridge));
        assert_eq!(finished(&a).unwrap().outcome, Outcome::Connected);
    }

    #[test]
    fn no_agent_means_abandon_message_then_bye() {
        let mut m = placed(CallConfig {
            amd: false,
            ..cfg()
        });
        m.handle(ms(0), CallInput::Answered);
        drain(&mut m);
        m.handle(ms(2000), CallInput::Abandon);
        assert_eq!(
            drain(&mut m),
            vec![
                CallAction::State(CallState::Abandoning),
                CallAction::Play(PromptKind::Abandon)
            ]
        );
        // A late agent is refused.
        m.handle(ms(2100), CallInput::Assigned { agent: 1 });
        assert_eq!(
            drain(&mut m),
            vec![CallAction::Report(Report::Refused { agent: 1 })]
        );
        m.handle(ms(5000), CallInput::PlaybackFinished);
        assert_eq!(drain(&mut m), vec![CallAction::Hangup]);
        m.handle(
            ms(5010),
            CallInput::Ended {
                outcome: sip::InviteResult::Answered,
                code: Some(200),
            },
        );
        let f = finished(&drain(&mut m)).unwrap();
        assert_eq!((f.outcome, f.reason), (Outcome::Abandoned, None));
    }

    #[test]
    fn machines_are_hung_up_on_or_get_the_message_after_the_beep() {
        let machine = |m: &mut CallMachine| {
            m.handle(ms(0), CallInput::Answered);
            m.handle(
                ms(3000),
                CallInput::Amd {
                    result: Some(AmdResult::Machine),
                    greeting_end: None,
                    cause: "MAXSYLLABLES".into(),
                },
            );
        };
        let mut m = placed(cfg());
        machine(&mut m);
        assert!(drain(&mut m).contains(&CallAction::Hangup));
        m.handle(ms(3050), ended(200));
        assert_eq!(
            finished(&drain(&mut m)).unwrap().outcome,
            Outcome::MachineHungUp
        );

        let leave = CallConfig {
            machine_action: MachineAction::LeaveMessage,
            not_sure_action: NotSureAction::Agent,
            ..cfg()
        };
        let mut m = placed(leave.clone());
        machine(&mut m);
        assert!(drain(&mut m).contains(&CallAction::ListenBeep));
        m.handle(ms(9000), CallInput::Beep);
        assert!(drain(&mut m).contains(&CallAction::Play(PromptKind::Voicemail)));
        m.handle(ms(15_000), CallInput::PlaybackFinished);
        m.handle(ms(15_010), ended(200));
        assert_eq!(
            finished(&drain(&mut m)).unwrap().outcome,
            Outcome::MachineMessageLeft
        );

        // No beep: the message is left when the wait runs out.
        let mut m = placed(leave);
        machine(&mut m);
        drain(&mut m);
        assert_eq!(m.poll_timeout(), Some(ms(23_000)));
        m.handle_timeout(ms(23_000));
        assert!(drain(&mut m).contains(&CallAction::Play(PromptKind::Voicemail)));
        // The machine hangs up half-way through.
        m.handle(ms(24_000), ended(200));
        let f = finished(&drain(&mut m)).unwrap();
        assert_eq!(f.outcome, Outcome::MachineHungUp);
    }

    #[test]
    fn failures_before_answer_map_to_outcomes() {
        for (code, outcome, pacer) in [
            (486, Outcome::Busy, EndReason::Busy),
            (600, Outcome::Busy, EndReason::Busy),
            (404, Outcome::InvalidNumber, EndReason::Failed),
            (503, Outcome::Failed, EndReason::Failed),
            (480, Outcome::Rejected, EndReason::Failed),
            (603, Outcome::Rejected, EndReason::Failed),
            (408, Outcome::NoAnswer, EndReason::NoAnswer),
            (488, Outcome::Rejected, EndReason::Failed),
        ] {
            let mut m = placed(cfg());
            m.handle(
                ms(0),
                CallInput::Progress {
                    code: 180,
                    early_media: false,
                },
            );
            m.handle(ms(100), ended(code));
            let f = finished(&drain(&mut m)).unwrap();
            assert_eq!(
                (f.outcome, f.pacer, f.sip_code),
                (outcome, pacer, Some(code)),
                "{code}"
            );
        }
    }

    #[test]
    fn sit_in_early_media_cancels_as_invalid_number() {
        let mut m = placed(cfg());
        m.handle(
            ms(0),
            CallInput::Progress {
                code: 183,
                early_media: true,
            },
        );
        let a = drain(&mut m);
        assert!(a.contains(&CallAction::Record(AttemptEvent::EarlyMedia)));
        assert!(a.contains(&CallAction::ListenSit));
        m.handle(
            ms(900),
            CallInput::Sit {
                invalid: true,
                name: "IC".into(),
            },
        );
        assert!(drain(&mut m).contains(&CallAction::Hangup));
        // The carrier answers our CANCEL with 487 (or sends its 404 first): SIT decides.
        m.handle(
            ms(950),
            CallInput::Ended {
                outcome: sip::InviteResult::Cancelled,
                code: Some(487),
            },
        );
        let f = finished(&drain(&mut m)).unwrap();
        assert_eq!(f.outcome, Outcome::InvalidNumber);
        assert!(f.reason.unwrap().contains("IC"));
    }

    #[test]
    fn silent_answer_becomes_notsure_and_live() {
        let mut m = placed(cfg());
        m.handle(ms(0), CallInput::Answered);
        drain(&mut m);
        m.handle_timeout(ms(5999));
        assert!(drain(&mut m).is_empty());
        m.handle_timeout(ms(6000));
        let a = drain(&mut m);
        assert!(a.contains(&CallAction::Record(AttemptEvent::Amd(AmdResult::NotSure))));
        assert!(a.contains(&CallAction::Report(Report::Live {
            greeting_end: ms(6000)
        })));
    }

    #[test]
    fn notsure_goes_to_an_agent_or_is_hung_up_as_the_campaign_chooses() {
        let not_sure = |m: &mut CallMachine| {
            m.handle(ms(0), CallInput::Answered);
            drain(m);
            m.handle(
                ms(5000),
                CallInput::Amd {
                    result: Some(AmdResult::NotSure),
                    greeting_end: Some(ms(4200)),
                    cause: "TOOLONG".into(),
                },
            );
            drain(m)
        };
        let a = not_sure(&mut placed(cfg()));
        assert!(a.contains(&CallAction::Record(AttemptEvent::Amd(AmdResult::NotSure))));
        assert!(a.contains(&CallAction::Report(Report::Live {
            greeting_end: ms(4200)
        })));

        let hang_up = CallConfig {
            not_sure_action: NotSureAction::HangUp,
            ..cfg()
        };
        let mut m = placed(hang_up.clone());
        let a = not_sure(&mut m);
        assert!(a.contains(&CallAction::Record(AttemptEvent::Amd(AmdResult::NotSure))));
        assert!(a.contains(&CallAction::Hangup), "{a:?}");
        assert!(
            !a.iter()
                .any(|x| matches!(x, CallAction::Report(Report::Live { .. })))
        );
        m.handle(ms(5050), ended(200));
        assert_eq!(
            finished(&drain(&mut m)).unwrap().outcome,
            Outcome::MachineHungUp
        );
        // No audio at all before the timeout is NOTSURE too, and follows the same choice.
        let mut m = placed(hang_up);
        m.handle(ms(0), CallInput::Answered);
        drain(&mut m);
        m.handle_timeout(ms(6000));
        assert!(drain(&mut m).contains(&CallAction::Hangup));
    }

    #[test]
    fn stop_cancels_ringing_calls_but_not_answered_ones() {
        let mut m = placed(cfg());
        m.handle(
            ms(0),
            CallInput::Progress {
                code: 180,
                early_media: false,
            },
        );
        m.handle(ms(10), CallInput::Hangup(HangupReason::Stop));
        assert!(drain(&mut m).contains(&CallAction::Hangup));
        m.handle(
            ms(20),
            CallInput::Ended {
                outcome: sip::InviteResult::Cancelled,
                code: Some(487),
            },
        );
        let f = finished(&drain(&mut m)).unwrap();
        assert_eq!((f.outcome, f.pacer), (Outcome::Failed, EndReason::Canceled));

        let mut m = placed(CallConfig {
            amd: false,
            ..cfg()
        });
        m.handle(ms(0), CallInput::Answered);
        m.handle(ms(10), CallInput::Assigned { agent: 1 });
        m.handle(
            ms(0),
            CallInput::Bridged {
                agent: m.agent().unwrap(),
            },
        );
        drain(&mut m);
        m.handle(ms(20), CallInput::Hangup(HangupReason::Stop));
        assert!(
            drain(&mut m).is_empty(),
            "a bridged call finishes by itself"
        );
        m.handle(ms(30), CallInput::Hangup(HangupReason::Cut));
        assert_eq!(drain(&mut m), vec![CallAction::Hangup]);
    }

    #[test]
    fn a_stop_before_the_invite_skips_or_cancels_the_call() {
        let mut m = CallMachine::new(cfg());
        assert_eq!(m.stage(), Stage::Leased);
        m.handle(ms(0), CallInput::Hangup(HangupReason::Stop));
        assert_eq!(drain(&mut m), vec![CallAction::Hangup]);
        // The INVITE crossed the stop: the driver cancels it; the end is the stop's.
        m.placed();
        let a = drain(&mut m);
        assert!(a.contains(&CallAction::State(CallState::Dialing)));
        assert!(!a.contains(&CallAction::Hangup), "one CANCEL only: {a:?}");
        m.handle(
            ms(20),
            CallInput::Ended {
                outcome: sip::InviteResult::Cancelled,
                code: Some(487),
            },
        );
        let f = finished(&drain(&mut m)).unwrap();
        assert_eq!((f.outcome, f.pacer), (Outcome::Failed, EndReason::Canceled));
        assert!(f.reason.unwrap().contains("campaign stopped"));
    }

    #[test]
    fn a_bridge_is_only_taken_for_the_agent_assigned() {
        let mut m = placed(CallConfig {
            amd: false,
            ..cfg()
        });
        m.handle(ms(0), CallInput::Answered);
        m.handle(ms(10), CallInput::Assigned { agent: 1 });
        assert_eq!(m.stage(), Stage::Reserved);
        // The agent logged out before the bridge was made; another is assigned.
        m.handle(ms(20), CallInput::Unassigned);
        assert_eq!(m.stage(), Stage::Waiting);
        m.handle(ms(30), CallInput::Assigned { agent: 2 });
        drain(&mut m);
        // The first agent's bridge reports late: not taken for the second's.
        m.handle(ms(40), CallInput::Bridged { agent: 1 });
        assert_eq!(m.stage(), Stage::Reserved);
        m.handle(ms(40), CallInput::BridgeFailed { agent: 1 });
        assert_eq!(m.stage(), Stage::Reserved);
        m.handle(ms(50), CallInput::Bridged { agent: 2 });
        assert_eq!(m.stage(), Stage::Bridged);
        assert!(drain(&mut m).contains(&CallAction::Report(Report::Bridged { agent: 2 })));
    }

    #[test]
    fn agentless_plays_the_message_to_live_answers() {
        let mut m = placed(CallConfig {
            agentless: true,
            amd: false,
            ..cfg()
        });
        m.handle(ms(0), CallInput::Answered);
        assert!(drain(&mut m).contains(&CallAction::Play(PromptKind::Agentless)));
        m.handle(ms(8000), CallInput::PlaybackFinished);
        assert_eq!(drain(&mut m), vec![CallAction::Hangup]);
        m.handle(ms(8010), ended(200));
        assert_eq!(
            finished(&drain(&mut m)).unwrap().outcome,
            Outcome::Connected
        );
    }
}
