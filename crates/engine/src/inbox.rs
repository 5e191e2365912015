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
}

/// What the campaign actor tells an agent's session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AgentCommand {
    /// Hang up the phone's call (log out).
    Hangup,
}

/// Maps the SDP crate's view of the peer to the media crate's.
pub(crate) fn remote_media(sdp: &Sdp) -> Option<media::RemoteMedia> {
    let remote = sdp
        .remote_media(&[sip::sdp::Codec::Pcmu, sip::sdp::Codec::Pcma])
        .ok()?;
    let codec = match remote.codec {
        sip::sdp::Codec::Pcma => media::Codec::Pcma,
        _ => media::Codec::Pcmu,
    };
    let mut media = media::RemoteMedia::new(remote.addr, codec);
    media.codecs = vec![(remote.payload_type, codec)];
    if let Some(pt) = remote.telephone_event {
        media = media.with_dtmf(pt);
    }
    Some(media)
}
