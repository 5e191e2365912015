//! What a login costs per request: a request through the API's router (no network) with no
//! credential needed (`/healthz`, the baseline), with an API token, with a session cookie, and
//! refused without one; and a password login (argon2id), right and wrong, and for an unknown
//! name. SQLite in a temporary directory, the store's own pool.
//!
//!     cargo bench -p api --bench auth

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use store::{NewUser, Principal, Role, Store};
use tower::ServiceExt as _;

struct Setup {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    store: Store,
    engine: engine::Engine,
    token: String,
    session: String,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("auth.db").display());
    let (router, store, engine, token, session) = runtime.block_on(async {
        let store = Store::connect(&url).await.expect("SQLite opens");
        store.migrate().await.expect("migrations run");
        let cli = Principal::cli();
        let user = store
            .create_user(
                &NewUser {
                    username: "bench".into(),
                    password: "bench-password".into(),
                    role: Role::Admin,
                    agent_id: None,
                },
                &cli,
            )
            .await
            .expect("a user");
        let token = store
            .create_token(user.id, "bench", Role::Admin, None, &cli)
            .await
            .expect("a token")
            .secret;
        let (session, _) = store
            .create_session(user.id, Duration::from_secs(3600))
            .await
            .expect("a session");
        let mut config = engine::EngineConfig::new("bench-node");
        config.sip_udp = vec!["127.0.0.1:0".parse().expect("an address")];
        config.rtp_ports = 0..=0;
        config.prompts_dir = dir.path().to_path_buf();
        config.recordings_dir = dir.path().join("recordings");
        let engine = engine::Engine::start(config, store.clone(), engine::InProcess::shared())
            .await
            .expect("the engine starts");
        (api::router(engine.clone()), store, engine, token, session)
    });
    Setup {
        runtime,
        router,
        store,
        engine,
        token,
        session,
        _dir: dir,
    }
}

fn request(
    setup: &Setup,
    path: &str,
    credential: Option<(header::HeaderName, String)>,
) -> StatusCode {
    let mut builder = Request::get(path);
    if let Some((name, value)) = credential {
        builder = builder.header(name, value);
    }
    let request = builder.body(Body::empty()).expect("a request");
    setup.runtime.block_on(async {
        let response = setup
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router answers");
        let status = response.status();
        let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
        status
    })
}

fn per_request(c: &mut Criterion) {
    let setup = setup();
    let bearer = || Some((header::AUTHORIZATION, format!("Bearer {}", setup.token)));
    let cookie = || Some((header::COOKIE, format!("dialer_session={}", setup.session)));
    assert_eq!(request(&setup, "/healthz", None), StatusCode::OK);
    assert_eq!(request(&setup, "/api/v1/me", bearer()), StatusCode::OK);
    assert_eq!(request(&setup, "/api/v1/me", cookie()), StatusCode::OK);
    assert_eq!(
        request(&setup, "/api/v1/me", None),
        StatusCode::UNAUTHORIZED
    );

    let mut group = c.benchmark_group("request");
    group.bench_function("healthz, no login needed", |b| {
        b.iter(|| black_box(request(&setup, "/healthz", None)))
    });
    group.bench_function("me, API token", |b| {
        b.iter(|| black_box(request(&setup, "/api/v1/me", bearer())))
    });
    group.bench_function("me, session cookie", |b| {
        b.iter(|| black_box(request(&setup, "/api/v1/me", cookie())))
    });
    group.bench_function("me, no login (401)", |b| {
        b.iter(|| black_box(request(&setup, "/api/v1/me", None)))
    });
    group.finish();

    let mut group = c.benchmark_group("login");
    group.sample_size(20);
    let login = |name: &str, password: &str| {
        setup
            .runtime
            .block_on(setup.store.check_login(name, password))
            .expect("the store answers")
            .is_some()
    };
    assert!(login("bench", "bench-password"));
    group.bench_function("password right (argon2id)", |b| {
        b.iter(|| black_box(login("bench", "bench-password")))
    });
    group.bench_function("password wrong", |b| {
        b.iter(|| black_box(login("bench", "not-the-password")))
    });
    group.bench_function("unknown user (the decoy hash)", |b| {
        b.iter(|| black_box(login("nobody", "not-the-password")))
    });
    group.finish();

    setup
        .runtime
        .block_on(setup.engine.shutdown(Duration::from_secs(1)))
        .expect("the engine stops");
}

criterion_group!(benches, per_request);
criterion_main!(benches);
