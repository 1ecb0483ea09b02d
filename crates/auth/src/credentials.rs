//! Finding the credentials to sign with, the way AWS tools do.
//!
//! Order (the first complete source wins):
//! 1. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`), unless a profile
//!    was asked for on the command line (as the AWS CLI, `--profile` beats the environment);
//! 2. the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, default
//!    `~/.aws/credentials`), profile from `--profile`, else `AWS_PROFILE`, else `default`;
//! 3. the config file (`AWS_CONFIG_FILE`, default `~/.aws/config`), section `[profile NAME]`
//!    (or `[default]`);
//! 4. when no profile was named at all: the default local vault's
//!    `./trailvault-data/credentials` (profile `default`), which `trailvault serve` writes.
//!
//! A source that is half-filled (a key id without its secret) is an error, not skipped: it
//! is almost always a typo the user wants to hear about.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

/// Credentials files larger than this are refused.
const CREDENTIALS_FILE_BYTES_MAX: u64 = 1024 * 1024;
/// The default local vault's credentials file, relative to the working directory.
pub const LOCAL_VAULT_CREDENTIALS: &str = "trailvault-data/credentials";

/// An access key to sign with. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    /// Where these came from, for messages ("environment variables", a file and profile).
    pub source: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("source", &self.source)
            .finish()
    }
}

#[derive(Debug, Error)]
pub enum CredentialsError {
    #[error("no credentials found{}; tried: {}", profile_note(.profile), .tried.join("; "))]
    NotFound {
        profile: Option<String>,
        tried: Vec<String>,
    },
    #[error("{source_name}: {problem}")]
    Incomplete {
        source_name: String,
        problem: String,
    },
    #[error("could not read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn profile_note(profile: &Option<String>) -> String {
    match profile {
        Some(p) => format!(" for profile {p:?}"),
        None => String::new(),
    }
}

impl Credentials {
    /// Long-term credentials from an explicit key pair.
    pub fn new(access_key_id: &str, secret_access_key: &str) -> Credentials {
        Credentials {
            access_key_id: access_key_id.to_string(),
            secret_access_key: secret_access_key.to_string(),
            session_token: None,
            source: "explicit".to_string(),
        }
    }

    /// Find credentials as described in the module docs, reading the process environment
    /// and working directory.
    pub fn discover(profile: Option<&str>) -> Result<Credentials, CredentialsError> {
        let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
        Self::discover_with(profile, &|name| std::env::var(name).ok(), &cwd)
    }

    /// [`Credentials::discover`] with the environment and working directory passed in.
    pub fn discover_with(
        profile: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
        cwd: &Path,
    ) -> Result<Credentials, CredentialsError> {
        let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
        let mut tried = Vec::new();
        let profile_arg = profile.filter(|p| !p.is_empty()).map(str::to_string);

        if profile_arg.is_none() {
            match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
                (Some(id), Some(secret)) => {
                    return Ok(Credentials {
                        access_key_id: id.trim().to_string(),
                        secret_access_key: secret.trim().to_string(),
                        session_token: var("AWS_SESSION_TOKEN").map(|t| t.trim().to_string()),
                        source: "environment variables".to_string(),
                    })
                }
                (Some(_), None) => {
                    return Err(CredentialsError::Incomplete {
                        source_name: "environment".into(),
                        problem: "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".into(),
                    })
                }
                (None, Some(_)) => {
                    return Err(CredentialsError::Incomplete {
                        source_name: "environment".into(),
                        problem: "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not".into(),
                    })
                }
                (None, None) => tried.push("environment (AWS_ACCESS_KEY_ID not set)".to_string()),
            }
        }

        let profile_named = profile_arg.clone().or_else(|| var("AWS_PROFILE"));
        let profile_name = profile_named.clone().unwrap_or_else(|| "default".into());
        let home = var("HOME")
            .or_else(|| var("USERPROFILE"))
            .map(PathBuf::from);
        let aws_file = |env_name: &str, default_name: &str| -> Option<PathBuf> {
            match var(env_name) {
                Some(p) => Some(expand_home(&p, home.as_deref())),
                None => home.as_ref().map(|h| h.join(".aws").join(default_name)),
            }
        };

        if let Some(path) = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials") {
            if let Some(c) = from_file(&path, &profile_name, false, &mut tried)? {
                return Ok(c);
            }
        } else {
            tried.push("~/.aws/credentials (no HOME)".into());
        }
        if let Some(path) = aws_file("AWS_CONFIG_FILE", "config") {
            if let Some(c) = from_file(&path, &profile_name, true, &mut tried)? {
                return Ok(c);
            }
        }
        let local = cwd.join(LOCAL_VAULT_CREDENTIALS);
        if profile_named.is_none() {
            if let Some(c) = from_file(&local, "default", false, &mut tried)? {
                return Ok(c);
            }
        } else {
            tried.push(format!(
                "{} (only used when no profile is named)",
                local.display()
            ));
        }
        Err(CredentialsError::NotFound {
            profile: profile_named,
            tried,
        })
    }

    /// Read `profile` from a shared-credentials file (as `trailvault serve` writes it).
    pub fn from_shared_file(path: &Path, profile: &str) -> Result<Credentials, CredentialsError> {
        let mut tried = Vec::new();
        match from_file(path, profile, false, &mut tried)? {
            Some(c) => Ok(c),
            None => Err(CredentialsError::NotFound {
                profile: Some(profile.to_string()),
                tried,
            }),
        }
    }
}

fn expand_home(p: &str, home: Option<&Path>) -> PathBuf {
    match (p.strip_prefix("~/"), home) {
        (Some(rest), Some(h)) => h.join(rest),
        _ => PathBuf::from(p),
    }
}

/// Credentials of `profile` in the INI file at `path`; `Ok(None)` (with a note in `tried`)
/// when the file or the profile is absent. `config_style`: sections are `[profile NAME]`.
fn from_file(
    path: &Path,
    profile: &str,
    config_style: bool,
    tried: &mut Vec<String>,
) -> Result<Option<Credentials>, CredentialsError> {
    let io = |source| CredentialsError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tried.push(format!("{} (not found)", path.display()));
            return Ok(None);
        }
        Err(e) => return Err(io(e)),
    };
    if meta.len() > CREDENTIALS_FILE_BYTES_MAX {
        return Err(CredentialsError::Incomplete {
            source_name: path.display().to_string(),
            problem: format!("larger than {CREDENTIALS_FILE_BYTES_MAX} bytes"),
        });
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    let sections = parse_ini(&text);
    let section = if config_style {
        sections.get(&format!("profile {profile}")).or_else(|| {
            (profile == "default")
                .then(|| sections.get("default"))
                .flatten()
        })
    } else {
        sections.get(profile)
    };
    let Some(section) = section else {
        tried.push(format!("{} (no profile [{profile}])", path.display()));
        return Ok(None);
    };
    let id = section.get("aws_access_key_id").filter(|v| !v.is_empty());
    let secret = section
        .get("aws_secret_access_key")
        .filter(|v| !v.is_empty());
    match (id, secret) {
        (Some(id), Some(secret)) => Ok(Some(Credentials {
            access_key_id: id.clone(),
            secret_access_key: secret.clone(),
            session_token: section
                .get("aws_session_token")
                .filter(|v| !v.is_empty())
                .cloned(),
            source: format!("{} profile [{profile}]", path.display()),
        })),
        (None, None) if config_style => {
            // A config profile often holds only region/output settings.
            tried.push(format!(
                "{} (profile [{profile}] has no keys)",
                path.display()
            ));
            Ok(None)
        }
        _ => Err(CredentialsError::Incomplete {
            source_name: format!("{} profile [{profile}]", path.display()),
            problem: "needs both aws_access_key_id and aws_secret_access_key".into(),
        }),
    }
}

/// Sections of an AWS INI file. Section names are kept as written inside `[...]`, trimmed;
/// keys are lowercased. Indented lines (nested settings such as `s3 =` blocks) are skipped.
/// Never fails: lines that are not understood are ignored, as botocore's parser does for keys.
pub(crate) fn parse_ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut sections: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if let Some(rest) = t.strip_prefix('[') {
            current = rest.find(']').map(|end| {
                let name = rest[..end].split_whitespace().collect::<Vec<_>>().join(" ");
                sections.entry(name.clone()).or_default();
                name
            });
            continue;
        }
        if let (Some(sec), Some((k, v))) = (&current, t.split_once('=')) {
            if let Some(map) = sections.get_mut(sec) {
                map.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn ini_parsing_handles_comments_nesting_and_junk() {
        let s = parse_ini(
            "\u{feff}# c\n[default]\naws_access_key_id = A\nAWS_SECRET_ACCESS_KEY=B \n\
             s3 =\n  max_concurrent_requests = 5\n[profile  dev ]\nregion=eu\n[broken\nx=y\n\
             no equals here\n",
        );
        assert_eq!(s["default"]["aws_access_key_id"], "A");
        assert_eq!(s["default"]["aws_secret_access_key"], "B");
        assert!(!s["default"].contains_key("max_concurrent_requests"));
        assert_eq!(s["profile dev"]["region"], "eu");
        assert!(!s.values().any(|m| m.contains_key("x")));
    }

    #[test]
    fn environment_wins_unless_a_profile_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("creds");
        std::fs::write(
            &creds,
            "[default]\naws_access_key_id=FILE\naws_secret_access_key=fs\n\
             [prod]\naws_access_key_id=PROD\naws_secret_access_key=ps\naws_session_token=t\n",
        )
        .unwrap();
        let c = creds.to_str().unwrap();
        let env = env_of(&[
            ("AWS_ACCESS_KEY_ID", "ENV"),
            ("AWS_SECRET_ACCESS_KEY", "es"),
            ("AWS_SHARED_CREDENTIALS_FILE", c),
        ]);
        let got = Credentials::discover_with(None, &env, dir.path()).unwrap();
        assert_eq!(got.access_key_id, "ENV");
        let got = Credentials::discover_with(Some("prod"), &env, dir.path()).unwrap();
        assert_eq!(got.access_key_id, "PROD");
        assert_eq!(got.session_token.as_deref(), Some("t"));

        let env = env_of(&[("AWS_SHARED_CREDENTIALS_FILE", c), ("AWS_PROFILE", "prod")]);
        let got = Credentials::discover_with(None, &env, dir.path()).unwrap();
        assert_eq!(got.access_key_id, "PROD");
        let env = env_of(&[("AWS_SHARED_CREDENTIALS_FILE", c)]);
        let got = Credentials::discover_with(None, &env, dir.path()).unwrap();
        assert_eq!(got.access_key_id, "FILE");
        assert!(got.source.contains("[default]"));
        assert!(!format!("{got:?}").contains("fs"));
    }

    #[test]
    fn falls_back_to_the_local_vault_and_explains_failures() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let env = env_of(&[("HOME", home.to_str().unwrap())]);
        let err = Credentials::discover_with(None, &env, dir.path()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("AWS_ACCESS_KEY_ID not set"), "{msg}");
        assert!(msg.contains(".aws/credentials (not found)"), "{msg}");
        assert!(
            msg.contains("trailvault-data/credentials (not found)"),
            "{msg}"
        );

        std::fs::create_dir_all(dir.path().join("trailvault-data")).unwrap();
        std::fs::write(
            dir.path().join(LOCAL_VAULT_CREDENTIALS),
            "[default]\naws_access_key_id=LOCAL\naws_secret_access_key=ls\n",
        )
        .unwrap();
        let got = Credentials::discover_with(None, &env, dir.path()).unwrap();
        assert_eq!(got.access_key_id, "LOCAL");
        let err = Credentials::discover_with(Some("prod"), &env, dir.path()).unwrap_err();
        assert!(err.to_string().contains("for profile \"prod\""), "{err}");
    }

    #[test]
    fn half_filled_sources_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let env = env_of(&[("AWS_ACCESS_KEY_ID", "X")]);
        let err = Credentials::discover_with(None, &env, dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("AWS_SECRET_ACCESS_KEY is not"),
            "{err}"
        );
        let f = dir.path().join("c");
        std::fs::write(&f, "[default]\naws_access_key_id=X\n").unwrap();
        let err = Credentials::from_shared_file(&f, "default").unwrap_err();
        assert!(matches!(err, CredentialsError::Incomplete { .. }), "{err}");
    }

    #[test]
    fn config_file_profiles_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("config");
        std::fs::write(
            &cfg,
            "[profile dev]\naws_access_key_id=DEV\naws_secret_access_key=ds\n[default]\nregion=x\n",
        )
        .unwrap();
        let missing = dir.path().join("missing");
        let env = env_of(&[
            ("AWS_CONFIG_FILE", cfg.to_str().unwrap()),
            ("AWS_SHARED_CREDENTIALS_FILE", missing.to_str().unwrap()),
        ]);
        let got = Credentials::discover_with(Some("dev"), &env, dir.path()).unwrap();
        assert_eq!(got.access_key_id, "DEV");
    }
}
