//! The campaign file as a security boundary, over real HTTP on SQLite and PostgreSQL: whoever
//! may post a campaign must not reach the service's other secrets through the trunk's
//! credentials (`DATABASE_URL`, `PATH`) nor its files through a message or CA path
//! (`/etc/passwd`, `..`, a symbolic link out of the prompts directory). Each is refused with
//! 422 naming the field, nothing is stored, and the answer is the same whether a variable
//! exists or not.

#[macro_use]
mod support;

use serde_json::Value;
use support::{Api, Db, assert_problem};

/// The trunk secrets file the engine is given: mode 600, as the service requires.
fn write_secrets(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("trunk-secrets.toml");
    std::fs::write(
        &path,
        "DIALER_TRUNK_T_USER = \"acme\"\nDIALER_TRUNK_T_PASSWORD = \"file-secret-pw\"\n",
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path
}

/// A campaign named `name` whose file differs from the tests' usual one by `replace`.
fn campaign(name: &str, replace: &[(&str, &str)]) -> String {
    let mut text = support::campaign_toml(name, support::nowhere());
    for (from, to) in replace {
        assert!(text.contains(from), "{from}");
        text = text.replacen(from, to, 1);
    }
    text
}

async fn assert_not_stored(api: &Api, name: &str) {
    let (status, body) = api.get(&format!("/api/v1/campaigns/{name}")).await;
    assert_eq!(status, 404, "a refused campaign was stored: {body:#}");
}

async fn paths_outside_the_prompts_directory_are_refused(db: Db) {
    let outside = tempfile::tempdir().unwrap();
    // A real message outside: only the path's place refuses it.
    let wav = outside.path().join("outside.wav");
    testkit::audio::write_message(&wav, 0.5);
    let Some(api) = Api::start_with(db, |_, dir| {
        std::fs::create_dir_all(dir.join("en")).unwrap();
        testkit::audio::write_message(&dir.join("en/abandon.wav"), 0.5);
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&wav, dir.join("link.wav")).unwrap();
            std::os::unix::fs::symlink(wav.parent().unwrap(), dir.join("up")).unwrap();
        }
    })
    .await
    else {
        return;
    };
    let wav = wav.display().to_string();
    let mut cases: Vec<(&str, String, &str)> = vec![
        ("abandon_message", wav.clone(), "is an absolute path"),
        (
            "abandon_message",
            "/etc/passwd".into(),
            "is an absolute path",
        ),
        (
            "abandon_message",
            "../abandon.wav".into(),
            "climbs out with `..`",
        ),
        (
            "abandon_message",
            "en/../../x.wav".into(),
            "climbs out with `..`",
        ),
        (
            "abandon_message",
            "en\\\\..\\\\..\\\\x.wav".into(),
            "climbs out with `..`",
        ),
        (
            "trunk.ca_file",
            "/etc/ssl/certs/ca-certificates.crt".into(),
            "is an absolute path",
        ),
    ];
    if cfg!(unix) {
        cases.push((
            "abandon_message",
            "link.wav".into(),
            "leads out of the prompts directory",
        ));
        cases.push((
            "abandon_message",
            "up/outside.wav".into(),
            "leads out of the prompts directory",
        ));
    }
    for (i, (field, path, reason)) in cases.iter().enumerate() {
        let name = format!("files-{i}");
        let text = if *field == "trunk.ca_file" {
            campaign(
                &name,
                &[(
                    "[trunk]\n",
                    &format!("[trunk]\ntransport = \"tls\"\nca_file = \"{path}\"\n"),
                )],
            )
        } else {
            campaign(
                &name,
                &[(
                    "abandon_message = \"abandon.wav\"",
                    &format!("{field} = \"{path}\""),
                )],
            )
        };
        let answer = api.apply_toml(&text).await;
        assert_problem(&answer, 422, field);
        let error = answer.1["error"].as_str().unwrap_or_default();
        assert!(error.contains(reason), "{path}: {error}");
        // Where a link leads is not told.
        assert!(
            !error.contains(&*outside.path().to_string_lossy()) || path.starts_with('/'),
            "{error}"
        );
        assert_not_stored(&api, &name).await;
    }
    // Below the directory is fine, subfolders too.
    let text = campaign(
        "files-ok",
        &[(
            "abandon_message = \"abandon.wav\"",
            "abandon_message = \"./en/abandon.wav\"",
        )],
    );
    let (status, body) = api.apply_toml(&text).await;
    assert_eq!(status, 201, "{body:#}");
    api.stop().await;
}

async fn trunk_credentials_come_only_from_trunk_secrets(db: Db) {
    let Some(api) = Api::start_with(db, |config, dir| {
        config.trunk_secrets = Some(write_secrets(dir));
    })
    .await
    else {
        return;
    };
    let credentials = |user: &str, password: &str| {
        vec![(
            "[trunk]\n".to_owned(),
            format!("[trunk]\nusername_env = \"{user}\"\npassword_env = \"{password}\"\n"),
        )]
    };
    let apply = |name: &'static str, user: &'static str, password: &'static str| {
        let pairs = credentials(user, password);
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let text = campaign(name, &refs);
        let api = &api;
        async move { api.apply_toml(&text).await }
    };
    // Variables of the service outside the namespace: PATH and HOME are set in every test
    // run, the third is not; the answers differ only by the name.
    let mut errors = Vec::new();
    for (name, variable) in [
        ("steal-path", "PATH"),
        ("steal-home", "HOME"),
        ("steal-none", "NO_SUCH_VARIABLE_IN_THE_DIALER_ENV"),
        ("steal-db", "DATABASE_URL"),
    ] {
        let answer = apply(name, variable, "DIALER_TRUNK_T_PASSWORD").await;
        assert_problem(&answer, 422, "trunk.username_env");
        let text = serde_json::to_string(&answer.1).unwrap();
        for value in ["PATH", "HOME"]
            .iter()
            .filter_map(|v| std::env::var(v).ok())
        {
            assert!(!text.contains(&value), "a variable's value leaked: {text}");
        }
        errors.push(text.replace(variable, "NAME"));
        assert_not_stored(&api, name).await;
    }
    assert!(errors.windows(2).all(|w| w[0] == w[1]), "{errors:#?}");
    assert!(errors[0].contains("is not a trunk secret"), "{}", errors[0]);
    // The same for the password's field.
    let answer = apply("steal-pw", "DIALER_TRUNK_T_USER", "PATH").await;
    assert_problem(&answer, 422, "trunk.password_env");

    // A trunk secret that is set nowhere is named as such (its namespace holds trunk secrets
    // alone) ...
    let answer = apply(
        "unset",
        "DIALER_TRUNK_T_USER",
        "DIALER_TRUNK_NOT_SET_ANYWHERE",
    )
    .await;
    assert_problem(&answer, 422, "trunk.password_env");
    let error = answer.1["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("set neither in the trunk secrets file"),
        "{error}"
    );
    assert_not_stored(&api, "unset").await;
    // ... and the secrets file's names are taken, the password never shown.
    let (status, body) = apply("good", "DIALER_TRUNK_T_USER", "DIALER_TRUNK_T_PASSWORD").await;
    assert_eq!(status, 201, "{body:#}");
    let (status, shown) = api.get("/api/v1/campaigns/good/spec").await;
    assert_eq!(status, 200, "{shown:#}");
    let text = serde_json::to_string(&shown).unwrap();
    assert!(!text.contains("file-secret-pw"), "{text}");
    assert_eq!(
        shown["trunk"]["password_env"],
        Value::from("DIALER_TRUNK_T_PASSWORD"),
        "{shown:#}"
    );
    api.stop().await;
}

on_both!(paths_outside_the_prompts_directory_are_refused);
on_both!(trunk_credentials_come_only_from_trunk_secrets);
