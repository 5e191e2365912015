//! An agent's session: the phone's call into the dialer, answered with a leg that plays comfort
//! silence between calls. The task reports the phone's keys to the campaign actor and the end
//! of the call (the agent logs out), and hangs up when the actor says so.

use crate::core::CoreInput;
use crate::inbox::{
    ActorMsg, AgentCommand, CampaignHandle, Session, answered_media, local_media, offered_media,
};
use crate::shared::Shared;
use media::{LegEvent, LegOptions};
use sip::{CallEvent, IncomingCall};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Answers an agent's phone and runs the session until the call ends.
pub(crate) async fn run(
    shared: Arc<Shared>,
    incoming: IncomingCall,
    agent: store::Agent,
    campaign: CampaignHandle,
) {
    let (leg, mut leg_events) = match shared.media.open_leg(
        &shared.ports,
        LegOptions {
            comfort_silence: true,
            label: format!("agent:{}", agent.username),
            // A quiet agent (muted phone, sipp holding the line) is not a dead one.
            media_timeout: None,
            ..LegOptions::default()
        },
    ) {
        Ok(leg) => leg,
        Err(err) => {
            tracing::error!(%err, agent = %agent.username, "cannot open the agent's leg");
            let _ = incoming.reject(503).await;
            return;
        }
    };
    let info = incoming.info().clone();
    let policy = shared.config.phone_srtp;
    let over_tls = info.transport == sip::Transport::Tls;
    let srtp = if !policy.enabled() || over_tls || shared.config.sdes_without_tls {
        policy
    } else {
        // SDES keys travel in the SDP: over UDP or TCP anyone on the path could read them.
        match policy {
            domain::SrtpPolicy::Required => {
                tracing::warn!(agent = %agent.username, transport = ?info.transport,
                    "phone refused (488): phone_srtp is required and SRTP keys are only exchanged over TLS (sdes_without_tls is off)");
                let _ = incoming.reject(488).await;
                leg.close();
                return;
            }
            _ => {
                tracing::info!(agent = %agent.username, transport = ?info.transport,
                    "no SRTP with this phone: its keys would cross the network in clear without TLS (sdes_without_tls is off)");
                domain::SrtpPolicy::Off
            }
        }
    };
    let local = local_media(leg.local_rtp_addr(), srtp);
    if let Some(offer) = &info.offer {
        match offered_media(&local, offer) {
            Ok(remote) => {
                if let Err(err) = leg.set_remote(&remote) {
                    tracing::warn!(%err, agent = %agent.username, "agent's SDP unusable");
                }
            }
            // The SIP core answers such an offer with 488 below.
            Err(err) => tracing::warn!(%err, agent = %agent.username, "agent's offer refused"),
        }
    }
    let mut call = match incoming.answer(local.clone()).await {
        Ok(call) => call,
        Err(err) => {
            tracing::warn!(%err, agent = %agent.username, "cannot answer the agent's phone");
            return;
        }
    };
    let (control, mut commands) = mpsc::unbounded_channel();
    let session = Session {
        username: agent.username.clone(),
        display_name: agent.display_name.clone(),
        leg: leg.clone(),
        control,
    };
    if campaign
        .tx
        .send(ActorMsg::Login {
            agent: agent.id,
            session,
        })
        .is_err()
    {
        call.hangup();
    }
    tracing::info!(agent = %agent.username, campaign = %campaign.runtime().name, "agent logged in");
    let report = |input: CoreInput| {
        let _ = campaign.tx.send(ActorMsg::Core(input));
    };
    loop {
        tokio::select! {
            event = call.next_event() => match event {
                Some(CallEvent::Confirmed { sdp: Some(sdp) }) => {
                    // The phone's answer in the ACK, to the offer in our 200.
                    match answered_media(&local, &sdp) {
                        Ok(remote) => {
                            let _ = leg.set_remote(&remote);
                        }
                        Err(err) => {
                            tracing::warn!(%err, agent = %agent.username, "phone's answer unusable: hanging up");
                            call.hangup();
                        }
                    }
                }
                Some(CallEvent::MediaChanged { sdp, .. }) => {
                    if let Ok(remote) = offered_media(&local, &sdp) {
                        let _ = leg.set_remote(&remote);
                    }
                }
                Some(CallEvent::Ended(_)) | None => break,
                Some(_) => {}
            },
            Some(event) = leg_events.recv() => {
                if let LegEvent::Dtmf { digit } = event {
                    report(CoreInput::AgentDigit { agent: agent.id, digit });
                }
            }
            Some(AgentCommand::Hangup) = commands.recv() => call.hangup(),
        }
    }
    let _ = campaign.tx.send(ActorMsg::Logout {
        agent: agent.id,
        leg: leg.id(),
    });
    shared.forget_session(agent.id, leg.id());
    leg.close();
    tracing::info!(agent = %agent.username, "agent logged out");
}
