//! Shared by the `lab_*` tests: the greeting bank (loaded once), fast callee timings, and a
//! caller made of a plain `sip::Endpoint` and a `media::Leg` that listens like a dialer would.

#![allow(dead_code)]

use lab::{Bank, BankConfig, Behaviour, Dist, Ear};
use media::detect::{ToneEvent, ToneParams, Tones};
use media::{Leg, LegEvents, LegOptions, MediaRuntime, PortAllocator};
use sip::sdp::LocalMedia;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Long enough for a loaded 2-core machine; never a timing assertion.
pub const WAIT: Duration = Duration::from_secs(60);

/// The corpus greetings and lab sentences, read once per test binary.
pub fn bank() -> Bank {
    static BANK: OnceLock<Bank> = OnceLock::new();
    BANK.get_or_init(|| Bank::load(&BankConfig::default()).expect("the lab's audio loads"))
        .clone()
}

/// Callees that ring a second, talk a few seconds, and give up quickly.
pub fn fast_behaviour() -> Behaviour {
    Behaviour {
        post_dial: Dist::Fixed(Duration::from_millis(200)),
        ring_human: Dist::Fixed(Duration::from_secs(1)),
        ring_machine: Dist::Fixed(Duration::from_secs(1)),
        busy_after: Dist::Fixed(Duration::from_secs(1)),
        fail_after: Dist::Fixed(Duration::from_millis(500)),
        pause: Dist::Fixed(Duration::from_millis(300)),
        talk: Dist::Fixed(Duration::from_secs(5)),
        gap: Dist::secs(0.5, 1.0),
        patience: Duration::from_secs(4),
        message_limit: Duration::from_secs(25),
        message_silence: Duration::from_secs(2),
        message_wait: Duration::from_secs(5),
        no_answer_limit: Duration::from_secs(90),
        ..Behaviour::default()
    }
}

/// The receive loops of the tests' listening legs (the lab's own have theirs).
pub fn media() -> &'static MediaRuntime {
    static MEDIA: OnceLock<MediaRuntime> = OnceLock::new();
    MEDIA.get_or_init(MediaRuntime::default)
}

/// RTP ports picked by the system on loopback.
pub fn ports() -> PortAllocator {
    PortAllocator::new("127.0.0.1".parse().unwrap(), 0..=0).unwrap()
}

/// A leg as a dialer opens it, with an ear and a tone detector on what it receives.
pub struct Listening {
    pub leg: Leg,
    pub events: LegEvents,
    pub ear: Ear,
    pub tones: Arc<Mutex<Vec<ToneEvent>>>,
}

impl Listening {
    pub fn open(ports: &PortAllocator) -> Listening {
        let (leg, events) = media().open_leg(ports, LegOptions::default()).unwrap();
        let ear = Ear::new(Some(Duration::from_secs(30)));
        let tones = Arc::new(Mutex::new(Vec::new()));
        let (ear2, tones2) = (ear.clone(), tones.clone());
        let mut detector = Tones::new(ToneParams::default());
        leg.set_listener(Some(Box::new(move |samples: &[i16], ts: u32| {
            ear2.hear(std::time::Instant::now(), samples);
            if let Some(event) = detector.push(samples, ts) {
                tones2.lock().unwrap().push(event);
            }
            while let Some(event) = detector.next_event() {
                tones2.lock().unwrap().push(event);
            }
        })));
        Listening {
            leg,
            events,
            ear,
            tones,
        }
    }

    pub fn media(&self) -> LocalMedia {
        LocalMedia::new(self.leg.local_rtp_addr())
    }

    pub fn aim(&self, sdp: &sip::sdp::Sdp) {
        self.leg
            .set_remote(&lab::remote_media(sdp).unwrap())
            .unwrap();
    }

    pub fn tones(&self) -> Vec<ToneEvent> {
        self.tones.lock().unwrap().clone()
    }
}
