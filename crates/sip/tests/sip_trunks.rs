//! Trunks as carriers expect them, against real peers: a sipp registrar that challenges
//! REGISTER (the registration is held, refreshed on a 4-second binding, and given up with
//! Expires: 0; a wrong password shows as a failure with the registrar's code), sipp as an
//! outbound proxy (the INVITE reaches it with the carrier's Request-URI and a Route), and
//! dnsmasq serving NAPTR/SRV records for `carrier.test` (the trunk reaches a sipp carrier known
//! only through them, after failing over from a dead first target).

use sip::sdp::LocalMedia;
use sip::{
    CallEvent, CallerId, Endpoint, EndpointConfig, OutboundCall, RegisterSpec, RegistrationState,
    RetryPolicy, Transport, TrunkConfig,
};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use testkit::sipp::Sipp;
use testkit::wait_for;

const WAIT: Duration = Duration::from_secs(30);

async fn endpoint(tcp: bool, dns: Option<SocketAddr>) -> Endpoint {
    let mut config = EndpointConfig::udp("127.0.0.1:0".parse().unwrap());
    if tcp {
        config.tcp = vec!["127.0.0.1:0".parse().unwrap()];
    }
    config.dns_server = dns;
    let (endpoint, _incoming) = Endpoint::bind(config).await.expect("bind");
    endpoint
}

fn call(number: &str) -> OutboundCall {
    OutboundCall {
        number: number.into(),
        caller_id: CallerId {
            number: "+15550001111".into(),
            name: None,
        },
        media: LocalMedia::new("127.0.0.1:40000".parse().unwrap()),
        ring_timeout: Duration::from_secs(20),
        headers: Vec::new(),
    }
}

const FAST_RETRY: RetryPolicy = RetryPolicy {
    base: Duration::from_millis(500),
    max: Duration::from_secs(2),
};

#[tokio::test]
async fn trunk_registers_with_digest_refreshes_and_unregisters() {
    let Some(registrar) = Sipp::carrier("trunk_registrar.xml", "u1", 1, &[]) else {
        return;
    };
    let endpoint = endpoint(false, None).await;
    let mut spec = RegisterSpec::new(
        registrar.uri("u1").parse().unwrap(),
        "trunkuser".into(),
        "trunkpass".into(),
        600,
    );
    spec.auth_user = Some("trunkuser".into());
    let held = endpoint.register_trunk(spec, FAST_RETRY);
    // The registrar grants 4 s: the binding is refreshed (challenged again each time).
    let refreshed = wait_for(WAIT, || {
        let status = held.status();
        async move { status.state == RegistrationState::Registered && status.refreshes >= 3 }
    })
    .await;
    let status = held.status();
    assert!(
        refreshed,
        "not refreshed: {status:?}\n{}",
        registrar.diagnostics()
    );
    assert_eq!(status.expires, Some(4));
    assert!(status.last_refresh.is_some());
    drop(held);
    assert!(
        wait_for(WAIT, || {
            let active = endpoint.registrations_active();
            async move { active == 0 }
        })
        .await
    );
    let run = registrar.finish().await;
    assert_eq!(run.code, Some(0), "{}", run.diagnostics);
    let registers = run.log.matches("REGISTER sip:").count();
    assert!(registers >= 8, "{registers} REGISTERs:\n{}", run.log);
    assert!(
        run.log.contains("Expires: 0"),
        "no un-REGISTER:\n{}",
        run.log
    );
}

#[tokio::test]
async fn wrong_password_is_a_failed_registration_with_the_code() {
    // A refused registration starts over with a new Call-ID: a new "call" for sipp each time.
    let Some(registrar) = Sipp::carrier("trunk_registrar.xml", "u1", 20, &[]) else {
        return;
    };
    let endpoint = endpoint(false, None).await;
    let spec = RegisterSpec::new(
        registrar.uri("u1").parse().unwrap(),
        "trunkuser".into(),
        "wrong".into(),
        600,
    );
    let held = endpoint.register_trunk(spec, FAST_RETRY);
    // Retried with backoff: the failures add up, the code stays the registrar's.
    let failed = wait_for(WAIT, || {
        let status = held.status();
        async move { status.state == RegistrationState::Failed && status.failures >= 2 }
    })
    .await;
    let status = held.status();
    assert!(failed, "{status:?}\n{}", registrar.diagnostics());
    assert_eq!(status.code, Some(403));
    assert!(!held.is_registered());
}

#[tokio::test]
async fn outbound_proxy_gets_the_carriers_request_uri_and_a_route() {
    let Some(proxy) = Sipp::carrier("proxy_route.xml", "u1", 1, &[]) else {
        return;
    };
    let endpoint = endpoint(false, None).await;
    // The carrier's name is never resolved: everything goes to the proxy.
    let mut config = TrunkConfig::new("sip:carrier.test".parse().unwrap(), 10);
    config.outbound_proxy = Some(proxy.uri("u1").parse().unwrap());
    let trunk = endpoint.trunk(config).await.expect("trunk");
    assert_eq!(trunk.destination().addr, proxy.addr());
    let mut placed = endpoint
        .dial(&trunk, call("+15551230001"))
        .await
        .expect("dial");
    loop {
        match tokio::time::timeout(WAIT, placed.next_event()).await {
            Ok(Some(CallEvent::Answered { .. })) => break,
            Ok(Some(CallEvent::Ended(end))) => panic!("ended: {end:?}\n{}", proxy.diagnostics()),
            Ok(Some(_)) => continue,
            other => panic!("{other:?}\n{}", proxy.diagnostics()),
        }
    }
    placed.hangup();
    let end = tokio::time::timeout(WAIT, placed.wait_end()).await;
    assert!(matches!(end, Ok(Some(_))));
    let run = proxy.finish().await;
    assert_eq!(run.code, Some(0), "{}", run.diagnostics);
    assert!(run.log.contains("Route: <sip:127.0.0.1:"), "{}", run.log);
}

/// dnsmasq answering for `carrier.test` only, on a port of 127.0.0.1; killed on drop.
struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dnsmasq {
    fn start(records: &[String]) -> Option<Dnsmasq> {
        let program = testkit::program("dnsmasq")?;
        let port = testkit::free_udp_port();
        let mut command = Command::new(program);
        command
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--conf-file=/dev/null",
                "--pid-file=",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                &format!("--port={port}"),
                "--log-queries",
                "--log-facility=-",
            ])
            .args(records)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = command.spawn().expect("start dnsmasq");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        Some(Dnsmasq { child, addr })
    }
}

#[tokio::test]
async fn srv_records_lead_to_the_carrier_after_a_dead_first_target() {
    let Some(carrier) = Sipp::carrier("carrier_answer.xml", "t1", 1, &[]) else {
        return;
    };
    // Nothing listens there: the TCP connection is refused, the first target fails at once.
    let dead = testkit::free_tcp_port();
    let Some(dns) = Dnsmasq::start(&[
        "--naptr-record=carrier.test,10,50,s,SIP+D2T,,_sip._tcp.carrier.test".into(),
        format!("--srv-host=_sip._tcp.carrier.test,dead.carrier.test,{dead},10,0"),
        format!(
            "--srv-host=_sip._tcp.carrier.test,live.carrier.test,{},20,0",
            carrier.addr().port()
        ),
        "--host-record=dead.carrier.test,127.0.0.1".into(),
        "--host-record=live.carrier.test,127.0.0.1".into(),
    ]) else {
        return;
    };
    let resolver = sip::dns::Resolver::with_server(dns.addr).unwrap();
    // dnsmasq may take a moment to bind: ask until it answers.
    let uri: sip::Uri = "sip:carrier.test".parse().unwrap();
    let mut targets = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while targets.len() != 2 && tokio::time::Instant::now() < deadline {
        targets = resolver.targets(&uri, None).await.unwrap_or_default();
        if targets.len() != 2 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let answered = targets.len() == 2;
    assert!(answered, "dnsmasq gave {targets:?}");
    // NAPTR chose TCP; SRV priority 10 before 20.
    let ports: Vec<(Transport, u16)> = targets
        .iter()
        .map(|t| (t.transport, t.addr.port()))
        .collect();
    assert_eq!(
        ports,
        vec![
            (Transport::Tcp, dead),
            (Transport::Tcp, carrier.addr().port())
        ]
    );

    let endpoint = endpoint(true, Some(dns.addr)).await;
    let trunk = endpoint
        .trunk(TrunkConfig::new(uri, 10))
        .await
        .expect("trunk");
    assert_eq!(trunk.targets().len(), 2);
    let mut placed = endpoint
        .dial(&trunk, call("+15551230002"))
        .await
        .expect("dial");
    loop {
        match tokio::time::timeout(WAIT, placed.next_event()).await {
            Ok(Some(CallEvent::Answered { .. })) => break,
            Ok(Some(CallEvent::Ended(end))) => panic!("ended: {end:?}\n{}", carrier.diagnostics()),
            Ok(Some(_)) => continue,
            other => panic!("{other:?}\n{}", carrier.diagnostics()),
        }
    }
    // Later calls start at the target that answered.
    assert_eq!(trunk.destination().addr.port(), carrier.addr().port());
    placed.hangup();
    let _ = tokio::time::timeout(WAIT, placed.wait_end()).await;
    let run = carrier.finish().await;
    assert_eq!(run.code, Some(0), "{}", run.diagnostics);
}
