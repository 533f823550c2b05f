//! The `chef-solo`, `salt-masterless` and `breakpoint` provisioners in real
//! builds: the tiny installed image boots (TCG), the stand-ins for
//! `chef-solo` and `salt-call` (tests/fixtures/*-standin, POSIX sh: the
//! tiny guest has no Ruby or Python) are uploaded, and what the
//! provisioners put on the guest is read back over SSH.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::support::fixtures;
use crate::vm::{build_in, built_image, qemu_processes_with, sha256_of, text, vm_lock};

/// A template that boots the installed image as `vm_name` and runs
/// `provisioners` (a JSON list body) after the stand-ins are installed.
fn template(dir: &Path, image: &Path, vm_name: &str, provisioners: &str) -> PathBuf {
    let sum = sha256_of(image);
    let fx = fixtures();
    let text = format!(
        r#"{{
  "builders": [{{
    "type": "qemu", "vm_name": "{vm_name}", "disk_image": true, "use_backing_file": true,
    "iso_url": "{image}", "iso_checksum": "sha256:{sum}",
    "accelerator": "tcg", "memory": 256, "disk_size": "1G", "headless": true,
    "ssh_username": "root", "ssh_password": "kiln-tiny", "ssh_timeout": "3m",
    "shutdown_command": "poweroff"
  }}],
  "provisioners": [
    {{"type": "file", "sources": ["{fx}/chef-solo-standin/chef-solo", "{fx}/salt-call-standin/salt-call"],
      "destination": "/tmp/"}},
    {{"type": "shell", "inline": ["mkdir -p /usr/local/bin", "mv /tmp/salt-call /usr/local/bin/", "chmod 755 /usr/local/bin/salt-call /tmp/chef-solo"]}},
    {provisioners}
  ]
}}"#,
        image = image.display(),
        fx = fx.display(),
    );
    let path = dir.join("cm.json");
    std::fs::write(&path, text).expect("write template");
    path
}

fn build_with_stdin(dir: &Path, template: &Path, stdin: &[u8]) -> Output {
    let mut child = build_in(dir, &[], template)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kiln runs");
    let mut pipe = child.stdin.take().expect("stdin");
    pipe.write_all(stdin).expect("write stdin");
    // Closed, so a second read would see the end of input.
    drop(pipe);
    child.wait_with_output().expect("kiln finishes")
}

const CHEF: &str = r#"{
      "type": "chef-solo",
      "install_command": "echo installing chef {{.Version}}; cp /tmp/chef-solo /usr/bin/chef-solo",
      "version": "17.0.0",
      "chef_license": "accept-no-persist",
      "cookbook_paths": ["FIXTURES/chef/cookbooks"],
      "roles_path": "FIXTURES/chef/roles",
      "data_bags_path": "FIXTURES/chef/data_bags",
      "environments_path": "FIXTURES/chef/environments",
      "chef_environment": "staging",
      "run_list": ["kiln::default", "role[web]"],
      "json": {"kiln": {"port": 7777}},
      "prevent_sudo": true
    }"#;

const SALT: &str = r#"{
      "type": "salt-masterless",
      "local_state_tree": "FIXTURES/salt/states",
      "local_pillar_roots": "FIXTURES/salt/pillar",
      "grains_file": "FIXTURES/salt/grains",
      "skip_bootstrap": true,
      "disable_sudo": true,
      "salt_bin_dir": "/usr/local/bin"
    }"#;

fn with_fixtures(json: &str) -> String {
    json.replace("FIXTURES", &fixtures().display().to_string())
}

/// One boot: a breakpoint fed Enter through a pipe, chef-solo with its
/// cookbooks, role, environment and attributes, salt-masterless with its
/// state tree, pillar and grains, a failing salt state let through by
/// no_exit_on_failure; then the results are read back.
#[test]
fn vm_chef_solo_salt_masterless_and_a_breakpoint_provision_a_real_guest() {
    let _vm = vm_lock();
    let image = built_image();
    let dir = tempfile::tempdir().expect("tempdir");
    let broken_salt = with_fixtures(
        r#"{"type": "salt-masterless", "local_state_tree": "FIXTURES/salt/broken",
            "skip_bootstrap": true, "disable_sudo": true, "salt_bin_dir": "/usr/local/bin",
            "no_exit_on_failure": true, "temp_config_dir": "/tmp/salt-broken",
            "remote_state_tree": "/srv/broken-states"}"#,
    );
    let provisioners = format!(
        r#"{{"type": "breakpoint", "note": "before chef"}},
    {chef},
    {salt},
    {broken_salt},
    {{"type": "breakpoint", "note": "never waits", "disable": true}},
    {{"type": "shell", "inline": [
      "echo chef file: $(cat /var/lib/kiln-chef/hello)",
      "echo chef role: $(cat /var/lib/kiln-chef/web)",
      "echo salt file: $(cat /var/lib/kiln-salt/hello)",
      "echo grains: $(cat /etc/salt/grains)",
      "echo solo.rb: $(tr -s ' \t\n' ' ' < /tmp/packer-chef-solo/solo.rb)",
      "echo node.json: $(tr -d ' \n' < /tmp/packer-chef-solo/node.json)"
    ]}}"#,
        chef = with_fixtures(CHEF),
        salt = with_fixtures(SALT),
    );
    let t = template(dir.path(), image, "cm-success", &provisioners);
    let started = std::time::Instant::now();
    let out = build_with_stdin(dir.path(), &t, b"\n");
    let t = text(&out);
    eprintln!("config-management build took {:?}", started.elapsed());
    assert_eq!(out.status.code(), Some(0), "{t}");
    // The breakpoint paused with its note and the way in, then read Enter.
    assert!(
        t.contains("Pausing at breakpoint provisioner with note \"before chef\"."),
        "{t}"
    );
    assert!(t.contains("To log in: ssh -p "), "{t}");
    assert!(t.contains("root@127.0.0.1"), "{t}");
    assert!(
        !t.contains("kiln-tiny"),
        "the password is never printed: {t}"
    );
    assert!(t.contains("Press enter to continue."), "{t}");
    assert!(
        t.contains("Breakpoint provisioner with note \"never waits\" disabled; continuing..."),
        "{t}"
    );
    // chef-solo: installed by install_command, ran the run list through the role.
    assert!(t.contains("installing chef 17.0.0"), "{t}");
    assert!(
        t.contains("Chef Infra Client finished, 3/3 resources updated"),
        "{t}"
    );
    assert!(t.contains("chef file: hello from chef"), "{t}");
    assert!(t.contains("chef role: web recipe ran"), "{t}");
    for line in [
        "chef_license \"accept-no-persist\"",
        "cookbook_path [\"/tmp/packer-chef-solo/cookbooks-0\"]",
        "role_path \"/tmp/packer-chef-solo/roles\"",
        "data_bag_path \"/tmp/packer-chef-solo/data_bags\"",
        "environment_path \"/tmp/packer-chef-solo/environments\" environment \"staging\"",
    ] {
        assert!(t.contains(line), "solo.rb lacks {line}: {t}");
    }
    assert!(
        t.contains(r#"node.json: {"kiln":{"port":7777},"run_list":["kiln::default","role[web]"]}"#),
        "{t}"
    );
    // salt-masterless: highstate with the pillar's value, grains in place.
    assert!(
        t.contains("Running: salt-call --local state.highstate --file-root=/srv/salt --pillar-root=/srv/pillar --retcode-passthrough -l info"),
        "{t}"
    );
    assert!(t.contains("salt file: hello from salt"), "{t}");
    assert!(t.contains("grains: role: kiln-test"), "{t}");
    // The failing state ran, and the build went on, as no_exit_on_failure says.
    assert!(t.contains("salt is about to fail"), "{t}");
    // Without --retcode-passthrough, salt-call itself reports success.
    assert!(
        t.contains("Running: salt-call --local state.highstate --file-root=/srv/broken-states --pillar-root=/srv/pillar -l info"),
        "{t}"
    );
    assert!(qemu_processes_with("cm-success").is_empty());
}

fn assert_failed_and_cleaned(dir: &Path, out: &Output, vm_name: &str) -> String {
    let t = text(out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(!dir.join("output-qemu").exists(), "output removed: {t}");
    assert!(
        qemu_processes_with(vm_name).is_empty(),
        "the VM must be killed: {t}"
    );
    t
}

/// A failing recipe fails the build with chef-solo's status and output; a
/// failing state fails it with salt-call's (passed through); a breakpoint
/// whose stdin has ended fails rather than going on unseen.
#[test]
fn vm_a_failing_recipe_a_failing_state_and_a_breakpoint_without_input_fail_the_build() {
    let _vm = vm_lock();
    let image = built_image();

    let dir = tempfile::tempdir().expect("tempdir");
    let chef = with_fixtures(CHEF).replace(
        r#""run_list": ["kiln::default", "role[web]"]"#,
        r#""run_list": ["kiln::broken"]"#,
    );
    let t = template(dir.path(), image, "cm-chef-fails", &chef);
    let out = build_with_stdin(dir.path(), &t, b"");
    let t = assert_failed_and_cleaned(dir.path(), &out, "cm-chef-fails");
    assert!(t.contains("chef is about to fail"), "{t}");
    assert!(
        t.contains("Expected process to exit with [0], but received '3'"),
        "{t}"
    );
    assert!(t.contains("chef-solo"), "{t}");
    assert!(t.contains("failed with exit status 1"), "{t}");

    let dir = tempfile::tempdir().expect("tempdir");
    let salt = with_fixtures(SALT).replace("salt/states", "salt/broken");
    let t = template(dir.path(), image, "cm-salt-fails", &salt);
    let out = build_with_stdin(dir.path(), &t, b"");
    let t = assert_failed_and_cleaned(dir.path(), &out, "cm-salt-fails");
    assert!(t.contains("salt is about to fail"), "{t}");
    assert!(t.contains("Failed:    1"), "{t}");
    assert!(t.contains("salt-call"), "{t}");
    assert!(t.contains("failed with exit status 2"), "{t}");

    let dir = tempfile::tempdir().expect("tempdir");
    let t = template(
        dir.path(),
        image,
        "cm-breakpoint-eof",
        r#"{"type": "breakpoint", "note": "no one there"}"#,
    );
    let out = build_with_stdin(dir.path(), &t, b"");
    let t = assert_failed_and_cleaned(dir.path(), &out, "cm-breakpoint-eof");
    assert!(t.contains("the breakpoint cannot wait for Enter"), "{t}");
    assert!(
        t.contains("stdin reached its end before Enter was pressed"),
        "{t}"
    );
}
