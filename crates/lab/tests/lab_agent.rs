//! Lab agent phones against a plain `sip::Endpoint` acting as the dialer (registrar with digest
//! authentication, UAS for the call-in), over real SIP and RTP on loopback: registration, the
//! call-in, talking when a caller is bridged in, `#` after the talk time, the disposition digit,
//! pauses through the hook, logout.

mod support;

use lab::{AgentBehaviour, AgentConfig, AgentHooks, AgentPhone, Dist, PausePolicy, PhoneState};
use media::LegEvent;
use sip::{
    AuthConfig, Endpoint, EndpointConfig, Incoming, IncomingCall, IncomingEvent,
    RegistrationChange, Secret, Uri,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{Listening, WAIT, bank, ports};
use tokio::time::timeout;

/// A dialer's SIP side: a registrar and UAS knowing agent1..agent9 with password `secretN`.
async fn dialer() -> (Endpoint, Incoming, Uri) {
    let mut config = EndpointConfig::udp("127.0.0.1:0".parse().unwrap());
    let secrets = |user: &str| {
        let n = user.strip_prefix("agent")?;
        Some(Secret::password(format!("secret{n}")))
    };
    config.auth = Some(AuthConfig::new("dialer", Arc::new(secrets)));
    let (endpoint, incoming) = Endpoint::bind(config).await.unwrap();
    let uri = Uri::from_addr(None, endpoint.local_addr(sip::Transport::Udp).unwrap());
    (endpoint, incoming, uri)
}

fn behaviour(talk: u64) -> AgentBehaviour {
    AgentBehaviour {
        talk: Dist::Fixed(Duration::from_secs(talk)),
        wrap: Dist::Fixed(Duration::from_secs(1)),
        dispositions: "callback=1".parse().unwrap(),
        gap: Dist::Fixed(Duration::from_millis(500)),
        hangup_silence: Duration::from_secs(3),
        pause: None,
    }
}

/// Waits for the agent's registration, then its call-in.
async fn logged_in(incoming: &mut Incoming, user: &str) -> IncomingCall {
    let mut registered = false;
    loop {
        match timeout(WAIT, incoming.next())
            .await
            .expect("the phone logs in")
            .unwrap()
        {
            IncomingEvent::Registration(RegistrationChange::Registered { user: u, .. }) => {
                assert_eq!(u, user);
                registered = true;
            }
            IncomingEvent::Registration(other) => panic!("{other:?}"),
            IncomingEvent::Call(call) => {
                assert!(registered, "the phone registers before calling in");
                return call;
            }
        }
    }
}

/// Answers the agent's call-in with a leg sending comfort silence, as the dialer does.
async fn answer(call: IncomingCall) -> (sip::Call, Listening) {
    let us = Listening::open(&ports());
    us.leg.set_comfort_silence(true);
    us.aim(call.info().offer.as_ref().expect("the call-in offers SDP"));
    let call = call.answer(us.media()).await.unwrap();
    (call, us)
}

async fn next_digit(us: &mut Listening) -> char {
    timeout(WAIT, async {
        loop {
            if let Some(LegEvent::Dtmf { digit }) = us.events.recv().await {
                return digit;
            }
        }
    })
    .await
    .expect("a digit in time")
}

async fn wait_state(phone: &AgentPhone, state: PhoneState) {
    timeout(WAIT, async {
        while phone.state().0 != state {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the agent never got to {state:?}: {:?}", phone.state()));
}

/// Plays about `seconds` of a caller's conversation into the agent's leg: the lab's sentences
/// with short pauses.
fn caller_talks(us: &Listening, seconds: u64) {
    let pause = media::Prompt::from_samples(lab::silence(Duration::from_millis(700)), "pause");
    let mut total = Duration::ZERO;
    for line in bank().customer_lines.iter().cycle() {
        if total >= Duration::from_secs(seconds) {
            break;
        }
        us.leg.play(line);
        us.leg.play(&pause);
        total += line.duration() + pause.duration();
    }
}

#[tokio::test]
async fn an_agent_registers_calls_in_talks_ends_with_hash_and_sets_a_disposition() {
    let (_endpoint, mut incoming, uri) = dialer().await;
    let mut config = AgentConfig::new("agent1", "secret1", uri);
    config.behaviour = behaviour(5);
    let phone = AgentPhone::start(config, &bank()).await.unwrap();
    let call_in = logged_in(&mut incoming, "agent1").await;
    assert_eq!(
        call_in.info().user.as_deref(),
        Some("agent1"),
        "the call-in was authenticated"
    );
    assert!(
        call_in.info().request_uri.contains("agent1@"),
        "{}",
        call_in.info().request_uri
    );
    let (mut leg_call, mut us) = answer(call_in).await;
    wait_state(&phone, PhoneState::Ready).await;
    // Nothing but comfort silence: the agent waits.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(phone.state().0, PhoneState::Ready);
    // A caller is bridged in and talks for longer than the agent's talk time.
    caller_talks(&us, 30);
    wait_state(&phone, PhoneState::Talking).await;
    assert_eq!(
        next_digit(&mut us).await,
        '#',
        "the agent ends the call after its talk time"
    );
    // The dialer ends the customer's call: silence again.
    us.leg.stop_playback();
    // The agent answered the caller: its voice came back.
    assert!(us.ear.heard().voiced_ms >= 2000, "{:?}", us.ear.heard());
    assert_eq!(
        next_digit(&mut us).await,
        '3',
        "the disposition digit in wrap-up"
    );
    wait_state(&phone, PhoneState::Ready).await;
    let counters = phone.counters();
    assert_eq!(
        (
            counters.calls,
            counters.agent_hangups,
            counters.caller_hangups
        ),
        (1, 1, 0)
    );
    assert_eq!(counters.dispositions.get(&'3'), Some(&1));
    assert!(counters.registrations >= 1 && counters.logins == 1);
    // Logout: BYE on the leg, then the registration removed.
    phone.logout().await;
    let end = timeout(WAIT, leg_call.wait_end()).await.unwrap().unwrap();
    assert_eq!(end.cause, sip::EndCause::RemoteHangup);
    let change = timeout(WAIT, incoming.next()).await.unwrap().unwrap();
    assert!(
        matches!(
            change,
            IncomingEvent::Registration(RegistrationChange::Unregistered { expired: false, .. })
        ),
        "{change:?}"
    );
}

#[tokio::test]
async fn when_the_caller_hangs_up_first_the_agent_sets_the_disposition_without_hash() {
    let (_endpoint, mut incoming, uri) = dialer().await;
    let mut config = AgentConfig::new("agent2", "secret2", uri);
    config.behaviour = behaviour(120);
    let phone = AgentPhone::start(config, &bank()).await.unwrap();
    let (_leg_call, mut us) = answer(logged_in(&mut incoming, "agent2").await).await;
    wait_state(&phone, PhoneState::Ready).await;
    caller_talks(&us, 4);
    wait_state(&phone, PhoneState::Talking).await;
    // The caller's sentences end; the line goes quiet; the agent notices and wraps up.
    assert_eq!(next_digit(&mut us).await, '3');
    let counters = phone.counters();
    assert_eq!(
        (
            counters.calls,
            counters.agent_hangups,
            counters.caller_hangups
        ),
        (1, 0, 1)
    );
    // A second caller is taken the same way.
    caller_talks(&us, 4);
    assert_eq!(next_digit(&mut us).await, '3');
    assert_eq!(phone.counters().calls, 2);
}

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl AgentHooks for Recorder {
    fn paused(&self, username: &str, reason: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{username} paused: {reason}"));
    }
    fn resumed(&self, username: &str) {
        self.0.lock().unwrap().push(format!("{username} resumed"));
    }
}

#[tokio::test]
async fn pauses_go_through_the_hook() {
    let (_endpoint, mut incoming, uri) = dialer().await;
    let hooks = Arc::new(Recorder::default());
    let mut config = AgentConfig::new("agent3", "secret3", uri);
    config.behaviour = behaviour(120);
    config.behaviour.pause = Some(PausePolicy {
        chance: 1.0,
        length: Dist::Fixed(Duration::from_secs(2)),
    });
    config.hooks = Some(hooks.clone());
    let phone = AgentPhone::start(config, &bank()).await.unwrap();
    let (_leg_call, mut us) = answer(logged_in(&mut incoming, "agent3").await).await;
    wait_state(&phone, PhoneState::Ready).await;
    caller_talks(&us, 3);
    assert_eq!(next_digit(&mut us).await, '3');
    wait_state(&phone, PhoneState::Paused).await;
    wait_state(&phone, PhoneState::Ready).await;
    assert_eq!(
        *hooks.0.lock().unwrap(),
        ["agent3 paused: break", "agent3 resumed"]
    );
    assert_eq!(phone.counters().pauses, 1);
}

#[tokio::test]
async fn a_wrong_password_is_reported_and_retried_not_fatal() {
    let (_endpoint, mut incoming, uri) = dialer().await;
    let phone = AgentPhone::start(AgentConfig::new("agent4", "wrong", uri), &bank())
        .await
        .unwrap();
    timeout(WAIT, async {
        while phone.counters().registration_failures == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the refusal is counted");
    assert_eq!(phone.state().0, PhoneState::LoggedOut);
    assert!(phone.last_error().unwrap().contains("registration refused"));
    // Refused registrations never led to a call-in.
    assert!(
        timeout(Duration::from_millis(500), incoming.next_call())
            .await
            .is_err()
    );
}

#[tokio::test]
async fn the_dialer_hanging_up_the_leg_logs_the_agent_out_and_it_calls_in_again() {
    let (_endpoint, mut incoming, uri) = dialer().await;
    let mut config = AgentConfig::new("agent5", "secret5", uri);
    config.reconnect = Some(Duration::from_millis(500));
    let phone = AgentPhone::start(config, &bank()).await.unwrap();
    let (leg_call, _us) = answer(logged_in(&mut incoming, "agent5").await).await;
    wait_state(&phone, PhoneState::Ready).await;
    leg_call.hangup();
    let again = timeout(WAIT, incoming.next_call()).await.unwrap().unwrap();
    assert_eq!(again.info().user.as_deref(), Some("agent5"));
    let (_leg_call, _us) = answer(again).await;
    wait_state(&phone, PhoneState::Ready).await;
    let counters = phone.counters();
    assert_eq!((counters.logins, counters.dialer_hangups), (2, 1));
}
