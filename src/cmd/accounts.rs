//! `dialer user`, `dialer token` and `dialer audit`: the API's accounts from the service's own
//! machine (whoever may open the database may manage them; the audit log names them `cli`).

use crate::Global;
use anyhow::Context as _;
use std::io::{BufRead as _, IsTerminal as _};
use std::process::ExitCode;
use store::{Principal, Role};

/// Subcommands of `dialer user`.
#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a user (the first admin, say). The password is asked for, or read from stdin.
    Add {
        /// Login name: letters, digits, `.`, `_`, `-`.
        name: String,
        /// admin, manager, supervisor or agent.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// For the agent role: the username of the agent (SIP account) this user acts as.
        #[arg(long)]
        agent: Option<String>,
        /// Read the password from the first line of standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the users.
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a user with its sessions and tokens.
    Delete {
        /// Login name.
        name: String,
    },
    /// Set a user's password (their sessions end).
    Password {
        /// Login name.
        name: String,
        /// Read the password from the first line of standard input instead of asking.
        #[arg(long)]
        password_stdin: bool,
    },
}

/// Subcommands of `dialer token`.
#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Make an API token for a user; its secret is printed once.
    Add {
        /// The owner's login name.
        #[arg(long)]
        user: String,
        /// What it is for.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Its role (default: the owner's; at most the owner's).
        #[arg(long, value_parser = parse_role)]
        role: Option<Role>,
    },
    /// List tokens (never their secrets).
    List {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token: it is refused from the next request on.
    Revoke {
        /// Its id (`dialer token list`).
        id: i64,
    },
}

/// Options of `dialer audit`.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Only entries after this id.
    #[arg(long)]
    after_id: Option<i64>,
    /// At most this many entries.
    #[arg(long, default_value_t = 100)]
    limit: u64,
    /// As JSON lines.
    #[arg(long)]
    json: bool,
}

fn parse_role(text: &str) -> Result<Role, String> {
    text.parse().map_err(|err: store::Error| err.to_string())
}

/// The password from stdin's first line, or asked twice on the terminal without echo.
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin || !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = rpassword::prompt_password("password: ").context("cannot read the password")?;
    let again = rpassword::prompt_password("again: ").context("cannot read the password")?;
    anyhow::ensure!(first == again, "the two passwords differ");
    Ok(first)
}

async fn user_named(store: &store::Store, name: &str) -> anyhow::Result<store::User> {
    store
        .user_by_name(name)
        .await?
        .with_context(|| format!("no user `{name}` (dialer user list shows them)"))
}

/// Runs `dialer user`.
pub async fn run_user(command: UserCommand, global: &Global) -> anyhow::Result<ExitCode> {
    let store = super::migrate::open(global).await?;
    let cli = Principal::cli();
    match command {
        UserCommand::Add {
            name,
            role,
            agent,
            password_stdin,
        } => {
            let agent_id = match &agent {
                Some(agent) => Some(
                    store
                        .agent_by_username(agent)
                        .await?
                        .with_context(|| format!("no agent `{agent}`"))?
                        .id,
                ),
                None => None,
            };
            let password = read_password(password_stdin)?;
            let user = store
                .create_user(
                    &store::NewUser {
                        username: name,
                        password,
                        role,
                        agent_id,
                    },
                    &cli,
                )
                .await?;
            println!(
                "user {} created ({}, id {})",
                user.username, user.role, user.id
            );
        }
        UserCommand::List { json } => {
            let users = store.users().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&users)?);
            } else {
                println!("{:>5}  {:<24} {:<10} agent", "id", "name", "role");
                for u in users {
                    let agent = u.agent_id.map(|a| a.to_string()).unwrap_or_default();
                    println!(
                        "{:>5}  {:<24} {:<10} {agent}",
                        u.id,
                        u.username,
                        u.role.as_str()
                    );
                }
            }
        }
        UserCommand::Delete { name } => {
            let user = user_named(&store, &name).await?;
            store.delete_user(user.id, &cli).await?;
            println!("user {name} deleted, with its sessions and tokens");
        }
        UserCommand::Password {
            name,
            password_stdin,
        } => {
            let user = user_named(&store, &name).await?;
            let password = read_password(password_stdin)?;
            store.set_user_password(user.id, &password, &cli).await?;
            println!("password of {name} set; its sessions ended");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `dialer token`.
pub async fn run_token(command: TokenCommand, global: &Global) -> anyhow::Result<ExitCode> {
    let store = super::migrate::open(global).await?;
    let cli = Principal::cli();
    match command {
        TokenCommand::Add { user, name, role } => {
            let owner = user_named(&store, &user).await?;
            let made = store
                .create_token(owner.id, &name, role.unwrap_or(owner.role), None, &cli)
                .await?;
            eprintln!(
                "token {} ({}) for {user} as {}: shown this once, keep it secret",
                made.token.id, made.token.name, made.token.role
            );
            println!("{}", made.secret);
        }
        TokenCommand::List { user } => {
            let owner = match &user {
                Some(name) => Some(user_named(&store, name).await?.id),
                None => None,
            };
            println!(
                "{:>5}  {:<20} {:<24} {:<10} {:<20} revoked",
                "id", "user", "name", "role", "created"
            );
            for t in store.tokens(owner).await? {
                println!(
                    "{:>5}  {:<20} {:<24} {:<10} {:<20} {}",
                    t.id,
                    t.username,
                    t.name,
                    t.role.as_str(),
                    t.created_at.format("%Y-%m-%d %H:%M:%S"),
                    t.revoked_at
                        .map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_default()
                );
            }
        }
        TokenCommand::Revoke { id } => {
            store
                .token(id)
                .await?
                .with_context(|| format!("no token {id} (dialer token list shows them)"))?;
            store.revoke_token(id, &cli).await?;
            println!("token {id} revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `dialer audit`.
pub async fn run_audit(args: AuditArgs, global: &Global) -> anyhow::Result<ExitCode> {
    let store = super::migrate::open(global).await?;
    anyhow::ensure!(
        (1..=store::MAX_PAGE).contains(&args.limit),
        "--limit must be between 1 and {}",
        store::MAX_PAGE
    );
    for entry in store.audit_log(args.after_id, args.limit).await? {
        if args.json {
            println!("{}", serde_json::to_string(&entry)?);
        } else {
            println!(
                "{:>6}  {}  {:<28} {:<18} {:<20} {}",
                entry.id,
                entry.at.format("%Y-%m-%d %H:%M:%S"),
                entry.actor,
                entry.action,
                entry.target,
                entry.detail
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
