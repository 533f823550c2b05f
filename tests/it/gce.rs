//! The googlecompute builder against fake-gce (tests/fake-gce), the
//! project's GCE emulator: its instances are QEMU guests under TCG, so the
//! tests that boot one take the VM lock.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::kiln_bin;
use crate::vm::{tiny_iso, vm_lock};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A running emulator, stopped (with its instances) when dropped.
pub(crate) struct FakeGce {
    child: Child,
    pub(crate) url: String,
    /// `host:port` of the metadata server `--host-metadata` starts.
    pub(crate) metadata_host: Option<String>,
    dir: tempfile::TempDir,
}

impl FakeGce {
    pub(crate) fn start(extra: &[&str]) -> Self {
        Self::start_with_env(extra, &[])
    }

    /// `env`: the emulator's own switches (FAKE_GCE_HOLD_CHUNK, …).
    pub(crate) fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (iso, _) = tiny_iso();
        let mut child = Command::new(repo().join(".venv/bin/python"))
            .envs(env.iter().copied())
            .arg(repo().join("tests/fake-gce/fake_gce.py"))
            .arg("--iso")
            .arg(iso)
            .arg("--write-key")
            .arg(dir.path().join("key.json"))
            .arg("--write-unknown-key")
            .arg(dir.path().join("unknown-key.json"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.path().join("fake-gce.log")).expect("log"))
            .spawn()
            .expect("fake-gce starts (is .venv made? scripts/bootstrap)");
        let stdout = child.stdout.take().expect("stdout");
        let mut url = None;
        let mut metadata_host = None;
        // The base image is built once (a tiny install, ~1 min) and cached.
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            if let Some(h) = line.strip_prefix("fake-gce: metadata server on ") {
                metadata_host = Some(h.trim().to_owned());
            }
            if let Some(u) = line.strip_prefix("fake-gce: listening on ") {
                url = Some(u.trim().to_owned());
                break;
            }
        }
        let url = url.unwrap_or_else(|| {
            panic!(
                "fake-gce did not start:\n{}",
                std::fs::read_to_string(dir.path().join("fake-gce.log")).unwrap_or_default()
            )
        });
        Self {
            child,
            url,
            metadata_host,
            dir,
        }
    }

    pub(crate) fn key(&self) -> PathBuf {
        self.dir.path().join("key.json")
    }

    pub(crate) fn state(&self) -> serde_json::Value {
        let out = Command::new(repo().join(".venv/bin/python"))
            .arg("-c")
            .arg("import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())")
            .arg(format!("{}/emulator/v1/state", self.url))
            .output()
            .expect("python");
        serde_json::from_slice(&out.stdout).expect("state JSON")
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("fake-gce.log")).unwrap_or_default()
    }

    /// `kiln build` in `dir` against this emulator, with `key` as the
    /// application default credentials.
    fn kiln(&self, dir: &Path, key: &Path, args: &[&str]) -> Command {
        let mut cmd = Command::new(kiln_bin());
        cmd.current_dir(dir)
            .env("NO_COLOR", "1")
            .env(
                "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE",
                format!("{}/compute/v1/", self.url),
            )
            .env("GOOGLE_APPLICATION_CREDENTIALS", key)
            .env("HOME", self.dir.path())
            .arg("build")
            .args(args);
        cmd
    }
}

impl Drop for FakeGce {
    fn drop(&mut self) {
        let _ = rustix::process::kill_process(
            rustix::process::Pid::from_child(&self.child),
            rustix::process::Signal::TERM,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// examples/gce-ubuntu's template and variables, with small scripts in
/// place of its apt installs, plus the second stage.
fn founding_template() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for f in ["ubuntu.json", "variables.json"] {
        std::fs::copy(
            repo().join("examples/gce-ubuntu").join(f),
            dir.path().join(f),
        )
        .expect("copy");
    }
    std::fs::create_dir(dir.path().join("script")).expect("mkdir");
    for f in ["install_ruby.sh", "install_mongodb.sh"] {
        std::fs::copy(
            repo().join("tests/fixtures/gce/script").join(f),
            dir.path().join("script").join(f),
        )
        .expect("copy");
    }
    std::fs::copy(
        repo().join("tests/fixtures/gce/app.json"),
        dir.path().join("app.json"),
    )
    .expect("copy");
    dir
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_nothing_left(gce: &FakeGce) {
    let state = gce.state();
    assert_eq!(state["instances"], serde_json::json!([]), "{state}");
    assert_eq!(state["disks"], serde_json::json!([]), "{state}");
    for pid in state["all_qemu_pids"].as_array().expect("pids") {
        let pid = pid.as_u64().expect("pid");
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "qemu {pid} of an instance still runs"
        );
    }
}

#[test]
fn vm_the_founding_template_bakes_reddit_base_then_the_app_on_top() {
    let _lock = vm_lock();
    let gce = FakeGce::start(&[]);
    let dir = founding_template();
    let out = gce
        .kiln(
            dir.path(),
            &gce.key(),
            &["-var-file=variables.json", "ubuntu.json"],
        )
        .output()
        .expect("kiln runs");
    let log = text(&out);
    assert!(
        out.status.success(),
        "stage 1 failed:\n{log}\n{}",
        gce.log()
    );
    let state = gce.state();
    let images = state["images"].as_array().expect("images");
    let base = images
        .iter()
        .find(|i| i["family"] == "reddit-base")
        .unwrap_or_else(|| panic!("no reddit-base image: {state}"));
    assert_eq!(base["project"], "infra-111111");
    let name = base["name"].as_str().expect("name");
    let stamp = name
        .strip_prefix("reddit-base-")
        .expect("reddit-base-<timestamp>");
    assert!(stamp.parse::<u64>().is_ok(), "{name}");
    assert!(log.contains(name), "{log}");
    assert_nothing_left(&gce);

    let out = gce
        .kiln(
            dir.path(),
            &gce.key(),
            &["-var=project_id=infra-111111", "app.json"],
        )
        .output()
        .expect("kiln runs");
    let log = text(&out);
    assert!(
        out.status.success(),
        "stage 2 failed:\n{log}\n{}",
        gce.log()
    );
    assert!(log.contains("mongodb: installed by stage 1"), "{log}");
    assert!(log.contains("Using source image reddit-base-"), "{log}");
    let state = gce.state();
    assert!(
        state["images"]
            .as_array()
            .expect("images")
            .iter()
            .any(|i| i["family"] == "reddit-full"),
        "{state}"
    );
    assert_nothing_left(&gce);
}

#[test]
fn a_key_the_token_endpoint_does_not_know_fails_before_anything_is_made() {
    let gce = FakeGce::start(&["--no-base-image"]);
    let dir = founding_template();
    let out = gce
        .kiln(
            dir.path(),
            &gce.dir.path().join("unknown-key.json"),
            &["-var-file=variables.json", "ubuntu.json"],
        )
        .output()
        .expect("kiln runs");
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("cannot get an access token"), "{log}");
    assert!(
        log.contains("refused the credentials of service account kiln-test-"),
        "{log}"
    );
    assert!(
        log.contains("invalid_grant (Invalid JWT Signature.)"),
        "{log}"
    );
    let key: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(gce.dir.path().join("unknown-key.json")).expect("key"),
    )
    .expect("json");
    let pem = key["private_key"].as_str().expect("pem");
    let body_line = pem.lines().nth(1).expect("a PEM body line");
    assert!(!log.contains(body_line), "the private key leaked:\n{log}");
    assert_nothing_left(&gce);
}

#[test]
fn an_unknown_source_family_says_where_it_looked() {
    let gce = FakeGce::start(&["--no-base-image"]);
    let dir = founding_template();
    let out = gce
        .kiln(
            dir.path(),
            &gce.key(),
            &[
                "-var-file=variables.json",
                "-var=source_image_family=ubuntu-9999-lts",
                "ubuntu.json",
            ],
        )
        .output()
        .expect("kiln runs");
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains(
            "image family `ubuntu-9999-lts` was not found in projects infra-111111, centos-cloud"
        ),
        "{log}"
    );
    assert!(log.contains("hint: check source_image_family"), "{log}");
    assert_nothing_left(&gce);
}

#[test]
fn a_quota_error_from_instance_creation_is_explained_and_cleaned_up() {
    let gce = FakeGce::start(&["--no-base-image", "--fail", "instances.insert=quota"]);
    let dir = founding_template();
    let out = gce
        .kiln(
            dir.path(),
            &gce.key(),
            &["-var-file=variables.json", "ubuntu.json"],
        )
        .output()
        .expect("kiln runs");
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("QUOTA_EXCEEDED: Quota 'CPUS' exceeded"),
        "{log}"
    );
    assert!(
        log.contains("hint: the project's quota is used up"),
        "{log}"
    );
    assert_nothing_left(&gce);
}

#[test]
fn vm_ctrl_c_while_the_instance_runs_leaves_no_instance_disk_or_qemu() {
    use std::sync::mpsc;
    let _lock = vm_lock();
    let gce = FakeGce::start(&[]);
    let dir = founding_template();
    // A provisioner that waits for ever: the build is interrupted in it.
    std::fs::write(
        dir.path().join("script/install_ruby.sh"),
        "#!/bin/sh\necho waiting-for-ctrl-c\nwhile :; do sleep 1; done\n",
    )
    .expect("write");
    let mut child = gce
        .kiln(
            dir.path(),
            &gce.key(),
            &["-var-file=variables.json", "ubuntu.json"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kiln runs");
    let (tx, rx) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().expect("stderr")),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let mut seen = Vec::new();
    // Generous: boot under TCG on a shared machine.
    let bound = Duration::from_secs(600);
    loop {
        let line = rx.recv_timeout(bound).unwrap_or_else(|_| {
            panic!(
                "the provisioner never ran:\n{}\n{}",
                seen.join("\n"),
                gce.log()
            )
        });
        let hit = line.contains("waiting-for-ctrl-c");
        seen.push(line);
        if hit {
            break;
        }
    }
    let state = gce.state();
    assert_eq!(
        state["instances"].as_array().map(Vec::len),
        Some(1),
        "{state}"
    );
    rustix::process::kill_process(
        rustix::process::Pid::from_child(&child),
        rustix::process::Signal::INT,
    )
    .expect("SIGINT");
    while let Ok(line) = rx.recv_timeout(bound) {
        seen.push(line);
    }
    let status = child.wait().expect("wait");
    let log = seen.join("\n");
    assert!(!status.success(), "{log}");
    assert!(log.contains("Deleting instance packer-"), "{log}");
    assert!(log.contains("Deleting disk packer-"), "{log}");
    assert_nothing_left(&gce);
    assert!(
        !gce.state()["images"]
            .as_array()
            .expect("images")
            .iter()
            .any(|i| i["family"] == "reddit-base"),
        "an interrupted build made an image"
    );
}

#[test]
fn a_token_about_to_expire_is_renewed_before_the_next_call() {
    // Tokens that live 60 s are within kiln's one-minute margin at once:
    // every compute call must fetch a new one rather than reuse it.
    let gce = FakeGce::start(&["--no-base-image", "--token-lifetime", "60"]);
    let dir = founding_template();
    let out = gce
        .kiln(
            dir.path(),
            &gce.key(),
            &[
                "-var-file=variables.json",
                "-var=source_image_family=nope",
                "ubuntu.json",
            ],
        )
        .output()
        .expect("kiln runs");
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(log.contains("image family `nope` was not found"), "{log}");
    // The connection check, the image-name check and 13 family lookups.
    let issued = gce.state()["tokens_issued"].as_u64().expect("count");
    assert!(issued >= 15, "only {issued} tokens for 15 calls:\n{log}");
}

#[test]
fn impersonating_an_account_the_key_may_not_use_fails_before_anything_is_made() {
    let gce = FakeGce::start(&["--no-base-image"]);
    let dir = founding_template();
    let path = dir.path().join("ubuntu.json");
    let mut template: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("template")).expect("JSON");
    template["builders"][0]["impersonate_service_account"] =
        "image-builder@infra-111111.iam.gserviceaccount.com".into();
    std::fs::write(&path, template.to_string()).expect("write");
    let out = gce
        .kiln(
            dir.path(),
            &gce.key(),
            &["-var-file=variables.json", "ubuntu.json"],
        )
        .env(
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_IAMCREDENTIALS",
            format!("{}/", gce.url),
        )
        .output()
        .expect("kiln runs");
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("cannot impersonate image-builder@infra-111111.iam.gserviceaccount.com"),
        "{log}"
    );
    assert!(
        log.contains("roles/iam.serviceAccountTokenCreator"),
        "{log}"
    );
    let state = gce.state();
    assert_eq!(state["callers"], serde_json::json!([]), "{state}");
    assert_nothing_left(&gce);
}
