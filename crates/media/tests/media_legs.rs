//! The media legs driven over real UDP sockets on loopback: the bridge (samples in one side come
//! out of the other, transcoded, as one continuous stream per side), prompt timing, stereo
//! recording, DTMF, and hostile traffic that must not disturb other calls. Every check runs on
//! each receive loop backend (`io_uring::...` and `epoll::...`), each test with receive loops
//! of its own.

use std::cell::Cell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use media::rtp::{self, OutHeader};
use media::{
    Bridge, Codec, Leg, LegEvent, LegEvents, LegOptions, MediaConfig, MediaPriority, MediaRuntime,
    PortAllocator, Prompt, Ptime, Recording, RemoteMedia,
};
use tokio::net::UdpSocket;
use tokio::time::timeout;

mod support;
use support::on_each_backend;

const WAIT: Duration = Duration::from_secs(20);

fn ports() -> PortAllocator {
    PortAllocator::new("127.0.0.1".parse().unwrap(), 0..=0).unwrap()
}

/// A telephone on the far side of a leg: a plain UDP socket speaking RTP.
struct Phone {
    socket: UdpSocket,
    codec: Codec,
    ssrc: u32,
    seq: Cell<u16>,
    ts: Cell<u32>,
}

#[derive(Debug, Clone)]
struct Got {
    pt: u8,
    marker: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: Vec<u8>,
    at: Instant,
}

impl Phone {
    async fn new(codec: Codec, ssrc: u32) -> Phone {
        Phone {
            socket: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
            codec,
            ssrc,
            seq: Cell::new(1000),
            ts: Cell::new(50_000),
        }
    }

    fn addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap()
    }

    async fn send_raw(
        &self,
        to: SocketAddr,
        pt: u8,
        marker: bool,
        payload: &[u8],
        seq: u16,
        ts: u32,
    ) {
        let mut buf = [0u8; 1500];
        let n = rtp::write_packet(
            &OutHeader {
                marker,
                payload_type: pt,
                sequence: seq,
                timestamp: ts,
                ssrc: self.ssrc,
            },
            payload,
            &mut buf,
        )
        .unwrap();
        self.socket.send_to(&buf[..n], to).await.unwrap();
    }

    /// Sends linear audio as 20 ms packets, paced in real time.
    async fn talk(&self, to: SocketAddr, pcm: &[i16]) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for chunk in pcm.chunks(160) {
            tick.tick().await;
            let mut payload = vec![0u8; chunk.len()];
            self.codec.encode(chunk, &mut payload);
            let pt = self.codec.static_payload_type();
            self.send_raw(to, pt, false, &payload, self.seq.get(), self.ts.get())
                .await;
            self.seq.set(self.seq.get().wrapping_add(1));
            self.ts.set(self.ts.get().wrapping_add(chunk.len() as u32));
        }
    }

    /// Receives RTP for `d` (or until `until` packets).
    async fn listen(&self, d: Duration, until: usize) -> Vec<Got> {
        let mut got = vec![];
        let end = tokio::time::Instant::now() + d;
        let mut buf = [0u8; 2048];
        while got.len() < until {
            let Ok(Ok((n, _))) =
                tokio::time::timeout_at(end, self.socket.recv_from(&mut buf)).await
            else {
                break;
            };
            if rtp::is_rtcp(&buf[..n]) {
                continue;
            }
            if let Ok(p) = rtp::parse(&buf[..n]) {
                got.push(Got {
                    pt: p.payload_type,
                    marker: p.marker,
                    seq: p.sequence,
                    ts: p.timestamp,
                    ssrc: p.ssrc,
                    payload: p.payload.to_vec(),
                    at: Instant::now(),
                });
            }
        }
        got
    }
}

fn sine(freq: f32, secs: f32, amp: f32) -> Vec<i16> {
    (0..(8000.0 * secs) as usize)
        .map(|i| ((i as f32 * freq * std::f32::consts::TAU / 8000.0).sin() * amp) as i16)
        .collect()
}

fn decode(codec: Codec, got: &[Got]) -> Vec<i16> {
    let mut out = vec![];
    for g in got {
        let mut pcm = vec![0i16; g.payload.len()];
        codec.decode(&g.payload, &mut pcm);
        out.extend(pcm);
    }
    out
}

/// Zero crossings per second: a frequency estimate robust to G.711 noise.
fn crossings_per_second(pcm: &[i16]) -> f32 {
    let n = pcm.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    n as f32 / (pcm.len() as f32 / 8000.0) / 2.0
}

/// Counts the decoded samples a leg's listener hears.
struct Heard(tokio::sync::mpsc::UnboundedReceiver<usize>);

impl Heard {
    fn on(leg: &Leg) -> Heard {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        leg.set_listener(Some(Box::new(move |pcm: &[i16], _ts: u32| {
            let _ = tx.send(pcm.len());
        })));
        Heard(rx)
    }

    /// Waits until at least `samples` have been heard.
    async fn at_least(&mut self, samples: usize) {
        let mut heard = 0;
        while heard < samples {
            heard += timeout(WAIT, self.0.recv()).await.unwrap().unwrap();
        }
    }
}

async fn open(media: &MediaRuntime, options: LegOptions) -> (Leg, LegEvents) {
    media.open_leg(&ports(), options).unwrap()
}

/// A callee's leg, and an agent's leg that plays comfort silence between calls.
async fn callee_and_agent_legs(media: &MediaRuntime) -> ((Leg, LegEvents), (Leg, LegEvents)) {
    let callee = open(media, LegOptions::default()).await;
    let agent = open(
        media,
        LegOptions {
            comfort_silence: true,
            ..Default::default()
        },
    )
    .await;
    (callee, agent)
}

on_each_backend! {
    bridged_audio_comes_out_of_the_other_side_transcoded_and_continuous,
    a_prompt_is_streamed_with_correct_timing_and_its_end_reported,
    a_stopped_prompt_reports_so_and_dtmf_is_sent_as_rfc4733,
    received_dtmf_and_audio_reach_the_engine,
    the_recording_is_a_stereo_wav_callee_left_agent_right_readable_while_running,
    hostile_packets_are_counted_and_dropped_without_disturbing_another_call,
    a_detection_leg_whose_peer_goes_quiet_hears_silence,
    a_bridged_agent_hears_rtp_while_the_callee_sends_none,
    legs_read_every_80_ms_are_not_filled_with_silence_while_their_packets_wait
        [flavor = "multi_thread", worker_threads = 2],
    ; blocking: legs_opened_after_others_closed_receive_exactly_their_own_stream,
}

/// Asserts one continuous stream: one SSRC, sequence numbers +1, timestamps never backwards.
fn assert_continuous(got: &[Got], what: &str) {
    assert!(!got.is_empty(), "{what}: nothing received");
    let ssrc = got[0].ssrc;
    for w in got.windows(2) {
        assert_eq!(w[1].ssrc, ssrc, "{what}: SSRC changed");
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "{what}: sequence jumped"
        );
        assert!(
            (w[1].ts.wrapping_sub(w[0].ts) as i32) >= 0,
            "{what}: timestamp went back {} -> {}",
            w[0].ts,
            w[1].ts
        );
    }
}

async fn bridged_audio_comes_out_of_the_other_side_transcoded_and_continuous(media: MediaRuntime) {
    let callee = Phone::new(Codec::Pcmu, 0x1111).await;
    let agent = Phone::new(Codec::Pcma, 0x2222).await;
    let ((callee_leg, _ce), (agent_leg, _ae)) = callee_and_agent_legs(&media).await;
    callee_leg
        .set_remote(&RemoteMedia::new(callee.addr(), Codec::Pcmu).with_dtmf(101))
        .unwrap();
    agent_leg
        .set_remote(&RemoteMedia::new(agent.addr(), Codec::Pcma).with_dtmf(96))
        .unwrap();

    // Between calls the agent hears comfort silence.
    let before = agent.listen(Duration::from_millis(300), 10).await;
    assert_eq!(before.len(), 10);
    assert!(
        before
            .iter()
            .all(|g| g.pt == 8 && g.payload.iter().all(|&b| b == 0xD5))
    );

    let bridge = Bridge::connect(&callee_leg, &agent_leg).unwrap();
    let callee_says = sine(440.0, 1.0, 8000.0);
    let agent_says = sine(1000.0, 1.0, 8000.0);
    let callee_addr = callee_leg.local_rtp_addr();
    let agent_addr = agent_leg.local_rtp_addr();
    let (_, _, heard_by_agent, heard_by_callee) = tokio::join!(
        callee.talk(callee_addr, &callee_says),
        agent.talk(agent_addr, &agent_says),
        agent.listen(Duration::from_secs(5), 50 + 20),
        callee.listen(Duration::from_secs(5), 50),
    );
    // The callee's 440 Hz reaches the agent, as A-law; the agent's 1 kHz reaches the callee,
    // as mu-law.
    let to_agent: Vec<Got> = heard_by_agent
        .iter()
        .filter(|g| g.payload.iter().any(|&b| b != 0xD5))
        .cloned()
        .collect();
    assert_eq!(to_agent.len(), 50, "packets of speech reaching the agent");
    assert!(to_agent.iter().all(|g| g.pt == 8));
    let pcm = decode(Codec::Pcma, &to_agent);
    assert_eq!(pcm.len(), callee_says.len());
    // Sample by sample: PCMU -> PCMA transcoding changes each sample by at most one step.
    for (i, (&sent, &heard)) in callee_says.iter().zip(&pcm).enumerate() {
        let err = (sent as i32 - heard as i32).abs();
        assert!(err <= 600, "sample {i}: sent {sent}, heard {heard}");
    }
    assert!((430.0..450.0).contains(&crossings_per_second(&pcm)));
    assert_eq!(heard_by_callee.len(), 50);
    assert!(heard_by_callee.iter().all(|g| g.pt == 0));
    let pcm = decode(Codec::Pcmu, &heard_by_callee);
    for (&sent, &heard) in agent_says.iter().zip(&pcm) {
        assert!((sent as i32 - heard as i32).abs() <= 600);
    }

    // DTMF from the callee reaches the agent on the agent's telephone-event type.
    let event = [5u8, 0x0A, 0, 160];
    callee
        .send_raw(
            callee_addr,
            101,
            true,
            &event,
            callee.seq.get(),
            callee.ts.get(),
        )
        .await;
    let dtmf = agent.listen(Duration::from_secs(5), 100).await;
    let relayed: Vec<&Got> = dtmf.iter().filter(|g| g.pt == 96).collect();
    assert_eq!(relayed.len(), 1);
    assert_eq!(relayed[0].payload, event);

    // After the call the agent hears silence again, on the same stream.
    drop(bridge);
    let after = agent.listen(Duration::from_millis(500), 10).await;
    assert_eq!(after.len(), 10);
    let mut all = heard_by_agent.clone();
    all.extend(dtmf);
    all.extend(after);
    let mut whole = before.clone();
    whole.extend(all);
    assert_continuous(&whole, "agent side across silence, call, DTMF, silence");
    // The switch from silence to the call is marked, so the phone resynchronises.
    assert!(to_agent[0].marker || heard_by_agent.iter().any(|g| g.marker));

    // A second call into the same agent leg continues the same stream.
    let callee2 = Phone::new(Codec::Pcmu, 0x3333).await;
    let (callee2_leg, _c2e) = open(&media, LegOptions::default()).await;
    callee2_leg
        .set_remote(&RemoteMedia::new(callee2.addr(), Codec::Pcmu))
        .unwrap();
    let _bridge2 = Bridge::connect(&callee2_leg, &agent_leg).unwrap();
    let callee2_addr = callee2_leg.local_rtp_addr();
    let tone = sine(300.0, 0.4, 8000.0);
    let (_, second) = tokio::join!(
        callee2.talk(callee2_addr, &tone),
        agent.listen(Duration::from_secs(5), 20)
    );
    let mut whole2 = whole.clone();
    whole2.extend(second);
    // Sequence numbers keep running (a few comfort-silence packets may fall between listens).
    let ssrc = whole2[0].ssrc;
    assert!(
        whole2.iter().all(|g| g.ssrc == ssrc),
        "one SSRC for the agent's whole shift"
    );
    let stats = agent_leg.stats();
    assert_eq!(stats.dropped.total(), 0, "{stats:?}");
    assert!(stats.packets_received >= 50);
    assert!(matches!(
        Bridge::connect(&callee_leg, &agent_leg),
        Err(media::MediaError::AlreadyBridged(_))
    ));
}

async fn a_prompt_is_streamed_with_correct_timing_and_its_end_reported(media: MediaRuntime) {
    for ptime in [Ptime::MS20, Ptime::MS30] {
        let phone = Phone::new(Codec::Pcmu, 1).await;
        let (leg, mut events) = open(
            &media,
            LegOptions {
                ptime,
                ..Default::default()
            },
        )
        .await;
        leg.set_remote(&RemoteMedia::new(phone.addr(), Codec::Pcmu))
            .unwrap();
        let prompt = Prompt::from_samples(sine(500.0, 1.2, 10000.0), "test");
        let started = Instant::now();
        let id = leg.play(&prompt);
        assert!(leg.is_playing());
        let per_packet = ptime.samples();
        let expected = 9600usize.div_ceil(per_packet);
        let got = phone.listen(WAIT, expected).await;
        assert_eq!(
            got.len(),
            expected,
            "{:?} {:?}",
            leg.stats(),
            got.first().map(|g| (g.seq, g.ts, g.marker)),
        );
        assert_continuous(&got, "prompt");
        for w in got.windows(2) {
            assert_eq!(w[1].ts.wrapping_sub(w[0].ts), per_packet as u32);
        }
        assert!(got.iter().all(|g| g.payload.len() == per_packet));
        assert!(got[0].marker);
        // Real-time pacing: the last packet cannot leave before the audio before it has played.
        let span = got.last().unwrap().at.duration_since(got[0].at);
        let audio_before_last =
            Duration::from_millis(((expected - 1) * ptime.millis() as usize) as u64);
        assert!(
            span + Duration::from_millis(25) >= audio_before_last,
            "{span:?} for {ptime:?}"
        );
        let pcm = decode(Codec::Pcmu, &got);
        assert!((490.0..510.0).contains(&crossings_per_second(&pcm[..9600])));
        let event = timeout(WAIT, events.recv()).await.unwrap();
        assert_eq!(
            event,
            Some(LegEvent::PlaybackFinished {
                id,
                completed: true
            })
        );
        assert!(started.elapsed() >= Duration::from_millis(1100));
        assert!(!leg.is_playing());
    }
}

async fn a_stopped_prompt_reports_so_and_dtmf_is_sent_as_rfc4733(media: MediaRuntime) {
    let phone = Phone::new(Codec::Pcma, 1).await;
    let (leg, mut events) = open(&media, LegOptions::default()).await;
    leg.set_remote(&RemoteMedia::new(phone.addr(), Codec::Pcma).with_dtmf(101))
        .unwrap();
    let id = leg.play(&Prompt::from_samples(vec![1000; 80_000], "long"));
    phone.listen(Duration::from_millis(200), 5).await;
    leg.stop_playback();
    assert_eq!(
        timeout(WAIT, events.recv()).await.unwrap(),
        Some(LegEvent::PlaybackFinished {
            id,
            completed: false
        })
    );
    // Drain what was already in flight, then send digits.
    phone.listen(Duration::from_millis(100), 100).await;
    leg.send_dtmf("1#").unwrap();
    assert!(leg.send_dtmf("x").is_err());
    let got = phone.listen(Duration::from_secs(3), 100).await;
    let events_sent: Vec<&Got> = got.iter().filter(|g| g.pt == 101).collect();
    let mut rx = media::dtmf::DtmfReceiver::default();
    let digits: Vec<char> = events_sent
        .iter()
        .filter_map(|g| rx.receive(g.ts, &g.payload).unwrap())
        .collect();
    assert_eq!(digits, vec!['1', '#']);
    let ends = events_sent
        .iter()
        .filter(|g| g.payload[1] & 0x80 != 0)
        .count();
    assert_eq!(ends, 6, "three end packets per digit");
}

async fn received_dtmf_and_audio_reach_the_engine(media: MediaRuntime) {
    let phone = Phone::new(Codec::Pcmu, 9).await;
    let (leg, mut events) = open(&media, LegOptions::default()).await;
    leg.set_remote(&RemoteMedia::new(phone.addr(), Codec::Pcmu).with_dtmf(101))
        .unwrap();
    let (tx, mut heard) = tokio::sync::mpsc::unbounded_channel();
    leg.set_listener(Some(Box::new(move |pcm: &[i16], ts: u32| {
        let _ = tx.send((ts, pcm.to_vec()));
    })));
    let to = leg.local_rtp_addr();
    phone.talk(to, &sine(700.0, 0.5, 9000.0)).await;
    for i in 0..4u16 {
        let end = if i >= 1 { 0x80 } else { 0 };
        phone
            .send_raw(
                to,
                101,
                i == 0,
                &[9, end | 10, 0, 160 + i as u8],
                phone.seq.get() + i,
                phone.ts.get(),
            )
            .await;
    }
    assert_eq!(
        timeout(WAIT, events.recv()).await.unwrap(),
        Some(LegEvent::Latched { addr: phone.addr() })
    );
    assert_eq!(
        timeout(WAIT, events.recv()).await.unwrap(),
        Some(LegEvent::Dtmf { digit: '9' })
    );
    let mut pcm = vec![];
    let mut last_ts = None;
    while pcm.len() < 4000 {
        let (ts, chunk) = timeout(WAIT, heard.recv()).await.unwrap().unwrap();
        if let Some(prev) = last_ts {
            assert_eq!(ts, prev, "listener audio is contiguous");
        }
        last_ts = Some(ts.wrapping_add(chunk.len() as u32));
        pcm.extend(chunk);
    }
    assert!((690.0..710.0).contains(&crossings_per_second(&pcm)));
    let stats = leg.stats();
    assert_eq!(stats.dtmf_received, 1);
    // The io_uring loop reads a leg that is not bridged every 40 ms, two packets at a time;
    // timed by when it read them, a steady 20 ms stream would show about 20 ms of jitter.
    assert!(
        stats.jitter < Duration::from_millis(10),
        "jitter {:?}: arrival times are the kernel's, not the loop's",
        stats.jitter
    );
}

async fn the_recording_is_a_stereo_wav_callee_left_agent_right_readable_while_running(
    media: MediaRuntime,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("call.wav");
    let callee = Phone::new(Codec::Pcmu, 1).await;
    let agent = Phone::new(Codec::Pcma, 2).await;
    let (callee_leg, _ce) = open(&media, LegOptions::default()).await;
    let (agent_leg, _ae) = open(&media, LegOptions::default()).await;
    callee_leg
        .set_remote(&RemoteMedia::new(callee.addr(), Codec::Pcmu))
        .unwrap();
    agent_leg
        .set_remote(&RemoteMedia::new(agent.addr(), Codec::Pcma))
        .unwrap();
    let _bridge = Bridge::connect(&callee_leg, &agent_leg).unwrap();
    let recording = Recording::start(&path, &callee_leg, Some(&agent_leg)).unwrap();
    let (ca, aa) = (callee_leg.local_rtp_addr(), agent_leg.local_rtp_addr());
    let check_midway = async {
        // While the call runs, the file on disk is already a valid WAV with most of the audio
        // so far: what a crash would leave.
        tokio::time::sleep(Duration::from_millis(1800)).await;
        let reader = hound::WavReader::open(&path).unwrap();
        let frames = reader.duration();
        assert!(frames >= 4000, "only {frames} frames on disk after 1.8 s");
    };
    let (low, high) = (sine(400.0, 3.0, 8000.0), sine(1200.0, 3.0, 8000.0));
    tokio::join!(callee.talk(ca, &low), agent.talk(aa, &high), check_midway,);
    let summary = recording.finish().await.unwrap();
    assert!(
        summary.duration >= Duration::from_millis(2900),
        "{summary:?}"
    );
    let mut reader = hound::WavReader::open(&path).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let samples: Vec<i16> = reader.samples::<i16>().map(|s| s.unwrap()).collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    // Take the middle second, where both sides talk.
    let mid = |v: &[i16]| v[v.len() / 2 - 4000..v.len() / 2 + 4000].to_vec();
    let (l, r) = (mid(&left), mid(&right));
    assert!(
        (390.0..410.0).contains(&crossings_per_second(&l)),
        "left {}",
        crossings_per_second(&l)
    );
    assert!(
        (1180.0..1220.0).contains(&crossings_per_second(&r)),
        "right {}",
        crossings_per_second(&r)
    );
    // The two sides started within a packet or two of each other, and stay aligned.
    let onset = |v: &[i16]| v.iter().position(|s| s.unsigned_abs() > 2000).unwrap();
    let skew = onset(&left) as i64 - onset(&right) as i64;
    assert!(skew.abs() < 800, "channels are {skew} samples apart");
}

async fn hostile_packets_are_counted_and_dropped_without_disturbing_another_call(
    media: MediaRuntime,
) {
    let good = Phone::new(Codec::Pcmu, 0xAAAA).await;
    let hostile = Phone::new(Codec::Pcmu, 0xBBBB).await;
    let stranger = Phone::new(Codec::Pcmu, 0xCCCC).await;
    let (good_leg, _ge) = open(&media, LegOptions::default()).await;
    let (victim_leg, _ve) = open(&media, LegOptions::default()).await;
    good_leg
        .set_remote(&RemoteMedia::new(good.addr(), Codec::Pcmu))
        .unwrap();
    victim_leg
        .set_remote(&RemoteMedia::new(hostile.addr(), Codec::Pcmu))
        .unwrap();
    let mut heard = Heard::on(&good_leg);
    let victim = victim_leg.local_rtp_addr();
    let attack = async {
        // The victim's peer starts a real stream (it latches), then everything goes wrong.
        for i in 0..5u16 {
            hostile
                .send_raw(victim, 0, false, &[0xFF; 160], i, i as u32 * 160)
                .await;
        }
        let raw: [&[u8]; 3] = [
            &[0x40; 172],  // version 1
            &[0x80, 0, 1], // truncated
            &[0x8F; 20],   // 15 CSRCs announced, not there
        ];
        for bytes in raw {
            hostile.socket.send_to(bytes, victim).await.unwrap();
        }
        hostile.send_raw(victim, 99, false, &[0; 160], 5, 800).await; // not negotiated
        hostile.send_raw(victim, 0, false, &[0; 160], 4, 640).await; // duplicate
        stranger.send_raw(victim, 0, false, &[0; 160], 6, 960).await; // stranger
        // A flood: 20,000 datagrams as fast as possible from the latched address.
        for i in 0..20_000u32 {
            let seq = 100 + i as u16;
            let ssrc_switch = if i % 2 == 0 { 0xBBBB } else { 0xEEEE };
            let mut buf = [0u8; 172];
            let n = rtp::write_packet(
                &OutHeader {
                    marker: false,
                    payload_type: 0,
                    sequence: seq,
                    timestamp: i * 160,
                    ssrc: ssrc_switch,
                },
                &[0xFF; 160],
                &mut buf,
            )
            .unwrap();
            let _ = hostile.socket.send_to(&buf[..n], victim).await;
            if i % 8 == 0 {
                tokio::task::yield_now().await;
            }
        }
    };
    let good_addr = good_leg.local_rtp_addr();
    let speech = sine(600.0, 2.0, 8000.0);
    let (_, _) = tokio::join!(good.talk(good_addr, &speech), attack);
    // The good call heard all of its 2 seconds.
    heard.at_least(16000).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let g = good_leg.stats();
    assert_eq!(g.packets_received, 100, "{g:?}");
    assert_eq!(g.dropped.total(), 0, "{g:?}");
    assert_eq!(g.packets_lost, 0);
    let v = victim_leg.stats();
    let d = v.dropped;
    assert_eq!(d.bad_version, 1, "{d:?}");
    assert_eq!(d.malformed, 2, "{d:?}");
    assert_eq!(d.unknown_payload_type, 1, "{d:?}");
    assert_eq!(d.stranger, 1, "{d:?}");
    assert!(d.duplicate >= 1, "{d:?}");
    assert!(d.ssrc_mismatch > 0, "{d:?}");
    // Most of the flood never got past the rate limit or, faster than the receive loop reads
    // one socket, the kernel's queue: both counted.
    assert!(d.flood > 0, "{d:?}");
    assert!(d.flood + d.overflow > 5_000, "{d:?}");
    assert!(v.packets_received < 1000, "{v:?}");
}

/// Legs come and go all day while one receive loop reads them all: a leg opened after hundreds
/// closed (their slots in the loop, and often their descriptor numbers, reused) with packets
/// still in flight receives exactly its own stream, and a leg left open when its runtime ended
/// is cleaned up when it is dropped.
fn legs_opened_after_others_closed_receive_exactly_their_own_stream(media: MediaRuntime) {
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let orphan = {
        let rt = runtime();
        let leg = rt.block_on(async { open(&media, LegOptions::default()).await.0 });
        drop(rt);
        leg
    };
    drop(orphan);
    runtime().block_on(async {
        let phone = Phone::new(Codec::Pcmu, 0x1234).await;
        for i in 0..200u16 {
            let (leg, _events) = open(&media, LegOptions::default()).await;
            leg.set_remote(&RemoteMedia::new(phone.addr(), Codec::Pcmu))
                .unwrap();
            phone
                .send_raw(leg.local_rtp_addr(), 0, false, &[0xFF; 160], i, 0)
                .await;
            drop(leg);
        }
        let (leg, _events) = open(&media, LegOptions::default()).await;
        leg.set_remote(&RemoteMedia::new(phone.addr(), Codec::Pcmu))
            .unwrap();
        let mut heard = Heard::on(&leg);
        phone
            .talk(leg.local_rtp_addr(), &sine(440.0, 0.5, 8000.0))
            .await;
        heard.at_least(4000).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let s = leg.stats();
        assert_eq!(s.packets_received, 25, "{s:?}");
        assert_eq!(s.dropped.total(), 0, "{s:?}");
    });
}

/// The receive loops run at the priority their configuration asks for: `SCHED_FIFO` for
/// `realtime` where the process may (root here), the normal policy otherwise; and bridged audio
/// still flows at real-time priority.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receive_loops_run_at_the_priority_asked_for() {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    // Every receive loop thread of the process now at SCHED_FIFO: no other test asks for
    // real-time loops, so these are the ones made here.
    let fifo_loops = || {
        let mut n = 0;
        for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            let Ok(tid) = task.file_name().to_string_lossy().parse::<libc::pid_t>() else {
                continue;
            };
            // SAFETY: a plain query of another thread of this process.
            if comm.starts_with("media-rx-")
                && unsafe { libc::sched_getscheduler(tid) } == libc::SCHED_FIFO
            {
                n += 1;
            }
        }
        n
    };
    let config = MediaConfig {
        threads: Some(2),
        ..MediaConfig::default()
    };
    let normal = support::loops_with(config).unwrap();
    let (_leg, _events) = open(&normal, LegOptions::default()).await;
    assert!(!normal.stats().realtime);
    assert_eq!(fifo_loops(), 0);
    let realtime = support::loops_with(MediaConfig {
        priority: MediaPriority::Realtime,
        ..config
    })
    .unwrap();
    assert_eq!(realtime.stats().realtime, root);
    assert_eq!(fifo_loops(), if root { 2 } else { 0 });
    bridged_audio_comes_out_of_the_other_side_transcoded_and_continuous(realtime).await;
}

/// A loop with 2,000 detection legs or more reads them every 80 ms (docs/media.md): a peer's
/// packets may then wait in the socket for 80 ms plus one packet time, while a peer quiet for
/// 100 ms is filled with silence. The silence sweep must judge a leg by what the loop has read,
/// not by the clock, or the detector hears silence where the peer talked and the real packets
/// then come too late for it.
async fn legs_read_every_80_ms_are_not_filled_with_silence_while_their_packets_wait(
    media: MediaRuntime,
) {
    let (first, first_events) = open(&media, LegOptions::default()).await;
    let loops = media.config().thread_count();
    // Legs are spread over the loops in turn; every loop gets 2,000 and more. Each holds three
    // descriptors (RTP, RTCP and the loop's duplicate).
    let mut legs = vec![first];
    let mut events = vec![first_events];
    for _ in 0..2_050 * loops {
        let (leg, ev) = open(&media, LegOptions::default()).await;
        legs.push(leg);
        events.push(ev);
    }
    // The longest packets a peer may send (60 ms; 30 ms, common on carriers, does it too, less
    // often), to a few legs with a listener, as a detector would be.
    const PTIME: usize = 480;
    let phone = Phone::new(Codec::Pcmu, 0x6060).await;
    let talking: Vec<&Leg> = legs.iter().step_by(97).take(24).collect();
    for leg in &talking {
        leg.set_remote(&RemoteMedia::new(phone.addr(), Codec::Pcmu))
            .unwrap();
        leg.set_listener(Some(Box::new(|_: &[i16], _: u32| {})));
    }
    let pcm = sine(300.0, 2.5, 6000.0);
    let mut tick = tokio::time::interval(Duration::from_millis(60));
    let mut payload = vec![0u8; PTIME];
    // This test's own sender may stall on a loaded machine (CI builds beside it): a real gap
    // in the stream, which is rightly filled with silence, and its packets then come late.
    let (mut stalled, mut stalls, mut last) = (Duration::ZERO, 0u64, None::<Instant>);
    for (n, chunk) in pcm.chunks_exact(PTIME).enumerate() {
        tick.tick().await;
        let sent_at = Instant::now();
        if let Some(gap) = last.map(|l| sent_at - l)
            && gap > Duration::from_millis(100)
        {
            stalled += gap - Duration::from_millis(60);
            stalls += gap.as_millis() as u64 / 60 + 1;
        }
        last = Some(sent_at);
        Codec::Pcmu.encode(chunk, &mut payload);
        for leg in &talking {
            phone
                .send_raw(
                    leg.local_rtp_addr(),
                    0,
                    false,
                    &payload,
                    n as u16,
                    (n * PTIME) as u32,
                )
                .await;
        }
    }
    // Read before the peers' silence after the last packet could be filled.
    let stats: Vec<_> = talking.iter().map(|leg| leg.stats()).collect();
    let late: u64 = stats.iter().map(|s| s.packets_late).sum();
    let filled: Duration = stats.iter().map(|s| s.silence_filled).sum();
    let received: u64 = stats.iter().map(|s| s.packets_received).sum();
    assert!(received >= 24 * 35, "only {received} packets received");
    // Judged by the clock, hundreds of packets come too late and much of what is heard is
    // silence; judged by what was read, none. The slack is a packet or two and 100 ms per leg,
    // plus what this test's own sender stalled (measured above).
    assert!(
        late <= (2 + stalls) * 24 && filled <= (Duration::from_millis(100) + stalled) * 24,
        "{loops} loop(s): the talking legs were filled with {filled:?} of silence and \
         {late} packets came too late (the sender stalled {stalled:?} in all)"
    );
}

/// A peer that goes quiet (discontinuous transmission) is heard as silence: the detectors
/// must still hear the pause after a greeting. Legs that only feed detection are read in
/// visits to their sockets, and their silence is fed there, not by the loop's 20 ms sweep.
async fn a_detection_leg_whose_peer_goes_quiet_hears_silence(media: MediaRuntime) {
    let (leg, _events) = open(&media, LegOptions::default()).await;
    let phone = Phone::new(Codec::Pcmu, 0x0d7d).await;
    leg.set_remote(&RemoteMedia::new(phone.addr(), Codec::Pcmu))
        .unwrap();
    let heard = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = heard.clone();
    leg.set_listener(Some(Box::new(move |pcm: &[i16], _: u32| {
        counter.fetch_add(pcm.len() as u64, std::sync::atomic::Ordering::Relaxed);
    })));
    phone
        .talk(leg.local_rtp_addr(), &sine(300.0, 1.0, 6000.0))
        .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let stats = leg.stats();
    assert_eq!(stats.packets_received, 50, "{stats:?}");
    // 800 ms of quiet: filled from 100 ms after the last packet, less the packet time kept in
    // hand and up to a visit's interval (40 ms) and a sweep's (20 ms) not yet reached.
    assert!(
        stats.silence_filled >= Duration::from_millis(500),
        "only {:?} of silence fed after 800 ms of quiet",
        stats.silence_filled
    );
    let heard = heard.load(std::sync::atomic::Ordering::Relaxed);
    assert!(heard >= 8000 + 4000, "the listener heard {heard} samples");
}

/// Phones and SBCs with an RTP timeout hang up on a call that sends them nothing: while the
/// callee is silent (sends no RTP at all), the agent's leg fills the gap with silence, on the
/// same stream, and the callee's audio takes over again when it comes.
async fn a_bridged_agent_hears_rtp_while_the_callee_sends_none(media: MediaRuntime) {
    let callee = Phone::new(Codec::Pcmu, 0x4444).await;
    let agent = Phone::new(Codec::Pcmu, 0x5555).await;
    let ((callee_leg, _ce), (agent_leg, _ae)) = callee_and_agent_legs(&media).await;
    callee_leg
        .set_remote(&RemoteMedia::new(callee.addr(), Codec::Pcmu))
        .unwrap();
    agent_leg
        .set_remote(&RemoteMedia::new(agent.addr(), Codec::Pcmu))
        .unwrap();
    let _bridge = Bridge::connect(&callee_leg, &agent_leg).unwrap();
    let callee_addr = callee_leg.local_rtp_addr();
    // The callee speaks for 200 ms, is silent (no packets) for 2 s, then speaks again.
    let (_, heard) = tokio::join!(
        async {
            callee.talk(callee_addr, &sine(440.0, 0.2, 8000.0)).await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            callee.talk(callee_addr, &sine(440.0, 0.2, 8000.0)).await;
        },
        agent.listen(Duration::from_millis(2800), 1000),
    );
    let speech = heard
        .iter()
        .filter(|g| g.payload.iter().any(|&b| b != 0xFF))
        .count();
    assert!(speech >= 19, "{speech} packets of speech relayed");
    let longest = heard
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at))
        .max()
        .unwrap();
    assert!(
        longest < Duration::from_millis(700),
        "the agent went {longest:?} without RTP"
    );
    // 2 s of silence, less the half second before it fills in, at 50 packets a second.
    let silence = heard.len() - speech;
    assert!(
        silence >= 50,
        "{silence} packets of silence in 2 s of a silent callee"
    );
    assert_continuous(
        &heard,
        "agent side across speech, silence filled in, speech",
    );
}
