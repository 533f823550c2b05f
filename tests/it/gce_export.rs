//! The `googlecompute-export` post-processor against fake-gce: an exporter
//! instance from the worker image whose startup script writes the image as
//! `disk.raw` in a `.tar.gz` to each GCS path, then reports through the
//! instance's `startup-script-status` metadata. The emulator performs the
//! script's steps itself (README, the emulator's section), so only the
//! end-to-end test that builds the image boots a guest.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kiln::artifact::Artifact;

use crate::cloud_harness::{Chains, FakeGce, recording_ctx, run_post_processors, text};
use crate::postprocess::chains;

const BUCKET: &str = "kiln-exports";
const BUILDER_SA: &str = "image-builder@infra-111111.iam.gserviceaccount.com";

/// A 64 MiB raw disk with different bytes in every MiB (and holes between).
fn seed_disk(path: &Path) {
    let mut data = vec![0u8; 64 << 20];
    for (i, chunk) in data.chunks_mut(1 << 20).enumerate() {
        chunk[..16].copy_from_slice(&[i as u8 ^ 0x5a; 16]);
    }
    std::fs::write(path, data).expect("writes the seed disk");
}

/// fake-gce with the image `kiln-project/kiln-seeded` made from a seed
/// disk (returned), and `extra` switches.
fn gce_with_image(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> (FakeGce, PathBuf) {
    let disk = dir.join("seed.raw");
    seed_disk(&disk);
    let image = format!("kiln-project/kiln-seeded={}", disk.display());
    let mut args = vec!["--no-base-image", "--image", &image];
    args.extend_from_slice(extra);
    (FakeGce::start_with_env(&args, env), disk)
}

/// What the googlecompute builder hands its post-processors.
fn image_artifact() -> Artifact {
    let mut a = Artifact::files_only(
        kiln::artifact::ids::GOOGLECOMPUTE,
        "vm",
        "googlecompute",
        "kiln-seeded",
        Vec::new(),
    );
    a.state.insert("ImageName".into(), "kiln-seeded".into());
    a.state.insert("ProjectId".into(), "kiln-project".into());
    a.state.insert("BuildZone".into(), "europe-west1-b".into());
    a
}

fn export_chain(dir: &Path, key: &Path, paths: &[&str]) -> Chains {
    chains(
        dir,
        &format!(
            r#"[{{"type": "googlecompute-export", "account_file": "{}",
                 "paths": {}}}]"#,
            key.display(),
            serde_json::json!(paths)
        ),
    )
}

/// The object `bucket/name` unpacked in `into`: its `disk.raw`.
fn unpack_object(gce: &FakeGce, object: &str, into: &Path) -> PathBuf {
    let state = gce.state();
    let file = state["object_files"][object]
        .as_str()
        .unwrap_or_else(|| panic!("no object {object}: {state}"))
        .to_owned();
    let listed = Command::new("tar")
        .args(["-tzvf", &file])
        .output()
        .expect("tar");
    assert!(listed.status.success(), "not a .tar.gz: {}", text(&listed));
    let names: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
        .collect();
    assert_eq!(names, ["disk.raw"], "the tarball holds only disk.raw");
    std::fs::create_dir_all(into).expect("mkdir");
    let out = Command::new("tar")
        .args(["-xzf", &file, "-C"])
        .arg(into)
        .output()
        .expect("tar");
    assert!(out.status.success(), "{}", text(&out));
    into.join("disk.raw")
}

fn assert_same_disk(raw: &Path, other: &Path, other_format: &str) {
    let out = Command::new("qemu-img")
        .args(["compare", "-f", "raw", "-F", other_format])
        .arg(raw)
        .arg(other)
        .output()
        .expect("qemu-img compare");
    assert!(
        out.status.success(),
        "the exported disk differs: {}",
        text(&out)
    );
}

fn assert_no_instance_or_disk(gce: &FakeGce) {
    let state = gce.state();
    assert_eq!(state["instances"], serde_json::json!([]), "{state}");
    assert_eq!(state["disks"], serde_json::json!([]), "{state}");
}

#[test]
fn an_image_is_exported_to_every_path_and_the_exporter_is_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (gce, seed) = gce_with_image(dir.path(), &["--bucket", BUCKET], &[]);
    let first = format!("gs://{BUCKET}/images/seeded.tar.gz");
    let second = format!("gs://{BUCKET}/copies/seeded.tar.gz");
    let chains = export_chain(dir.path(), &gce.key(), &[&first, &second]);
    let (ctx, reporter) = recording_ctx(dir.path(), &gce.env());
    let artifacts = run_post_processors(&chains, image_artifact(), &ctx)
        .unwrap_or_else(|e| panic!("{e}\n{:#?}\n{}", reporter.events(), gce.log()));
    let last = artifacts.last().expect("an artifact");
    assert_eq!(
        last.builder_id,
        "packer.post-processor.googlecompute-export"
    );
    assert_eq!(
        last.description(),
        format!("Exported artifacts in: [{first} {second}]")
    );
    for (object, into) in [
        ("kiln-exports/images/seeded.tar.gz", "a"),
        ("kiln-exports/copies/seeded.tar.gz", "b"),
    ] {
        let raw = unpack_object(&gce, object, &dir.path().join(into));
        assert_same_disk(&raw, &seed, "raw");
    }
    assert_no_instance_or_disk(&gce);
    let state = gce.state();
    assert_eq!(state["instances_created"], 1, "{state}");
    // The image stays (see the README's differences from Packer).
    assert!(
        state["images"]
            .as_array()
            .expect("images")
            .iter()
            .any(|i| i["name"] == "kiln-seeded"),
        "{state}"
    );
    let info = format!("{:?}", reporter.events());
    assert!(
        info.contains("Creating exporter instance kiln-seeded-exporter"),
        "{info}"
    );
    assert!(
        info.contains("Deleting instance kiln-seeded-exporter"),
        "{info}"
    );
}

#[test]
fn a_missing_bucket_is_named_before_any_instance_is_made() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (gce, _) = gce_with_image(dir.path(), &["--bucket", BUCKET], &[]);
    let chains = export_chain(
        dir.path(),
        &gce.key(),
        &[
            &format!("gs://{BUCKET}/x.tar.gz"),
            "gs://kiln-missing/x.tar.gz",
        ],
    );
    let (ctx, _) = recording_ctx(dir.path(), &gce.env());
    let err = run_post_processors(&chains, image_artifact(), &ctx).expect_err("no bucket");
    assert!(
        err.contains("paths: bucket `kiln-missing` does not exist or this account cannot see it"),
        "{err}"
    );
    assert!(
        err.contains("gcloud storage buckets create gs://kiln-missing --project kiln-project"),
        "{err}"
    );
    let state = gce.state();
    assert_eq!(state["instances_created"], 0, "{state}");
    assert_eq!(state["objects"], serde_json::json!([]), "{state}");
}

#[test]
fn a_failing_export_script_is_reported_with_its_log_and_cleaned_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (gce, _) = gce_with_image(
        dir.path(),
        &["--bucket", BUCKET, "--fail", "export=script"],
        &[],
    );
    let path = format!("gs://{BUCKET}/failed.tar.gz");
    let chains = export_chain(dir.path(), &gce.key(), &[&path]);
    let (ctx, _) = recording_ctx(dir.path(), &gce.env());
    let err = run_post_processors(&chains, image_artifact(), &ctx).expect_err("script fails");
    assert!(
        err.contains("the exporter's startup script failed"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "ExportFailed: Failed to export disk source to {path}."
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("its whole log is in {path}.exporter.log")),
        "{err}"
    );
    // Nothing billed is left: the instance, its disk and the disk the
    // script made from the image all went.
    assert_no_instance_or_disk(&gce);
    let state = gce.state();
    assert_eq!(
        state["objects"],
        serde_json::json!([format!("{BUCKET}/failed.tar.gz.exporter.log")]),
        "{state}"
    );
}

#[test]
fn interrupting_the_export_deletes_the_exporter_and_the_disk_it_attached() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (gce, _) = gce_with_image(
        dir.path(),
        &["--bucket", BUCKET],
        &[("FAKE_GCE_HOLD_EXPORT", "1")],
    );
    let chains = export_chain(
        dir.path(),
        &gce.key(),
        &[&format!("gs://{BUCKET}/held.tar.gz")],
    );
    let (ctx, _) = recording_ctx(dir.path(), &gce.env());
    let cancel = ctx.cancel.clone();
    let run = std::thread::spawn(move || run_post_processors(&chains, image_artifact(), &ctx));
    // The export is under way once the script's disk exists.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let state = gce.state();
        let attached = state["disks"]
            .as_array()
            .expect("disks")
            .iter()
            .any(|d| d.as_str().is_some_and(|d| d.ends_with("-toexport")));
        if attached {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the export never started: {state}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    cancel.cancel();
    let err = run.join().expect("the run ends").expect_err("interrupted");
    assert!(err.ends_with("interrupted"), "{err}");
    assert_no_instance_or_disk(&gce);
    assert_eq!(gce.state()["objects"], serde_json::json!([]));
}

#[test]
fn only_a_gce_image_can_be_exported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let chains = export_chain(
        dir.path(),
        &dir.path().join("key.json"),
        &["gs://b/x.tar.gz"],
    );
    let (ctx, _) = recording_ctx(dir.path(), &[]);
    let input = Artifact::files_only("transcend.qemu", "vm", "qemu", "vm", Vec::new());
    let err = run_post_processors(&chains, input, &ctx).expect_err("not an image");
    assert!(
        err.contains("the input artifact is not a GCE image (it comes from transcend.qemu)"),
        "{err}"
    );
    assert!(err.contains("put it after one"), "{err}");
}

#[test]
fn validate_names_bad_and_missing_paths() {
    let dir = tempfile::tempdir().expect("tempdir");
    let template = r#"{
  "builders": [{
    "type": "googlecompute", "project_id": "p", "zone": "europe-west1-b",
    "source_image_family": "debian-12", "ssh_username": "kiln"
  }],
  "post-processors": [
    {"type": "googlecompute-export", "paths": ["s3://bucket/x.tar.gz"]},
    {"type": "googlecompute-export"}
  ]
}"#;
    std::fs::write(dir.path().join("t.json"), template).expect("write");
    let out = crate::support::run_in(dir.path(), &["validate", "t.json"]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains(
            "paths: `s3://bucket/x.tar.gz` is not a Cloud Storage object (gs://BUCKET/OBJECT)"
        ),
        "{t}"
    );
    assert!(t.contains("t.json:7:47"), "{t}");
    assert!(
        t.contains("paths is required: the GCS objects the image is exported to"),
        "{t}"
    );
    assert!(t.contains("t.json:8:6"), "{t}");
}

/// The founding template's first stage, as a builder that impersonates an
/// image-builder account and names guest OS features, followed by an
/// export of its image: one guest boot for the three.
#[test]
fn vm_kiln_build_impersonates_and_exports_its_image() {
    let _lock = crate::vm::vm_lock();
    let gce = FakeGce::start(&["--bucket", BUCKET, "--service-account", BUILDER_SA]);
    let dir = crate::gce::founding_template();
    let path = dir.path().join("ubuntu.json");
    let mut template: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("template")).expect("JSON");
    template["builders"][0]["impersonate_service_account"] = BUILDER_SA.into();
    template["builders"][0]["image_guest_os_features"] =
        serde_json::json!(["UEFI_COMPATIBLE", "GVNIC"]);
    template["post-processors"] = serde_json::json!([{
        "type": "googlecompute-export",
        "impersonate_service_account": BUILDER_SA,
        "paths": [format!("gs://{BUCKET}/reddit-base.tar.gz")]
    }]);
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
    assert!(out.status.success(), "{log}\n{}", gce.log());
    assert!(
        log.contains(&format!(
            "Using service account {BUILDER_SA}, impersonated by service account kiln-test-"
        )),
        "{log}"
    );
    let state = gce.state();
    // Only the impersonated account called compute and storage: the key's
    // own account only asked IAM Credentials for its tokens.
    assert_eq!(state["callers"], serde_json::json!([BUILDER_SA]), "{state}");
    let image = state["images"]
        .as_array()
        .expect("images")
        .iter()
        .find(|i| i["family"] == "reddit-base")
        .unwrap_or_else(|| panic!("no reddit-base image: {state}"))
        .clone();
    assert_eq!(
        image["guestOsFeatures"],
        serde_json::json!([{"type": "UEFI_COMPATIBLE"}, {"type": "GVNIC"}]),
        "{image}"
    );
    assert!(
        log.contains(&format!(
            "Exported artifacts in: [gs://{BUCKET}/reddit-base.tar.gz]"
        )),
        "{log}"
    );
    let raw = unpack_object(
        &gce,
        &format!("{BUCKET}/reddit-base.tar.gz"),
        &dir.path().join("unpacked"),
    );
    let qcow2 = PathBuf::from(image["path"].as_str().expect("image path"));
    assert_same_disk(&raw, &qcow2, "qcow2");
    assert_no_instance_or_disk(&gce);
}
