//! The `null` builder through the real binary: with no communicator it
//! runs only host-side steps (shell-local, post-processors); with SSH it
//! provisions a machine that already exists, here a real OpenSSH server
//! on 127.0.0.1 (see ssh/servers.rs), and fails clearly when nothing
//! answers.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::ssh::servers::{self, Kind, PASSWORD};
use crate::support::{run_in, transcript};

/// A null build with no communicator: a shell-local provisioner, then
/// chains of post-processors that take its file-less artifact.
fn local_only_template(dir: &Path) -> String {
    serde_json::json!({
        "builders": [{"type": "null", "name": "local", "communicator": "none"}],
        "provisioners": [{
            "type": "shell-local",
            "inline": [
                "echo provisioned by {{build_name}}",
                format!("echo \"$PACKER_BUILD_NAME\" > '{}/provisioned'", dir.display()),
            ]
        }],
        "post-processors": [
            [{
                "type": "shell-local",
                "inline": [format!(
                    "echo \"$PACKER_ARTIFACT_BUILDER_ID|$PACKER_ARTIFACT_ID|$PACKER_ARTIFACT_FILES\" > '{}/post-processed'",
                    dir.display()
                )]
            }],
            [{"type": "manifest", "output": "manifest.json"}],
            [{"type": "checksum", "output": "sums.{{.ChecksumType}}"}],
            [{"type": "compress", "output": "empty.tar.gz"}]
        ]
    })
    .to_string()
}

#[test]
fn with_no_communicator_it_runs_host_steps_and_post_processors() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("t.json"), local_only_template(dir.path())).expect("write");
    let output = run_in(dir.path(), &["build", "t.json"]);
    let text = transcript(&output, dir.path());
    assert_eq!(output.status.code(), Some(0), "{text}");
    assert!(text.contains("provisioned by local"), "{text}");
    assert!(text.contains("Provisioning"), "{text}");
    // Packer connects only with a communicator.
    assert!(!text.contains("Waiting for SSH"), "{text}");
    assert!(
        text.contains("Did not export anything. This is the null builder"),
        "{text}"
    );
    // Nothing was made, so nothing is said to be deleted or kept.
    assert!(
        !text.contains("Deleted input artifact") && !text.contains("Keeping input artifact"),
        "{text}"
    );
    let read = |name: &str| {
        std::fs::read_to_string(dir.path().join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}\n{text}"))
    };
    assert_eq!(read("provisioned"), "local\n");
    // The artifact the post-processor saw: Packer's null artifact.
    assert_eq!(read("post-processed"), "fnoeding.null|Null|\n");
    let manifest: serde_json::Value = serde_json::from_str(&read("manifest.json")).expect("json");
    let build = &manifest["builds"][0];
    assert_eq!(build["builder_type"], "null", "{manifest}");
    assert_eq!(build["artifact_id"], "Null", "{manifest}");
    assert_eq!(build["files"], serde_json::json!([]), "{manifest}");
    // Packer's checksum writes nothing for an artifact with no files.
    assert!(!dir.path().join("sums.md5").exists(), "{text}");
    assert!(text.contains("Nothing to checksum"), "{text}");
    // And compress into an archive makes an empty one, as Packer's does.
    let listing = std::process::Command::new("tar")
        .arg("tzf")
        .arg(dir.path().join("empty.tar.gz"))
        .output()
        .expect("tar runs");
    assert!(listing.status.success(), "{text}");
    assert_eq!(String::from_utf8_lossy(&listing.stdout), "", "{text}");
}

#[test]
fn its_machine_readable_records_are_packers() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("t.json"),
        r#"{"builders": [{"type": "null", "communicator": "none"}]}"#,
    )
    .expect("write");
    let output = run_in(dir.path(), &["build", "-machine-readable", "t.json"]);
    let text = transcript(&output, dir.path());
    assert_eq!(output.status.code(), Some(0), "{text}");
    for record in [
        ",null,artifact-count,1",
        ",null,artifact,0,builder-id,fnoeding.null",
        ",null,artifact,0,id,Null",
        ",null,artifact,0,string,Did not export anything. This is the null builder",
        ",null,artifact,0,files-count,0",
    ] {
        assert!(text.contains(record), "no `{record}` in:\n{text}");
    }
}

/// Post-processors that need files fail with the cause, as Packer's do
/// (vagrant: no provider for the null builder's artifacts; compress to a
/// single file: no file to compress).
#[test]
fn post_processors_that_need_files_say_there_are_none() {
    let dir = tempfile::tempdir().expect("tempdir");
    let template = serde_json::json!({
        "builders": [{"type": "null", "communicator": "none"}],
        "post-processors": [
            [{"type": "vagrant", "provider_override": "libvirt"}],
            [{"type": "compress", "output": "out.gz"}]
        ]
    });
    std::fs::write(dir.path().join("t.json"), template.to_string()).expect("write");
    let output = run_in(dir.path(), &["build", "t.json"]);
    let text = transcript(&output, dir.path());
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("the null builder made no files, so there is nothing to put in a box"),
        "{text}"
    );
    assert!(
        text.contains("can only compress 1 file without an archive format (.tar…), found 0"),
        "{text}"
    );
}

/// From HCL2, over SSH to a real OpenSSH server, logging in with a
/// password and then with a key file: the shell provisioner runs on that
/// machine (the same host here, so its effect is a file).
#[test]
fn over_ssh_it_provisions_the_machine_at_ssh_host() {
    let Some((fixture, _server)) = servers::start("null builder over ssh", Kind::OpenSsh.options())
    else {
        return;
    };
    let logins = [
        format!("ssh_password = \"{PASSWORD}\""),
        format!(
            "ssh_private_key_file = \"{}\"",
            fixture.client_key.display()
        ),
    ];
    for login in logins {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("from-the-machine");
        let template = format!(
            r#"source "null" "existing" {{
  ssh_host     = "127.0.0.1"
  ssh_port     = {port}
  ssh_username = "root"
  {login}
  ssh_timeout  = "30s"
}}

build {{
  sources = ["source.null.existing"]

  provisioner "shell" {{
    inline = ["echo \"$(id -un) via {{{{ build `ConnType` }}}}\" > '{marker}'", "echo remote says hello"]
  }}
}}
"#,
            port = fixture.port,
            marker = marker.display(),
        );
        std::fs::write(dir.path().join("t.pkr.hcl"), template).expect("write");
        let output = run_in(dir.path(), &["build", "t.pkr.hcl"]);
        let text = transcript(&output, dir.path());
        assert_eq!(output.status.code(), Some(0), "{login}:\n{text}");
        assert!(text.contains("Waiting for SSH"), "{text}");
        assert!(text.contains("remote says hello"), "{text}");
        assert_eq!(
            std::fs::read_to_string(&marker).unwrap_or_else(|e| panic!("{e}\n{text}")),
            "root via ssh\n"
        );
        assert!(
            !text.contains(PASSWORD),
            "the password was printed:\n{text}"
        );
    }
}

/// Nothing listens at ssh_host:ssh_port: the build fails once ssh_timeout
/// has passed, saying where it tried, and runs no provisioner.
#[test]
fn a_closed_port_fails_after_ssh_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = servers::free_port();
    let template = serde_json::json!({
        "builders": [{"type": "null", "ssh_host": "127.0.0.1", "ssh_port": port,
                      "ssh_username": "root", "ssh_password": "x", "ssh_timeout": "2s"}],
        "provisioners": [{"type": "shell", "inline": ["echo never"]}]
    });
    std::fs::write(dir.path().join("t.json"), template.to_string()).expect("write");
    let started = Instant::now();
    let output = run_in(dir.path(), &["build", "t.json"]);
    let took = started.elapsed();
    let text = transcript(&output, dir.path());
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(took < Duration::from_secs(60), "took {took:?}:\n{text}");
    assert!(text.contains("no SSH connection"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("Provisioning"), "{text}");
}

/// Ctrl-C while waiting for a machine that does not answer ends the build
/// at once, not when ssh_timeout runs out.
#[test]
fn ctrl_c_interrupts_the_wait_for_ssh() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cache = tempfile::tempdir().expect("tempdir");
    let template = serde_json::json!({
        "builders": [{"type": "null", "ssh_host": "127.0.0.1", "ssh_port": servers::free_port(),
                      "ssh_username": "root", "ssh_password": "x", "ssh_timeout": "10m"}]
    });
    std::fs::write(dir.path().join("t.json"), template.to_string()).expect("write");
    let mut kiln = crate::signals::start(dir.path(), cache.path(), &["build", "t.json"]);
    kiln.wait_for("Waiting for SSH to become available");
    let signalled = Instant::now();
    kiln.signal(rustix::process::Signal::INT);
    let (code, text) = kiln.finish();
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("--> null: interrupted by SIGINT during \"Waiting for SSH\""),
        "{text}"
    );
    assert!(signalled.elapsed() < Duration::from_secs(60), "{text}");
}

/// A provisioner that runs on the machine, in a null build without one:
/// the build fails naming the provisioner and why.
#[test]
fn a_remote_provisioner_without_a_communicator_fails_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("t.json"),
        r#"{"builders": [{"type": "null", "communicator": "none"}],
            "provisioners": [{"type": "shell", "inline": ["echo never"]}]}"#,
    )
    .expect("write");
    let output = run_in(dir.path(), &["build", "t.json"]);
    let text = transcript(&output, dir.path());
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("provisioners[0] (shell) failed")
            && text.contains("this provisioner needs a communicator, but the build has \"communicator\": \"none\""),
        "{text}"
    );
}
