//! The `shell`, `shell-local` and `file` provisioners and the `shell-local`
//! post-processor as a build runs them, without a VM: the template is
//! checked by the path `kiln build` takes (`kiln::check`), then its
//! provisioners run over SSH against a real OpenSSH or dropbear server on
//! 127.0.0.1 (see ssh/servers.rs), or on the host. What arrived is read
//! back byte for byte.
//!
//! Needs what the SSH tests need (root, sshd, dropbear); skipped loudly
//! without it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use kiln::artifact::Artifact;
use kiln::builder::ssh_remote::SshRemote;
use kiln::check::{HclOptions, VariableSources, check};
use kiln::config::{Build, Selection};
use kiln::postprocess::run_chains;
use kiln::provision::{self, ProvisionEnv, remote::Remote};
use kiln::template::render_env::RenderEnv;
use kiln::ui::RecordingReporter;
use tokio_util::sync::CancellationToken;

use crate::ssh::servers::{self, Kind};
use crate::ssh::{connect, key_target};

/// The build's password: a build value kiln never prints.
const PASSWORD: &str = "pw-never-printed";

/// The one build of the template `text`, written to `dir/name` and
/// checked as `kiln build` checks it.
fn build_of(dir: &Path, name: &str, text: &str) -> (Build, Arc<RenderEnv>) {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the template");
    let report = check(
        &path,
        VariableSources {
            vars: &[],
            var_files: &[],
            strict: false,
        },
        &Selection::default(),
        HclOptions::BUILD,
        dir,
    );
    assert!(!report.diags.has_errors(), "{}", report.diags.render());
    let checked = report.checked.expect("the template loads");
    let build = checked.prepared.builds.into_iter().next().expect("a build");
    let render = checked.render.for_build(build.names());
    (build, render)
}

/// What the provisioning step gives provisioners, with the build values
/// a connection to 127.0.0.1 has.
fn provision_env(render: Arc<RenderEnv>, reporter: Arc<RecordingReporter>) -> ProvisionEnv {
    ProvisionEnv {
        build: "qemu.vm".into(),
        render,
        http: None,
        build_values: [("Host", "127.0.0.1"), ("Password", PASSWORD)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ssh_private_key_file: None,
        reporter,
        cancel: CancellationToken::new(),
    }
}

/// Runs the build's provisioners in order, as the provisioning step does.
async fn provision_all(
    build: &Build,
    env: &ProvisionEnv,
    remote: Option<&dyn Remote>,
) -> Result<(), String> {
    for p in &build.provisioners {
        provision::run(p, env, remote)
            .await
            .map_err(|e| format!("{}: {}", p.path, kiln::error_chain::error_chain(&e, ": ")))?;
    }
    Ok(())
}

/// Every message the run reported, output lines included.
fn everything_said(reporter: &RecordingReporter) -> String {
    reporter
        .events()
        .iter()
        .map(|e| format!("{e:?}\n"))
        .collect()
}

/// Names and values with everything a shell could take apart: each must
/// arrive exactly. `SHARED` is also in `environment_vars`, which `env`
/// overrides; `HOST` is a build value, known only as the provisioner runs.
const ENV: &[(&str, &str)] = &[
    ("SHARED", "from env"),
    ("SPACES", "two  spaces, a\ttab "),
    ("QUOTES", r#"it's "double" and 'single'"#),
    ("EQUALS", "a=b=c"),
    ("DOLLAR", r"$HOME ${PATH} $(id -u) `id -u` \ backslash"),
    ("NEWLINE", "line one\nline two"),
    ("EMPTY", ""),
];

/// What the scripts must see: `ENV`, `ONLY_VARS` from `environment_vars`,
/// `HOST` from the build.
fn expected_env() -> BTreeMap<String, String> {
    ENV.iter()
        .chain(&[("ONLY_VARS", "kept"), ("HOST", "127.0.0.1")])
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Inline lines writing each expected variable to `out/NAME`, exactly.
fn write_each_var(out: &Path) -> Vec<String> {
    let mut lines = vec![format!("mkdir -p '{}'", out.display())];
    for name in expected_env().keys() {
        lines.push(format!(
            "printf '%s' \"${name}\" > '{}/{name}'",
            out.display()
        ));
    }
    lines
}

/// The variables `write_each_var` wrote to `out`.
fn read_vars(out: &Path) -> BTreeMap<String, String> {
    expected_env()
        .keys()
        .map(|name| {
            let value = std::fs::read_to_string(out.join(name))
                .unwrap_or_else(|e| panic!("{}/{name}: {e}", out.display()));
            (name.clone(), value)
        })
        .collect()
}

/// The `env` object of a JSON template.
fn env_json() -> serde_json::Value {
    let mut env: serde_json::Map<String, serde_json::Value> = ENV
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).into()))
        .collect();
    env.insert("HOST".into(), "{{ build `Host` }}".into());
    env.into()
}

/// A builder the provisioners hang on; it never runs.
fn qemu_builder() -> serde_json::Value {
    serde_json::json!({"type": "qemu", "name": "vm", "iso_url": "a.iso",
                       "iso_checksum": "none", "ssh_username": "root"})
}

/// `env` reaches the remote script, whole, through each way Packer passes
/// variables: `{{.Vars}}` in the default execute_command, the file
/// `use_env_var_file` sources, and a custom `env_var_format`; over OpenSSH
/// and dropbear.
#[tokio::test]
async fn shell_env_arrives_exactly_in_the_remote_script_and_overrides_environment_vars() {
    for kind in [Kind::OpenSsh, Kind::Dropbear] {
        let Some((fixture, _server)) = servers::start("shell_env", kind.options()) else {
            return;
        };
        let remote_dir = fixture.dir.path().join("remote");
        let out = |way: &str| remote_dir.join(way);
        let environment_vars = ["SHARED=from environment_vars", "ONLY_VARS=kept"];
        let template = serde_json::json!({
            "builders": [qemu_builder()],
            "provisioners": [
                {"type": "shell", "environment_vars": environment_vars, "env": env_json(),
                 "inline": write_each_var(&out("vars"))},
                {"type": "shell", "environment_vars": environment_vars, "env": env_json(),
                 "use_env_var_file": true, "inline": write_each_var(&out("env-var-file"))},
                {"type": "shell", "environment_vars": environment_vars, "env": env_json(),
                 "env_var_format": "export %s='%s'; ",
                 "execute_command": "{{.Vars}} sh -e {{.Path}}",
                 "inline": write_each_var(&out("format"))}
            ]
        });
        let work = tempfile::tempdir().expect("tmp");
        let (build, render) = build_of(work.path(), "t.json", &template.to_string());
        let reporter = Arc::new(RecordingReporter::new());
        let env = provision_env(render, reporter.clone());
        let remote = SshRemote(Arc::new(connect(&key_target(&fixture)).await));
        provision_all(&build, &env, Some(&remote))
            .await
            .unwrap_or_else(|e| panic!("{kind:?}: {e}\n{}", everything_said(&reporter)));
        for way in ["vars", "env-var-file", "format"] {
            assert_eq!(read_vars(&out(way)), expected_env(), "{kind:?}, {way}");
        }
    }
}

/// shell-local from an HCL2 template: `env` values (HCL's own `$${…}`
/// escape included) reach the local script whole and override
/// `environment_vars`.
#[tokio::test]
async fn shell_local_env_from_hcl_arrives_exactly_and_overrides_environment_vars() {
    let work = tempfile::tempdir().expect("tmp");
    let out = work.path().join("out");
    let inline: Vec<String> = write_each_var(&out).iter().map(|l| hcl_string(l)).collect();
    let template = format!(
        r#"source "qemu" "vm" {{
  iso_url      = "a.iso"
  iso_checksum = "none"
  ssh_username = "root"
}}

build {{
  sources = ["source.qemu.vm"]

  provisioner "shell-local" {{
    environment_vars = ["SHARED=from environment_vars", "ONLY_VARS=kept"]
    env = {{
{env}
      HOST = "${{build.Host}}"
    }}
    inline = [{inline}]
  }}
}}
"#,
        env = ENV
            .iter()
            .map(|(k, v)| format!("      {k} = {}\n", hcl_string(v)))
            .collect::<String>(),
        inline = inline.join(", "),
    );
    let (build, render) = build_of(work.path(), "t.pkr.hcl", &template);
    let reporter = Arc::new(RecordingReporter::new());
    let env = provision_env(render, reporter.clone());
    provision_all(&build, &env, None)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", everything_said(&reporter)));
    assert_eq!(read_vars(&out), expected_env());
}

/// `value` as an HCL string literal: `"`, `\` and the control characters
/// escaped, and `${` / `%{` written `$${` / `%%{` so HCL leaves them alone.
fn hcl_string(value: &str) -> String {
    let escaped = value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
        .replace('\t', r"\t")
        .replace("${", "$${")
        .replace("%{", "%%{");
    format!("\"{escaped}\"")
}

/// The shell-local post-processor takes `env` too, next to the artifact's
/// variables.
#[tokio::test]
async fn the_shell_local_post_processor_passes_env_on() {
    let work = tempfile::tempdir().expect("tmp");
    let seen = work.path().join("seen");
    let template = serde_json::json!({
        "builders": [qemu_builder()],
        "post-processors": [{
            "type": "shell-local",
            "environment_vars": ["SHARED=from environment_vars"],
            "env": {"SHARED": "it's $SHARED \"from env\"", "BUILD": "{{ build_name }}"},
            "inline": [format!(
                "printf '%s|%s|%s' \"$SHARED\" \"$BUILD\" \"$PACKER_ARTIFACT_BUILDER_ID\" > '{}'",
                seen.display()
            )]
        }]
    });
    let (build, render) = build_of(work.path(), "t.json", &template.to_string());
    let reporter = Arc::new(RecordingReporter::new());
    let mut ctx = crate::postprocess::context(work.path(), "run-1", reporter.clone());
    ctx.render = render;
    let disk = work.path().join("disk.qcow2");
    std::fs::write(&disk, b"disk").expect("artifact file");
    let input = Artifact::files_only("transcend.qemu", "vm", "qemu", "vm", vec![disk]);
    run_chains(&build.post_processors, input, &ctx)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{}", everything_said(&reporter)));
    assert_eq!(
        std::fs::read_to_string(&seen).expect("the script ran"),
        r#"it's $SHARED "from env"|vm|transcend.qemu"#
    );
}

/// `content` lands in the destination file, byte for byte and readable by
/// its owner alone, or as `pkr-file-content` in a destination ending in
/// `/`; from JSON and HCL2 (a heredoc), over SCP (OpenSSH and dropbear) and
/// SFTP. It is never printed, not even when its upload fails.
#[tokio::test]
async fn file_content_lands_in_the_destination_and_is_never_printed() {
    for (kind, sftp) in [
        (Kind::OpenSsh, false),
        (Kind::OpenSsh, true),
        (Kind::Dropbear, false),
    ] {
        let Some((fixture, _server)) = servers::start("file_content", kind.options()) else {
            return;
        };
        let remote_dir = fixture.dir.path().join("remote");
        std::fs::create_dir_all(remote_dir.join("into")).expect("remote dirs");
        let to_file = remote_dir.join("app.conf");
        let into = format!("{}/into/", remote_dir.display());
        let json_content = "password = {{ build `Password` }}\nquoted = \"it's\" $HOME =\n";
        let template = serde_json::json!({
            "builders": [qemu_builder()],
            "provisioners": [
                {"type": "file", "content": json_content, "destination": to_file},
                {"type": "file", "content": "into a directory", "destination": into}
            ]
        });
        let work = tempfile::tempdir().expect("tmp");
        let (build, render) = build_of(work.path(), "t.json", &template.to_string());
        let hcl_file = remote_dir.join("from-hcl.conf");
        let (hcl_build, _) = build_of(
            work.path(),
            "t.pkr.hcl",
            &format!(
                r#"source "qemu" "vm" {{
  iso_url      = "a.iso"
  iso_checksum = "none"
  ssh_username = "root"
}}

build {{
  sources = ["source.qemu.vm"]

  provisioner "file" {{
    content     = <<-EOT
      host = ${{build.Host}}
      literal = $${{NOT_HCL}}
    EOT
    destination = "{}"
  }}
}}
"#,
                hcl_file.display()
            ),
        );
        let reporter = Arc::new(RecordingReporter::new());
        let env = provision_env(render, reporter.clone());
        let mut session = connect(&key_target(&fixture)).await;
        if sftp {
            session.set_file_transfer(kiln::communicator::ssh::FileTransfer::Sftp);
        }
        let remote = SshRemote(Arc::new(session));
        let what = format!("{kind:?}, sftp {sftp}");
        for b in [&build, &hcl_build] {
            provision_all(b, &env, Some(&remote))
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}\n{}", everything_said(&reporter)));
        }
        let read =
            |path: &Path| std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            read(&to_file),
            format!("password = {PASSWORD}\nquoted = \"it's\" $HOME =\n"),
            "{what}"
        );
        assert_eq!(
            read(&remote_dir.join("into/pkr-file-content")),
            "into a directory",
            "{what}"
        );
        assert_eq!(
            read(&hcl_file),
            "host = 127.0.0.1\nliteral = ${NOT_HCL}\n",
            "{what}"
        );
        for path in [&to_file, &hcl_file] {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{what}: {}", path.display());
        }
        let said = everything_said(&reporter);
        assert!(
            said.contains(&format!("Uploading content => {}", to_file.display())),
            "{what}: {said}"
        );
        assert!(
            said.contains(&format!("Uploading content => {into}pkr-file-content")),
            "{what}: {said}"
        );
        assert!(
            !said.contains(PASSWORD) && !said.contains("quoted ="),
            "{what}: the content is never printed: {said}"
        );

        // A destination whose directory is missing fails, naming the
        // destination and not the content.
        let missing = format!("{}/no-such-dir/x.conf", remote_dir.display());
        let template = serde_json::json!({
            "builders": [qemu_builder()],
            "provisioners": [{"type": "file", "content": json_content, "destination": missing}]
        });
        let (build, _) = build_of(work.path(), "missing.json", &template.to_string());
        let e = provision_all(&build, &env, Some(&remote))
            .await
            .expect_err("no such directory");
        assert!(
            e.contains(&format!("uploading content to {missing}")),
            "{what}: {e}"
        );
        assert!(!e.contains(PASSWORD), "{what}: {e}");
    }
}
