//! The campaign manager's commands end to end: the `dialer` binary on a fresh SQLite file
//! (and on PostgreSQL for the migrate/import/export round trip).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn dialer(db: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dialer"))
        .args(args)
        .env("DATABASE_URL", db)
        .env_remove("DIALER_LOG")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run dialer")
}

fn ok(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "dialer failed: {}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("dialer.db").display())
}

fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("campaigns")
        .join(name)
        .display()
        .to_string()
}

fn round_trip(db: &str, dir: &Path) {
    ok(&dialer(db, &["migrate"]));
    let applied = ok(&dialer(
        db,
        &["campaign", "apply", &example("spring-renewals.toml")],
    ));
    assert!(applied.contains("campaign `spring-renewals`"), "{applied}");
    assert!(applied.contains("created"), "{applied}");
    let again = ok(&dialer(
        db,
        &["campaign", "apply", &example("spring-renewals.toml")],
    ));
    assert!(again.contains("unchanged"), "{again}");

    let csv = example("spring-renewals.csv");
    let summary: serde_json::Value = serde_json::from_str(&ok(&dialer(
        db,
        &["import", "--campaign", "spring-renewals", "--json", &csv],
    )))
    .expect("--json prints JSON");
    assert_eq!(summary["rows"], 26, "{summary:#}");
    assert_eq!(summary["imported"], 21, "{summary:#}");
    assert_eq!(summary["duplicates"], 1, "{summary:#}");
    assert_eq!(summary["dnc"], 0, "{summary:#}");
    assert_eq!(summary["rejected"], 4, "{summary:#}");
    let lines: Vec<u64> = summary["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, [23, 24, 25, 26], "{summary:#}");
    assert!(
        summary["errors"][3]["reason"]
            .as_str()
            .unwrap()
            .contains("expected 6 columns, found 5")
    );

    // Human output, and the same file again adds nothing.
    let text = ok(&dialer(
        db,
        &["import", "--campaign", "spring-renewals", &csv],
    ));
    assert!(text.contains("0 imported, 22 duplicates"), "{text}");
    assert!(text.contains("line 24: `555-01`"), "{text}");

    let show = ok(&dialer(db, &["campaign", "show", "spring-renewals"]));
    assert!(show.contains("contacts   21"), "{show}");
    assert!(show.contains("pending"), "{show}");

    // Do-not-call: loaded from a file, then checked.
    let list = dir.join("dnc.txt");
    std::fs::write(&list, "(212) 555-0142\n312-555-0187\n").unwrap();
    let loaded = ok(&dialer(db, &["dnc", "import", list.to_str().unwrap()]));
    assert!(loaded.contains("2 added"), "{loaded}");
    let check = dialer(
        db,
        &[
            "dnc",
            "check",
            "--campaign",
            "spring-renewals",
            "212-555-0142",
        ],
    );
    assert_eq!(
        check.status.code(),
        Some(1),
        "a listed number is reported by exit code"
    );
    let check = ok(&dialer(
        db,
        &[
            "dnc",
            "check",
            "--campaign",
            "spring-renewals",
            "415-555-0123",
        ],
    ));
    assert!(check.contains("may be called"), "{check}");

    // Export: every contact with status, attempts and last outcome.
    let out = dir.join("out.csv");
    ok(&dialer(
        db,
        &[
            "export",
            "--campaign",
            "spring-renewals",
            "--output",
            out.to_str().unwrap(),
        ],
    ));
    let exported = std::fs::read_to_string(&out).unwrap();
    assert!(exported.starts_with("phone,status,attempts,last_outcome,last_attempt_at,next_attempt_at,timezone,first_name,last_name,city,policy\n"), "{exported}");
    assert_eq!(exported.lines().count(), 22, "{exported}");
    assert!(exported.contains("+12125550142,dnc,0,"), "{exported}");
    assert!(exported.contains("+12083990102,pending,0,,,"), "{exported}");
    assert!(
        exported.contains("America/Boise America/Los_Angeles,Hiro,Dubois,Boise,P-10008"),
        "{exported}"
    );
}

#[test]
fn campaign_import_dnc_export_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    round_trip(&sqlite_url(dir.path()), dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn campaign_import_dnc_export_on_postgres() {
    let Some(db) = testkit::postgres().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let url = db.url().to_owned();
    let path = dir.path().to_owned();
    tokio::task::spawn_blocking(move || round_trip(&url, &path))
        .await
        .unwrap();
}

#[test]
fn an_invalid_campaign_is_refused_with_field_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "name = \"bad\"\ndefault_country = \"US\"\ncaller_id = \"+12025550123\"\n\
         abandon_message = \"a.wav\"\nring_timeout = \"10s\"\n[pacing]\nabandon_target = 0.1\n\
         [trunk]\nuri = \"sip:x\"\npassword_env = \"DIALER_TRUNK_P\"\n",
    )
    .unwrap();
    let db = sqlite_url(dir.path());
    let output = dialer(&db, &["campaign", "apply", file.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("ring_timeout: 10s is below the 15s minimum"),
        "{stderr}"
    );
    assert!(
        stderr.contains("pacing.abandon_target: 0.1 is above the 3%"),
        "{stderr}"
    );
    assert!(stderr.contains("trunk.password_env: give both"), "{stderr}");
    // Nothing was stored.
    let list = ok(&dialer(&db, &["campaign", "list"]));
    assert!(list.contains("no campaigns yet"), "{list}");
    // Every example file is valid.
    let examples = ok(&dialer(
        &db,
        &[
            "campaign",
            "check",
            &example("spring-renewals.toml"),
            &example("uk-survey.toml"),
            &example("appointment-reminders.toml"),
        ],
    ));
    assert_eq!(examples.matches("is valid").count(), 3, "{examples}");
}

/// `dialer` with `input` on its standard input (a password, as a script pipes it).
fn dialer_with_input(db: &str, args: &[&str], input: &str) -> Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_dialer"))
        .args(args)
        .env("DATABASE_URL", db)
        .env_remove("DIALER_LOG")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dialer");
    child
        .stdin
        .take()
        .expect("a stdin")
        .write_all(input.as_bytes())
        .expect("the input is written");
    child.wait_with_output().expect("dialer ends")
}

fn refused(output: &Output, why: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "not refused: {stderr}");
    assert!(stderr.contains(why), "refused for another reason: {stderr}");
}

#[test]
fn users_tokens_and_the_audit_log_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = &sqlite_url(dir.path());
    let add = |args: &[&str], password: &str| {
        let mut all = vec!["user", "add"];
        all.extend(args);
        all.push("--password-stdin");
        dialer_with_input(db, &all, &format!("{password}\n"))
    };
    let made = ok(&add(&["--role", "admin", "root"], "root-password-1"));
    assert!(made.contains("user root created (admin, id 1)"), "{made}");
    refused(
        &add(&["--role", "admin", "root"], "root-password-1"),
        "exists already",
    );
    refused(&add(&["--role", "manager", "m"], "short"), "at least 8");
    refused(
        &add(&["--role", "agent", "a"], "agent-password"),
        "needs its agent",
    );
    refused(
        &add(&["--role", "boss", "b"], "boss-password"),
        "not one of admin",
    );
    refused(
        &add(
            &["--role", "agent", "--agent", "nobody", "a"],
            "agent-password",
        ),
        "no agent `nobody`",
    );
    let users = ok(&dialer(db, &["user", "list"]));
    assert!(users.contains("root") && users.contains("admin"), "{users}");
    refused(&dialer(db, &["user", "delete", "root"]), "last admin");

    // A token is printed once, on stdout alone; lists never show it; revoking is at once.
    let out = dialer(db, &["token", "add", "--user", "root", "--name", "ci"]);
    let secret = ok(&out).trim().to_owned();
    assert!(secret.starts_with("dlr_") && secret.len() == 68, "{secret}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("shown this once"));
    let listed = ok(&dialer(db, &["token", "list"]));
    assert!(
        listed.contains(" ci ") && !listed.contains(&secret),
        "{listed}"
    );
    assert!(ok(&dialer(db, &["token", "revoke", "1"])).contains("token 1 revoked"));
    refused(&dialer(db, &["token", "revoke", "9"]), "no token 9");

    // Changes made from the command line are in the audit log, as `cli`, with no secret.
    ok(&dialer(
        db,
        &["campaign", "apply", &example("spring-renewals.toml")],
    ));
    ok(&dialer(db, &["dnc", "add", "212-555-0142"]));
    ok(&dialer(db, &["dnc", "remove", "212-555-0142"]));
    let audit = ok(&dialer(db, &["audit", "--json"]));
    let entries: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "user.create",
            "token.create",
            "token.revoke",
            "campaign.apply",
            "dnc.add",
            "dnc.remove"
        ],
        "{audit}"
    );
    assert!(entries.iter().all(|e| e["actor"] == "cli"), "{audit}");
    assert_eq!(
        entries[4]["detail"]["numbers"][0], "+12125550142",
        "{audit}"
    );
    assert!(
        !audit.contains("root-password-1") && !audit.contains(&secret),
        "{audit}"
    );
    let page = ok(&dialer(db, &["audit", "--after-id", "4", "--limit", "1"]));
    assert_eq!(page.lines().count(), 1, "{page}");
    assert!(page.contains("dnc.add"), "{page}");
}
