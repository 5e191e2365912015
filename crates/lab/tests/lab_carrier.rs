//! The lab carrier driven by a plain `sip::Endpoint` as the dialer, over real SIP and RTP on
//! loopback: each outcome's SIP sequence, the audio it sends (greetings, beeps, SIT), and what
//! it records of the audio it receives.

mod support;

use lab::{CallRecord, Callee, Carrier, CarrierConfig, Ending, Mix, Override};
use media::Prompt;
use media::detect::{SitCode, ToneEvent};
use sip::{
    Call, CallEvent, CallerId, Credentials, EndCause, Endpoint, EndpointConfig, OutboundCall,
    TrunkConfig,
};
use std::io::Cursor;
use std::time::Duration;
use support::{Listening, WAIT, bank, fast_behaviour, ports};
use tokio::time::timeout;

/// A carrier whose numbers' outcome is set by their prefix: +1202555 then 1 human, 2 machine,
/// 3 busy, 4 no answer, 5 SIT, 6 unavailable. Everything else is unavailable.
async fn carrier(credentials: Option<(&str, &str)>) -> Carrier {
    let mut config = CarrierConfig::new(bank());
    config.planner.behaviour = fast_behaviour();
    config.planner.mix = Mix::only(Callee::Unavailable);
    config.planner.overrides = [
        ("+12025551*", Callee::Human),
        ("+12025552*", Callee::Machine),
        ("+12025553*", Callee::Busy),
        ("+12025554*", Callee::NoAnswer),
        ("+12025555*", Callee::Sit),
    ]
    .iter()
    .map(|(pattern, outcome)| Override::new(pattern, *outcome).unwrap())
    .collect();
    config.credentials = credentials.map(|(u, p)| (u.to_owned(), p.to_owned()));
    config.keep_audio = Some(Duration::from_secs(30));
    Carrier::start(config).await.unwrap()
}

struct Dialer {
    endpoint: Endpoint,
    trunk: sip::Trunk,
}

impl Dialer {
    async fn new(carrier: &Carrier, credentials: Option<Credentials>) -> Dialer {
        let (endpoint, _incoming) =
            Endpoint::bind(EndpointConfig::udp("127.0.0.1:0".parse().unwrap()))
                .await
                .unwrap();
        let mut trunk = TrunkConfig::new(carrier.uri(), 100);
        trunk.credentials = credentials;
        let trunk = endpoint.trunk(trunk).await.unwrap();
        Dialer { endpoint, trunk }
    }

    async fn dial(&self, number: &str, listening: &Listening, ring_timeout: Duration) -> Call {
        self.endpoint
            .dial(
                &self.trunk,
                OutboundCall {
                    number: number.into(),
                    caller_id: CallerId {
                        number: "+12025550143".into(),
                        name: Some("ACME Insurance".into()),
                    },
                    media: listening.media(),
                    ring_timeout,
                    headers: vec![],
                },
            )
            .await
            .unwrap()
    }
}

/// Events until (and with) the first that `stop` accepts.
async fn until(call: &mut Call, stop: impl Fn(&CallEvent) -> bool) -> Vec<CallEvent> {
    let mut seen = Vec::new();
    loop {
        let event = timeout(WAIT, call.next_event())
            .await
            .expect("the carrier answered in time")
            .expect("the call goes on");
        let done = stop(&event);
        seen.push(event);
        if done {
            return seen;
        }
    }
}

fn codes(events: &[CallEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            CallEvent::Progress { code, .. } if *code > 100 => Some(code.to_string()),
            CallEvent::Answered { .. } => Some("200".into()),
            CallEvent::Ended(end) => Some(format!("end {:?} {:?}", end.cause, end.code)),
            _ => None,
        })
        .collect()
}

async fn record(carrier: &Carrier, call_id: &str) -> CallRecord {
    carrier
        .wait_record(WAIT, |r| r.call_id == call_id)
        .await
        .expect("the carrier recorded the call")
}

fn steps(record: &CallRecord) -> Vec<&str> {
    record.steps.iter().map(|s| s.what.as_str()).collect()
}

fn wav(bytes: &[u8]) -> Prompt {
    Prompt::from_wav_reader(Cursor::new(bytes), "message").unwrap()
}

#[tokio::test]
async fn a_person_answers_with_a_greeting_talks_and_hangs_up() {
    let carrier = carrier(None).await;
    let dialer = Dialer::new(&carrier, None).await;
    let ports = ports();
    let us = Listening::open(&ports);
    let mut call = dialer
        .dial("+12025551001", &us, Duration::from_secs(30))
        .await;
    let events = until(&mut call, |e| matches!(e, CallEvent::Answered { .. })).await;
    assert_eq!(codes(&events), ["180", "200"]);
    let Some(CallEvent::Answered { sdp: Some(sdp) }) = events.last() else {
        panic!("no SDP in the 200: {events:?}")
    };
    us.aim(sdp);
    // The agent speaks once the person has said hello.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    us.leg.play(&bank().agent_lines[0]);
    let end = until(&mut call, |e| matches!(e, CallEvent::Ended(_))).await;
    assert!(
        matches!(end.last(), Some(CallEvent::Ended(e)) if e.cause == EndCause::RemoteHangup),
        "{end:?}"
    );
    let record = record(&carrier, call.call_id()).await;
    assert_eq!(record.plan.outcome, Callee::Human);
    assert!(record.plan.forced);
    assert_eq!(record.ending, Ending::Callee { why: "talk done" });
    assert_eq!(record.number, "+12025551001");
    assert_eq!(record.caller_id.as_deref(), Some("+12025550143"));
    assert_eq!(record.caller_name.as_deref(), Some("ACME Insurance"));
    assert!(
        record
            .greeting
            .as_deref()
            .is_some_and(|g| g.contains("human"))
    );
    let s = steps(&record);
    for step in [
        "INVITE",
        "180",
        "200",
        "ACK",
        "greeting",
        "voice heard",
        "BYE sent (talk done)",
    ] {
        assert!(s.contains(&step), "no {step} in {s:?}");
    }
    // It heard the agent's sentence (about 5 s), and we heard its greeting and conversation.
    assert!(record.heard_voice());
    assert!(record.heard.longest_ms() >= 3000, "{:?}", record.heard);
    assert!(!record.audio.is_empty());
    let ours = us.ear.heard();
    assert!(ours.voiced_ms >= 1500, "we heard {ours:?}");
    let counters = carrier.counters();
    assert_eq!(
        (counters.human, counters.answered, counters.connected),
        (1, 1, 1)
    );
    assert_eq!(counters.callee_hangups, 1);
}

#[tokio::test]
async fn a_machine_beeps_then_records_the_message_left() {
    let carrier = carrier(None).await;
    let dialer = Dialer::new(&carrier, None).await;
    let ports = ports();
    let us = Listening::open(&ports);
    let mut call = dialer
        .dial("+12025552001", &us, Duration::from_secs(30))
        .await;
    let events = until(&mut call, |e| matches!(e, CallEvent::Answered { .. })).await;
    let Some(CallEvent::Answered { sdp: Some(sdp) }) = events.last() else {
        panic!("no SDP in the 200: {events:?}")
    };
    us.aim(sdp);
    // Wait for the beep, as a campaign leaving messages does, then leave the message.
    let beep = timeout(WAIT, async {
        loop {
            if let Some(beep) = us
                .tones()
                .into_iter()
                .find(|t| matches!(t, ToneEvent::Beep { .. }))
            {
                return beep;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a beep ends the greeting");
    let message = wav(lab::VOICEMAIL_MESSAGE_WAV);
    us.leg.play(&message);
    let end = until(&mut call, |e| matches!(e, CallEvent::Ended(_))).await;
    assert!(matches!(end.last(), Some(CallEvent::Ended(e)) if e.cause == EndCause::RemoteHangup));
    let record = record(&carrier, call.call_id()).await;
    assert_eq!(record.plan.outcome, Callee::Machine, "{beep:?}");
    assert_eq!(
        record.ending,
        Ending::Callee {
            why: "message done"
        }
    );
    // Most of the 11.6 s message was heard after the beep.
    assert!(
        record.message_ms() >= 8000,
        "message {} ms: {:?}",
        record.message_ms(),
        record.heard
    );
    assert!(steps(&record).contains(&"message started"));
    assert_eq!(carrier.counters().messages, 1);
}

#[tokio::test]
async fn a_machine_hung_up_on_during_its_greeting_records_no_message() {
    let carrier = carrier(None).await;
    let dialer = Dialer::new(&carrier, None).await;
    let us = Listening::open(&ports());
    let mut call = dialer
        .dial("+12025552002", &us, Duration::from_secs(30))
        .await;
    let events = until(&mut call, |e| matches!(e, CallEvent::Answered { .. })).await;
    let Some(CallEvent::Answered { sdp: Some(sdp) }) = events.last() else {
        panic!()
    };
    us.aim(sdp);
    tokio::time::sleep(Duration::from_millis(800)).await;
    call.hangup();
    until(&mut call, |e| matches!(e, CallEvent::Ended(_))).await;
    let record = record(&carrier, call.call_id()).await;
    assert_eq!(record.ending, Ending::Dialer);
    assert_eq!(record.message_ms(), 0);
    assert_eq!(carrier.counters().dialer_hangups, 1);
}

#[tokio::test]
async fn an_abandoned_person_hears_the_whole_message() {
    let carrier = carrier(None).await;
    let dialer = Dialer::new(&carrier, None).await;
    let us = Listening::open(&ports());
    let mut call = dialer
        .dial("+12025551002", &us, Duration::from_secs(30))
        .await;
    let events = until(&mut call, |e| matches!(e, CallEvent::Answered { .. })).await;
    let Some(CallEvent::Answered { sdp: Some(sdp) }) = events.last() else {
        panic!()
    };
    us.aim(sdp);
    // No agent: the abandon message, then we release the call.
    let message = wav(lab::ABANDON_MESSAGE_WAV);
    let id = us.leg.play(&message);
    let mut us = us;
    timeout(WAIT, async {
        while let Some(event) = us.events.recv().await {
            if matches!(event, media::LegEvent::PlaybackFinished { id: done, completed: true } if done == id) {
                return;
            }
        }
    })
    .await
    .expect("the message was played");
    call.hangup();
    until(&mut call, |e| matches!(e, CallEvent::Ended(_))).await;
    let record = record(&carrier, call.call_id()).await;
    assert_eq!(record.ending, Ending::Dialer);
    // The 12.6 s message: its speech (with pauses between phrases) was heard.
    assert!(record.heard.voiced_ms >= 7000, "{:?}", record.heard);
    let voiced_span =
        record.heard.segments.last().unwrap().end_ms - record.heard.segments[0].start_ms;
    assert!(voiced_span >= 11_000, "{:?}", record.heard);
    // The carrier kept the audio: it matches what we sent, sample for sample in level.
    let loud = record
        .audio
        .iter()
        .filter(|s| s.unsigned_abs() > 2000)
        .count();
    assert!(loud > 8000, "{loud} loud samples kept");
}

#[tokio::test]
async fn a_person_who_hears_nobody_hangs_up_a_silent_call() {
    let carrier = carrier(None).await;
    let dialer = Dialer::new(&carrier, None).await;
    let us = Listening::open(&ports());
    let mut call = dialer
        .dial("+12025551003", &us, Duration::from_secs(30))
        .await;
    let events = until(&mut call, |e| matches!(e, CallEvent::Answered { .. })).await;
    let Some(CallEvent::Answered { sdp: Some(sdp) }) = events.last() else {
        panic!()
    };
    us.aim(sdp);
    let end = until(&mut call, |e| matches!(e, CallEvent::Ended(_))).await;
    assert!(matches!(end.last(), Some(CallEvent::Ended(e)) if e.cause == EndCause::RemoteHangup));
    let record = record(&carrier, call.call_id()).await;
    assert_eq!(record.ending, Ending::Callee { why: "silent call" });
    assert!(!record.heard_voice());
    assert_eq!(carrier.counters().silent, 1);
}

#[tokio::test]
async fn busy_rings_then_486() {
    let carrier = carrier(None).await;
    let dialer = Dialer::new(&carrier, None).await;
    let us = Listening::open(&ports());
    let mut call = dialer
        .dial("+12025553001", &us, Duration::from_secs(30))
        .await;
    let events = until(&mut call, |e| matches!(e, CallEvent::Ended(_))).await;
    assert_eq!(codes(&events), ["180", "end Rejected Some(486)"]);
    let record = record(&carrier, call.call_id()).await;
    assert_eq!(record.ending, Ending::Refused { code: 486 });
    assert_eq!(steps(&record), ["INVITE", "180", "486"]);
}

#[tokio::test]
async fn no_answer_rings_until_the_dialer_cancels() {
    let carrier = carrier(None).await;
    let dialer = Dialer::new(&carrier, None).await;
    let us = Listening::open(&ports());
    let mut call = dialer
        .dial("+12025554001", &us, Duration::from_secs(3))
        .await;
    let events = until(&mut call, |e| matches!(e, CallEvent::Ended(_))).await;
    assert_eq!(codes(&events)[0], "180");
    assert!(
        matches!(events.last(), Some(CallEvent::Ended(e)) if e.cause == EndCause::RingTimeout),
        "{events:?}"
    );
    let record = record(&carrier, call.call_id()).await;
    assert_eq!(record.ending, Ending::Cancelled);
    assert_eq!(steps(&record), ["INVITE", "180", "CANCEL received"]);
    assert_eq!(carrier.counters().cancelled, 1);
}

#[tokio::test]
async fn an_invalid_number_plays_sit_in_early_media_then_404() {
    let carrier = carrier(None).await;
    let dialer = Dialer::new(&carrier, None).await;
    let us = Listening::open(&ports());
    let mut call = dialer
        .dial("+12025555001", &us, Duration::from_secs(30))
        .await;
    let events = until(&mut call, |e| {
        matches!(e, CallEvent::Progress { sdp: Some(_), .. })
    })
    .await;
    let Some(CallEvent::Progress {
        code: 183,
        sdp: Some(sdp),
        ..
    }) = events.last()
    else {
        panic!("{events:?}")
    };
    us.aim(sdp);
    let events = until(&mut call, |e| matches!(e, CallEvent::Ended(_))).await;
    assert!(
        matches!(events.last(), Some(CallEvent::Ended(e)) if e.code == Some(404) && e.outcome == sip::InviteResult::NotFound),
        "{events:?}"
    );
    // The tone detector a dialer runs on early media reads the code.
    let tones = us.tones();
    assert!(
        tones.iter().any(|t| matches!(
            t,
            ToneEvent::Sit {
                code: SitCode::VacantCode,
                ..
            }
        )),
        "{tones:?}"
    );
    let record = record(&carrier, call.call_id()).await;
    assert_eq!(record.ending, Ending::Refused { code: 404 });
    assert_eq!(
        steps(&record),
        ["INVITE", "183 with early media", "SIT VacantCode", "404"]
    );
}

#[tokio::test]
async fn unavailable_is_503() {
    let carrier = carrier(None).await;
    let dialer = Dialer::new(&carrier, None).await;
    let us = Listening::open(&ports());
    let mut call = dialer
        .dial("+12025556001", &us, Duration::from_secs(30))
        .await;
    let events = until(&mut call, |e| matches!(e, CallEvent::Ended(_))).await;
    assert_eq!(codes(&events), ["end Rejected Some(503)"]);
    assert_eq!(
        record(&carrier, call.call_id()).await.ending,
        Ending::Refused { code: 503 }
    );
}

#[tokio::test]
async fn a_carrier_with_credentials_challenges_and_takes_only_the_right_ones() {
    let carrier = carrier(Some(("acme", "trunk-secret"))).await;
    let good = Dialer::new(&carrier, Some(Credentials::new("acme", "trunk-secret"))).await;
    let us = Listening::open(&ports());
    let mut call = good
        .dial("+12025553002", &us, Duration::from_secs(30))
        .await;
    let events = until(&mut call, |e| matches!(e, CallEvent::Ended(_))).await;
    assert!(
        codes(&events).ends_with(&["end Rejected Some(486)".to_string()]),
        "{events:?}"
    );
    let bad = Dialer::new(&carrier, Some(Credentials::new("acme", "wrong"))).await;
    let mut call = bad.dial("+12025553003", &us, Duration::from_secs(30)).await;
    let events = until(&mut call, |e| matches!(e, CallEvent::Ended(_))).await;
    assert!(
        matches!(events.last(), Some(CallEvent::Ended(e)) if matches!(e.code, Some(401 | 407))),
        "{events:?}"
    );
    let counters = carrier.counters();
    assert_eq!(
        counters.calls, 1,
        "only the authenticated call reached the carrier"
    );
    assert!(counters.challenges >= 2);
}

#[tokio::test]
async fn the_same_seed_and_numbers_give_the_same_calls() {
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let mut config = CarrierConfig::new(bank());
        config.planner.behaviour = fast_behaviour();
        config.planner.mix = "busy=1,unavailable=1".parse().unwrap();
        config.planner.seed = 99;
        let carrier = Carrier::start(config).await.unwrap();
        let dialer = Dialer::new(&carrier, None).await;
        let us = Listening::open(&ports());
        let mut got = Vec::new();
        for i in 0..8 {
            let mut call = dialer
                .dial(&format!("+1303555{i:04}"), &us, Duration::from_secs(30))
                .await;
            let end = until(&mut call, |e| matches!(e, CallEvent::Ended(_))).await;
            got.push(codes(&end).last().cloned().unwrap());
        }
        outcomes.push(got);
    }
    assert_eq!(outcomes[0], outcomes[1]);
    assert!(
        outcomes[0].iter().any(|c| c.contains("486"))
            && outcomes[0].iter().any(|c| c.contains("503"))
    );
}
