//! The `salt-masterless` provisioner's keys, with Packer's defaults: the
//! state tree (and pillar roots) uploaded into `temp_config_dir` and moved
//! to `/srv/salt` (`/srv/pillar`) or the `remote_*` paths, then
//! `salt-call --local state.highstate` (or `state.sls custom_state`).

use std::path::PathBuf;

use super::decode::Fields;
use super::local_path::{self, Kind};

pub const DEFAULT_TEMP_CONFIG_DIR: &str = "/tmp/salt";
pub const DEFAULT_STATE_ROOT: &str = "/srv/salt";
pub const DEFAULT_PILLAR_ROOT: &str = "/srv/pillar";
pub const CONFIG_DIR: &str = "/etc/salt";

/// Salt's log levels (`salt-call -l`); anything else makes salt-call stop
/// with a usage error, so kiln says so before the build starts.
pub const LOG_LEVELS: &[&str] = &[
    "all", "garbage", "trace", "debug", "profile", "info", "warning", "error", "critical", "quiet",
];

#[derive(Debug, Clone)]
pub struct SaltMasterlessConfig {
    pub local_state_tree: PathBuf,
    pub local_pillar_roots: Option<PathBuf>,
    /// `state.sls <custom_state>` instead of `state.highstate`.
    pub custom_state: Option<String>,
    pub minion_config: Option<PathBuf>,
    pub grains_file: Option<PathBuf>,
    pub skip_bootstrap: bool,
    pub bootstrap_args: String,
    pub disable_sudo: bool,
    pub temp_config_dir: String,
    pub remote_state_tree: Option<String>,
    pub remote_pillar_roots: Option<String>,
    pub salt_call_args: String,
    pub log_level: String,
    pub no_exit_on_failure: bool,
    pub salt_bin_dir: String,
}

impl SaltMasterlessConfig {
    /// Where the state tree ends up on the guest.
    pub fn state_root(&self) -> &str {
        self.remote_state_tree
            .as_deref()
            .unwrap_or(DEFAULT_STATE_ROOT)
    }

    pub fn pillar_root(&self) -> &str {
        self.remote_pillar_roots
            .as_deref()
            .unwrap_or(DEFAULT_PILLAR_ROOT)
    }

    /// The arguments after `salt-call --local`, in Packer's order.
    pub fn salt_call_arguments(&self) -> String {
        let mut args = match &self.custom_state {
            Some(state) => format!("state.sls {state}"),
            None => "state.highstate".to_owned(),
        };
        // A minion config says where the roots are; otherwise salt-call
        // is told, as Packer does.
        if self.minion_config.is_none() {
            args.push_str(&format!(
                " --file-root={} --pillar-root={}",
                self.state_root(),
                self.pillar_root()
            ));
        }
        if !self.no_exit_on_failure {
            args.push_str(" --retcode-passthrough");
        }
        args.push_str(&format!(" -l {}", self.log_level));
        if !self.salt_call_args.is_empty() {
            args.push(' ');
            args.push_str(&self.salt_call_args);
        }
        args
    }

    /// `salt-call` in `salt_bin_dir`, or found on the PATH.
    pub fn salt_call(&self) -> String {
        if self.salt_bin_dir.is_empty() {
            "salt-call".to_owned()
        } else {
            format!("{}/salt-call", self.salt_bin_dir.trim_end_matches('/'))
        }
    }
}

pub(crate) fn decode_salt_masterless(f: &mut Fields<'_>) -> Option<SaltMasterlessConfig> {
    local_path::unix_guest_only(f);
    let local_state_tree = match f.string("local_state_tree").filter(|s| !s.is_empty()) {
        Some(tree) => Some(local_path::checked(f, "local_state_tree", &tree, Kind::Dir)),
        None => {
            f.error("local_state_tree is required").hint = Some(
                "the directory of .sls files to apply, e.g. \"local_state_tree\": \"salt\"".into(),
            );
            None
        }
    };
    let local_pillar_roots = local_path::optional(f, "local_pillar_roots", Kind::Dir);
    let custom_state = f.string("custom_state").filter(|s| !s.is_empty());
    let minion_config = local_path::optional(f, "minion_config", Kind::File);
    let grains_file = local_path::optional(f, "grains_file", Kind::File);
    let remote_state_tree = f.string("remote_state_tree").filter(|s| !s.is_empty());
    let remote_pillar_roots = f.string("remote_pillar_roots").filter(|s| !s.is_empty());
    if minion_config.is_some() && (remote_state_tree.is_some() || remote_pillar_roots.is_some()) {
        let key = if remote_state_tree.is_some() {
            "remote_state_tree"
        } else {
            "remote_pillar_roots"
        };
        let span = f.span_of(key).unwrap_or_default();
        f.error_at(
            span,
            "remote_state_tree and remote_pillar_roots only apply when minion_config is not used",
        )
        .hint = Some("set file_roots and pillar_roots in the minion config instead".into());
    }
    let formulas = f.string_list("formulas").unwrap_or_default();
    if !formulas.is_empty() {
        let span = f.span_of("formulas").unwrap_or_default();
        f.error_at(
            span,
            "formulas: fetching Salt formulas with git is not supported yet",
        )
        .hint = Some(
            "clone each formula into local_state_tree before the build and remove `formulas`"
                .into(),
        );
    }
    let log_level = if f.has("log_level") {
        f.one_of("log_level", LOG_LEVELS)
            .unwrap_or_else(|| "info".to_owned())
    } else {
        "info".to_owned()
    };
    Some(SaltMasterlessConfig {
        local_state_tree: local_state_tree?,
        local_pillar_roots,
        custom_state,
        minion_config,
        grains_file,
        skip_bootstrap: f.bool("skip_bootstrap").unwrap_or(false),
        bootstrap_args: f.string("bootstrap_args").unwrap_or_default(),
        disable_sudo: f.bool("disable_sudo").unwrap_or(false),
        temp_config_dir: f
            .string("temp_config_dir")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| DEFAULT_TEMP_CONFIG_DIR.to_owned()),
        remote_state_tree,
        remote_pillar_roots,
        salt_call_args: f.string("salt_call_args").unwrap_or_default(),
        log_level,
        no_exit_on_failure: f.bool("no_exit_on_failure").unwrap_or(false),
        salt_bin_dir: f.string("salt_bin_dir").unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> SaltMasterlessConfig {
        SaltMasterlessConfig {
            local_state_tree: PathBuf::from("salt"),
            local_pillar_roots: None,
            custom_state: None,
            minion_config: None,
            grains_file: None,
            skip_bootstrap: true,
            bootstrap_args: String::new(),
            disable_sudo: false,
            temp_config_dir: DEFAULT_TEMP_CONFIG_DIR.into(),
            remote_state_tree: None,
            remote_pillar_roots: None,
            salt_call_args: String::new(),
            log_level: "info".into(),
            no_exit_on_failure: false,
            salt_bin_dir: String::new(),
        }
    }

    #[test]
    fn highstate_with_packers_roots_and_retcode_passthrough_by_default() {
        assert_eq!(
            config().salt_call_arguments(),
            "state.highstate --file-root=/srv/salt --pillar-root=/srv/pillar --retcode-passthrough -l info"
        );
    }

    #[test]
    fn custom_state_remote_roots_and_extra_arguments_in_packers_order() {
        let mut c = config();
        c.custom_state = Some("web".into());
        c.remote_state_tree = Some("/opt/states".into());
        c.remote_pillar_roots = Some("/opt/pillar".into());
        c.no_exit_on_failure = true;
        c.log_level = "debug".into();
        c.salt_call_args = "pillar='{\"a\": 1}'".into();
        assert_eq!(
            c.salt_call_arguments(),
            "state.sls web --file-root=/opt/states --pillar-root=/opt/pillar -l debug pillar='{\"a\": 1}'"
        );
    }

    #[test]
    fn a_minion_config_leaves_the_roots_to_it() {
        let mut c = config();
        c.minion_config = Some(PathBuf::from("minion"));
        assert_eq!(
            c.salt_call_arguments(),
            "state.highstate --retcode-passthrough -l info"
        );
        c.salt_bin_dir = "/opt/salt/bin/".into();
        assert_eq!(c.salt_call(), "/opt/salt/bin/salt-call");
    }
}
