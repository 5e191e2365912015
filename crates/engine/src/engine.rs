//! The service facade: [`Engine`].

use crate::campaign;
use crate::cluster::ClusterState;
use crate::config::EngineConfig;
use crate::core::CoreInput;
use crate::error::{EngineError, Result};
use crate::inbox::{ActorMsg, AgentOp, CampaignHandle, Runtime};
use crate::screen::{self, AgentLine};
use crate::shared::{Shared, lock};
use crate::view::{
    AgentSpec, AgentState, AgentView, CampaignView, EngineEvent, ShutdownReport, Snapshot,
    field_error, parse_algorithms,
};
use chrono::Utc;
use domain::{CampaignSpec, CampaignStatus, ContactAfter};
use media::{MediaRuntime, PortAllocator};
use sip::digest::DigestAlgorithm;
use sip::{AuthConfig, Endpoint, EndpointConfig, IncomingCall, IncomingEvent, Secret, TrunkConfig};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use store::{Applied, Campaign, NewAgent, Store};
use tokio::sync::{broadcast, oneshot};

/// The campaign runtime of one node. Cheap to clone (an `Arc` inside); every clone drives the
/// same endpoint, campaigns and agents.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    campaigns: Mutex<HashMap<String, CampaignHandle>>,
    secrets: Arc<RwLock<HashMap<String, AgentSecret>>>,
    /// Serialises changes of campaign definitions (apply, pacing patches).
    applying: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("node", &self.inner.shared.config.node_id)
            .finish_non_exhaustive()
    }
}

/// An agent's digest secret, with the algorithms its phone is offered if it has its own.
#[derive(Clone)]
struct AgentSecret {
    secret: Secret,
    algorithms: Option<Vec<DigestAlgorithm>>,
}

/// Agents' digest secrets, answered from memory on the SIP endpoint's task.
struct Secrets(Arc<RwLock<HashMap<String, AgentSecret>>>);

impl Secrets {
    fn get(&self, username: &str) -> Option<AgentSecret> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(username)
            .cloned()
    }
}

impl sip::SecretLookup for Secrets {
    fn secret(&self, username: &str) -> Option<Secret> {
        self.get(username).map(|agent| agent.secret)
    }

    fn algorithms(&self, username: &str) -> Option<Vec<DigestAlgorithm>> {
        self.get(username).and_then(|agent| agent.algorithms)
    }
}

fn agent_secret(agent: &store::Agent) -> AgentSecret {
    let algorithms = agent.digest_algorithms.as_deref().and_then(|names| {
        parse_algorithms(names)
            .inspect_err(|err| {
                tracing::warn!(
                    agent = %agent.username,
                    %err,
                    "agent's stored digest algorithms unusable: the service's are offered"
                )
            })
            .ok()
    });
    AgentSecret {
        secret: Secret::Ha1 {
            md5: agent.ha1_md5.clone(),
            sha256: agent.ha1_sha256.clone(),
        },
        algorithms,
    }
}

/// The user part of a SIP URI (`sip:alice@host` -> `alice`).
fn uri_user(uri: &str) -> Option<&str> {
    let rest = uri.split_once(':')?.1;
    let (user, _) = rest.split_once('@')?;
    let user = user.split(';').next()?;
    (!user.is_empty()).then_some(user)
}

impl Engine {
    /// Starts the engine: binds the SIP endpoint (UDP/TCP addresses of `config`) with the
    /// registrar (agents' digest secrets from `store`), the RTP port range, and loads every
    /// campaign (running ones resume dialling). A campaign that cannot be loaded (a message
    /// file missing, the trunk's host unknown) is logged and left idle until applied again.
    pub async fn start(
        config: EngineConfig,
        store: Store,
        cluster: Arc<dyn ClusterState>,
    ) -> Result<Engine> {
        config.validate()?;
        let mut secrets = HashMap::new();
        for agent in store.agents().await? {
            if agent.realm == config.realm {
                secrets.insert(agent.username.clone(), agent_secret(&agent));
            } else {
                tracing::warn!(
                    agent = %agent.username,
                    realm = %agent.realm,
                    "agent's password hashes are for another realm: it cannot log in"
                );
            }
        }
        let secrets = Arc::new(RwLock::new(secrets));
        let first = config
            .sip_udp
            .first()
            .or(config.sip_tcp.first())
            .or(config.sip_tls.first())
            .copied()
            .ok_or_else(|| EngineError::Config("no SIP listener".into()))?;
        let mut sip_config = EndpointConfig::udp(first);
        sip_config.udp = config.sip_udp.clone();
        sip_config.tcp = config.sip_tcp.clone();
        sip_config.tls = config.sip_tls.clone();
        if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
            sip_config.tls_server = Some(sip::TlsServer::from_pem_files(cert, key)?);
        }
        if let Some(ca) = &config.tls_ca {
            sip_config.tls_client = Some(sip::TlsClient::from_ca_file(ca)?);
        }
        sip_config.advertise = config.advertise;
        sip_config.dns_server = config.dns_server;
        let mut auth = AuthConfig::new(config.realm.clone(), Arc::new(Secrets(secrets.clone())));
        auth.algorithms = config.digest_algorithms.clone();
        sip_config.auth = Some(auth);
        let (endpoint, incoming) = Endpoint::bind(sip_config).await?;
        let ports = PortAllocator::new(config.rtp_ip, config.rtp_ports.clone())?;
        let media = MediaRuntime::new(config.media);
        media.start()?;
        let shared = Shared::new(config, store, cluster, endpoint, ports, media);
        let engine = Engine {
            inner: Arc::new(Inner {
                shared,
                campaigns: Mutex::default(),
                secrets,
                applying: tokio::sync::Mutex::new(()),
            }),
        };
        for campaign in engine.store().campaigns().await? {
            if let Err(err) = engine.load(&campaign).await {
                tracing::error!(%err, campaign = %campaign.name, "campaign not loaded");
            }
        }
        tokio::spawn(engine.clone().incoming(incoming));
        tokio::spawn(engine.clone().sip_metrics());
        tracing::info!(node = %engine.node_id(), "engine started");
        Ok(engine)
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.inner.shared.config.node_id
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.shared.config
    }

    /// The contact base (for uploads, exports and queries the API serves directly).
    pub fn store(&self) -> &Store {
        &self.inner.shared.store
    }

    /// The cluster state.
    pub fn cluster(&self) -> &Arc<dyn ClusterState> {
        &self.inner.shared.cluster
    }

    /// The media receive loops' counters.
    pub fn media_stats(&self) -> media::ReceiveLoopStats {
        self.shared().media.stats()
    }

    /// The SIP endpoint's counters.
    pub fn sip_stats(&self) -> sip::StatsSnapshot {
        self.shared().endpoint.stats()
    }

    /// Where agents' phones (and the lab) reach the SIP endpoint over `transport`: the
    /// registrar and the target of their INVITE.
    pub fn sip_addr(&self, transport: sip::Transport) -> Option<SocketAddr> {
        self.shared().endpoint.local_addr(transport)
    }

    fn handle(&self, name: &str) -> Option<CampaignHandle> {
        lock(&self.inner.campaigns).get(name).cloned()
    }

    /// Builds what a definition needs at run time (messages decoded, trunk resolved).
    async fn runtime(&self, id: i64, spec: &CampaignSpec) -> Result<Arc<Runtime>> {
        let setup = crate::setup::build(spec, self.config())?;
        let uri: sip::Uri = spec.trunk.uri.parse().map_err(|err: sip::Error| {
            EngineError::Invalid(vec![field_error("trunk.uri", err.to_string())])
        })?;
        let mut trunk_config = TrunkConfig::new(uri.clone(), spec.trunk.cps);
        let parse = |value: &Option<String>, field: &str| {
            value
                .as_deref()
                .map(|text| {
                    text.parse::<sip::Uri>().map_err(|err: sip::Error| {
                        EngineError::Invalid(vec![field_error(field, err.to_string())])
                    })
                })
                .transpose()
        };
        trunk_config.outbound_proxy = parse(&spec.trunk.outbound_proxy, "trunk.outbound_proxy")?;
        let registrar = parse(&spec.trunk.registrar, "trunk.registrar")?;
        trunk_config.transport = Some(match spec.trunk.transport {
            domain::Transport::Udp => sip::Transport::Udp,
            domain::Transport::Tcp => sip::Transport::Tcp,
            domain::Transport::Tls => sip::Transport::Tls,
        });
        if let Some(file) = &spec.trunk.ca_file {
            let path = crate::confined_path(&self.config().prompts_dir, "trunk.ca_file", file)?;
            let client = sip::TlsClient::from_ca_file(&path).map_err(|err| {
                EngineError::Invalid(vec![field_error("trunk.ca_file", err.to_string())])
            })?;
            trunk_config.tls = Some(client);
        }
        // Read on every definition, so a rotated password is taken on the next apply.
        let secrets = match &self.config().trunk_secrets {
            Some(path) => crate::TrunkSecrets::read(path)?,
            None => crate::TrunkSecrets::default(),
        };
        trunk_config.credentials = secrets.credentials(&spec.trunk)?;
        let register = match (&trunk_config.credentials, spec.trunk.register) {
            (Some(credentials), true) => Some(sip::RegisterSpec {
                registrar: registrar.unwrap_or(uri),
                user: spec
                    .trunk
                    .register_user
                    .clone()
                    .unwrap_or_else(|| credentials.username.clone()),
                password: credentials.password.clone(),
                expires: u32::try_from(spec.trunk.register_expires.0.as_secs()).unwrap_or(u32::MAX),
                transport: trunk_config.transport,
                auth_user: Some(credentials.username.clone()),
                outbound_proxy: trunk_config.outbound_proxy.clone(),
            }),
            _ => None,
        };
        let trunk = self.shared().endpoint.trunk(trunk_config).await?;
        Ok(Arc::new(Runtime {
            id,
            name: spec.name.clone(),
            spec: spec.clone(),
            setup,
            trunk,
            register,
        }))
    }

    /// Stored live answers and abandons over the campaign's window, as the pacer's history.
    async fn history(&self, campaign: &Campaign) -> Result<Vec<pacing::HistoryBucket>> {
        let window = campaign.spec.pacing.abandon_window.duration();
        let step = if window > Duration::from_secs(2 * 86_400) {
            Duration::from_secs(86_400)
        } else {
            Duration::from_secs(3_600)
        };
        let steps = (window.as_secs() / step.as_secs()).max(1);
        let now = Utc::now();
        let mut buckets = Vec::new();
        let mut newer = store::AbandonCounts::default();
        for k in 1..=steps {
            let since = now - chrono::Duration::from_std(step * k as u32).unwrap_or_default();
            let upto = self.store().abandon_counts(campaign.id, since).await?;
            buckets.push(pacing::HistoryBucket {
                ago: step * (k as u32 - 1),
                live: upto.live_answers.saturating_sub(newer.live_answers),
                abandoned: upto.abandons.saturating_sub(newer.abandons),
            });
            newer = upto;
        }
        buckets.retain(|b| b.live > 0 || b.abandoned > 0);
        Ok(buckets)
    }

    /// Creates the actor of a stored campaign, or hands it the definition.
    async fn load(&self, campaign: &Campaign) -> Result<CampaignHandle> {
        let runtime = self.runtime(campaign.id, &campaign.spec).await?;
        if let Some(handle) = self.handle(&campaign.name) {
            let _ = handle.tx.send(ActorMsg::Reload {
                runtime,
                applied: None,
            });
            return Ok(handle);
        }
        let history = self.history(campaign).await?;
        let handle = campaign::spawn(self.shared().clone(), campaign, runtime, history)?;
        lock(&self.inner.campaigns).insert(campaign.name.clone(), handle.clone());
        Ok(handle)
    }

    /// Creates the campaign named `spec.name` (paused) or updates its definition; a running
    /// campaign takes the new definition at once (calls already placed finish under the old
    /// one). Nothing is stored if the definition cannot run (a message file unreadable, the
    /// trunk's host unknown, a field refused).
    pub async fn apply_campaign(&self, spec: &CampaignSpec) -> Result<(CampaignView, Applied)> {
        let _guard = self.inner.applying.lock().await;
        if let Err(domain::Error::InvalidSpec(fields)) = spec.validate() {
            return Err(EngineError::Invalid(fields));
        }
        // Everything that can be refused is checked before anything is stored.
        self.runtime(0, spec).await?;
        let (campaign, applied) = self.store().apply_campaign(spec).await?;
        self.load(&campaign).await?;
        Ok((self.campaign(&campaign.name).await?, applied))
    }

    async fn set_status(&self, name: &str, status: CampaignStatus) -> Result<CampaignView> {
        if self.is_shutting_down() && status == CampaignStatus::Running {
            return Err(EngineError::ShuttingDown);
        }
        let campaign = self
            .store()
            .campaign_by_name(name)
            .await?
            .ok_or_else(|| EngineError::NoSuchCampaign(name.to_owned()))?;
        let handle = match self.handle(name) {
            Some(handle) => handle,
            None => self.load(&campaign).await?,
        };
        self.store()
            .set_campaign_status(campaign.id, status)
            .await?;
        let (reply, view) = oneshot::channel();
        handle
            .tx
            .send(ActorMsg::Status { status, reply })
            .map_err(|_| EngineError::ShuttingDown)?;
        let view = view.await.map_err(|_| EngineError::ShuttingDown)?;
        tracing::info!(campaign = %name, %status, "campaign status");
        self.shared().publish(EngineEvent::Campaign(view.clone()));
        Ok(view)
    }

    /// Starts (or resumes) dialling a campaign.
    pub async fn start_campaign(&self, name: &str) -> Result<CampaignView> {
        self.set_status(name, CampaignStatus::Running).await
    }

    /// Stops starting new calls; calls in flight finish, agents stay logged in.
    pub async fn pause_campaign(&self, name: &str) -> Result<CampaignView> {
        self.set_status(name, CampaignStatus::Paused).await
    }

    /// Stops the campaign: no new calls, calls not yet answered cancelled, their contacts given
    /// back; answered calls finish; agents stay logged in.
    pub async fn stop_campaign(&self, name: &str) -> Result<CampaignView> {
        self.set_status(name, CampaignStatus::Stopped).await
    }

    fn view_of(&self, campaign: &Campaign) -> CampaignView {
        match self.handle(&campaign.name) {
            Some(handle) => {
                let mut view = handle.view.borrow().clone();
                view.status = campaign.status;
                view
            }
            None => CampaignView::idle(
                campaign.id,
                &campaign.name,
                campaign.status,
                &campaign.spec,
                Utc::now(),
            ),
        }
    }

    /// Every campaign with its status and live figures (as of the last second).
    pub async fn campaigns(&self) -> Result<Vec<CampaignView>> {
        let campaigns = self.store().campaigns().await?;
        Ok(campaigns.iter().map(|c| self.view_of(c)).collect())
    }

    /// One campaign with its status and live figures (as of the last second).
    pub async fn campaign(&self, name: &str) -> Result<CampaignView> {
        let campaign = self
            .store()
            .campaign_by_name(name)
            .await?
            .ok_or_else(|| EngineError::NoSuchCampaign(name.to_owned()))?;
        Ok(self.view_of(&campaign))
    }

    /// Changes a campaign's pacing while it runs. The patched settings are validated as a
    /// whole ([`EngineError::Invalid`] names every refused field, and the settings in force are
    /// kept), stored, and take effect at the next pacing decision.
    pub async fn update_pacing(
        &self,
        name: &str,
        patch: &domain::PacingPatch,
    ) -> Result<CampaignView> {
        let _guard = self.inner.applying.lock().await;
        let campaign = self
            .store()
            .campaign_by_name(name)
            .await?
            .ok_or_else(|| EngineError::NoSuchCampaign(name.to_owned()))?;
        let mut spec = campaign.spec.clone();
        spec.pacing = patch.apply(&spec.pacing);
        if let Err(domain::Error::InvalidSpec(fields)) = spec.validate() {
            return Err(EngineError::Invalid(fields));
        }
        crate::setup::pacing_config(&spec, self.config().connect_grace)
            .map_err(|field| EngineError::Invalid(vec![field]))?;
        let runtime = self.runtime(campaign.id, &spec).await?;
        self.store().apply_campaign(&spec).await?;
        let handle = match self.handle(name) {
            Some(handle) => handle,
            None => self.load(&campaign).await?,
        };
        let (applied, in_force) = oneshot::channel();
        let _ = handle.tx.send(ActorMsg::Reload {
            runtime,
            applied: Some(applied),
        });
        // The answer shows the new settings: wait for the actor to take them (it answers at
        // once unless it is gone, when the stored view is what there is).
        let _ = tokio::time::timeout(Duration::from_secs(5), in_force).await;
        tracing::info!(campaign = %name, ?patch, "pacing changed");
        self.campaign(name).await
    }

    /// Creates an agent account (its SIP digest hashes are computed in the engine's realm).
    pub async fn create_agent(&self, agent: &AgentSpec) -> Result<AgentView> {
        agent
            .algorithms()
            .map_err(|err| EngineError::Invalid(vec![err]))?;
        let mut campaigns = Vec::new();
        for name in &agent.campaigns {
            let campaign = self
                .store()
                .campaign_by_name(name)
                .await?
                .ok_or_else(|| EngineError::NoSuchCampaign(name.clone()))?;
            campaigns.push(campaign.id);
        }
        let display_name = if agent.display_name.trim().is_empty() {
            agent.username.clone()
        } else {
            agent.display_name.clone()
        };
        let stored = self
            .store()
            .create_agent(&NewAgent {
                username: agent.username.clone(),
                display_name,
                password: agent.password.clone(),
                realm: self.config().realm.clone(),
                campaigns,
            })
            .await?;
        let stored = match &agent.digest_algorithms {
            Some(names) => {
                self.store()
                    .set_agent_digest_algorithms(stored.id, Some(names))
                    .await?;
                store::Agent {
                    digest_algorithms: Some(names.clone()),
                    ..stored
                }
            }
            None => stored,
        };
        self.inner
            .secrets
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(stored.username.clone(), agent_secret(&stored));
        Ok(logged_out(&stored))
    }

    /// Every agent, logged in or not, by username.
    pub async fn agents(&self) -> Result<Vec<AgentView>> {
        let live: HashMap<i64, AgentView> = match self.cluster().agents().await {
            Ok(views) => views.into_iter().map(|v| (v.id, v)).collect(),
            Err(err) => {
                tracing::warn!(%err, "cluster state unavailable: agents shown logged out");
                HashMap::new()
            }
        };
        let stored = self.store().agents().await?;
        let today = self.shared().days().day_of(Utc::now());
        Ok(stored
            .iter()
            .map(|agent| match live.get(&agent.id) {
                // A logged-out agent keeps its last session's record: when it logged out, its
                // calls, talk and wait.
                Some(view) => AgentView {
                    username: agent.username.clone(),
                    display_name: agent.display_name.clone(),
                    digest_algorithms: agent.digest_algorithms.clone(),
                    // A day over is not today's (a logged-out agent's record keeps its day).
                    today: view.today.clone().filter(|d| d.day == today),
                    ..view.clone()
                },
                None => logged_out(agent),
            })
            .collect())
    }

    /// One agent.
    pub async fn agent(&self, id: i64) -> Result<AgentView> {
        self.agents()
            .await?
            .into_iter()
            .find(|a| a.id == id)
            .ok_or_else(|| EngineError::NoSuchAgent(id.to_string()))
    }

    async fn agent_op(&self, id: i64, op: AgentOp) -> Result<AgentView> {
        let campaign = self.shared().campaign_of(id);
        let Some(handle) = campaign.and_then(|name| self.handle(&name)) else {
            return match self.agent(id).await {
                Ok(_) => Err(EngineError::NotLoggedIn(id)),
                Err(err) => Err(err),
            };
        };
        let (reply, answer) = oneshot::channel();
        handle
            .tx
            .send(ActorMsg::Agent {
                agent: id,
                op,
                reply,
            })
            .map_err(|_| EngineError::ShuttingDown)?;
        answer.await.map_err(|_| EngineError::ShuttingDown)?
    }

    /// The call on an agent's line (talking or in wrap-up) with its contact's card, the
    /// contact's earlier calls and the campaign's script filled in; `call: None` when the
    /// line is free.
    pub async fn agent_line(&self, id: i64) -> Result<AgentLine> {
        let agent = self.agent(id).await?;
        let Some(attempt_id) = agent.attempt_id else {
            return Ok(AgentLine { call: None });
        };
        let store = self.store();
        let attempt = store.attempt(attempt_id).await?;
        let contact = store.contact(attempt.contact_id).await?;
        let campaign = store
            .campaign(attempt.campaign_id)
            .await?
            .ok_or_else(|| EngineError::NoSuchCampaign(attempt.campaign_id.to_string()))?;
        let history = store
            .contact_history(contact.id, Some(attempt_id), screen::HISTORY_LIMIT)
            .await?;
        Ok(AgentLine {
            call: Some(screen::line_call(
                &agent,
                &attempt,
                &contact,
                &campaign.spec,
                history,
            )),
        })
    }

    /// Makes a logged-in agent ready (ends a pause; ends wrap-up without a disposition).
    pub async fn agent_ready(&self, id: i64) -> Result<AgentView> {
        self.agent_op(id, AgentOp::Ready).await
    }

    /// Pauses an agent for `reason`; an agent on a call pauses when the call ends.
    pub async fn agent_pause(&self, id: i64, reason: &str) -> Result<AgentView> {
        let reason = reason.trim();
        if reason.is_empty() || reason.len() > 100 {
            return Err(EngineError::Invalid(vec![field_error(
                "reason",
                "a pause needs a reason of 1 to 100 characters",
            )]));
        }
        self.agent_op(id, AgentOp::Pause(reason.to_owned())).await
    }

    /// Logs an agent out: hangs up the agent's leg (a call in progress is ended first).
    pub async fn agent_logout(&self, id: i64) -> Result<AgentView> {
        self.agent_op(id, AgentOp::Logout).await
    }

    /// Logs an agent in from a browser: answers its WebRTC `offer` (SDP), whose connection
    /// becomes the agent's leg on `campaign` (else an assigned one, running first), exactly as
    /// a phone's call-in does. While the agent has a browser session on this node, a new offer
    /// replaces the browser's connection on the same leg: state and any bridged call stay.
    pub async fn agent_webrtc(
        &self,
        id: i64,
        offer: &str,
        campaign: Option<&str>,
    ) -> Result<String> {
        if self.is_shutting_down() {
            return Err(EngineError::ShuttingDown);
        }
        let offer = media::webrtc::parse_offer(offer)
            .map_err(|err| EngineError::BadOffer(err.to_string()))?;
        let view = self.agent(id).await?;
        if let Some(answer) = crate::webrtc::reoffer(self.shared(), id, &offer).await {
            return answer;
        }
        let agent = self
            .store()
            .agent_by_username(&view.username)
            .await?
            .ok_or_else(|| EngineError::NoSuchAgent(id.to_string()))?;
        let handle = match campaign {
            Some(name) => Some(
                self.handle(name)
                    .ok_or_else(|| EngineError::NoSuchCampaign(name.to_owned()))?,
            ),
            None => self.assigned_campaign(&agent),
        }
        .ok_or(EngineError::NoCampaign(id))?;
        crate::webrtc::start(self.shared().clone(), agent, handle, &offer)
    }

    /// Ends the agent's customer call (the agent's leg stays up; the agent goes to wrap-up).
    pub async fn agent_hangup(&self, id: i64) -> Result<AgentView> {
        self.agent_op(id, AgentOp::Hangup).await
    }

    /// Puts the callee of the agent's bridged call on hold: the agent's audio is cut, the
    /// callee hears the campaign's `hold_message` over and over, or silence.
    pub async fn agent_hold(&self, id: i64) -> Result<AgentView> {
        self.agent_op(id, AgentOp::Hold(true)).await
    }

    /// Takes the callee off hold: the bridge with the agent resumes.
    pub async fn agent_unhold(&self, id: i64) -> Result<AgentView> {
        self.agent_op(id, AgentOp::Hold(false)).await
    }

    /// Sends keys (`0`-`9`, `*`, `#`, `A`-`D`, 1 to [`MAX_DTMF_DIGITS`]) to the callee of the
    /// agent's bridged call as RFC 4733 telephone-events, on the payload type the callee's SDP
    /// gave; refused when the callee offered none.
    pub async fn agent_dtmf(&self, id: i64, digits: &str) -> Result<AgentView> {
        check_dtmf(digits)?;
        self.agent_op(id, AgentOp::Dtmf(digits.to_ascii_uppercase()))
            .await
    }

    /// Records an agent's disposition of an attempt the agent handled; ends the agent's
    /// wrap-up if it was for that attempt. A do-not-call disposition takes effect at once.
    pub async fn set_disposition(
        &self,
        agent: i64,
        attempt: i64,
        disposition: &domain::Disposition,
    ) -> Result<ContactAfter> {
        let row = self.store().attempt(attempt).await?;
        if row.agent_id != Some(agent) {
            return Err(EngineError::NotAgentsAttempt { agent, attempt });
        }
        if disposition.kind == domain::DispositionKind::Callback
            && disposition.callback_at.is_none()
        {
            return Err(EngineError::Invalid(vec![field_error(
                "callback_at",
                "a callback needs the time to call back",
            )]));
        }
        let after = self
            .store()
            .set_disposition(attempt, Some(agent), disposition)
            .await?;
        let campaign = self.shared().campaign_of(agent);
        if let Some(handle) = campaign.and_then(|name| self.handle(&name)) {
            let _ = handle
                .tx
                .send(ActorMsg::Core(CoreInput::AgentDisposed { agent, attempt }));
        }
        Ok(after)
    }

    /// Call, agent and campaign events of every node from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<EngineEvent> {
        self.cluster().subscribe()
    }

    /// Campaigns, agents and calls in flight, at once.
    pub async fn snapshot(&self) -> Result<Snapshot> {
        let campaigns = self.campaigns().await?;
        let agents = self.agents().await?;
        let mut calls: Vec<_> = lock(&self.shared().calls).values().cloned().collect();
        calls.sort_by_key(|c| c.attempt_id);
        Ok(Snapshot {
            at: Utc::now(),
            node: self.node_id().to_owned(),
            campaigns,
            agents,
            calls,
        })
    }

    /// Whether [`Engine::shutdown`] has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shared()
            .shutting_down
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Stops cleanly: no new calls, calls not yet answered cancelled (their contacts given
    /// back), answered calls allowed to finish for up to `grace` (then hung up), recordings
    /// closed, every lease of this node released, agents' legs hung up, the SIP endpoint
    /// stopped. Campaigns keep their stored status, so running ones resume at the next start.
    pub async fn shutdown(&self, grace: Duration) -> Result<ShutdownReport> {
        self.shared()
            .shutting_down
            .store(true, std::sync::atomic::Ordering::Release);
        let handles: Vec<CampaignHandle> = lock(&self.inner.campaigns).values().cloned().collect();
        let mut waits = Vec::new();
        for handle in &handles {
            let (reply, wait) = oneshot::channel();
            if handle.tx.send(ActorMsg::Shutdown { grace, reply }).is_ok() {
                waits.push(wait);
            }
        }
        let mut report = ShutdownReport::default();
        for wait in waits {
            if let Ok(r) = wait.await {
                report.cancelled += r.cancelled;
                report.finished += r.finished;
                report.cut += r.cut;
            }
        }
        // A call reports its end to its actor before its outcome is written (the agent is
        // free at once): wait for the last writes, so nothing is left half written.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self
            .shared()
            .in_flight
            .load(std::sync::atomic::Ordering::Acquire)
            > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        report.leases_released = self.store().release_node(self.node_id()).await?;
        // Agents' phones get their BYE; give the transactions a moment before the endpoint stops.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while !lock(&self.shared().directory).is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The actors let their trunk registrations go: give the un-REGISTERs their answers.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(6);
        while self.shared().endpoint.registrations_active() > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.shared().endpoint.shutdown();
        tracing::info!(?report, "engine stopped");
        Ok(report)
    }

    async fn incoming(self, mut incoming: sip::Incoming) {
        while let Some(event) = incoming.next().await {
            match event {
                IncomingEvent::Call(call) => {
                    let engine = self.clone();
                    tokio::spawn(async move { engine.agent_call(call).await });
                }
                IncomingEvent::Registration(change) => {
                    tracing::info!(?change, "agent phone registration");
                }
            }
        }
    }

    /// An agent's phone calls in: find the agent and the campaign, then run the session.
    async fn agent_call(&self, call: IncomingCall) {
        if self.is_shutting_down() {
            let _ = call.reject(503).await;
            return;
        }
        let info = call.info().clone();
        let Some(user) = info.user.clone() else {
            tracing::warn!(from = ?info.from, "unauthenticated INVITE refused");
            let _ = call.reject(403).await;
            return;
        };
        let agent = match self.store().agent_by_username(&user).await {
            Ok(Some(agent)) => agent,
            Ok(None) => {
                let _ = call.reject(404).await;
                return;
            }
            Err(err) => {
                tracing::error!(%err, "cannot look the agent up");
                let _ = call.reject(503).await;
                return;
            }
        };
        let named = uri_user(&info.request_uri).and_then(|u| self.handle(u));
        let handle = named.or_else(|| self.assigned_campaign(&agent));
        let Some(handle) = handle else {
            tracing::warn!(agent = %user, uri = ?info.request_uri, "agent has no campaign to log in to");
            let _ = call.reject(404).await;
            return;
        };
        crate::agent::run(self.shared().clone(), call, agent, handle).await;
    }

    /// The campaign an agent logs in to when none is named: an assigned one, running first,
    /// then by name.
    fn assigned_campaign(&self, agent: &store::Agent) -> Option<CampaignHandle> {
        let campaigns = lock(&self.inner.campaigns);
        let mut mine: Vec<&CampaignHandle> = campaigns
            .values()
            .filter(|h| agent.campaigns.contains(&h.runtime().id))
            .collect();
        mine.sort_by_key(|h| {
            (
                h.view.borrow().status != CampaignStatus::Running,
                h.runtime().name.clone(),
            )
        });
        mine.first().map(|h| (*h).clone())
    }

    async fn sip_metrics(self) {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        while !self.is_shutting_down() {
            every.tick().await;
            for (name, value) in self.shared().endpoint.stats().iter() {
                metrics::counter!("dialer_sip_events_total", "event" => name).absolute(value);
            }
        }
    }
}

fn logged_out(agent: &store::Agent) -> AgentView {
    AgentView {
        id: agent.id,
        username: agent.username.clone(),
        display_name: agent.display_name.clone(),
        state: AgentState::LoggedOut,
        since: agent.created_at,
        pause_reason: None,
        campaign: None,
        node: None,
        attempt_id: None,
        calls: 0,
        talk_secs: 0.0,
        wait_secs: 0.0,
        digest_algorithms: agent.digest_algorithms.clone(),
        today: None,
    }
}

/// The most keys one DTMF request sends.
pub const MAX_DTMF_DIGITS: usize = 32;

/// Refuses keys outside RFC 4733's 16 DTMF events, an empty string or a long one.
fn check_dtmf(digits: &str) -> Result<()> {
    let bad = |reason: String| Err(EngineError::Invalid(vec![field_error("digits", reason)]));
    if digits.is_empty() || digits.chars().count() > MAX_DTMF_DIGITS {
        return bad(format!("send 1 to {MAX_DTMF_DIGITS} keys"));
    }
    if let Some(c) = digits
        .chars()
        .find(|c| !matches!(c.to_ascii_uppercase(), '0'..='9' | '*' | '#' | 'A'..='D'))
    {
        return bad(format!(
            "`{}` is no DTMF key (0-9, *, #, A-D)",
            c.escape_debug()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn dtmf_keys_are_checked() {
        assert!(super::check_dtmf("0123456789*#ABCDabcd").is_ok());
        assert!(super::check_dtmf("").is_err());
        assert!(super::check_dtmf("12E").is_err());
        assert!(super::check_dtmf(&"1".repeat(33)).is_err());
        assert!(super::check_dtmf(&"1".repeat(32)).is_ok());
    }

    #[test]
    fn user_part_of_request_uri() {
        assert_eq!(super::uri_user("sip:spring@127.0.0.1:5060"), Some("spring"));
        assert_eq!(super::uri_user("sip:alice;x=y@h"), Some("alice"));
        assert_eq!(super::uri_user("sip:127.0.0.1"), None);
    }
}
