//! The campaign actor: one task per campaign owning its core (pacer, agent pool, calls), its
//! agents' legs and its calls' command channels. Everything that happens to the campaign comes
//! through its inbox; it feeds the core, carries out the core's actions (lease, assign,
//! abandon, hang up, store dispositions), and publishes figures every second.

use crate::call::{CallAction, CallInput};
use crate::cluster::Counters;
use crate::core::{CampaignCore, CoreAction, CoreInput};
use crate::driver::CallCtx;
use crate::error::{EngineError, Result};
use crate::inbox::{
    ActorMsg, AgentCommand, AgentOp, CallCommand, CampaignHandle, LegOp, Runtime, Session,
};
use crate::pool::PoolAgent;
use crate::shared::{Shared, lock};
use crate::view::{
    AbandonView, AgentDay, AgentState, AgentView, CampaignFigures, CampaignView, EngineEvent,
    ShutdownReport, TrunkFigures, TrunkRegistrationState,
};
use chrono::{DateTime, Utc};
use domain::CampaignStatus;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use store::{Campaign, LeaseOptions, LeasedContact};
use tokio::sync::{mpsc, oneshot, watch};

struct Draining {
    /// Answered calls when the shutdown began (they may finish by themselves).
    answered: u32,
    deadline: tokio::time::Instant,
    hard_deadline: tokio::time::Instant,
    cut: bool,
    report: ShutdownReport,
    reply: Option<oneshot::Sender<ShutdownReport>>,
}

struct Actor {
    shared: Arc<Shared>,
    runtime: Arc<Runtime>,
    runtime_slot: Arc<std::sync::RwLock<Arc<Runtime>>>,
    core: CampaignCore,
    tx: mpsc::UnboundedSender<ActorMsg>,
    calls: HashMap<u64, mpsc::UnboundedSender<CallCommand>>,
    contacts: HashMap<u64, i64>,
    dialling: HashSet<i64>,
    sessions: HashMap<i64, Session>,
    view: watch::Sender<CampaignView>,
    status: CampaignStatus,
    draining: Option<Draining>,
    decisions_reported: u64,
    /// Live answers and abandons of other nodes already added to the pacer's window.
    others_seeded: (i64, i64),
    /// This node's own live answers and abandons of this run.
    own: (i64, i64),
    /// The trunk's registration, held while the campaign is not stopped (if the carrier
    /// wants one).
    registration: Option<sip::TrunkRegistration>,
    /// Whether the core was last told the campaign runs (it is held paused while a required
    /// registration is missing).
    dialling_allowed: bool,
}

/// Starts a campaign's actor.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    campaign: &Campaign,
    runtime: Arc<Runtime>,
    history: Vec<pacing::HistoryBucket>,
) -> Result<CampaignHandle> {
    let pacer = pacing::Pacer::new(runtime.setup.pacing.clone()).map_err(|err| {
        EngineError::Invalid(vec![crate::view::field_error("pacing", err.to_string())])
    })?;
    let mut core = CampaignCore::new(runtime.setup.core.clone(), pacer, CampaignStatus::Paused);
    let now = shared.now();
    core.seed_window(now, &history);
    let (tx, rx) = mpsc::unbounded_channel();
    let view = empty_view(&shared, campaign.id, &runtime, campaign.status);
    let (view_tx, view_rx) = watch::channel(view);
    let slot = Arc::new(std::sync::RwLock::new(runtime.clone()));
    let mut actor = Actor {
        shared,
        runtime,
        runtime_slot: slot.clone(),
        core,
        tx: tx.clone(),
        calls: HashMap::new(),
        contacts: HashMap::new(),
        dialling: HashSet::new(),
        sessions: HashMap::new(),
        view: view_tx,
        status: campaign.status,
        draining: None,
        decisions_reported: 0,
        others_seeded: (0, 0),
        own: (0, 0),
        registration: None,
        dialling_allowed: false,
    };
    actor.sync_registration();
    actor
        .core
        .handle(now, CoreInput::Status(actor.core_status()));
    actor.dialling_allowed = actor.core_status() == CampaignStatus::Running;
    tokio::spawn(async move { actor.run(rx).await });
    Ok(CampaignHandle {
        tx,
        view: view_rx,
        runtime: slot,
    })
}

fn empty_view(shared: &Shared, id: i64, runtime: &Runtime, status: CampaignStatus) -> CampaignView {
    CampaignView::idle(
        id,
        &runtime.name,
        status,
        &runtime.spec,
        shared.wall(shared.now()),
    )
}

impl Actor {
    async fn run(&mut self, mut rx: mpsc::UnboundedReceiver<ActorMsg>) {
        let mut figures = tokio::time::interval(self.shared.config.figures_every);
        figures.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut reconcile = tokio::time::interval(Duration::from_secs(10));
        reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut renew = tokio::time::interval(self.shared.config.lease / 3);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let wake = self.shared.epoch + self.core.poll_timeout();
            let drain_wake = self
                .draining
                .as_ref()
                .map(|d| if d.cut { d.hard_deadline } else { d.deadline });
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => self.message(msg),
                    None => break,
                },
                () = tokio::time::sleep_until(wake) => {
                    let now = self.shared.now();
                    self.core.handle(now, CoreInput::Tick);
                }
                () = sleep_opt(drain_wake) => {}
                _ = figures.tick() => {
                    self.gate_dialling();
                    self.publish_figures();
                }
                _ = reconcile.tick() => self.reconcile().await,
                _ = renew.tick() => self.renew_leases(),
            }
            self.execute();
            if self.drain_step() {
                break;
            }
        }
        tracing::debug!(campaign = %self.runtime.name, "campaign actor stopped");
    }

    fn message(&mut self, msg: ActorMsg) {
        let now = self.shared.now();
        match msg {
            ActorMsg::Core(input) => {
                match &input {
                    CoreInput::CallSkipped { key } => {
                        self.calls.remove(key);
                        if let Some(contact) = self.contacts.remove(key) {
                            self.dialling.remove(&contact);
                        }
                    }
                    CoreInput::CallPlaced { .. } => self.spawn_counters(Counters {
                        placed: 1,
                        in_flight: 1,
                        ..Default::default()
                    }),
                    _ => {}
                }
                self.core.handle(now, input);
            }
            ActorMsg::Login { agent, session } => {
                if self.draining.is_some() {
                    let _ = session.control.send(AgentCommand::Hangup);
                    return;
                }
                let leg = session.leg.id();
                if let Some(old) = self.sessions.insert(agent, session) {
                    // The phone called in again: the old leg is replaced.
                    let _ = old.control.send(AgentCommand::Hangup);
                }
                lock(&self.shared.directory).insert(agent, (self.runtime.name.clone(), leg));
                if self.core.pool().get(agent).is_none() {
                    self.shared.days().login(agent, Utc::now());
                }
                self.core.handle(now, CoreInput::AgentLogin(agent));
            }
            ActorMsg::Logout { agent, leg } => {
                if self.sessions.get(&agent).is_some_and(|s| s.leg.id() == leg) {
                    self.core.handle(now, CoreInput::AgentLogout(agent));
                }
            }
            ActorMsg::Leased { asked, contacts } => {
                let mut got = 0;
                let mut fresh = Vec::new();
                for contact in contacts {
                    // A contact still in a call here (its lease ran out meanwhile) is never
                    // dialled twice at once.
                    if self.dialling.insert(contact.id) {
                        got += 1;
                        fresh.push(contact);
                    }
                }
                self.core.handle(now, CoreInput::Leased { asked, got });
                for contact in fresh {
                    self.start_call(contact);
                }
            }
            ActorMsg::Reload { runtime, applied } => {
                if let Err(err) = self.core.set_pacing(runtime.setup.pacing.clone()) {
                    tracing::warn!(%err, campaign = %runtime.name, "pacing settings refused");
                }
                self.core.set_settings(runtime.setup.core.clone());
                if let Ok(mut slot) = self.runtime_slot.write() {
                    *slot = runtime.clone();
                }
                self.runtime = runtime;
                self.sync_registration();
                self.gate_dialling();
                self.core.handle(now, CoreInput::Tick);
                if let Some(applied) = applied {
                    self.publish_figures();
                    let _ = applied.send(());
                }
            }
            ActorMsg::Status { status, reply } => {
                self.status = status;
                self.sync_registration();
                if self.draining.is_none() {
                    let status = self.core_status();
                    self.dialling_allowed = status == CampaignStatus::Running;
                    self.core.handle(now, CoreInput::Status(status));
                }
                self.publish_figures();
                let _ = reply.send(self.view.borrow().clone());
            }
            ActorMsg::Agent {
                agent,
                op: AgentOp::Hold(on),
                reply,
            } => self.leg_op(agent, LegOp::Hold(on), reply),
            ActorMsg::Agent {
                agent,
                op: AgentOp::Dtmf(digits),
                reply,
            } => self.leg_op(agent, LegOp::Dtmf(digits), reply),
            ActorMsg::Agent { agent, op, reply } => {
                let _ = reply.send(self.agent_op(now, agent, op));
            }
            ActorMsg::Shutdown { grace, reply } => {
                let mut report = ShutdownReport::default();
                let counts = self.core.call_counts();
                report.cancelled = counts.dialing;
                self.core
                    .handle(now, CoreInput::Status(CampaignStatus::Stopped));
                self.dialling_allowed = false;
                let start = tokio::time::Instant::now();
                self.draining = Some(Draining {
                    answered: counts.in_flight - counts.dialing,
                    deadline: start + grace,
                    hard_deadline: start + grace + Duration::from_secs(10),
                    cut: false,
                    report,
                    reply: Some(reply),
                });
                self.sync_registration();
            }
        }
    }

    /// Holds the trunk's registration while the campaign is not stopped, and lets it go (the
    /// endpoint unregisters once no campaign holds the same one) when it stops, the trunk no
    /// longer needs it, or the registration asked for changed.
    fn sync_registration(&mut self) {
        let wanted = self
            .runtime
            .register
            .clone()
            .filter(|_| self.status != CampaignStatus::Stopped && self.draining.is_none());
        match wanted {
            Some(spec) => {
                // The endpoint hands out the same registration for the same spec.
                let held = self
                    .shared
                    .endpoint
                    .register_trunk(spec, self.shared.config.register_retry);
                self.registration = Some(held);
            }
            None => self.registration = None,
        }
    }

    /// The status the core is given: a running campaign whose trunk must be registered and is
    /// not is held paused (no new calls; calls in flight go on).
    fn core_status(&self) -> CampaignStatus {
        let blocked = self.runtime.register.is_some()
            && !self
                .registration
                .as_ref()
                .is_some_and(sip::TrunkRegistration::is_registered);
        if self.status == CampaignStatus::Running && blocked {
            CampaignStatus::Paused
        } else {
            self.status
        }
    }

    /// Tells the core when dialling becomes allowed or not as the registration comes and goes.
    fn gate_dialling(&mut self) {
        if self.draining.is_some() {
            return;
        }
        let status = self.core_status();
        let allowed = status == CampaignStatus::Running;
        if allowed != self.dialling_allowed {
            self.dialling_allowed = allowed;
            tracing::info!(
                campaign = %self.runtime.name,
                allowed,
                "dialling {} by the trunk's registration",
                if allowed { "allowed" } else { "held" }
            );
            let now = self.shared.now();
            self.core.handle(now, CoreInput::Status(status));
        }
    }

    fn trunk_figures(&self) -> TrunkFigures {
        let dest = self.runtime.trunk.destination();
        let target = Some(format!("{}:{}", dest.transport, dest.addr).to_lowercase());
        let Some(registration) = &self.registration else {
            return TrunkFigures {
                registration: if self.runtime.register.is_some() {
                    TrunkRegistrationState::Unregistered
                } else {
                    TrunkRegistrationState::NotRequired
                },
                target,
                ..TrunkFigures::default()
            };
        };
        let status = registration.status();
        TrunkFigures {
            registration: match status.state {
                sip::RegistrationState::Registering => TrunkRegistrationState::Registering,
                sip::RegistrationState::Registered => TrunkRegistrationState::Registered,
                sip::RegistrationState::Failed => TrunkRegistrationState::Failed,
                sip::RegistrationState::Unregistered => TrunkRegistrationState::Unregistered,
            },
            code: status.code,
            expires_secs: status.expires,
            last_refresh: status.last_refresh.map(DateTime::<Utc>::from),
            refreshes: status.refreshes,
            failures: status.failures,
            target,
        }
    }

    fn agent_op(&mut self, now: Duration, agent: i64, op: AgentOp) -> Result<AgentView> {
        let Some(state) = self.core.pool().get(agent).map(|a| a.state) else {
            return Err(EngineError::NotLoggedIn(agent));
        };
        match op {
            AgentOp::Ready => self.core.handle(now, CoreInput::AgentReady(agent)),
            AgentOp::Pause(reason) => self
                .core
                .handle(now, CoreInput::AgentPause { agent, reason }),
            AgentOp::Hangup => {
                if !matches!(state, AgentState::OnCall | AgentState::Reserved) {
                    return Err(EngineError::AgentState {
                        agent,
                        action: "hang up",
                        state: state.as_str(),
                    });
                }
                self.core.handle(now, CoreInput::AgentHangup(agent));
            }
            AgentOp::Logout => {
                if let Some(session) = self.sessions.get(&agent) {
                    let _ = session.control.send(AgentCommand::Hangup);
                }
            }
            // Answered by the call's task (`leg_op`).
            AgentOp::Hold(_) | AgentOp::Dtmf(_) => {}
        }
        self.agent_view(agent)
            .ok_or(EngineError::NotLoggedIn(agent))
    }

    /// Hands a hold or keys to the task of the agent's bridged call, which answers the
    /// facade itself (only it knows whether the callee's leg can).
    fn leg_op(
        &mut self,
        agent: i64,
        op: LegOp,
        reply: oneshot::Sender<crate::error::Result<AgentView>>,
    ) {
        let action = match op {
            LegOp::Hold(true) => "hold",
            LegOp::Hold(false) => "unhold",
            LegOp::Dtmf(_) => "send keys",
        };
        let Some(a) = self.core.pool().get(agent) else {
            let _ = reply.send(Err(EngineError::NotLoggedIn(agent)));
            return;
        };
        let (state, key) = (a.state, a.call);
        let sender = key.and_then(|key| self.calls.get(&key));
        let (AgentState::OnCall, Some(sender), Some(view)) =
            (state, sender, self.agent_view(agent))
        else {
            let _ = reply.send(Err(EngineError::AgentState {
                agent,
                action,
                state: state.as_str(),
            }));
            return;
        };
        tracing::info!(agent, campaign = %self.runtime.name, attempt = ?view.attempt_id, action, "agent's call");
        if let Err(mpsc::error::SendError(CallCommand::Leg { reply, .. })) =
            sender.send(CallCommand::Leg {
                op,
                view: Box::new(view),
                reply,
            })
        {
            let _ = reply.send(Err(EngineError::AgentState {
                agent,
                action,
                state: "ending its call",
            }));
        }
    }

    fn start_call(&mut self, contact: LeasedContact) {
        let key = self.shared.next_key();
        let (tx, rx) = mpsc::unbounded_channel();
        self.calls.insert(key, tx);
        self.contacts.insert(key, contact.id);
        let now = self.shared.now();
        self.core.handle(
            now,
            CoreInput::CallCreated {
                key,
                callback_agent: contact.callback_agent_id,
            },
        );
        let ctx = CallCtx {
            shared: self.shared.clone(),
            key,
            runtime: self.runtime.clone(),
            contact,
            actor: self.tx.clone(),
            commands: rx,
        };
        tokio::spawn(crate::driver::run(ctx));
    }

    fn execute(&mut self) {
        while let Some(action) = self.core.poll_action() {
            match action {
                CoreAction::Lease {
                    count,
                    callback_agents,
                } => {
                    let shared = self.shared.clone();
                    let tx = self.tx.clone();
                    let campaign = self.runtime.id;
                    let name = self.runtime.name.clone();
                    tokio::spawn(async move {
                        let options = LeaseOptions { callback_agents };
                        let contacts = match shared
                            .store
                            .lease_due_with(
                                campaign,
                                &shared.config.node_id,
                                count as usize,
                                Utc::now(),
                                shared.config.lease,
                                &options,
                            )
                            .await
                        {
                            Ok(contacts) => contacts,
                            Err(err) => {
                                tracing::error!(%err, campaign = %name, "lease failed");
                                Vec::new()
                            }
                        };
                        let _ = tx.send(ActorMsg::Leased {
                            asked: count,
                            contacts,
                        });
                    });
                }
                CoreAction::Call {
                    key,
                    action: CallAction::Bridge { agent },
                } => {
                    let leg = self.sessions.get(&agent).map(|s| s.leg.clone());
                    let sent = match (self.calls.get(&key), leg) {
                        (Some(call), Some(leg)) => {
                            call.send(CallCommand::Bridge { agent, leg }).is_ok()
                        }
                        _ => false,
                    };
                    if !sent {
                        let now = self.shared.now();
                        self.core.handle(
                            now,
                            CoreInput::Call {
                                key,
                                input: CallInput::BridgeFailed { agent },
                            },
                        );
                    }
                }
                CoreAction::Call {
                    key,
                    action: CallAction::Finish(finished),
                } => {
                    let delta = counters_for(finished.outcome);
                    if finished.outcome.is_live_answer() {
                        self.own.0 += 1;
                    }
                    if finished.outcome == domain::Outcome::Abandoned {
                        self.own.1 += 1;
                    }
                    self.spawn_counters(delta);
                    if let Some(call) = self.calls.remove(&key) {
                        let _ = call.send(CallCommand::Do(CallAction::Finish(finished)));
                    }
                    if let Some(contact) = self.contacts.remove(&key) {
                        self.dialling.remove(&contact);
                    }
                }
                CoreAction::Call { key, action } => {
                    if let Some(call) = self.calls.get(&key) {
                        let _ = call.send(CallCommand::Do(action));
                    }
                }
                CoreAction::Dispose {
                    agent,
                    attempt,
                    kind,
                    timed_out,
                } => self.dispose(agent, attempt, kind, timed_out),
                CoreAction::AgentChanged(agent) => {
                    if let Some(view) = self.agent_view(agent) {
                        self.shared.publish_agent(view);
                    }
                }
                CoreAction::AgentGone(gone) => self.agent_gone(gone),
            }
        }
        let decisions = self.core.pacing_view(self.shared.now()).decisions;
        if decisions > self.decisions_reported {
            metrics::counter!("dialer_pacing_decisions_total", "campaign" => self.runtime.name.clone())
                .increment(decisions - self.decisions_reported);
            self.decisions_reported = decisions;
        }
    }

    fn dispose(&self, agent: i64, attempt: i64, kind: domain::DispositionKind, timed_out: bool) {
        let store = self.shared.store.clone();
        let callback_at = (kind == domain::DispositionKind::Callback).then(|| {
            Utc::now()
                + chrono::Duration::from_std(self.runtime.setup.callback_after).unwrap_or_default()
        });
        let disposition = domain::Disposition {
            kind,
            note: timed_out.then(|| "wrap-up timed out".to_owned()),
            callback_at,
            callback_personal: false,
        };
        tokio::spawn(async move {
            if let Err(err) = store
                .set_disposition(attempt, Some(agent), &disposition)
                .await
            {
                tracing::error!(%err, agent, attempt, "cannot store the disposition");
            }
        });
    }

    fn agent_gone(&mut self, gone: PoolAgent) {
        let session = self.sessions.remove(&gone.id);
        if let Some(session) = &session {
            self.shared.forget_session(gone.id, session.leg.id());
            let _ = session.control.send(AgentCommand::Hangup);
        }
        let (username, display_name) = session
            .map(|s| (s.username, s.display_name))
            .unwrap_or_default();
        let view = AgentView {
            id: gone.id,
            username,
            display_name,
            state: AgentState::LoggedOut,
            since: Utc::now(),
            pause_reason: None,
            campaign: None,
            node: None,
            attempt_id: None,
            calls: gone.calls,
            talk_secs: gone.talk.as_secs_f64(),
            wait_secs: gone.wait.as_secs_f64(),
            digest_algorithms: None,
            today: None,
        };
        let at = view.since;
        self.shared
            .days()
            .logout(gone.id, at, &self.session_figures(&gone));
        let view = AgentView {
            today: self.shared.days().today(gone.id, at, None),
            ..view
        };
        self.shared.publish_agent(view);
    }

    fn agent_view(&self, agent: i64) -> Option<AgentView> {
        let a = self.core.pool().get(agent)?;
        let session = self.sessions.get(&agent);
        Some(AgentView {
            id: agent,
            username: session.map(|s| s.username.clone()).unwrap_or_default(),
            display_name: session.map(|s| s.display_name.clone()).unwrap_or_default(),
            state: a.state,
            since: self.shared.wall(a.since),
            pause_reason: a.pause_reason.clone(),
            campaign: Some(self.runtime.name.clone()),
            node: Some(self.shared.config.node_id.clone()),
            attempt_id: a.attempt,
            calls: a.calls,
            talk_secs: a.talk.as_secs_f64(),
            wait_secs: a.wait.as_secs_f64(),
            digest_algorithms: None,
            today: self
                .shared
                .days()
                .today(agent, Utc::now(), Some(&self.session_figures(a))),
        })
    }

    /// A session's figures as a day's (one session, begun at its login).
    fn session_figures(&self, a: &PoolAgent) -> AgentDay {
        AgentDay {
            day: chrono::NaiveDate::default(),
            sessions: 1,
            first_login: self.shared.wall(a.login_at),
            calls: a.calls,
            talk_secs: a.talk.as_secs_f64(),
            wait_secs: a.wait.as_secs_f64(),
        }
    }

    fn spawn_counters(&self, delta: Counters) {
        let cluster = self.shared.cluster.clone();
        let id = self.runtime.id;
        tokio::spawn(async move {
            if let Err(err) = cluster.add_counters(id, &delta).await {
                tracing::warn!(%err, "cluster counters not updated");
            }
        });
    }

    /// Extends the leases of the contacts in a call here, so that a call longer than the lease
    /// never lets another node dial the same person.
    fn renew_leases(&self) {
        if self.dialling.is_empty() {
            return;
        }
        let ids: Vec<i64> = self.dialling.iter().copied().collect();
        let store = self.shared.store.clone();
        let node = self.shared.config.node_id.clone();
        let until = self
            .shared
            .wall(self.shared.now() + self.shared.config.lease);
        let campaign = self.runtime.name.clone();
        tokio::spawn(async move {
            match store.renew(&ids, &node, until).await {
                Ok(renewed) => tracing::debug!(%campaign, renewed, "leases renewed"),
                Err(err) => tracing::warn!(%err, %campaign, "leases not renewed"),
            }
        });
    }

    /// Adds other nodes' live answers and abandons (from the shared counters) to the pacer's
    /// window, so the abandon rate it steers by is the campaign's, not this node's.
    async fn reconcile(&mut self) {
        let Ok(all) = self.shared.cluster.counters(self.runtime.id).await else {
            return;
        };
        let others_live = all.live - self.own.0;
        let others_abandoned = all.abandoned - self.own.1;
        let live = (others_live - self.others_seeded.0).max(0);
        let abandoned = (others_abandoned - self.others_seeded.1).max(0);
        if live > 0 || abandoned > 0 {
            let now = self.shared.now();
            self.core.seed_window(
                now,
                &[pacing::HistoryBucket {
                    ago: Duration::ZERO,
                    live: live as u64,
                    abandoned: abandoned as u64,
                }],
            );
            self.others_seeded.0 += live;
            self.others_seeded.1 += abandoned;
        }
    }

    fn publish_figures(&mut self) {
        let now = self.shared.now();
        let (live, abandons) = self.core.window(now);
        let (occupancy, mean_wait) = self.core.occupancy(now);
        let (median, p99) = self.core.connect_times();
        let (greeting_median, greeting_p99) = self.core.greeting_connect_times();
        let spec = &self.runtime.spec;
        let rate = if live > 0 {
            abandons as f64 / live as f64
        } else {
            0.0
        };
        let view = CampaignView {
            id: self.runtime.id,
            name: self.runtime.name.clone(),
            status: self.status,
            mode: spec.pacing.mode,
            figures: CampaignFigures {
                at: self.shared.wall(now),
                agents: self.core.agent_counts(),
                calls: self.core.call_counts(),
                totals: self.core.totals(),
                abandon: AbandonView {
                    window: spec.pacing.abandon_window,
                    live_answers: live,
                    abandons,
                    rate,
                    target: spec.pacing.abandon_target,
                },
                pacing: self.core.pacing_view(now),
                occupancy,
                mean_wait_secs: mean_wait,
                connect_median_secs: median,
                connect_p99_secs: p99,
                greeting_connect_median_secs: greeting_median,
                greeting_connect_p99_secs: greeting_p99,
                trunk: Box::new(self.trunk_figures()),
            },
        };
        metrics::gauge!("dialer_abandon_rate", "campaign" => self.runtime.name.clone()).set(rate);
        self.view.send_replace(view.clone());
        self.shared.publish(EngineEvent::Campaign(view));
    }

    /// Moves a shutdown along; true once the actor is done.
    fn drain_step(&mut self) -> bool {
        let Some(d) = &mut self.draining else {
            return false;
        };
        let now = tokio::time::Instant::now();
        if self.calls.is_empty() || now >= d.hard_deadline {
            if !self.calls.is_empty() {
                tracing::warn!(
                    campaign = %self.runtime.name,
                    calls = self.calls.len(),
                    "calls still up after the shutdown deadline"
                );
            }
            for session in self.sessions.values() {
                let _ = session.control.send(AgentCommand::Hangup);
            }
            d.report.finished = d.answered.saturating_sub(d.report.cut);
            if let Some(reply) = d.reply.take() {
                let _ = reply.send(d.report);
            }
            self.publish_figures();
            return true;
        }
        if !d.cut && now >= d.deadline {
            d.cut = true;
            d.report.cut = self.calls.len() as u32;
            let now = self.shared.now();
            self.core.handle(now, CoreInput::CutAll);
            self.execute();
        }
        false
    }
}

fn counters_for(outcome: domain::Outcome) -> Counters {
    use domain::Outcome as O;
    Counters {
        in_flight: -1,
        live: i64::from(outcome.is_live_answer()),
        abandoned: i64::from(outcome == O::Abandoned),
        connected: i64::from(outcome == O::Connected),
        machines: i64::from(matches!(outcome, O::MachineHungUp | O::MachineMessageLeft)),
        placed: 0,
    }
}

async fn sleep_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
