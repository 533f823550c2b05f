//! Where AWS credentials and the region come from, in the order the AWS
//! SDKs (and so Packer) look: the template's keys, the environment, then a
//! profile of the shared credentials and config files. Secrets are kept in
//! a type whose Debug and Display never show them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A secret string: shown as `<sensitive>` by Debug, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The secret itself, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<sensitive>")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

/// What the template says (Packer's `access_key`, `secret_key`, `token`,
/// `profile`, `region`).
#[derive(Debug, Clone, Default)]
pub struct TemplateAccess {
    pub access_key: Option<String>,
    pub secret_key: Option<String>,
    pub token: Option<String>,
    pub profile: Option<String>,
    pub region: Option<String>,
}

/// Where the credentials were found, for the log (never the values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    Template,
    Environment,
    Profile { name: String, file: PathBuf },
}

impl std::fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Template => f.write_str("the template's access_key and secret_key"),
            Self::Environment => f.write_str("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
            Self::Profile { name, file } => write!(f, "profile `{name}` in {}", file.display()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ResolvedAccess {
    pub credentials: Credentials,
    pub source: CredentialSource,
    pub region: String,
}

#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{set} is set but {missing} is not: set both, or neither")]
    Half {
        set: &'static str,
        missing: &'static str,
    },
    #[error(
        "profile `{profile}` is in neither {} nor {}",
        credentials_file.display(),
        config_file.display()
    )]
    UnknownProfile {
        profile: String,
        credentials_file: PathBuf,
        config_file: PathBuf,
    },
    #[error("profile `{profile}` in {} has no aws_access_key_id and aws_secret_access_key", file.display())]
    IncompleteProfile { profile: String, file: PathBuf },
    #[error(
        "no AWS credentials: set access_key and secret_key, or AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY, or a profile in {} (AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE)",
        credentials_file.display()
    )]
    None { credentials_file: PathBuf },
    #[error(
        "no AWS region: set region in the template, AWS_REGION or AWS_DEFAULT_REGION, or \
         region in the profile's section of {}",
        config_file.display()
    )]
    NoRegion { config_file: PathBuf },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Finds credentials and region. `env` looks up environment variables
/// (the caller passes `std::env::var`; tests pass a map).
pub fn resolve(
    template: &TemplateAccess,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ResolvedAccess, CredentialsError> {
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    let home = env("HOME").map(PathBuf::from).unwrap_or_default();
    let credentials_file = env("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/credentials"));
    let config_file = env("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".aws/config"));
    let explicit_profile = template.profile.clone().or_else(|| env("AWS_PROFILE"));
    let profile_name = explicit_profile.clone().unwrap_or_else(|| "default".into());
    let credentials_ini = read_ini(&credentials_file)?;
    let config_ini = read_ini(&config_file)?;
    let from_credentials = credentials_ini.get(&profile_name);
    let config_section = if profile_name == "default" {
        "default".to_owned()
    } else {
        format!("profile {profile_name}")
    };
    let from_config = config_ini.get(&config_section);
    if explicit_profile.is_some() && from_credentials.is_none() && from_config.is_none() {
        return Err(CredentialsError::UnknownProfile {
            profile: profile_name,
            credentials_file,
            config_file,
        });
    }

    let pair = |key: Option<String>, secret: Option<String>, token: Option<String>| {
        key.zip(secret).map(|(k, s)| Credentials {
            access_key_id: k,
            secret_access_key: Secret(s),
            session_token: token.filter(|t| !t.is_empty()).map(Secret),
        })
    };
    let template_key = template.access_key.clone().filter(|s| !s.is_empty());
    let template_secret = template.secret_key.clone().filter(|s| !s.is_empty());
    let env_key = env("AWS_ACCESS_KEY_ID");
    let env_secret = env("AWS_SECRET_ACCESS_KEY");
    let found = if template_key.is_some() || template_secret.is_some() {
        let c = pair(
            template_key.clone(),
            template_secret.clone(),
            template.token.clone(),
        )
        .ok_or(if template_key.is_some() {
            CredentialsError::Half {
                set: "access_key",
                missing: "secret_key",
            }
        } else {
            CredentialsError::Half {
                set: "secret_key",
                missing: "access_key",
            }
        })?;
        (c, CredentialSource::Template)
    } else if explicit_profile.is_none() && (env_key.is_some() || env_secret.is_some()) {
        let c = pair(env_key.clone(), env_secret, env("AWS_SESSION_TOKEN")).ok_or(
            if env_key.is_some() {
                CredentialsError::Half {
                    set: "AWS_ACCESS_KEY_ID",
                    missing: "AWS_SECRET_ACCESS_KEY",
                }
            } else {
                CredentialsError::Half {
                    set: "AWS_SECRET_ACCESS_KEY",
                    missing: "AWS_ACCESS_KEY_ID",
                }
            },
        )?;
        (c, CredentialSource::Environment)
    } else {
        // The credentials file wins over the config file for the keys.
        let (section, file) = match (from_credentials, from_config) {
            (Some(s), _) if s.contains_key("aws_access_key_id") => (s, &credentials_file),
            (_, Some(s)) => (s, &config_file),
            (Some(s), None) => (s, &credentials_file),
            (None, None) => return Err(CredentialsError::None { credentials_file }),
        };
        let c = pair(
            section.get("aws_access_key_id").cloned(),
            section.get("aws_secret_access_key").cloned(),
            section.get("aws_session_token").cloned(),
        )
        .ok_or_else(|| CredentialsError::IncompleteProfile {
            profile: profile_name.clone(),
            file: file.clone(),
        })?;
        let source = CredentialSource::Profile {
            name: profile_name.clone(),
            file: file.clone(),
        };
        (c, source)
    };
    let region = template
        .region
        .clone()
        .filter(|r| !r.is_empty())
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .or_else(|| from_config.and_then(|s| s.get("region").cloned()))
        .ok_or(CredentialsError::NoRegion { config_file })?;
    Ok(ResolvedAccess {
        credentials: found.0,
        source: found.1,
        region,
    })
}

type Ini = BTreeMap<String, BTreeMap<String, String>>;

/// The sections of an AWS shared file; a missing file is empty.
fn read_ini(path: &Path) -> Result<Ini, CredentialsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse_ini(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ini::new()),
        Err(source) => Err(CredentialsError::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// The AWS shared-file dialect: `[section]`, `key = value`, `#`/`;`
/// comments; nested (indented) sub-keys are skipped.
fn parse_ini(text: &str) -> Ini {
    let mut out = Ini::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            out.entry(name.clone()).or_default();
            current = Some(name);
        } else if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn files(dir: &Path) -> (String, String) {
        std::fs::write(
            dir.join("credentials"),
            "[default]\naws_access_key_id = AKDEFAULT\naws_secret_access_key = sdefault\n\
             [work]\naws_access_key_id=AKWORK\naws_secret_access_key=swork\naws_session_token=twork\n",
        )
        .expect("write");
        std::fs::write(
            dir.join("config"),
            "[default]\nregion = eu-west-1\n[profile work]\nregion = ap-south-1\n\
             [profile cfgonly]\nregion = us-west-2\naws_access_key_id = AKCFG\n\
             aws_secret_access_key = scfg\n[work]\nregion = wrong-section\n",
        )
        .expect("write");
        (
            dir.join("credentials").display().to_string(),
            dir.join("config").display().to_string(),
        )
    }

    #[test]
    fn template_then_environment_then_profile() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (c, k) = files(dir.path());
        let base = vec![
            ("AWS_SHARED_CREDENTIALS_FILE", c),
            ("AWS_CONFIG_FILE", k),
            ("HOME", "/nonexistent".to_owned()),
        ];
        let got = resolve(&TemplateAccess::default(), &env_of(&base)).expect("default profile");
        assert_eq!(got.credentials.access_key_id, "AKDEFAULT");
        assert_eq!(got.region, "eu-west-1");

        let mut with_env = base.clone();
        with_env.push(("AWS_ACCESS_KEY_ID", "AKENV".into()));
        with_env.push(("AWS_SECRET_ACCESS_KEY", "senv".into()));
        with_env.push(("AWS_REGION", "us-east-2".into()));
        let got = resolve(&TemplateAccess::default(), &env_of(&with_env)).expect("env");
        assert_eq!(got.credentials.access_key_id, "AKENV");
        assert_eq!(got.source, CredentialSource::Environment);
        assert_eq!(got.region, "us-east-2");

        let template = TemplateAccess {
            access_key: Some("AKTPL".into()),
            secret_key: Some("stpl".into()),
            region: Some("sa-east-1".into()),
            ..Default::default()
        };
        let got = resolve(&template, &env_of(&with_env)).expect("template");
        assert_eq!(got.credentials.access_key_id, "AKTPL");
        assert_eq!(got.region, "sa-east-1");
    }

    #[test]
    fn profiles_use_profile_prefix_only_in_the_config_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (c, k) = files(dir.path());
        let mut env = vec![("AWS_SHARED_CREDENTIALS_FILE", c), ("AWS_CONFIG_FILE", k)];
        env.push(("AWS_PROFILE", "work".into()));
        let got = resolve(&TemplateAccess::default(), &env_of(&env)).expect("work");
        assert_eq!(got.credentials.access_key_id, "AKWORK");
        assert_eq!(
            got.credentials.session_token.as_ref().map(Secret::expose),
            Some("twork")
        );
        assert_eq!(got.region, "ap-south-1");

        let template = TemplateAccess {
            profile: Some("cfgonly".into()),
            ..Default::default()
        };
        let got = resolve(&template, &env_of(&env)).expect("keys in the config file");
        assert_eq!(got.credentials.access_key_id, "AKCFG");
        assert_eq!(got.region, "us-west-2");

        let template = TemplateAccess {
            profile: Some("nobody".into()),
            ..Default::default()
        };
        let err = resolve(&template, &env_of(&env)).expect_err("unknown profile");
        assert!(
            err.to_string()
                .starts_with("profile `nobody` is in neither"),
            "{err}"
        );
    }

    #[test]
    fn half_a_key_pair_and_nothing_at_all_are_errors() {
        let env = [
            ("AWS_ACCESS_KEY_ID", "AKENV".to_owned()),
            ("HOME", "/nonexistent".to_owned()),
        ];
        let err = resolve(&TemplateAccess::default(), &env_of(&env)).expect_err("half");
        assert_eq!(
            err.to_string(),
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not: set both, or neither"
        );
        let err = resolve(
            &TemplateAccess::default(),
            &env_of(&[("HOME", "/nonexistent".to_owned())]),
        )
        .expect_err("none");
        assert!(err.to_string().starts_with("no AWS credentials"), "{err}");
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let c = Credentials {
            access_key_id: "AK".into(),
            secret_access_key: Secret::new("very-secret"),
            session_token: Some(Secret::new("token-secret")),
        };
        let text = format!("{c:?}");
        assert!(
            !text.contains("very-secret") && !text.contains("token-secret"),
            "{text}"
        );
    }
}
