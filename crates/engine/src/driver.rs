//! The call task: one per leased contact, a pump around the call's state machine
//! ([`crate::call::CallMachine`]), which the campaign core owns. It re-checks the contact just
//! before dialling, takes a slot of the trunk's calls-per-second budget, opens the RTP leg,
//! places the call, then hands every SIP and media happening to the core and carries out the
//! actions the core sends back (listen, bridge, play, hang up, record, finish).

use crate::call::{CallAction, CallInput, Finished, PromptKind};
use crate::core::CoreInput;
use crate::error::EngineError;
use crate::inbox::{
    ActorMsg, CallCommand, LegOp, Runtime, answered_media, local_media, offered_media,
};
use crate::shared::Shared;
use crate::view::{CallState, CallUpdate};
use chrono::Utc;
use domain::Outcome;
use media::detect::{AmdDetector, AmdVerdict, ToneEvent, ToneParams, Tones};
use media::{Bridge, Leg, LegEvent, LegOptions, PlaybackId, Recording};
use sip::sdp::LocalMedia;
use sip::{CallEvent, CallerId, OutboundCall};
use std::sync::Arc;
use std::time::Duration;
use store::{AttemptEvent, Finish, LeasedContact};
use tokio::sync::{mpsc, oneshot};

/// Everything a call task needs.
pub(crate) struct CallCtx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) key: u64,
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) contact: LeasedContact,
    pub(crate) actor: mpsc::UnboundedSender<ActorMsg>,
    pub(crate) commands: mpsc::UnboundedReceiver<CallCommand>,
}

enum Detected {
    Amd(AmdVerdict),
    Tone(ToneEvent),
}

enum Write {
    Event(AttemptEvent, chrono::DateTime<Utc>),
    Finish(Finish, oneshot::Sender<()>),
}

/// How long before the calling window closes the last call may be started: the INVITE leaves
/// a few milliseconds after the check (attempt row, RTP leg), and a loaded machine may take
/// longer.
const DIAL_GUARD: Duration = Duration::from_secs(1);

impl CallCtx {
    fn report(&self, input: CoreInput) {
        let _ = self.actor.send(ActorMsg::Core(input));
    }

    /// Gives the contact back undialled.
    async fn skip(&self, why: &str) {
        tracing::info!(
            campaign = %self.runtime.name,
            contact_id = self.contact.id,
            why,
            "contact not dialled"
        );
        if let Err(err) = self
            .shared
            .store
            .release(&[self.contact.id], &self.shared.config.node_id)
            .await
        {
            tracing::warn!(%err, contact_id = self.contact.id, "cannot release the lease");
        }
        self.report(CoreInput::CallSkipped { key: self.key });
    }

    /// Whether a stop arrived while waiting.
    fn stopped(&mut self) -> bool {
        while let Ok(cmd) = self.commands.try_recv() {
            if matches!(cmd, CallCommand::Do(CallAction::Hangup)) {
                return true;
            }
        }
        false
    }

    /// The last check before dialling: calling hours in the callee's zones now, do-not-call
    /// lists (a number added a second ago counts), attempts left.
    async fn recheck(&self) -> Result<(), String> {
        let spec = &self.runtime.spec;
        // Open now and still open when the INVITE leaves (after the attempt row and the RTP
        // leg): a window closing within the guard is treated as closed.
        let now = Utc::now();
        let guard = chrono::Duration::from_std(DIAL_GUARD).unwrap_or_default();
        if !spec.calling_hours.is_open(&self.contact.zones, now)
            || !spec.calling_hours.is_open(&self.contact.zones, now + guard)
        {
            return Err("calling hours closed in the callee's time zone".into());
        }
        match self
            .shared
            .store
            .is_dnc(self.runtime.id, &self.contact.e164)
            .await
        {
            Ok(false) => {}
            Ok(true) => return Err("number on a do-not-call list".into()),
            Err(err) => return Err(format!("cannot check the do-not-call lists: {err}")),
        }
        // A callback promised to the callee is made whatever the retry limit (the lease
        // hands callbacks out regardless of attempts; refusing one here would loop).
        if !self.contact.callback && self.contact.attempts >= spec.retry.max_attempts {
            return Err("no attempts left".into());
        }
        Ok(())
    }
}

/// Runs one call from the lease to the stored outcome.
pub(crate) async fn run(mut ctx: CallCtx) {
    if ctx.stopped() {
        return ctx.skip("campaign stopped").await;
    }
    if let Err(why) = ctx.recheck().await {
        return ctx.skip(&why).await;
    }
    // The trunk's budget, shared by every node: one slot reserved, slept until, used. Without
    // it the endpoint's own limiter keeps this node under the cap.
    let trunk_key = ctx.runtime.trunk.uri().to_string();
    let cps = ctx.runtime.spec.trunk.cps;
    let slot_taken = match ctx.shared.cluster.take_cps(&trunk_key, cps).await {
        Ok(None) => true,
        Ok(Some(wait)) => {
            tokio::time::sleep(wait).await;
            true
        }
        Err(err) => {
            tracing::warn!(%err, "cluster CPS budget unavailable; using this node's cap");
            false
        }
    };
    if ctx.stopped() {
        return ctx.skip("campaign stopped").await;
    }
    // Hours may have closed while waiting for a slot.
    if let Err(why) = ctx.recheck().await {
        return ctx.skip(&why).await;
    }
    let shared = ctx.shared.clone();
    let label = format!("{}:{}", ctx.runtime.name, ctx.contact.id);
    let (leg, leg_events) = match shared.media.open_leg(
        &shared.ports,
        LegOptions {
            label,
            ..LegOptions::default()
        },
    ) {
        Ok(leg) => leg,
        Err(err) => {
            tracing::error!(%err, "cannot open an RTP leg");
            return ctx.skip("no RTP port").await;
        }
    };
    let attempt = match shared
        .store
        .start_attempt(ctx.contact.id, &shared.config.node_id, Utc::now())
        .await
    {
        Ok(id) => id,
        // Listed between the recheck and now: the store refused the attempt.
        Err(store::Error::DoNotCall(_)) => return ctx.skip("number on a do-not-call list").await,
        Err(err) => {
            tracing::error!(%err, contact_id = ctx.contact.id, "cannot start the attempt");
            return ctx.skip("store unavailable").await;
        }
    };
    shared.add_in_flight(1);
    ctx.report(CoreInput::CallPlaced {
        key: ctx.key,
        attempt,
    });
    let writer = spawn_writer(shared.clone(), attempt);
    let spec = &ctx.runtime.spec;
    // The campaign check keeps SRTP to TLS trunks unless sdes_without_tls says otherwise.
    let local = local_media(leg.local_rtp_addr(), spec.trunk.srtp);
    let outbound = OutboundCall {
        number: ctx.contact.e164.clone(),
        caller_id: CallerId {
            number: spec
                .caller_id_e164()
                .unwrap_or_else(|| spec.caller_id.clone()),
            name: None,
        },
        media: local.clone(),
        ring_timeout: spec.ring_timeout.0,
        headers: vec![("X-Campaign".into(), ctx.runtime.name.clone())],
    };
    let mut live = Live {
        local,
        leg,
        leg_events,
        attempt,
        writer,
        bridge: None,
        agent_leg: None,
        agent: None,
        recording: None,
        playback: None,
        held: false,
        hold_playback: None,
        detected: mpsc::unbounded_channel(),
        call: None,
    };
    let dialled = if slot_taken {
        shared.endpoint.dial_now(&ctx.runtime.trunk, outbound).await
    } else {
        shared.endpoint.dial(&ctx.runtime.trunk, outbound).await
    };
    match dialled {
        Ok(call) => live.call = Some(call),
        Err(err) => {
            tracing::warn!(%err, attempt, "INVITE not sent");
            live.input(
                &ctx,
                CallInput::Ended {
                    outcome: sip::InviteResult::Failed {
                        code: 503,
                        reason: err.to_string(),
                    },
                    code: None,
                },
            );
        }
    }
    live.run(&mut ctx).await;
}

/// A placed call's I/O: the SIP call, the RTP leg, the detectors, the bridge, the recording.
struct Live {
    /// What we offered: its SRTP keys settle the answer's.
    local: LocalMedia,
    leg: Leg,
    leg_events: media::LegEvents,
    attempt: i64,
    writer: mpsc::UnboundedSender<Write>,
    bridge: Option<Bridge>,
    agent_leg: Option<Leg>,
    /// The agent whose leg the callee is (being) bridged with, for the published updates.
    agent: Option<i64>,
    recording: Option<Recording>,
    playback: Option<PlaybackId>,
    /// The agent put the callee on hold: the bridge is down, the agent's leg kept.
    held: bool,
    /// The hold message playing (it loops).
    hold_playback: Option<PlaybackId>,
    detected: (
        mpsc::UnboundedSender<Detected>,
        mpsc::UnboundedReceiver<Detected>,
    ),
    call: Option<sip::Call>,
}

fn spawn_writer(shared: Arc<Shared>, attempt: i64) -> mpsc::UnboundedSender<Write> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Write>();
    tokio::spawn(async move {
        while let Some(write) = rx.recv().await {
            match write {
                Write::Event(event, at) => {
                    if let Err(err) = shared.store.attempt_event(attempt, event, at).await {
                        tracing::error!(%err, attempt, "cannot record a step of the call");
                    }
                }
                Write::Finish(finish, done) => {
                    if let Err(err) = shared.store.finish_attempt(attempt, &finish).await {
                        tracing::error!(%err, attempt, "cannot record the call's outcome");
                    }
                    let _ = done.send(());
                }
            }
        }
    });
    tx
}

impl Live {
    /// Hands a happening to the call's machine in the campaign core.
    fn input(&self, ctx: &CallCtx, input: CallInput) {
        ctx.report(CoreInput::Call {
            key: ctx.key,
            input,
        });
    }

    async fn run(&mut self, ctx: &mut CallCtx) {
        loop {
            tokio::select! {
                event = next_call_event(&mut self.call) => match event {
                    Some(CallEvent::Progress { code, sdp, .. }) => {
                        let early = sdp.as_ref().and_then(|sdp| match answered_media(&self.local, sdp) {
                            Ok(remote) => Some(remote),
                            Err(err) => {
                                tracing::warn!(%err, attempt = self.attempt, "early media unusable");
                                None
                            }
                        });
                        if let Some(remote) = &early
                            && let Err(err) = self.leg.set_remote(remote)
                        {
                            tracing::warn!(%err, attempt = self.attempt, "early media unusable");
                        }
                        self.input(ctx, CallInput::Progress { code, early_media: early.is_some() });
                    }
                    Some(CallEvent::Answered { sdp }) => {
                        let remote = sdp.as_ref().map(|sdp| answered_media(&self.local, sdp));
                        if let Some(Err(sip::sdp::SdpError::Srtp(err))) = &remote {
                            // SRTP the campaign requires was refused or mismatched: no audio
                            // in clear, so no call.
                            tracing::warn!(%err, attempt = self.attempt, "answer refused SRTP: hanging up");
                            if let Some(call) = self.call.take() {
                                call.hangup();
                            }
                            self.input(ctx, CallInput::Ended {
                                outcome: sip::InviteResult::Failed { code: 488, reason: format!("SRTP: {err}") },
                                code: Some(200),
                            });
                            continue;
                        }
                        match remote {
                            Some(Ok(remote)) => {
                                if let Err(err) = self.leg.set_remote(&remote) {
                                    tracing::warn!(%err, attempt = self.attempt, "answer's media unusable");
                                }
                            }
                            Some(Err(err)) => tracing::warn!(%err, attempt = self.attempt, "answer's media unusable"),
                            None => {}
                        }
                        self.input(ctx, CallInput::Answered);
                    }
                    Some(CallEvent::MediaChanged { sdp, .. }) => {
                        match offered_media(&self.local, &sdp) {
                            Ok(remote) => {
                                if let Err(err) = self.leg.set_remote(&remote) {
                                    tracing::warn!(%err, attempt = self.attempt, "re-offer's media unusable");
                                }
                            }
                            Err(err) => tracing::warn!(%err, attempt = self.attempt, "re-offer's media unusable"),
                        }
                    }
                    Some(CallEvent::Confirmed { .. }) => {}
                    Some(CallEvent::Ended(end)) => {
                        self.call = None;
                        self.input(ctx, CallInput::Ended { outcome: end.outcome, code: end.code });
                    }
                    None => {
                        self.call = None;
                        self.input(ctx, CallInput::Ended {
                            outcome: sip::InviteResult::Failed { code: 500, reason: "SIP endpoint stopped".into() },
                            code: None,
                        });
                    }
                },
                cmd = ctx.commands.recv() => match cmd {
                    Some(CallCommand::Do(CallAction::Finish(finished))) => {
                        return self.finish(ctx, finished).await;
                    }
                    Some(CallCommand::Do(action)) => self.execute(ctx, action),
                    Some(CallCommand::Bridge { agent, leg }) => self.bridge(ctx, agent, leg),
                    Some(CallCommand::Leg { op, view, reply }) => {
                        let _ = reply.send(self.leg_op(ctx, op).map(|()| *view));
                    }
                    None => {
                        // The campaign is gone (its actor stopped before this call ended):
                        // end the call and say so in its outcome rather than leave it open.
                        if let Some(call) = &self.call {
                            call.hangup();
                        }
                        let finished = Finished {
                            outcome: Outcome::Failed,
                            sip_code: None,
                            reason: Some("the campaign stopped before the call ended".into()),
                            pacer: pacing::EndReason::Canceled,
                            agent: self.agent,
                        };
                        return self.finish(ctx, finished).await;
                    }
                },
                Some(found) = self.detected.1.recv() => self.detected(ctx, found),
                Some(event) = self.leg_events.recv() => {
                    if let LegEvent::PlaybackFinished { id, .. } = event {
                        if self.playback == Some(id) {
                            self.playback = None;
                            self.input(ctx, CallInput::PlaybackFinished);
                        } else if self.hold_playback == Some(id) {
                            // The last of the queued plays ended.
                            // The hold message loops for as long as the callee waits.
                            self.hold_playback = None;
                            if self.held {
                                self.play_hold(ctx);
                            }
                        }
                    }
                }
            }
        }
    }

    fn detected(&mut self, ctx: &CallCtx, found: Detected) {
        let now = ctx.shared.now();
        match found {
            Detected::Amd(v) => {
                let result = match v.result {
                    media::detect::AmdResult::Human => Some(domain::AmdResult::Human),
                    media::detect::AmdResult::Machine => Some(domain::AmdResult::Machine),
                    media::detect::AmdResult::NotSure => Some(domain::AmdResult::NotSure),
                    media::detect::AmdResult::Hangup => None,
                };
                // Stream time to the engine's clock: the verdict is "now".
                let greeting_end = v.greeting_end_ms.map(|end| {
                    now.saturating_sub(Duration::from_millis(u64::from(
                        v.decided_at_ms.saturating_sub(end),
                    )))
                });
                tracing::debug!(attempt = self.attempt, result = %v.result, cause = %v.cause, "amd");
                // By result and cause, so a supervisor sees a drift in the machine share and
                // what drives it.
                metrics::counter!(
                    "dialer_amd_verdicts_total",
                    "campaign" => ctx.runtime.name.clone(),
                    "result" => v.result.as_str(),
                    "cause" => v.cause.as_str()
                )
                .increment(1);
                self.input(
                    ctx,
                    CallInput::Amd {
                        result,
                        greeting_end,
                        cause: v.cause.as_str().to_owned(),
                    },
                );
            }
            Detected::Tone(ToneEvent::Sit { code, .. }) => self.input(
                ctx,
                CallInput::Sit {
                    invalid: code.number_is_invalid(),
                    name: format!("{code:?}"),
                },
            ),
            Detected::Tone(ToneEvent::Beep { .. }) => self.input(ctx, CallInput::Beep),
            Detected::Tone(ToneEvent::Fax { .. }) => {}
        }
    }

    fn listen_tones(&self) {
        let tx = self.detected.0.clone();
        let mut tones = Tones::new(ToneParams::default());
        self.leg
            .set_listener(Some(Box::new(move |pcm: &[i16], ts: u32| {
                let mut event = tones.push(pcm, ts);
                while let Some(e) = event {
                    let _ = tx.send(Detected::Tone(e));
                    event = tones.next_event();
                }
            })));
    }

    /// Holds, resumes or sends keys for the agent; refused (with why) unless the callee is
    /// bridged with the agent.
    fn leg_op(&mut self, ctx: &CallCtx, op: LegOp) -> crate::error::Result<()> {
        let agent = self.agent.unwrap_or_default();
        let refuse = |action: &'static str, reason: &str| {
            Err(EngineError::CallRefused {
                agent,
                action,
                reason: reason.to_owned(),
            })
        };
        match op {
            LegOp::Dtmf(digits) => {
                if self.held {
                    return refuse("send keys", "the callee is on hold");
                }
                if self.bridge.is_none() {
                    return refuse("send keys", "the callee is not connected");
                }
                match self.leg.send_dtmf(&digits) {
                    Ok(()) => {
                        tracing::info!(
                            attempt = self.attempt,
                            agent,
                            keys = digits.len(),
                            "keys sent to the callee"
                        );
                        Ok(())
                    }
                    Err(err) => refuse(
                        "send keys",
                        &format!("{err} (the callee's SDP offered no telephone-event)"),
                    ),
                }
            }
            LegOp::Hold(true) => {
                if self.held {
                    return refuse("hold", "the callee is on hold already");
                }
                let Some(bridge) = self.bridge.take() else {
                    return refuse("hold", "the callee is not connected");
                };
                // The agent's leg goes back to its comfort silence; the callee hears the
                // hold message, or silence.
                bridge.disconnect();
                self.held = true;
                self.play_hold(ctx);
                tracing::info!(attempt = self.attempt, agent, "callee on hold");
                Ok(())
            }
            LegOp::Hold(false) => {
                if !self.held {
                    return refuse("unhold", "the callee is not on hold");
                }
                let Some(agent_leg) = self.agent_leg.clone() else {
                    return refuse("unhold", "the agent's leg is gone");
                };
                self.held = false;
                self.leg.stop_playback();
                self.hold_playback = None;
                self.leg.set_comfort_silence(false);
                match Bridge::connect(&self.leg, &agent_leg) {
                    Ok(bridge) => {
                        self.bridge = Some(bridge);
                        tracing::info!(attempt = self.attempt, agent, "callee back with the agent");
                        Ok(())
                    }
                    Err(err) => {
                        tracing::warn!(%err, attempt = self.attempt, agent, "bridge after hold failed");
                        Err(EngineError::Media(err))
                    }
                }
            }
        }
    }

    /// Starts the campaign's hold message on the callee's leg, or silence without one.
    fn play_hold(&mut self, ctx: &CallCtx) {
        match ctx.runtime.setup.prompts.hold.as_ref() {
            Some(prompt) => {
                // About a minute of it queued at once, so the loop never waits on this task
                // between two plays; the last one's end queues the next minute.
                let once = prompt.duration().as_millis().max(20);
                let times = (60_000 / once).clamp(1, 3000);
                for _ in 0..times {
                    self.hold_playback = Some(self.leg.play(prompt));
                }
            }
            None => self.leg.set_comfort_silence(true),
        }
    }

    /// Carries out one of the machine's actions (all but the bridge and the end).
    fn execute(&mut self, ctx: &CallCtx, action: CallAction) {
        match action {
            CallAction::State(state) => self.publish(ctx, state, None, None),
            CallAction::Record(event) => {
                let _ = self.writer.send(Write::Event(event, Utc::now()));
            }
            CallAction::ListenSit | CallAction::ListenBeep => self.listen_tones(),
            CallAction::ListenAmd => {
                let tx = self.detected.0.clone();
                match AmdDetector::new(ctx.runtime.setup.amd.clone()) {
                    Ok(mut amd) => {
                        self.leg
                            .set_listener(Some(Box::new(move |pcm: &[i16], ts: u32| {
                                if let Some(v) = amd.push(pcm, ts) {
                                    let _ = tx.send(Detected::Amd(v));
                                }
                            })))
                    }
                    // Checked when the campaign was loaded; a person is never hung up on.
                    Err(err) => tracing::error!(%err, "AMD parameters refused"),
                }
            }
            CallAction::StopListening => self.leg.set_listener(None),
            CallAction::Unbridge => {
                self.bridge = None;
                self.agent_leg = None;
                self.held = false;
            }
            CallAction::Play(kind) => {
                let prompts = &ctx.runtime.setup.prompts;
                let prompt = match kind {
                    PromptKind::Abandon => prompts.abandon.as_ref(),
                    PromptKind::Voicemail => prompts.voicemail.as_ref(),
                    PromptKind::Agentless => prompts.agentless.as_ref(),
                };
                match prompt {
                    Some(prompt) => self.playback = Some(self.leg.play(prompt)),
                    None => {
                        tracing::error!(?kind, campaign = %ctx.runtime.name, "no message to play");
                        self.input(ctx, CallInput::PlaybackFinished);
                    }
                }
            }
            CallAction::Hangup => {
                if let Some(call) = &self.call {
                    call.hangup();
                }
            }
            // The actor sends these as their own commands; reports stay in the core.
            CallAction::Bridge { .. } | CallAction::Report(_) | CallAction::Finish(_) => {}
        }
    }

    /// Connects the callee's leg with the agent's (replacing a bridge to an agent taken back).
    fn bridge(&mut self, ctx: &CallCtx, agent: i64, agent_leg: Leg) {
        match Bridge::connect(&self.leg, &agent_leg) {
            Ok(bridge) => {
                self.bridge = Some(bridge);
                self.agent_leg = Some(agent_leg);
                self.agent = Some(agent);
                if ctx.runtime.spec.recording && self.recording.is_none() {
                    self.start_recording(ctx);
                }
                self.input(ctx, CallInput::Bridged { agent });
            }
            Err(err) => {
                tracing::warn!(%err, agent, attempt = self.attempt, "bridge failed");
                self.input(ctx, CallInput::BridgeFailed { agent });
            }
        }
    }

    fn start_recording(&mut self, ctx: &CallCtx) {
        let Some(agent_leg) = &self.agent_leg else {
            return;
        };
        let dir = ctx.shared.config.recordings_dir.join(&ctx.runtime.name);
        if let Err(err) = std::fs::create_dir_all(&dir) {
            tracing::error!(%err, dir = %dir.display(), "cannot create the recordings directory");
            return;
        }
        match Recording::start(
            dir.join(format!("{}.wav", self.attempt)),
            &self.leg,
            Some(agent_leg),
        ) {
            Ok(recording) => self.recording = Some(recording),
            Err(err) => tracing::error!(%err, attempt = self.attempt, "cannot start the recording"),
        }
    }

    fn publish(
        &self,
        ctx: &CallCtx,
        state: CallState,
        outcome: Option<Outcome>,
        code: Option<u16>,
    ) {
        ctx.shared.publish_call(CallUpdate {
            campaign: ctx.runtime.name.clone(),
            attempt_id: self.attempt,
            contact_id: ctx.contact.id,
            number: ctx.contact.e164.clone(),
            state,
            agent_id: self.agent,
            outcome,
            sip_code: code,
            at: Utc::now(),
        });
    }

    async fn finish(&mut self, ctx: &mut CallCtx, finished: Finished) {
        let shared = ctx.shared.clone();
        self.bridge = None;
        self.leg.set_listener(None);
        if let Some(recording) = self.recording.take() {
            match recording.finish().await {
                Ok(summary) => {
                    let path = summary.path.display().to_string();
                    let _ = self
                        .writer
                        .send(Write::Event(AttemptEvent::Recording { path }, Utc::now()));
                }
                Err(err) => tracing::error!(%err, attempt = self.attempt, "recording not closed"),
            }
        }
        let campaign = ctx.runtime.name.clone();
        tracing::info!(
            campaign = %campaign,
            attempt = self.attempt,
            contact_id = ctx.contact.id,
            outcome = %finished.outcome,
            sip_code = ?finished.sip_code,
            reason = ?finished.reason,
            "call ended"
        );
        // The core counted the end already (the agent is in wrap-up); the store write follows
        // the call's steps in order.
        let (done, wait) = oneshot::channel();
        let _ = self.writer.send(Write::Finish(
            Finish {
                outcome: finished.outcome,
                sip_code: finished.sip_code,
                reason: finished.reason.clone(),
                ended_at: Utc::now(),
            },
            done,
        ));
        let _ = wait.await;
        metrics::counter!(
            "dialer_calls_total",
            "campaign" => campaign.clone(),
            "outcome" => finished.outcome.as_str()
        )
        .increment(1);
        let stats = self.leg.stats();
        for (reason, count) in [
            ("malformed", stats.dropped.malformed),
            ("stranger", stats.dropped.stranger),
            ("flood", stats.dropped.flood),
            ("overflow", stats.dropped.overflow),
            ("unknown_payload_type", stats.dropped.unknown_payload_type),
        ] {
            if count > 0 {
                metrics::counter!("dialer_rtp_dropped_packets_total", "reason" => reason)
                    .increment(count);
            }
        }
        if stats.send_errors > 0 {
            metrics::counter!("dialer_rtp_send_errors_total").increment(stats.send_errors);
        }
        self.leg.close();
        shared.add_in_flight(-1);
        self.publish(
            ctx,
            CallState::Ended,
            Some(finished.outcome),
            finished.sip_code,
        );
    }
}

async fn next_call_event(call: &mut Option<sip::Call>) -> Option<CallEvent> {
    match call {
        Some(call) => call.next_event().await,
        None => std::future::pending().await,
    }
}
