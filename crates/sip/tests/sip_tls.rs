//! SIP over TLS between two of our own endpoints on loopback: one with a TLS listener and a
//! certificate from a test CA, one dialing it as a `sips:` trunk with that CA. The dialing side
//! has no TLS listener, so every request and response of the call (the callee's BYE included)
//! travels on the one connection it opened. Certificates for another name or from an unknown CA
//! are refused before any request is sent.

use sip::sdp::LocalMedia;
use sip::{
    AuthConfig, CallEvent, CallerId, EndCause, Endpoint, EndpointConfig, Incoming, IncomingEvent,
    InviteResult, OutboundCall, RegisterSpec, Secret, TlsClient, TlsServer, Transport, TrunkConfig,
};
use std::sync::Arc;
use std::time::Duration;
use testkit::tls::TestCa;

const WAIT: Duration = Duration::from_secs(20);

/// An endpoint with a TLS listener presenting a certificate for `names` from `ca`; the phone
/// `alice`/`secret` may register.
async fn tls_server(ca: &TestCa, names: &[&str]) -> (Endpoint, Incoming) {
    let leaf = ca.leaf(names);
    let mut config = EndpointConfig::udp("127.0.0.1:0".parse().unwrap());
    config.tls = vec!["127.0.0.1:0".parse().unwrap()];
    config.tls_server =
        Some(TlsServer::from_pem(leaf.cert.as_bytes(), leaf.key.as_bytes()).unwrap());
    let lookup = |user: &str| (user == "alice").then(|| Secret::Password("secret".into()));
    let mut auth = AuthConfig::new("tls-test", Arc::new(lookup));
    // Calls from loopback come in unchallenged; REGISTER is still challenged.
    auth.trusted = vec!["127.0.0.1".parse().unwrap()];
    config.auth = Some(auth);
    Endpoint::bind(config).await.expect("bind the TLS server")
}

/// An endpoint without a TLS listener that trusts `ca`.
async fn tls_client(ca: &TestCa) -> Endpoint {
    let mut config = EndpointConfig::udp("127.0.0.1:0".parse().unwrap());
    config.tls_client = Some(TlsClient::from_ca_pem(ca.pem.as_bytes()).unwrap());
    Endpoint::bind(config).await.expect("bind the client").0
}

fn call() -> OutboundCall {
    OutboundCall {
        number: "+15551234567".into(),
        caller_id: CallerId {
            number: "+15550001111".into(),
            name: None,
        },
        media: LocalMedia::new("127.0.0.1:40000".parse().unwrap()),
        ring_timeout: Duration::from_secs(15),
        headers: Vec::new(),
    }
}

async fn next(call: &mut sip::Call) -> CallEvent {
    tokio::time::timeout(WAIT, call.next_event())
        .await
        .expect("an event in time")
        .expect("an event")
}

#[tokio::test]
async fn a_call_over_tls_reuses_the_callers_connection_both_ways() {
    let ca = TestCa::new("sip test CA");
    let (server, mut incoming) = tls_server(&ca, &["localhost", "127.0.0.1"]).await;
    let port = server.local_addr(Transport::Tls).unwrap().port();
    let client = tls_client(&ca).await;
    assert_eq!(client.local_addr(Transport::Tls), None, "no TLS listener");
    // The certificate names localhost: the URI's host is the name checked.
    let trunk = client
        .trunk(TrunkConfig::new(
            format!("sips:localhost:{port}").parse().unwrap(),
            10,
        ))
        .await
        .unwrap();
    assert_eq!(trunk.destination().transport, Transport::Tls);

    for round in 0..2 {
        let mut outbound = client.dial(&trunk, call()).await.unwrap();
        let mut answered = None;
        let offered = tokio::time::timeout(WAIT, incoming.next_call())
            .await
            .expect("the INVITE in time")
            .expect("an incoming call");
        let info = offered.info().clone();
        assert_eq!(info.transport, Transport::Tls, "round {round}");
        assert!(
            info.request_uri.starts_with("sips:+15551234567@localhost"),
            "{}",
            info.request_uri
        );
        let mut inbound = offered
            .answer(LocalMedia::new("127.0.0.1:41000".parse().unwrap()))
            .await
            .unwrap();
        while answered.is_none() {
            if let CallEvent::Answered { sdp } = next(&mut outbound).await {
                answered = Some(sdp);
            }
        }
        assert!(matches!(
            next(&mut inbound).await,
            CallEvent::Confirmed { .. }
        ));
        // The callee hangs up: its BYE goes back on the caller's connection (the caller's
        // Contact names a port where nothing listens for TLS).
        inbound.hangup();
        let end = outbound.wait_end().await.expect("the caller's end");
        assert_eq!(end.outcome, InviteResult::Answered);
        assert_eq!(end.cause, EndCause::RemoteHangup, "round {round}");
        let end = inbound.wait_end().await.expect("the callee's end");
        assert_eq!(end.cause, EndCause::LocalHangup);
    }
    let stats = client.stats();
    assert_eq!(stats.transport_errors, 0);
    assert_eq!(
        stats.retransmissions, 0,
        "TLS is reliable: no retransmissions"
    );

    // A phone registers over TLS (digest over the encrypted connection).
    let registration = client
        .register(RegisterSpec {
            registrar: format!("sip:127.0.0.1:{port};transport=tls")
                .parse()
                .unwrap(),
            user: "alice".into(),
            password: "secret".into(),
            expires: 300,
            transport: None,
            auth_user: None,
            outbound_proxy: None,
        })
        .await
        .expect("REGISTER over TLS");
    assert_eq!(registration.expires(), 300);
    let change = tokio::time::timeout(WAIT, incoming.next())
        .await
        .expect("the registration in time");
    match change {
        Some(IncomingEvent::Registration(sip::RegistrationChange::Registered {
            user,
            contact,
            ..
        })) => {
            assert_eq!(user, "alice");
            assert!(contact.contains("transport=tls"), "{contact}");
        }
        other => panic!("expected a registration, got {other:?}"),
    }
}

/// Dials `server` through a `sips:` trunk from `client` and returns how the call ended.
async fn refused_call(client: &Endpoint, server: &Endpoint) -> sip::CallEnd {
    let port = server.local_addr(Transport::Tls).unwrap().port();
    let trunk = client
        .trunk(TrunkConfig::new(
            format!("sips:localhost:{port}").parse().unwrap(),
            10,
        ))
        .await
        .unwrap();
    let mut outbound = client.dial(&trunk, call()).await.unwrap();
    tokio::time::timeout(WAIT, outbound.wait_end())
        .await
        .expect("the end in time")
        .expect("an end")
}

fn refusal(end: &sip::CallEnd) -> String {
    assert_eq!(end.cause, EndCause::TlsRefused, "{end:?}");
    match &end.outcome {
        InviteResult::Failed { code: 503, reason } => reason.clone(),
        other => panic!("expected a 503 failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_certificate_for_another_name_is_refused_and_nothing_is_sent() {
    let ca = TestCa::new("sip test CA");
    let (server, _incoming) = tls_server(&ca, &["carrier.example.net"]).await;
    let client = tls_client(&ca).await;
    let end = refused_call(&client, &server).await;
    let reason = refusal(&end);
    assert!(
        reason.contains("TLS with localhost") && reason.contains("not valid for name"),
        "{reason}"
    );
    assert_eq!(
        server.stats().messages_received,
        0,
        "no SIP reached the server"
    );
}

#[tokio::test]
async fn a_certificate_from_an_unknown_ca_is_refused_and_nothing_is_sent() {
    let ca = TestCa::new("sip test CA");
    let (server, _incoming) = tls_server(&ca, &["localhost"]).await;
    let client = tls_client(&TestCa::new("another CA")).await;
    let end = refused_call(&client, &server).await;
    let reason = refusal(&end);
    assert!(reason.contains("UnknownIssuer"), "{reason}");
    assert_eq!(
        server.stats().messages_received,
        0,
        "no SIP reached the server"
    );
    // OPTIONS (a trunk's keepalive) sees the same refusal as a 503.
    let port = server.local_addr(Transport::Tls).unwrap().port();
    let code = client
        .options(
            &format!("sip:localhost:{port};transport=tls")
                .parse()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(code, 503);
}

#[tokio::test]
async fn sips_uris_refuse_other_transports_and_listeners_need_a_certificate() {
    let mut trunk = TrunkConfig::new("sips:localhost".parse().unwrap(), 1);
    trunk.transport = Some(Transport::Udp);
    let (endpoint, _incoming) = Endpoint::bind(EndpointConfig::udp("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let err = endpoint.trunk(trunk).await.unwrap_err();
    assert!(err.to_string().contains("TLS only"), "{err}");
    let mut config = EndpointConfig::udp("127.0.0.1:0".parse().unwrap());
    config.tls = vec!["127.0.0.1:0".parse().unwrap()];
    let err = Endpoint::bind(config).await.unwrap_err();
    assert!(err.to_string().contains("certificate"), "{err}");
}
