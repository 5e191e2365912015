//! How an engine is set up: its node id, SIP listeners, RTP ports and receive loops, registrar
//! realm, files.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

/// The settings of one engine (one `dialer serve` node).
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This node's id: written on leases and attempts, and shown in the cluster state. Several
    /// nodes sharing a database must have different ids.
    pub node_id: String,
    /// UDP addresses the SIP endpoint listens on (agents' phones and the carrier); port 0 picks
    /// one ([`crate::Engine::sip_addr`] tells which).
    pub sip_udp: Vec<SocketAddr>,
    /// TCP addresses the SIP endpoint listens on.
    pub sip_tcp: Vec<SocketAddr>,
    /// TLS addresses the SIP endpoint listens on (agents' phones on `sips:`); needs `tls_cert`
    /// and `tls_key`.
    pub sip_tls: Vec<SocketAddr>,
    /// PEM file of the certificate chain TLS listeners present (leaf first).
    pub tls_cert: Option<PathBuf>,
    /// PEM file of its private key.
    pub tls_key: Option<PathBuf>,
    /// PEM file of the CAs TLS trunks are checked against when their campaign names none; the
    /// system's CA store when `None`.
    pub tls_ca: Option<PathBuf>,
    /// The address written into Via, Contact and SDP when listening on `0.0.0.0`.
    pub advertise: Option<IpAddr>,
    /// The address RTP legs bind to (and announce in SDP).
    pub rtp_ip: IpAddr,
    /// The UDP ports RTP legs use (pairs: even RTP, odd RTCP); `0..=0` lets the OS choose.
    pub rtp_ports: RangeInclusive<u16>,
    /// The media receive loops: how many threads, io_uring or epoll, which priority.
    pub media: media::MediaConfig,
    /// The digest realm agents' phones authenticate in. Agents' stored HA1 values are computed
    /// with it, so it must not change once agents exist.
    pub realm: String,
    /// Digest algorithms offered to phones, preferred first (RFC 8760), one challenge each.
    /// MD5 alone by default: many phones (baresip, sipp, hardware phones, SBCs) give up on a
    /// response that holds any algorithm they do not know, so offering SHA-256 beside MD5 locks
    /// them out; offer `[Sha256, Md5]` where every phone speaks SHA-256 or reads only its
    /// first challenge.
    pub digest_algorithms: Vec<sip::digest::DigestAlgorithm>,
    /// SRTP (SDES) with agents' phones: `Off` (plain RTP; a phone offering only SRTP gets
    /// 488), `Optional` (a phone's SRTP offer is answered with SRTP) or `Required` (a plain
    /// offer gets 488).
    pub phone_srtp: domain::SrtpPolicy,
    /// Exchange phones' SRTP keys over UDP and TCP too (readable on the path); without it,
    /// SRTP is only agreed with phones that came over TLS.
    pub sdes_without_tls: bool,
    /// The DNS server for carriers' host names (RFC 3263 NAPTR, SRV, A/AAAA); the system's
    /// resolv.conf when `None`.
    pub dns_server: Option<SocketAddr>,
    /// How a failed trunk registration is retried.
    pub register_retry: sip::RetryPolicy,
    /// Where agents' days end (their day's counters start again at midnight there): the
    /// centre's time zone; UTC by default.
    pub agent_day_time_zone: chrono_tz::Tz,
    /// Base directory of campaigns' relative message paths (`abandon_message`, ...) and trunk
    /// CA files; a campaign's files must stay inside it.
    pub prompts_dir: PathBuf,
    /// The trunk secrets file (`DIALER_TRUNK_NAME = "value"`, no access for other users):
    /// where campaigns' `username_env`/`password_env` names are looked up before the
    /// environment.
    pub trunk_secrets: Option<PathBuf>,
    /// Directory recordings are written to (`<campaign>/<attempt>.wav` under it).
    pub recordings_dir: PathBuf,
    /// How long a leased contact stays ours: a dead node's contacts come back after at most
    /// this long. Leases of contacts in a call are renewed every third of it.
    pub lease: Duration,
    /// The campaign actor's tick: pacing decisions are taken on every event and at least this
    /// often.
    pub tick: Duration,
    /// A live answer not connected to an agent within this time after the greeting's end is
    /// abandoned (the 2-second rule; more is refused above 10 s by the pacer).
    pub connect_grace: Duration,
    /// How often campaign figures are published as [`crate::EngineEvent::Campaign`].
    pub figures_every: Duration,
    /// With `machine_action = "leave-message"`: how long to wait for the voicemail beep before
    /// playing the message anyway.
    pub beep_timeout: Duration,
    /// Calls a campaign may start per pacing decision at most (a burst bound on top of the
    /// pacer's own caps, so one decision never leases thousands of contacts).
    pub max_starts_per_decision: u32,
    /// A browser agent whose WebRTC leg went down (no ICE consent check for
    /// [`EngineConfig::webrtc_consent`], or DTLS closed) stays logged in this long waiting for
    /// a new offer; then it is logged out as when a phone hangs up.
    pub webrtc_grace: Duration,
    /// A WebRTC leg with no valid STUN check (ICE consent, RFC 7675) for this long is down.
    pub webrtc_consent: Duration,
}

impl EngineConfig {
    /// Loopback defaults for a node called `node_id`: SIP on UDP 127.0.0.1:5060, RTP on
    /// 127.0.0.1 ports 20000-29999, realm `dialer`, MD5 challenges, files under
    /// the current directory.
    pub fn new(node_id: impl Into<String>) -> Self {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        EngineConfig {
            node_id: node_id.into(),
            sip_udp: vec![SocketAddr::new(loopback, 5060)],
            sip_tcp: Vec::new(),
            sip_tls: Vec::new(),
            tls_cert: None,
            tls_key: None,
            tls_ca: None,
            advertise: None,
            rtp_ip: loopback,
            rtp_ports: 20000..=29999,
            media: media::MediaConfig::default(),
            realm: "dialer".to_owned(),
            digest_algorithms: vec![sip::digest::DigestAlgorithm::Md5],
            phone_srtp: domain::SrtpPolicy::Off,
            sdes_without_tls: false,
            dns_server: None,
            register_retry: sip::RetryPolicy::default(),
            agent_day_time_zone: chrono_tz::UTC,
            prompts_dir: PathBuf::from("."),
            trunk_secrets: None,
            recordings_dir: PathBuf::from("recordings"),
            lease: Duration::from_secs(300),
            tick: Duration::from_millis(250),
            connect_grace: Duration::from_secs(2),
            figures_every: Duration::from_secs(1),
            beep_timeout: Duration::from_secs(20),
            max_starts_per_decision: 50,
            webrtc_grace: Duration::from_secs(60),
            webrtc_consent: Duration::from_secs(30),
        }
    }

    /// Checks the settings; the error names the setting.
    pub fn validate(&self) -> Result<(), crate::EngineError> {
        let bad = |what: &str| Err(crate::EngineError::Config(what.to_owned()));
        if self.node_id.is_empty()
            || self.node_id.len() > 64
            || !self
                .node_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return bad("node_id must be 1-64 letters, digits, `-`, `_` or `.`");
        }
        if self.sip_udp.is_empty() && self.sip_tcp.is_empty() && self.sip_tls.is_empty() {
            return bad("sip_udp/sip_tcp/sip_tls: the SIP endpoint needs at least one listener");
        }
        if !self.sip_tls.is_empty() && (self.tls_cert.is_none() || self.tls_key.is_none()) {
            return bad("sip_tls: a TLS listener needs tls_cert and tls_key (PEM files)");
        }
        if let Err(err) = self.media.validate() {
            return bad(&err.to_string());
        }
        if self.realm.is_empty() {
            return bad("realm must not be empty");
        }
        if self.digest_algorithms.is_empty() {
            return bad("digest_algorithms must offer at least one algorithm");
        }
        for (i, algorithm) in self.digest_algorithms.iter().enumerate() {
            if self.digest_algorithms[..i].contains(algorithm) {
                return bad(&format!(
                    "digest_algorithms names {} twice",
                    algorithm.as_str()
                ));
            }
        }
        if self.lease < Duration::from_secs(30) {
            return bad("lease must be at least 30 s (leases are renewed every third of it)");
        }
        if self.tick.is_zero() || self.tick > Duration::from_secs(5) {
            return bad("tick must be between 1 ms and 5 s");
        }
        if self.connect_grace > Duration::from_secs(10) {
            return bad("connect_grace must be at most 10 s (the rule is 2 s)");
        }
        if self.figures_every.is_zero() {
            return bad("figures_every must be above zero");
        }
        if self.max_starts_per_decision == 0 {
            return bad("max_starts_per_decision must be at least 1");
        }
        if let Some(path) = &self.trunk_secrets {
            // A bad file stops the start, not the first campaign that needs it.
            crate::TrunkSecrets::read(path)?;
        }
        Ok(())
    }
}
