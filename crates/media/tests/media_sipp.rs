//! Real RTP from a real peer: sipp answers a call and streams a corpus clip into a leg with
//! `rtp_stream`; the answering-machine detector fed by the leg must reach the same verdict as on
//! the file, and the audio that arrives must be the file's. Then a call bridged between two sipp
//! peers, one streaming the clip and one echoing what it hears, and recorded: the file holds the
//! clip on both sides, so the audio crossed the bridge to a real peer and back. Each check runs
//! on each receive loop backend (`io_uring::...` and `epoll::...`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use media::detect::{AmdDetector, AmdParams, AmdResult, AmdVerdict, Channel, classify, read_wav};
use media::{Bridge, Codec, LegOptions, MediaRuntime, PortAllocator, Recording, RemoteMedia};
use testkit::sip_msg::Caller;
use testkit::sipp::{self, Sipp};

mod support;
use support::on_each_backend;

on_each_backend! {
    a_live_answer_streamed_by_sipp_is_human_as_on_the_file,
    a_machine_greeting_streamed_by_sipp_is_machine_as_on_the_file,
    a_call_bridged_between_two_sipp_peers_carries_the_audio_both_ways_and_is_recorded,
}

const WAIT: Duration = Duration::from_secs(30);

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// sipp as a callee, streaming `samples` (as mu-law) once the call is answered, or with
/// `None` sending every RTP packet it receives back to its sender (`-rtp_echo`).
fn callee(stream: Option<&[i16]>) -> Option<Sipp> {
    let dir = tempfile::tempdir().unwrap();
    let scenario = match stream {
        Some(samples) => {
            let mut ulaw = vec![0u8; samples.len()];
            Codec::Pcmu.encode(samples, &mut ulaw);
            std::fs::write(dir.path().join("stream.ulaw"), &ulaw).unwrap();
            "media_stream_uas.xml"
        }
        None => "media_echo_uas.xml",
    };
    let port = testkit::free_udp_port();
    let media_port = testkit::free_udp_port();
    let mut args = sipp::args(&["-sf", &sipp::scenario(scenario).display().to_string()]);
    args.extend(sipp::loopback(port, media_port));
    args.extend(sipp::args(&[
        "-m",
        "1",
        "-timeout",
        "60s",
        "-timeout_error",
    ]));
    if stream.is_none() {
        args.push("-rtp_echo".into());
    }
    Sipp::start(dir, args, port, media_port, false)
}

/// Plays `clip` from sipp into a leg on `media`; returns the AMD verdict over the network and
/// the audio received.
async fn stream_clip(media: &MediaRuntime, samples: &[i16]) -> Option<(AmdVerdict, Vec<i16>)> {
    let callee = callee(Some(samples))?;
    let ports = PortAllocator::new("127.0.0.1".parse().unwrap(), 0..=0).unwrap();
    let (leg, _events) = media.open_leg(&ports, LegOptions::default()).unwrap();
    let (caller, sipp_media) = Caller::invite(callee.addr(), leg.local_rtp_addr()).await;
    leg.set_remote(&RemoteMedia::new(sipp_media, Codec::Pcmu))
        .unwrap();
    let amd = Arc::new(Mutex::new(AmdDetector::new(AmdParams::default()).unwrap()));
    let heard = Arc::new(Mutex::new(Vec::<i16>::new()));
    let (verdict_tx, mut verdict_rx) = tokio::sync::mpsc::unbounded_channel();
    {
        let (amd, heard) = (amd.clone(), heard.clone());
        leg.set_listener(Some(Box::new(move |pcm: &[i16], ts: u32| {
            heard.lock().unwrap().extend_from_slice(pcm);
            if let Some(v) = amd.lock().unwrap().push(pcm, ts) {
                let _ = verdict_tx.send(v);
            }
        })));
    }
    // Wait for the whole clip (it streams in real time), then hang up.
    let deadline = tokio::time::Instant::now() + WAIT;
    while heard.lock().unwrap().len() < samples.len() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {} samples arrived; sipp said:\n{}",
            heard.lock().unwrap().len(),
            samples.len(),
            callee.file("screen.log")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    caller.send("BYE", 2).await;
    leg.set_listener(None);
    let verdict = match verdict_rx.try_recv() {
        Ok(v) => v,
        Err(_) => amd.lock().unwrap().finish(),
    };
    let stats = leg.stats();
    assert_eq!(stats.dropped.total(), 0, "{stats:?}");
    assert_eq!(stats.packets_lost, 0, "{stats:?}");
    let heard = heard.lock().unwrap().clone();
    Some((verdict, heard))
}

fn clip(name: &str) -> Vec<i16> {
    read_wav(&corpus().join("clips").join(name), Channel::Mix).unwrap()
}

async fn verdict_matches_the_file(media: &MediaRuntime, name: &str, expected: AmdResult) {
    let samples = clip(name);
    let on_file = classify(&AmdParams::default(), &samples).unwrap();
    let Some((over_network, heard)) = stream_clip(media, &samples).await else {
        return;
    };
    // What arrived is the file, through mu-law.
    let mut through_g711 = vec![0i16; samples.len()];
    let mut coded = vec![0u8; samples.len()];
    Codec::Pcmu.encode(&samples, &mut coded);
    Codec::Pcmu.decode(&coded, &mut through_g711);
    assert_eq!(
        &heard[..samples.len()],
        &through_g711[..],
        "{name}: audio differs"
    );
    assert_eq!(on_file.result, expected, "{name} on file: {on_file:?}");
    assert_eq!(
        over_network.result, on_file.result,
        "{name}: {over_network:?} vs {on_file:?}"
    );
    assert_eq!(over_network.cause, on_file.cause, "{name}");
    let drift = over_network.decided_at_ms as i64 - on_file.decided_at_ms as i64;
    assert!(drift.abs() <= 40, "{name}: decided {drift} ms apart");
}

async fn a_live_answer_streamed_by_sipp_is_human_as_on_the_file(media: MediaRuntime) {
    verdict_matches_the_file(&media, "human_hello_001.wav", AmdResult::Human).await;
}

async fn a_machine_greeting_streamed_by_sipp_is_machine_as_on_the_file(media: MediaRuntime) {
    let labels = std::fs::read_to_string(corpus().join("labels.csv")).unwrap();
    // The shortest machine greeting in the corpus keeps the test short.
    let machine = labels
        .lines()
        .skip(1)
        .filter(|l| l.split(',').nth(1) == Some("machine"))
        .filter_map(|l| {
            let cols: Vec<&str> = l.split(',').collect();
            Some((
                cols.last()?.parse::<u32>().ok()?,
                cols[0].trim_start_matches("clips/").to_owned(),
            ))
        })
        .filter(|(_, name)| {
            let samples = clip(name);
            classify(&AmdParams::default(), &samples).unwrap().result == AmdResult::Machine
        })
        .min()
        .map(|(_, name)| name)
        .expect("a machine greeting the detector gets right");
    verdict_matches_the_file(&media, &machine, AmdResult::Machine).await;
}

/// Where `needle` first occurs in `hay`, sample for sample.
fn find(hay: &[i16], needle: &[i16]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn a_call_bridged_between_two_sipp_peers_carries_the_audio_both_ways_and_is_recorded(
    media: MediaRuntime,
) {
    let samples = clip("human_hello_001.wav");
    let (Some(callee), Some(agent)) = (callee(Some(&samples)), callee(None)) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("call.wav");
    let ports = PortAllocator::new("127.0.0.1".parse().unwrap(), 0..=0).unwrap();
    let (callee_leg, _callee_events) = media.open_leg(&ports, LegOptions::default()).unwrap();
    let (agent_leg, _agent_events) = media
        .open_leg(
            &ports,
            LegOptions {
                comfort_silence: true,
                ..Default::default()
            },
        )
        .unwrap();
    // The agent's phone is up first, as in the dialer: its leg stays up between calls.
    let (agent_call, agent_media) = Caller::invite(agent.addr(), agent_leg.local_rtp_addr()).await;
    agent_leg
        .set_remote(&RemoteMedia::new(agent_media, Codec::Pcmu))
        .unwrap();
    let bridge = Bridge::connect(&callee_leg, &agent_leg).unwrap();
    let recording = Recording::start(&path, &callee_leg, Some(&agent_leg)).unwrap();
    // The callee answers and talks; what reaches the agent's phone comes back as its voice.
    let (callee_call, callee_media) =
        Caller::invite(callee.addr(), callee_leg.local_rtp_addr()).await;
    callee_leg
        .set_remote(&RemoteMedia::new(callee_media, Codec::Pcmu))
        .unwrap();
    // Until the whole clip has arrived (it streams in real time), then past the echo's round
    // trip and the recording's commit delay.
    let packets = samples.len() / 160;
    let deadline = tokio::time::Instant::now() + WAIT;
    while callee_leg.stats().packets_received < packets as u64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {packets} packets of the clip arrived; callee {:?}; agent {:?}\n\
             sipp (callee) said:\n{}\nsipp (agent) said:\n{}",
            callee_leg.stats().packets_received,
            callee_leg.stats(),
            agent_leg.stats(),
            callee.file("screen.log"),
            agent.file("screen.log")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    callee_call.send("BYE", 2).await;
    agent_call.send("BYE", 2).await;
    drop(bridge);
    let summary = recording.finish().await.unwrap();
    // Read as `dialer amd` reads recordings: the callee is channel 0, the agent channel 1.
    let left = read_wav(&path, Channel::Index(0)).unwrap();
    let right = read_wav(&path, Channel::Index(1)).unwrap();
    // Both sides hold the whole clip as mu-law carries it, sample for sample: the callee's
    // voice on the left; on the right the same audio, relayed by the bridge to sipp and echoed.
    let mut coded = vec![0u8; samples.len()];
    Codec::Pcmu.encode(&samples, &mut coded);
    let mut through_g711 = vec![0i16; samples.len()];
    Codec::Pcmu.decode(&coded, &mut through_g711);
    let on_left = find(&left, &through_g711);
    let on_right = find(&right, &through_g711);
    assert!(
        on_left.is_some() && on_right.is_some(),
        "clip on the left at {on_left:?}, on the right at {on_right:?}; {summary:?}"
    );
    // The echo comes back a round trip later, well within a second on loopback.
    let (l, r) = (on_left.unwrap_or(0), on_right.unwrap_or(0));
    assert!(
        r >= l && r - l < 8000,
        "echo {} samples behind",
        r as i64 - l as i64
    );
    for (what, stats) in [("callee", callee_leg.stats()), ("agent", agent_leg.stats())] {
        assert_eq!(stats.dropped.total(), 0, "{what}: {stats:?}");
        assert_eq!(stats.packets_lost, 0, "{what}: {stats:?}");
    }
}
