//! What the campaign actor and its tasks say to each other: the actor's inbox, the handle the
//! engine keeps, and the commands the actor sends to a call's task and to an agent's session.
//! Below the actor (`campaign.rs`), the call task (`driver.rs`) and the agent's session
//! (`agent.rs`), which all import it and none of which imports another.

use crate::call::CallAction;
use crate::core::CoreInput;
use crate::error::Result;
use crate::setup::Setup;
use crate::view::{AgentView, CampaignView, ShutdownReport};
use domain::{CampaignSpec, CampaignStatus};
use media::Leg;
use sip::sdp::Sdp;
use std::sync::Arc;
use std::time::Duration;
use store::LeasedContact;
use tokio::sync::{mpsc, oneshot, watch};

/// A campaign's definition and what its calls need, fixed for the calls started under it.
#[derive(Debug)]
pub(crate) struct Runtime {
    /// Store id.
    pub(crate) id: i64,
    /// Name.
    pub(crate) name: String,
    /// Definition.
    pub(crate) spec: CampaignSpec,
    /// Derived settings and messages.
    pub(crate) setup: Arc<Setup>,
    /// The carrier trunk.
    pub(crate) trunk: sip::Trunk,
    /// What to register for the trunk, if the carrier wants it registered.
    pub(crate) register: Option<sip::RegisterSpec>,
}

/// A logged-in agent's session as the actor holds it.
pub(crate) struct Session {
    /// Login name.
    pub(crate) username: String,
    /// Display name.
    pub(crate) display_name: String,
    /// The agent's open leg (live calls are bridged into it).
    pub(crate) leg: Leg,
    /// Tells the agent's task to hang up.
    pub(crate) control: mpsc::UnboundedSender<AgentCommand>,
}

/// What can be asked of an agent.
#[derive(Debug, Clone)]
pub(crate) enum AgentOp {
    /// Ready.
    Ready,
    /// Pause for a reason.
    Pause(String),
    /// Hang up the agent's leg.
    Logout,
    /// End the customer call.
    Hangup,
    /// Put the callee on hold (true) or back with the agent (false).
    Hold(bool),
    /// Send these keys (checked: 0-9, *, #, A-D) to the callee as RFC 4733 events.
    Dtmf(String),
}

/// What an agent asks of the callee's leg during a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LegOp {
    /// Hold (true) or resume (false).
    Hold(bool),
    /// Send keys.
    Dtmf(String),
}

/// The actor's inbox.
pub(crate) enum ActorMsg {
    /// A happening for the core (from calls and agents' tasks).
    Core(CoreInput),
    /// An agent's phone opened its leg.
    Login {
        /// Store id.
        agent: i64,
        /// The session.
        session: Session,
    },
    /// An agent's phone hung up (its session's leg id, so a replaced session's end does not
    /// log the new one out).
    Logout {
        /// Store id.
        agent: i64,
        /// The session's leg.
        leg: u64,
    },
    /// A lease came back.
    Leased {
        /// Asked for.
        asked: u32,
        /// Got.
        contacts: Vec<LeasedContact>,
    },
    /// A new definition.
    Reload {
        /// The new runtime.
        runtime: Arc<Runtime>,
        /// Told once the definition is in force and the figures show it.
        applied: Option<oneshot::Sender<()>>,
    },
    /// Start, pause, stop.
    Status {
        /// The new status.
        status: CampaignStatus,
        /// Done.
        reply: oneshot::Sender<CampaignView>,
    },
    /// An agent operation.
    Agent {
        /// The agent.
        agent: i64,
        /// What.
        op: AgentOp,
        /// The agent's view afterwards.
        reply: oneshot::Sender<Result<AgentView>>,
    },
    /// Stop dialling, let answered calls finish for `grace`, then cut, hang up agents, report.
    Shutdown {
        /// How long answered calls may go on.
        grace: Duration,
        /// The report.
        reply: oneshot::Sender<ShutdownReport>,
    },
}

/// The handle the engine keeps.
#[derive(Clone)]
pub(crate) struct CampaignHandle {
    /// The inbox.
    pub(crate) tx: mpsc::UnboundedSender<ActorMsg>,
    /// The latest view (refreshed every second and on status changes).
    pub(crate) view: watch::Receiver<CampaignView>,
    /// The definition in force.
    pub(crate) runtime: Arc<std::sync::RwLock<Arc<Runtime>>>,
}

impl CampaignHandle {
    /// The definition in force.
    pub(crate) fn runtime(&self) -> Arc<Runtime> {
        self.runtime
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }
}

/// What the campaign actor tells a call's task.
#[derive(Debug)]
pub(crate) enum CallCommand {
    /// Carry out this action of the call's machine.
    Do(CallAction),
    /// Connect the callee with this agent's open leg (the machine's `Bridge`, with the leg the
    /// actor holds).
    Bridge {
        /// The agent.
        agent: i64,
        /// The agent's open leg.
        leg: Leg,
    },
    /// Do this with the callee's leg for its agent; the reply (the agent's view, or why not)
    /// goes straight back to the facade.
    Leg {
        /// What.
        op: LegOp,
        /// The agent's view to answer with.
        view: Box<AgentView>,
        /// The facade's reply.
        reply: oneshot::Sender<Result<AgentView>>,
    },
}

/// What the campaign actor tells an agent's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AgentCommand {
    /// Hang up the phone's call (log out).
    Hangup,
}

/// The peer's media from its answer (or early media) to our offer of `local`, with the SRTP
/// keys it settles: an error when it cannot be used (no codec, SRTP refused or mismatched).
pub(crate) fn answered_media(
    local: &sip::sdp::LocalMedia,
    sdp: &Sdp,
) -> Result<media::RemoteMedia, sip::sdp::SdpError> {
    sip::sdp::answered(local, sdp).map(to_media)
}

/// The peer's media from its offer, as our answer from `local` settles it (the same choice
/// the SIP core makes when it writes the answer, so the keys match the answer sent).
pub(crate) fn offered_media(
    local: &sip::sdp::LocalMedia,
    offer: &Sdp,
) -> Result<media::RemoteMedia, sip::sdp::SdpError> {
    sip::sdp::answer(local, offer, &sip::sdp::Origin::new()).map(|(_, remote)| to_media(remote))
}

/// Our local media for a peer under `policy`: SRTP lines with fresh keys when it is on.
pub(crate) fn local_media(
    addr: std::net::SocketAddr,
    policy: domain::SrtpPolicy,
) -> sip::sdp::LocalMedia {
    let local = sip::sdp::LocalMedia::new(addr);
    match policy {
        domain::SrtpPolicy::Off => local,
        domain::SrtpPolicy::Optional => local.with_srtp(sip::sdes::SrtpMode::Optional),
        domain::SrtpPolicy::Required => local.with_srtp(sip::sdes::SrtpMode::Required),
    }
}

/// Maps the SDP crate's view of the peer (codec, telephone-event, SRTP keys) to the media
/// crate's, for [`media::Leg::set_remote`].
pub fn to_media(remote: sip::sdp::RemoteMedia) -> media::RemoteMedia {
    let codec = match remote.codec {
        sip::sdp::Codec::Pcma => media::Codec::Pcma,
        _ => media::Codec::Pcmu,
    };
    let mut media = media::RemoteMedia::new(remote.addr, codec);
    media.codecs = vec![(remote.payload_type, codec)];
    if let Some(pt) = remote.telephone_event {
        media = media.with_dtmf(pt);
    }
    if let Some(keys) = remote.srtp {
        media = media.with_srtp(media::srtp::SrtpConfig {
            suite: match keys.suite {
                sip::sdes::CryptoSuite::AesCm128HmacSha1_80 => {
                    media::srtp::SrtpSuite::AesCm128HmacSha1_80
                }
                sip::sdes::CryptoSuite::AesCm128HmacSha1_32 => {
                    media::srtp::SrtpSuite::AesCm128HmacSha1_32
                }
                sip::sdes::CryptoSuite::AeadAes128Gcm => media::srtp::SrtpSuite::AeadAes128Gcm,
            },
            local: media::srtp::SrtpKey::new(keys.local.as_bytes()),
            remote: media::srtp::SrtpKey::new(keys.remote.as_bytes()),
        });
    }
    media
}
