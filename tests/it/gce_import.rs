//! The `googlecompute-import` post-processor against fake-gce's Cloud
//! Storage and compute sides: a real `kiln build` whose disk becomes a GCE
//! image, and each way the import fails or resumes. State is read from the
//! emulator's own record, not from kiln's client.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use kiln::artifact::{Artifact, Disk};
use kiln::vm::ImageFormat;

use crate::cloud_harness::{Chains, FakeGce, recording_ctx, run_post_processors};
use crate::postprocess::chains;

const CHUNK: u64 = 8 * 1024 * 1024;

fn import_chain(dir: &Path, key: &Path) -> Chains {
    import_chain_with(dir, key, "")
}

/// The import with `extra` keys (`, "key": value…`).
fn import_chain_with(dir: &Path, key: &Path, extra: &str) -> Chains {
    chains(
        dir,
        &format!(
            r#"[{{"type": "googlecompute-import", "account_file": "{}",
                 "project_id": "kiln-project", "bucket": "kiln-images",
                 "gcs_object_name": "imports/disk.tar.gz",
                 "image_name": "kiln-imported", "image_family": "kiln"{extra}}}]"#,
            key.display()
        ),
    )
}

/// `mib` MiB that gzip cannot shrink (so the upload has several chunks).
fn random_raw_disk(path: &Path, mib: usize) {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut data = Vec::with_capacity(mib << 20);
    while data.len() < mib << 20 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        data.extend_from_slice(&state.to_le_bytes());
    }
    std::fs::write(path, data).expect("writes the disk");
}

fn raw_artifact(path: &Path) -> Artifact {
    let mut a = Artifact::files_only("transcend.qemu", "vm", "qemu", "vm", vec![path.to_owned()]);
    a.disks = vec![Disk {
        path: path.to_owned(),
        format: ImageFormat::Raw,
        virtual_size: None,
    }];
    a
}

fn gcs_requests(gce: &FakeGce) -> Vec<serde_json::Value> {
    gce.state()["gcs_requests"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The emulator's image file equals `disk` (zeros past its end).
fn assert_image_holds(image: &serde_json::Value, disk: &Path) {
    let path = image["path"].as_str().expect("image path");
    let out = Command::new("qemu-img")
        .args(["compare", "-f", "raw", "-F", "qcow2"])
        .arg(disk)
        .arg(path)
        .output()
        .expect("qemu-img compare");
    assert!(
        out.status.success(),
        "the image differs from the disk: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// `kiln build` end to end: a one-sector guest under TCG that powers off,
/// its qcow2 converted, packed as disk.raw, uploaded to the emulator's GCS
/// and imported with images.insert's rawDisk.
#[test]
fn vm_kiln_build_imports_its_disk_as_a_gce_image() {
    let _vm = crate::vm::vm_lock();
    let gce = FakeGce::start(&["--no-base-image", "--bucket", "kiln-images"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let boot = dir.path().join("boot.raw");
    crate::amazon_import::power_button_boot_disk(&boot);
    let template = serde_json::json!({
        "builders": [{
            "type": "qemu", "vm_name": "boot", "disk_image": true,
            "iso_url": "boot.raw", "iso_checksum": "none", "disk_size": "8M",
            "accelerator": "tcg", "memory": 64, "headless": true,
            "communicator": "none", "shutdown_timeout": "2m"
        }],
        "post-processors": [{
            "type": "googlecompute-import", "account_file": gce.key(),
            "project_id": "kiln-project", "bucket": "kiln-images",
            "image_name": "kiln-boot-{{timestamp}}", "image_family": "kiln-boot",
            "image_labels": {"built": "kiln"}, "image_guest_os_features": ["MULTI_IP_SUBNET"]
        }]
    });
    std::fs::write(dir.path().join("t.json"), template.to_string()).expect("template");
    let mut cmd = crate::vm::build_in(dir.path(), &[], Path::new("t.json"));
    for (k, v) in gce.env() {
        cmd.env(k, v);
    }
    cmd.env("HOME", dir.path()).env("NO_COLOR", "1");
    let out = cmd.output().expect("kiln runs");
    let text = crate::vm::text(&out);
    assert!(out.status.success(), "{text}\n{}", gce.log());
    let state = gce.state();
    let image = state["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|i| i["project"] == "kiln-project")
        .unwrap_or_else(|| panic!("no imported image: {state}"))
        .clone();
    let name = image["name"].as_str().expect("name");
    assert!(name.starts_with("kiln-boot-"), "{image}");
    assert_eq!(image["family"], "kiln-boot");
    assert_eq!(image["labels"]["built"], "kiln");
    assert_eq!(
        image["guestOsFeatures"],
        serde_json::json!([{"type": "MULTI_IP_SUBNET"}])
    );
    assert!(
        text.contains(&format!(
            "A disk image was created in the kiln-project project: {name}"
        )),
        "{text}"
    );
    assert_image_holds(&image, &boot);
    // The object went after the import (no skip_clean), and nothing of
    // the packing is left beside the build's disk.
    assert_eq!(state["objects"], serde_json::json!([]), "{state}");
    let left: Vec<String> = walk(dir.path())
        .into_iter()
        .filter(|n| n.contains(".gce.tar.gz") || n.contains(".import.raw"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let key = std::fs::read_to_string(gce.key()).expect("key");
    let private: serde_json::Value = serde_json::from_str(&key).expect("key JSON");
    let pem = private["private_key"].as_str().expect("pem");
    assert!(!text.contains(&pem[40..80]), "the private key was printed");
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out
}

#[test]
fn a_missing_bucket_is_named_before_anything_is_packed() {
    let gce = FakeGce::start(&["--no-base-image"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.raw");
    random_raw_disk(&disk, 1);
    let chains = import_chain(dir.path(), &gce.key());
    let (ctx, _) = recording_ctx(dir.path(), &gce.env());
    let err = run_post_processors(&chains, raw_artifact(&disk), &ctx).expect_err("no bucket");
    assert!(
        err.contains("bucket: `kiln-images` does not exist or this account cannot see it"),
        "{err}"
    );
    assert!(
        err.contains("The specified bucket does not exist."),
        "{err}"
    );
    assert!(
        err.contains("gcloud storage buckets create gs://kiln-images --project kiln-project"),
        "{err}"
    );
    assert_eq!(gcs_requests(&gce), Vec::<serde_json::Value>::new());
    assert!(
        !dir.path().join("disk.raw.gce.tar.gz").exists(),
        "nothing is packed for a bucket that is not there"
    );
    assert!(disk.exists(), "a failed step keeps its input");
}

#[test]
fn a_key_google_does_not_know_is_refused_before_any_upload() {
    let gce = FakeGce::start(&["--no-base-image", "--bucket", "kiln-images"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.raw");
    random_raw_disk(&disk, 1);
    let unknown = gce.unknown_key();
    let chains = import_chain(dir.path(), &unknown);
    let (ctx, reporter) = recording_ctx(dir.path(), &gce.env());
    let err = run_post_processors(&chains, raw_artifact(&disk), &ctx).expect_err("bad key");
    assert!(
        err.contains("Google refused the credentials (service account kiln-test-"),
        "{err}"
    );
    assert!(
        err.contains("invalid_grant (Invalid JWT Signature.)"),
        "{err}"
    );
    assert_eq!(gcs_requests(&gce), Vec::<serde_json::Value>::new());
    let key: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&unknown).expect("key")).expect("JSON");
    let pem = key["private_key"].as_str().expect("pem");
    let seen = format!("{err}{:?}", reporter.events());
    assert!(!seen.contains(&pem[40..80]), "the private key was shown");
}

#[test]
fn an_interrupted_upload_resumes_where_gcs_stopped() {
    // 20 MiB that gzip cannot shrink: three 8 MiB chunks; the first
    // attempt at the second is read and never answered.
    let gce = FakeGce::start_with_env(
        &["--no-base-image", "--bucket", "kiln-images"],
        &[("FAKE_GCE_HOLD_CHUNK", "2")],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.raw");
    random_raw_disk(&disk, 20);
    // The input goes after a successful import: keep what to compare with.
    let expected = dir.path().join("expected.raw");
    std::fs::copy(&disk, &expected).expect("copy");
    let chains = import_chain(dir.path(), &gce.key());

    let (ctx, _) = recording_ctx(dir.path(), &gce.env());
    let cancel = ctx.cancel.clone();
    let first = {
        let chains = chains.clone();
        let artifact = raw_artifact(&disk);
        std::thread::spawn(move || run_post_processors(&chains, artifact, &ctx))
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !gcs_requests(&gce).iter().any(|r| r["held"] == true) {
        assert!(
            Instant::now() < deadline,
            "no held chunk within 120 s: {:#?}",
            gcs_requests(&gce)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    cancel.cancel();
    let err = first
        .join()
        .expect("first run ends")
        .expect_err("the interrupted run fails");
    assert!(err.ends_with("interrupted"), "{err}");
    let packed = dir.path().join("disk.raw.gce.tar.gz");
    let state_file = dir.path().join("disk.raw.gce.tar.gz.gcs-upload.json");
    assert!(state_file.exists(), "the session is kept for the rerun");
    assert!(packed.exists(), "the packed disk is kept for the rerun");
    assert!(disk.exists(), "the input is kept after a failure");
    let total = std::fs::metadata(&packed).expect("packed").len();
    assert!(total > 2 * CHUNK, "three chunks: {total}");

    let (ctx, reporter) = recording_ctx(dir.path(), &gce.env());
    run_post_processors(&chains, raw_artifact(&disk), &ctx)
        .unwrap_or_else(|e| panic!("{e}\n{:#?}\n{}", reporter.events(), gce.log()));
    let requests = gcs_requests(&gce);
    let puts = |range: String| {
        requests
            .iter()
            .filter(|r| r["method"] == "PUT" && r["range"] == range.as_str())
            .count()
    };
    let chunk = |i: u64| {
        let end = ((i + 1) * CHUNK).min(total) - 1;
        format!("bytes {}-{end}/{total}", i * CHUNK)
    };
    assert_eq!(puts(chunk(0)), 1, "chunk 1 was sent once: {requests:#?}");
    assert_eq!(
        puts(chunk(1)),
        2,
        "chunk 2: the held attempt and the resent one"
    );
    assert_eq!(puts(chunk(2)), 1, "chunk 3 was sent once");
    assert_eq!(puts(format!("bytes */{total}")), 1, "one status query");
    let starts = requests.iter().filter(|r| r["upload"] == "start").count();
    assert_eq!(starts, 1, "the rerun used the first session");
    let info = format!("{:?}", reporter.events());
    assert!(
        info.contains(&format!(
            "Resumed the upload: GCS already had {CHUNK} of {total} bytes"
        )),
        "{info}"
    );
    assert!(!state_file.exists() && !packed.exists());
    let state = gce.state();
    let image = state["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|i| i["name"] == "kiln-imported")
        .unwrap_or_else(|| panic!("no image: {state}"))
        .clone();
    assert_eq!(image["family"], "kiln");
    assert_image_holds(&image, &expected);
    assert_eq!(state["objects"], serde_json::json!([]));
}

#[test]
fn validate_names_the_missing_keys_and_a_misspelt_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let template = r#"{
  "builders": [{"type": "qemu", "iso_url": "a.iso", "iso_checksum": "none", "communicator": "none"}],
  "post-processors": [{
    "type": "googlecompute-import",
    "project_id": "kiln-project",
    "image_nmae": "x"
  }]
}"#;
    std::fs::write(dir.path().join("t.json"), template).expect("write");
    let out = crate::support::run_in(dir.path(), &["validate", "t.json"]);
    let t = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("bucket is required"), "{t}");
    assert!(t.contains("image_name is required"), "{t}");
    assert!(t.contains("t.json:6:5"), "{t}");
    assert!(t.contains("image_nmae"), "{t}");
}

const BUILDER_SA: &str = "image-builder@kiln-project.iam.gserviceaccount.com";

#[test]
fn impersonate_service_account_makes_every_call_as_that_account() {
    let gce = FakeGce::start(&[
        "--no-base-image",
        "--bucket",
        "kiln-images",
        "--service-account",
        BUILDER_SA,
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.raw");
    random_raw_disk(&disk, 1);
    let chains = import_chain_with(
        dir.path(),
        &gce.key(),
        &format!(r#", "impersonate_service_account": "{BUILDER_SA}""#),
    );
    let (ctx, reporter) = recording_ctx(dir.path(), &gce.env());
    run_post_processors(&chains, raw_artifact(&disk), &ctx)
        .unwrap_or_else(|e| panic!("{e}\n{:#?}\n{}", reporter.events(), gce.log()));
    let state = gce.state();
    // The key's own account only asked IAM for the token: every compute
    // and storage call carried the impersonated account's token.
    assert_eq!(state["callers"], serde_json::json!([BUILDER_SA]), "{state}");
    assert!(
        state["images"]
            .as_array()
            .expect("images")
            .iter()
            .any(|i| i["name"] == "kiln-imported"),
        "{state}"
    );
    let info = format!("{:?}", reporter.events());
    assert!(
        info.contains(&format!(
            "Using service account {BUILDER_SA}, impersonated by service account kiln-test-"
        )),
        "{info}"
    );
}

#[test]
fn impersonating_an_account_without_permission_says_which_role_is_missing() {
    let gce = FakeGce::start(&["--no-base-image", "--bucket", "kiln-images"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.raw");
    random_raw_disk(&disk, 1);
    let chains = import_chain_with(
        dir.path(),
        &gce.key(),
        &format!(r#", "impersonate_service_account": "{BUILDER_SA}""#),
    );
    let (ctx, _) = recording_ctx(dir.path(), &gce.env());
    let err = run_post_processors(&chains, raw_artifact(&disk), &ctx).expect_err("refused");
    assert!(
        err.contains(&format!("cannot impersonate {BUILDER_SA}")),
        "{err}"
    );
    assert!(
        err.contains("roles/iam.serviceAccountTokenCreator"),
        "{err}"
    );
    assert!(
        err.contains("Permission 'iam.serviceAccounts.getAccessToken' denied"),
        "{err}"
    );
    assert_eq!(gcs_requests(&gce), Vec::<serde_json::Value>::new());
    assert_eq!(gce.state()["callers"], serde_json::json!([]));
}

#[test]
fn on_gce_the_metadata_server_gives_the_instance_accounts_token() {
    const INSTANCE_SA: &str = "builder-vm@kiln-project.iam.gserviceaccount.com";
    let gce = FakeGce::start(&[
        "--no-base-image",
        "--bucket",
        "kiln-images",
        "--host-metadata",
        INSTANCE_SA,
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.raw");
    random_raw_disk(&disk, 1);
    // No credential keys and no ADC file (HOME is the empty temp dir).
    let chains = chains(
        dir.path(),
        r#"[{"type": "googlecompute-import", "project_id": "kiln-project",
             "bucket": "kiln-images", "image_name": "kiln-from-vm"}]"#,
    );
    let mut env = gce.env();
    env.push((
        "GCE_METADATA_HOST",
        gce.metadata_host.clone().expect("metadata host"),
    ));
    let (ctx, reporter) = recording_ctx(dir.path(), &env);
    run_post_processors(&chains, raw_artifact(&disk), &ctx)
        .unwrap_or_else(|e| panic!("{e}\n{:#?}\n{}", reporter.events(), gce.log()));
    let state = gce.state();
    assert_eq!(
        state["callers"],
        serde_json::json!([INSTANCE_SA]),
        "{state}"
    );
    let info = format!("{:?}", reporter.events());
    assert!(
        info.contains("Using the instance's service account (metadata server 127.0.0.1:"),
        "{info}"
    );
}
