//! What a campaign file may reach outside itself: trunk credentials only from named secrets
//! (`DIALER_TRUNK_*` in the service's trunk secrets file or its environment), files only inside
//! the prompts directory. A campaign file comes from whoever may edit campaigns, who must not
//! read the service's other secrets (`DATABASE_URL`) or files (`/etc/shadow`) through it.

use crate::error::{EngineError, Result};
use crate::view::field_error;
use domain::spec::{Trunk, check_relative_path, check_trunk_secret_name};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The trunk secrets file: `DIALER_TRUNK_NAME = "value"` lines, readable by the service's user
/// (and group) only.
#[derive(Clone, Default)]
pub struct TrunkSecrets {
    values: HashMap<String, String>,
}

impl std::fmt::Debug for TrunkSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: a value never reaches a log line.
        let mut names: Vec<&String> = self.values.keys().collect();
        names.sort();
        f.debug_struct("TrunkSecrets")
            .field("names", &names)
            .finish()
    }
}

impl TrunkSecrets {
    /// Reads and checks the file: its mode first (no access for other users), then its syntax
    /// and names. Errors name the file and the line or key, never a value.
    pub fn read(path: &Path) -> Result<TrunkSecrets> {
        let bad = |why: String| {
            EngineError::Config(format!("trunk secrets file {}: {why}", path.display()))
        };
        let meta = std::fs::metadata(path).map_err(|err| bad(format!("cannot be read ({err})")))?;
        if !meta.is_file() {
            return Err(bad("is not a regular file".into()));
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o007 != 0 {
                return Err(bad(format!(
                    "other users may access it (mode {mode:04o}); it holds passwords: chmod 600 {} \
                     (or 640 with the service's group)",
                    path.display()
                )));
            }
            if mode & 0o020 != 0 {
                return Err(bad(format!(
                    "its group may write it (mode {mode:04o}): chmod 600 {}",
                    path.display()
                )));
            }
        }
        let text =
            std::fs::read_to_string(path).map_err(|err| bad(format!("cannot be read ({err})")))?;
        let table: toml::Table = text.parse().map_err(|err: toml::de::Error| {
            // toml's own message quotes the line, which may hold a password.
            let line = err
                .span()
                .map_or(0, |span| text[..span.start.min(text.len())].lines().count());
            bad(format!(
                "is not TOML (`DIALER_TRUNK_NAME = \"value\"` lines); the error is near line {line}"
            ))
        })?;
        let mut values = HashMap::new();
        for (key, value) in table {
            check_trunk_secret_name(&key).map_err(|reason| bad(format!("key {reason}")))?;
            let toml::Value::String(value) = value else {
                return Err(bad(format!("the value of {key} is not a string")));
            };
            values.insert(key, value);
        }
        Ok(TrunkSecrets { values })
    }

    /// How many secrets the file holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the file holds none.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The trunk's digest credentials, `None` when it names none. Names outside the
    /// `DIALER_TRUNK_` namespace are refused by name alone, before anything is looked up, so
    /// the answer is the same whether such a variable exists or not; a name of the namespace
    /// comes from this file, else from the environment.
    pub fn credentials(&self, trunk: &Trunk) -> Result<Option<sip::Credentials>> {
        let (Some(user), Some(password)) = (&trunk.username_env, &trunk.password_env) else {
            return Ok(None);
        };
        let user = self.value("trunk.username_env", user)?;
        let password = self.value("trunk.password_env", password)?;
        Ok(Some(sip::Credentials::new(user, password)))
    }

    fn value(&self, field: &str, name: &str) -> Result<String> {
        check_trunk_secret_name(name)
            .map_err(|reason| EngineError::Invalid(vec![field_error(field, reason)]))?;
        if let Some(value) = self.values.get(name) {
            return Ok(value.clone());
        }
        std::env::var(name).map_err(|_| {
            EngineError::Invalid(vec![field_error(
                field,
                format!(
                    "the trunk secret {name} is set neither in the trunk secrets file nor in \
                     the service's environment"
                ),
            )])
        })
    }
}

/// The file a campaign names in `field`, inside `dir`: refused with the field and the reason
/// when the name is absolute or climbs out with `..`, or when a symbolic link on the way
/// leads out of `dir`. A file that does not exist comes back as named, for its reader to
/// report.
pub fn confined_path(dir: &Path, field: &str, name: &str) -> Result<PathBuf> {
    let refuse = |reason: String| EngineError::Invalid(vec![field_error(field, reason)]);
    check_relative_path(name).map_err(refuse)?;
    let full = dir.join(name);
    let Ok(real) = full.canonicalize() else {
        return Ok(full);
    };
    let root = dir.canonicalize().map_err(|err| {
        refuse(format!(
            "the prompts directory {} cannot be opened ({err})",
            dir.display()
        ))
    })?;
    if !real.starts_with(&root) {
        // Where it leads is not said: that would map the file system for the campaign's author.
        return Err(refuse(format!(
            "`{name}` leads out of the prompts directory through a symbolic link; files are \
             named relative to the prompts directory and stay inside it"
        )));
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trunk(user: &str, password: &str) -> Trunk {
        let text = format!(
            "name = \"t\"\ndefault_country = \"US\"\ncaller_id = \"+12025550123\"\n\
             abandon_message = \"a.wav\"\n[trunk]\nuri = \"sip:127.0.0.1\"\n\
             username_env = \"{user}\"\npassword_env = \"{password}\"\n"
        );
        domain::CampaignSpec::from_toml(&text).unwrap().trunk
    }

    #[test]
    fn secrets_come_from_the_file_then_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.toml");
        std::fs::write(
            &path,
            "DIALER_TRUNK_FILE_USER = \"acme\"\nDIALER_TRUNK_FILE_PASSWORD = \"pw\"\n",
        )
        .unwrap();
        set_mode(&path, 0o600);
        let secrets = TrunkSecrets::read(&path).unwrap();
        assert_eq!(
            format!("{secrets:?}"),
            "TrunkSecrets { names: [\"DIALER_TRUNK_FILE_PASSWORD\", \"DIALER_TRUNK_FILE_USER\"] }"
        );
        let got = secrets
            .credentials(&trunk(
                "DIALER_TRUNK_FILE_USER",
                "DIALER_TRUNK_FILE_PASSWORD",
            ))
            .unwrap()
            .unwrap();
        assert_eq!(
            (got.username.as_str(), got.password.as_str()),
            ("acme", "pw")
        );
        // PATH is set in every test run: a stored spec naming it is refused like any other name.
        let mut bad = trunk("DIALER_TRUNK_FILE_USER", "DIALER_TRUNK_P");
        bad.password_env = Some("PATH".into());
        let err = secrets.credentials(&bad).unwrap_err();
        assert_eq!(err.fields()[0].field, "trunk.password_env");
        assert!(
            err.to_string().contains("`PATH` is not a trunk secret"),
            "{err}"
        );
        let unset = trunk("DIALER_TRUNK_FILE_USER", "DIALER_TRUNK_UNSET_IN_TESTS");
        let err = secrets.credentials(&unset).unwrap_err().to_string();
        assert!(
            err.contains("is set neither in the trunk secrets file"),
            "{err}"
        );
    }

    #[cfg(unix)]
    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[cfg(not(unix))]
    fn set_mode(_: &Path, _: u32) {}

    #[test]
    #[cfg(unix)]
    fn a_secrets_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets.toml");
        std::fs::write(&path, "DIALER_TRUNK_P = \"hunter2\"\n").unwrap();
        set_mode(&path, 0o644);
        let err = TrunkSecrets::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("other users may access it (mode 0644)"),
            "{err}"
        );
        set_mode(&path, 0o660);
        let err = TrunkSecrets::read(&path).unwrap_err().to_string();
        assert!(err.contains("its group may write it"), "{err}");
        set_mode(&path, 0o640);
        assert_eq!(TrunkSecrets::read(&path).unwrap().len(), 1);
        // Bad lines and names are named without the value.
        std::fs::write(&path, "DIALER_TRUNK_P = hunter2\n").unwrap();
        let err = TrunkSecrets::read(&path).unwrap_err().to_string();
        assert!(
            !err.contains("hunter2") && err.contains("near line 1"),
            "{err}"
        );
        std::fs::write(&path, "DATABASE_URL = \"hunter2\"\n").unwrap();
        let err = TrunkSecrets::read(&path).unwrap_err().to_string();
        assert!(
            !err.contains("hunter2") && err.contains("`DATABASE_URL`"),
            "{err}"
        );
    }

    #[test]
    #[cfg(unix)]
    fn files_stay_in_the_prompts_directory() {
        let root = tempfile::tempdir().unwrap();
        let prompts = root.path().join("prompts");
        std::fs::create_dir_all(prompts.join("en")).unwrap();
        std::fs::write(prompts.join("en/a.wav"), b"x").unwrap();
        std::fs::write(root.path().join("outside.wav"), b"x").unwrap();
        std::os::unix::fs::symlink(root.path().join("outside.wav"), prompts.join("link.wav"))
            .unwrap();
        std::os::unix::fs::symlink(root.path(), prompts.join("up")).unwrap();
        std::os::unix::fs::symlink(prompts.join("en/a.wav"), prompts.join("inside.wav")).unwrap();
        let ok = confined_path(&prompts, "abandon_message", "en/a.wav").unwrap();
        assert!(ok.ends_with("prompts/en/a.wav"), "{}", ok.display());
        confined_path(&prompts, "abandon_message", "inside.wav").unwrap();
        confined_path(&prompts, "abandon_message", "missing.wav").unwrap();
        for name in ["link.wav", "up/outside.wav"] {
            let err = confined_path(&prompts, "amd.message", name).unwrap_err();
            assert_eq!(err.fields()[0].field, "amd.message");
            let text = err.to_string();
            assert!(
                text.contains("leads out of the prompts directory"),
                "{text}"
            );
            assert!(!text.contains(&*root.path().to_string_lossy()), "{text}");
        }
        for name in ["/etc/passwd", "../outside.wav"] {
            let err = confined_path(&prompts, "trunk.ca_file", name).unwrap_err();
            assert_eq!(err.fields()[0].field, "trunk.ca_file");
        }
    }
}
