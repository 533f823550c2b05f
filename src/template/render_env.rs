//! The one render environment of a run and of each build in it: what every
//! template string may read besides the fields of the place it is used
//! (user variables, template directory, working directory, the run's
//! start, its UUID, and the build's names). Made once, shared through an
//! `Arc`; [`RenderEnv::context`] makes the `interp::Context` values, so no
//! part of kiln assembles one by hand.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use super::interp::Context;

/// The names of one build. Packer keeps two: the full name that `-only`,
/// `-except`, output lines and records use (`b.qemu.y` in HCL2, the
/// builder's rendered `name` in JSON), and `packer_build_name`, what
/// `PACKER_BUILD_NAME`, `{{build_name}}` and `{{.BuildName}}` give (in
/// HCL2 the source block's own label, `x` for `source "qemu" "x"` even
/// when a build renames it; in JSON the same as the full name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildNames {
    pub full: String,
    pub packer_build_name: String,
    pub build_type: String,
}

/// See the module header. Without a build (variable defaults, builder
/// names), `build_name` and `build_type` are not available, as in Packer.
#[derive(Debug, Clone)]
pub struct RenderEnv {
    user_vars: BTreeMap<String, String>,
    template_dir: PathBuf,
    pwd: PathBuf,
    init_time: SystemTime,
    run_uuid: String,
    build: Option<BuildNames>,
}

impl RenderEnv {
    /// The run's environment, before any build: `user_vars` are the
    /// resolved variables (empty while they are being resolved).
    pub fn new(
        user_vars: BTreeMap<String, String>,
        template_dir: PathBuf,
        pwd: PathBuf,
        init_time: SystemTime,
        run_uuid: String,
    ) -> Self {
        Self {
            user_vars,
            template_dir,
            pwd,
            init_time,
            run_uuid,
            build: None,
        }
    }

    /// The environment of one build of this run.
    pub fn for_build(&self, names: BuildNames) -> Arc<RenderEnv> {
        Arc::new(Self {
            build: Some(names),
            ..self.clone()
        })
    }

    /// A run of one build named `name` (both names) in `dir`, without
    /// variables, started now: for callers outside a template run, and tests.
    pub fn single_build(name: &str, build_type: &str, dir: &Path) -> Arc<RenderEnv> {
        Self::new(
            BTreeMap::new(),
            dir.to_owned(),
            dir.to_owned(),
            SystemTime::now(),
            "run".to_owned(),
        )
        .for_build(BuildNames {
            full: name.to_owned(),
            packer_build_name: name.to_owned(),
            build_type: build_type.to_owned(),
        })
    }

    /// A context for one place: `data` holds its fields (`.HTTPIP`,
    /// `.Provider`, …). `env` and `build` are not allowed (None); a place
    /// that allows them says so with struct-update syntax.
    pub fn context<'a>(&'a self, data: &'a BTreeMap<String, String>) -> Context<'a> {
        Context {
            user_vars: &self.user_vars,
            env: None,
            build_name: self.build.as_ref().map(|b| b.packer_build_name.as_str()),
            build_type: self.build.as_ref().map(|b| b.build_type.as_str()),
            template_dir: &self.template_dir,
            pwd: &self.pwd,
            init_time: self.init_time,
            data,
            build_values: None,
            packer_version: crate::PACKER_COMPAT_VERSION,
        }
    }

    pub fn user_vars(&self) -> &BTreeMap<String, String> {
        &self.user_vars
    }

    pub fn template_dir(&self) -> &Path {
        &self.template_dir
    }

    /// Relative paths of the template resolve against this directory, as
    /// Packer resolves them against its working directory.
    pub fn pwd(&self) -> &Path {
        &self.pwd
    }

    pub fn init_time(&self) -> SystemTime {
        self.init_time
    }

    /// Packer's run UUID: one per `kiln build`, in manifests and `{{build}}`.
    pub fn run_uuid(&self) -> &str {
        &self.run_uuid
    }

    pub fn build(&self) -> Option<&BuildNames> {
        self.build.as_ref()
    }

    /// `packer_build_name` (see [`BuildNames`]); empty outside a build.
    pub fn packer_build_name(&self) -> &str {
        self.build
            .as_ref()
            .map_or("", |b| b.packer_build_name.as_str())
    }

    /// `packer_builder_type`; empty outside a build.
    pub fn build_type(&self) -> &str {
        self.build.as_ref().map_or("", |b| b.build_type.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::interp::parse;
    use std::time::{Duration, UNIX_EPOCH};

    fn run_env() -> RenderEnv {
        RenderEnv::new(
            [("os".to_owned(), "debian".to_owned())].into(),
            PathBuf::from("/templates"),
            PathBuf::from("/work"),
            UNIX_EPOCH + Duration::from_secs(1_136_214_245),
            "run-1".into(),
        )
    }

    fn render(env: &RenderEnv, text: &str, data: &BTreeMap<String, String>) -> String {
        parse(text)
            .and_then(|t| t.render(&env.context(data)))
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn a_build_renders_its_packer_build_name_not_its_full_name() {
        let env = run_env().for_build(BuildNames {
            full: "b.qemu.y".into(),
            packer_build_name: "x".into(),
            build_type: "qemu".into(),
        });
        let data = [("HTTPIP".to_owned(), "10.0.2.2".to_owned())].into();
        assert_eq!(
            render(
                &env,
                "{{build_name}} {{build_type}} {{user `os`}} {{template_dir}} {{pwd}} {{isotime `2006`}} {{.HTTPIP}}",
                &data
            ),
            "x qemu debian /templates /work 2006 10.0.2.2"
        );
        assert_eq!(env.packer_build_name(), "x");
        assert_eq!(env.build().map(|b| b.full.as_str()), Some("b.qemu.y"));
    }

    #[test]
    fn outside_a_build_build_name_is_an_error_and_env_is_not_allowed() {
        let env = run_env();
        let none = BTreeMap::new();
        assert!(render(&env, "{{build_name}}", &none).starts_with("error:"));
        assert!(render(&env, "{{env `HOME`}}", &none).starts_with("error:"));
        assert_eq!(env.packer_build_name(), "");
    }
}
