//! A browser agent's session: the agent desktop's RTCPeerConnection terminated on a leg that
//! is the agent's nailed-up leg, like a SIP phone's (comfort silence between calls, calls
//! bridged in). A new offer while the session lives puts a new WebRTC front on the same leg:
//! the leg, its bridge and the agent's state stay. When the browser goes away the agent stays
//! logged in for [`crate::EngineConfig::webrtc_grace`] waiting for an offer, then logs out as
//! when a phone hangs up.

use std::sync::Arc;

use media::webrtc::{BrowserOffer, DtlsIdentity, Front, LocalIce, WebrtcEvent};
use media::{Leg, LegEvent, LegOptions, WebrtcEvents};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::core::CoreInput;
use crate::error::{EngineError, Result};
use crate::inbox::{ActorMsg, AgentCommand, CampaignHandle, Session};
use crate::shared::{Shared, lock};

/// A new offer for a running session, and where its answer goes.
pub(crate) struct Reoffer {
    offer: BrowserOffer,
    reply: oneshot::Sender<Result<String>>,
}

/// Puts a new WebRTC front for `offer` on `leg`: the answer and the front's reports.
fn front(shared: &Shared, leg: &Leg, offer: &BrowserOffer) -> Result<(String, WebrtcEvents)> {
    let identity = identity(shared)?;
    let ice = LocalIce::random();
    let local = leg.local_rtp_addr();
    let answer = media::webrtc::answer(offer, local, &ice, identity.fingerprint());
    let front = Front::new(identity, offer, local, ice)
        .map_err(|err| EngineError::Config(err.to_string()))?;
    let events = leg.attach_webrtc(front, offer.codec, offer.dtmf, shared.config.webrtc_consent);
    Ok((answer, events))
}

/// The node's DTLS certificate, made on first use.
fn identity(shared: &Shared) -> Result<&DtlsIdentity> {
    if let Some(identity) = shared.webrtc_identity.get() {
        return Ok(identity);
    }
    let made = DtlsIdentity::generate().map_err(|err| EngineError::Config(err.to_string()))?;
    Ok(shared.webrtc_identity.get_or_init(|| made))
}

/// Hands `offer` to the agent's running browser session on this node, if there is one: the
/// answer, or `None` when there is no session (or it just ended).
pub(crate) async fn reoffer(
    shared: &Shared,
    agent: i64,
    offer: &BrowserOffer,
) -> Option<Result<String>> {
    let inbox = lock(&shared.webrtc_sessions).get(&agent).cloned()?;
    let (reply, answer) = oneshot::channel();
    inbox
        .send(Reoffer {
            offer: offer.clone(),
            reply,
        })
        .ok()?;
    answer.await.ok()
}

/// Opens the browser agent's leg, logs the agent in to `campaign` and runs the session in a
/// task; returns the SDP answer.
pub(crate) fn start(
    shared: Arc<Shared>,
    agent: store::Agent,
    campaign: CampaignHandle,
    offer: &BrowserOffer,
) -> Result<String> {
    let (leg, leg_events) = shared.media.open_leg(
        &shared.ports,
        LegOptions {
            comfort_silence: true,
            label: format!("agent:{}", agent.username),
            // Consent checks, not media, tell a live browser from a gone one.
            media_timeout: None,
            ..LegOptions::default()
        },
    )?;
    let (answer, rtc_events) = match front(&shared, &leg, offer) {
        Ok(front) => front,
        Err(err) => {
            leg.close();
            return Err(err);
        }
    };
    let (inbox_tx, inbox) = mpsc::unbounded_channel();
    lock(&shared.webrtc_sessions).insert(agent.id, inbox_tx.clone());
    tokio::spawn(run(
        shared, agent, campaign, leg, leg_events, rtc_events, inbox, inbox_tx,
    ));
    Ok(answer)
}

#[allow(clippy::too_many_arguments)]
async fn run(
    shared: Arc<Shared>,
    agent: store::Agent,
    campaign: CampaignHandle,
    leg: Leg,
    mut leg_events: media::LegEvents,
    mut rtc_events: WebrtcEvents,
    mut inbox: mpsc::UnboundedReceiver<Reoffer>,
    inbox_tx: mpsc::UnboundedSender<Reoffer>,
) {
    let (control, mut commands) = mpsc::unbounded_channel();
    let session = Session {
        username: agent.username.clone(),
        display_name: agent.display_name.clone(),
        leg: leg.clone(),
        control,
    };
    let name = campaign.runtime().name.clone();
    if campaign
        .tx
        .send(ActorMsg::Login {
            agent: agent.id,
            session,
        })
        .is_ok()
    {
        tracing::info!(agent = %agent.username, campaign = %name, "agent logged in (WebRTC)");
        let grace = shared.config.webrtc_grace;
        // Set while the browser is gone: the agent is logged out then.
        let mut deadline: Option<Instant> = None;
        loop {
            tokio::select! {
                Some(event) = rtc_events.recv() => match event {
                    WebrtcEvent::Connected { remote } => {
                        tracing::info!(agent = %agent.username, %remote, "browser's audio up");
                        deadline = None;
                    }
                    WebrtcEvent::Down { reason } => {
                        tracing::info!(agent = %agent.username, %reason, grace_secs = grace.as_secs(),
                            "browser's audio down: waiting for a new offer");
                        deadline.get_or_insert(Instant::now() + grace);
                    }
                },
                Some(reoffer) = inbox.recv() => {
                    let result = front(&shared, &leg, &reoffer.offer);
                    let _ = reoffer.reply.send(match result {
                        Ok((answer, events)) => {
                            rtc_events = events;
                            tracing::info!(agent = %agent.username, "browser's leg replaced (new offer)");
                            Ok(answer)
                        }
                        Err(err) => Err(err),
                    });
                }
                Some(event) = leg_events.recv() => {
                    if let LegEvent::Dtmf { digit } = event {
                        let _ = campaign.tx.send(ActorMsg::Core(CoreInput::AgentDigit { agent: agent.id, digit }));
                    }
                }
                Some(AgentCommand::Hangup) = commands.recv() => break,
                () = sleep_until(deadline) => {
                    tracing::info!(agent = %agent.username, grace_secs = grace.as_secs(),
                        "no new offer from the browser within the grace period");
                    break;
                }
            }
        }
    }
    {
        let mut sessions = lock(&shared.webrtc_sessions);
        if sessions
            .get(&agent.id)
            .is_some_and(|tx| tx.same_channel(&inbox_tx))
        {
            sessions.remove(&agent.id);
        }
    }
    inbox.close();
    let _ = campaign.tx.send(ActorMsg::Logout {
        agent: agent.id,
        leg: leg.id(),
    });
    shared.forget_session(agent.id, leg.id());
    leg.close();
    tracing::info!(agent = %agent.username, "agent logged out (WebRTC)");
}

/// Sleeps until `deadline`, forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
