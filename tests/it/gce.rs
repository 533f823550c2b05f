//! The googlecompute builder against fake-gce (tests/fake-gce), the
//! project's GCE emulator: its instances are QEMU guests under TCG, so the
//! tests that boot one take the VM lock.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use crate::cloud_harness::{FakeGce, repo, text};
use crate::vm::vm_lock;

/// examples/gce-ubuntu's template and variables, with small scripts in
/// place of its apt installs, plus the second stage.
pub(crate) fn founding_template() -> tempfile::TempDir {
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

/// The lines a running kiln prints, stdout and stderr together, as they
/// come; the channel closes when both streams end.
fn output_lines(child: &mut std::process::Child) -> mpsc::Receiver<String> {
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
    rx
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
    let full = state["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|i| i["family"] == "reddit-full")
        .unwrap_or_else(|| panic!("no reddit-full image: {state}"));
    // Stage 2 (tests/fixtures/gce/app.json) carries the instance and image
    // keys of issue 14: GCE got each, in its shape.
    assert_eq!(
        full["imageEncryptionKey"],
        serde_json::json!({ "sha256": "riFsLvUkejeCwTXvonmj5M3GEJQnD10r5YxiBLemEsk=" }),
        "{state}"
    );
    assert!(
        !log.contains("AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="),
        "the raw image key leaked:\n{log}"
    );
    let request = state["instance_requests"]
        .as_array()
        .and_then(|r| r.last())
        .unwrap_or_else(|| panic!("no instance request: {state}"));
    assert_eq!(
        request["guestAccelerators"],
        serde_json::json!([{
            "acceleratorType": "projects/infra-111111/zones/europe-west1-b/acceleratorTypes/nvidia-tesla-t4",
            "acceleratorCount": 1,
        }]),
        "{state}"
    );
    assert_eq!(request["minCpuPlatform"], "Intel Skylake", "{state}");
    // wait_to_add_ssh_keys: created without the key, added by setMetadata.
    assert!(
        !request["metadataKeys"]
            .as_array()
            .expect("keys")
            .iter()
            .any(|k| k == "ssh-keys"),
        "{state}"
    );
    assert!(
        state["metadata_sets"]
            .as_array()
            .expect("sets")
            .iter()
            .any(|s| s["instance"] == request["name"]
                && s["keys"]
                    .as_array()
                    .is_some_and(|k| k.iter().any(|k| k == "ssh-keys"))),
        "{state}"
    );
    assert!(log.contains("Waiting 3s before adding SSH keys"), "{log}");
    assert_nothing_left(&gce);
}

#[test]
fn a_key_the_token_endpoint_does_not_know_fails_before_anything_is_made() {
    let gce = FakeGce::start(&["--no-base-image"]);
    let dir = founding_template();
    let out = gce
        .kiln(
            dir.path(),
            &gce.unknown_key(),
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
    let key: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(gce.unknown_key()).expect("key"))
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
    let rx = output_lines(&mut child);
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

#[test]
fn an_unknown_guest_os_feature_is_named_with_the_known_ones_at_validation() {
    let dir = founding_template();
    let path = dir.path().join("ubuntu.json");
    let mut template: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("template")).expect("JSON");
    template["builders"][0]["image_guest_os_features"] =
        serde_json::json!(["GVNIC", "UEFI_COMPATIBEL"]);
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&template).expect("JSON"),
    )
    .expect("write");
    let out = crate::support::run_in(
        dir.path(),
        &["validate", "-var-file=variables.json", "ubuntu.json"],
    );
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("image_guest_os_features: `UEFI_COMPATIBEL` is not a GCE guest OS feature; known: BARE_METAL_LINUX_COMPATIBLE, CCA_CAPABLE, GVNIC, IDPF, MULTI_IP_SUBNET, SECURE_BOOT,"),
        "{log}"
    );
    assert!(log.contains("did you mean `UEFI_COMPATIBLE`?"), "{log}");
    // At the bad item itself (serde_json writes the keys sorted).
    assert!(log.contains("ubuntu.json:19:9"), "{log}");
}

/// A template in a fresh directory, for the tests that need no guest.
fn one_builder(builder: &serde_json::Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let template = serde_json::json!({ "builders": [builder] });
    std::fs::write(dir.path().join("t.json"), template.to_string()).expect("template");
    dir
}

/// The accelerator reaches instances.insert as the zone's path, and GCE's
/// refusal of a type the zone lacks is the build's error; nothing is left.
#[test]
fn an_accelerator_type_the_zone_lacks_is_refused_by_gce_with_its_field() {
    let gce = FakeGce::start(&["--no-base-image"]);
    let dir = one_builder(&serde_json::json!({
        "type": "googlecompute",
        "project_id": "infra-111111",
        "zone": "europe-west1-b",
        "source_image_family": "ubuntu-1604-lts",
        "source_image_project_id": "ubuntu-os-cloud",
        "ssh_username": "kiln",
        "accelerator_type": "nvidia-tesla-h999",
        "accelerator_count": 1,
        "on_host_maintenance": "TERMINATE",
        "min_cpu_platform": "Intel Skylake",
    }));
    let out = gce
        .kiln(dir.path(), &gce.key(), &["t.json"])
        .output()
        .expect("kiln runs");
    let log = text(&out);
    assert!(!out.status.success(), "{log}");
    assert!(
        log.contains("resource.guestAccelerators[0].acceleratorType")
            && log.contains(
                "projects/infra-111111/zones/europe-west1-b/acceleratorTypes/nvidia-tesla-h999"
            ),
        "{log}"
    );
    assert_eq!(gce.state()["instance_requests"], serde_json::json!([]));
    assert_nothing_left(&gce);
}

/// wait_to_add_ssh_keys without a guest (the worker image boots none): the
/// instance is created without `ssh-keys`, which setMetadata adds after
/// the wait, keeping the other items; then SSH finds no server.
#[test]
fn wait_to_add_ssh_keys_adds_the_key_by_set_metadata_after_the_wait() {
    let gce = FakeGce::start(&["--no-base-image"]);
    let dir = one_builder(&serde_json::json!({
        "type": "googlecompute",
        "project_id": "infra-111111",
        "zone": "europe-west1-b",
        "source_image_family": "debian-9-worker",
        "source_image_project_id": "compute-image-tools",
        "ssh_username": "kiln",
        "ssh_timeout": "2s",
        "metadata": { "role": "test" },
        "accelerator_type": "nvidia-tesla-t4",
        "accelerator_count": 2,
        "preemptible": true,
        "wait_to_add_ssh_keys": "1s",
    }));
    let out = gce
        .kiln(dir.path(), &gce.key(), &["t.json"])
        .output()
        .expect("kiln runs");
    let log = text(&out);
    assert!(log.contains("Waiting 1s before adding SSH keys"), "{log}");
    let state = gce.state();
    let request = &state["instance_requests"][0];
    assert_eq!(
        request["metadataKeys"],
        serde_json::json!(["role"]),
        "{state}"
    );
    assert_eq!(
        request["guestAccelerators"],
        serde_json::json!([{
            "acceleratorType": "projects/infra-111111/zones/europe-west1-b/acceleratorTypes/nvidia-tesla-t4",
            "acceleratorCount": 2,
        }]),
        "{state}"
    );
    let sets = state["metadata_sets"].as_array().expect("sets");
    assert_eq!(sets.len(), 1, "{state}\n{log}");
    assert_eq!(sets[0]["instance"], request["name"], "{state}");
    let keys = sets[0]["keys"].as_array().expect("keys");
    for key in ["role", "ssh-keys"] {
        assert!(keys.iter().any(|k| k == key), "{key} not kept: {state}");
    }
    assert_nothing_left(&gce);
}

/// Ctrl-C during `wait_to_add_ssh_keys` ends the wait at once (not after
/// the hour) and the instance and its disk are deleted; no key was added.
#[test]
fn ctrl_c_during_wait_to_add_ssh_keys_ends_the_wait_and_cleans_up() {
    let gce = FakeGce::start(&["--no-base-image"]);
    let dir = one_builder(&serde_json::json!({
        "type": "googlecompute",
        "project_id": "infra-111111",
        "zone": "europe-west1-b",
        "source_image_family": "debian-9-worker",
        "source_image_project_id": "compute-image-tools",
        "ssh_username": "kiln",
        "wait_to_add_ssh_keys": "1h",
    }));
    let mut child = gce
        .kiln(dir.path(), &gce.key(), &["t.json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kiln runs");
    let rx = output_lines(&mut child);
    let bound = Duration::from_secs(300);
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(bound)
            .unwrap_or_else(|_| panic!("the wait never began:\n{}", seen.join("\n")));
        let hit = line.contains("Waiting 1h0m0s before adding SSH keys");
        seen.push(line);
        if hit {
            break;
        }
    }
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
    let state = gce.state();
    assert_eq!(state["metadata_sets"], serde_json::json!([]), "{state}");
    assert_nothing_left(&gce);
}

/// A cleanup GCE refuses (no compute.instances.delete permission) is a
/// warning per resource that says it may still exist and gives the command
/// to delete it; the build still fails for its own reason.
#[test]
fn a_refused_cleanup_names_what_may_be_left_and_how_to_delete_it() {
    let gce = FakeGce::start(&["--no-base-image", "--fail", "instances.delete=permission"]);
    let dir = one_builder(&serde_json::json!({
        "type": "googlecompute",
        "project_id": "infra-111111",
        "zone": "europe-west1-b",
        "source_image_family": "debian-9-worker",
        "source_image_project_id": "compute-image-tools",
        "ssh_username": "kiln",
        "ssh_timeout": "2s",
    }));
    let out = gce
        .kiln(dir.path(), &gce.key(), &["t.json"])
        .output()
        .expect("kiln runs");
    let log = text(&out);
    assert_eq!(out.status.code(), Some(1), "{log}");
    let instance = gce.state()["instance_requests"][0]["name"]
        .as_str()
        .expect("an instance was made")
        .to_owned();
    assert!(
        log.contains(&format!("instance {instance} may still exist"))
            && log.contains("Required 'compute.instances.delete' permission")
            && log.contains(&format!(
                "delete it by hand (gcloud compute instances delete {instance} --zone europe-west1-b)"
            )),
        "{log}"
    );
    // Its disk is still attached to it, so GCE refuses that too.
    assert!(
        log.contains("may still exist") && log.contains("gcloud compute disks delete"),
        "{log}"
    );
}
