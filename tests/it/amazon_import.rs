//! The `amazon-import` post-processor against moto in server mode
//! (`tests/fake-aws/server.py`, which adds the VM Import calls moto lacks):
//! upload, import, naming, tags and sharing, and each way it fails.
//! State is checked with boto3 (`inspect_state.py`), not with kiln's client.

use std::path::Path;
use std::process::Command;

use kiln::artifact::{Artifact, Disk};
use kiln::vm::ImageFormat;

use crate::cloud_harness::{Chains, Scope, recording_ctx, run_post_processors};
use crate::postprocess::chains;

/// A raw disk of `mib` MiB whose first sector ends with the MBR boot
/// signature (what VM Import checks first) unless `bootable` is false.
fn raw_disk(path: &Path, mib: usize, bootable: bool) {
    let mut data = vec![0u8; mib * 1024 * 1024];
    // Different bytes in every part, so a part sent twice is noticed.
    for (i, chunk) in data.chunks_mut(4096).enumerate() {
        chunk[..8].copy_from_slice(&(i as u64).to_le_bytes());
    }
    if bootable {
        data[510] = 0x55;
        data[511] = 0xaa;
    }
    std::fs::write(path, data).expect("writes the disk");
}

fn disk_artifact(path: &Path, format: ImageFormat) -> Artifact {
    let mut a = Artifact::files_only("transcend.qemu", "vm", "qemu", "vm", vec![path.to_owned()]);
    a.disks = vec![Disk {
        path: path.to_owned(),
        format,
        virtual_size: None,
    }];
    a
}

fn import_chain(dir: &Path, bucket: &str, extra: &str) -> Chains {
    chains(
        dir,
        &format!(
            r#"[{{"type": "amazon-import", "s3_bucket_name": "{bucket}",
                 "s3_key_name": "imports/disk.raw", "format": "raw"{extra}}}]"#
        ),
    )
}

#[test]
fn a_qcow2_disk_becomes_a_named_tagged_shared_ami() {
    let aws = Scope::new("us-east-1", "kiln-ami-named");
    aws.make_bucket();
    let dir = tempfile::tempdir().expect("tempdir");
    let raw = dir.path().join("seed.raw");
    raw_disk(&raw, 3, true);
    let qcow2 = dir.path().join("vm.qcow2");
    let status = Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&qcow2)
        .status()
        .expect("qemu-img");
    assert!(status.success());
    let chains = import_chain(
        dir.path(),
        aws.bucket,
        r#", "ami_name": "kiln-test-ami", "ami_description": "made by kiln",
            "ami_users": ["123456789012"], "ami_groups": ["all"],
            "license_type": "BYOL", "tags": {"Project": "kiln", "Stage": "test"}"#,
    );
    let (ctx, reporter) = recording_ctx(dir.path(), &aws.env());
    let artifacts = run_post_processors(&chains, disk_artifact(&qcow2, ImageFormat::Qcow2), &ctx)
        .unwrap_or_else(|e| panic!("{e}\n{:#?}", reporter.events()));
    let last = artifacts.last().expect("an artifact");
    assert_eq!(last.builder_id, "packer.post-processor.amazon-import");
    let (region, ami) = last.id.split_once(':').expect("region:ami");
    assert_eq!(region, "us-east-1");

    let images = aws.inspect(&["images"]);
    let images = images.as_array().expect("list");
    assert_eq!(
        images.len(),
        1,
        "the unnamed import is deregistered: {images:#?}"
    );
    let image = &images[0];
    assert_eq!(image["id"], ami);
    assert_eq!(image["name"], "kiln-test-ami");
    assert_eq!(image["description"], "made by kiln");
    assert_eq!(image["tags"]["Project"], "kiln");
    assert_eq!(image["tags"]["Stage"], "test");
    let perms = image["launch_permissions"].to_string();
    assert!(
        perms.contains("123456789012") && perms.contains("\"all\""),
        "{perms}"
    );
    // The converted raw file was uploaded, then the object removed.
    assert_eq!(aws.inspect(&["objects", aws.bucket]), serde_json::json!([]));
    let converted: Vec<_> = std::fs::read_dir(dir.path())
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".import.") || n.ends_with(".s3-upload.json"))
        .collect();
    assert!(converted.is_empty(), "left behind: {converted:?}");
    // The input is not kept by default (Packer's amazon-import).
    assert!(!qcow2.exists());
    // No secret in anything kiln reported.
    let events = format!("{:?}", reporter.events());
    assert!(!events.contains(&aws.aws.secret), "the secret was reported");
}

#[test]
fn refused_credentials_say_where_they_came_from_and_hide_the_secret() {
    let aws = Scope::new("us-east-2", "kiln-ami-refused");
    aws.make_bucket();
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.raw");
    raw_disk(&disk, 1, true);
    let chains = import_chain(dir.path(), aws.bucket, "");
    let mut env = aws.env();
    env[2].1 = "not-the-secret-at-all".into();
    let (ctx, _reporter) = recording_ctx(dir.path(), &env);
    let err = run_post_processors(&chains, disk_artifact(&disk, ImageFormat::Raw), &ctx)
        .expect_err("bad secret fails");
    assert!(
        err.contains(
            "AWS refused the credentials from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        ),
        "{err}"
    );
    assert!(!err.contains("not-the-secret-at-all"), "{err}");
    // A failed step never deletes the builder's artifact.
    assert!(disk.exists());
}

#[test]
fn a_missing_bucket_is_named() {
    let aws = Scope::new("us-west-1", "kiln-ami-missing");
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.raw");
    raw_disk(&disk, 1, true);
    let chains = import_chain(dir.path(), aws.bucket, "");
    let (ctx, _) = recording_ctx(dir.path(), &aws.env());
    let err = run_post_processors(&chains, disk_artifact(&disk, ImageFormat::Raw), &ctx)
        .expect_err("no bucket");
    assert!(
        err.contains(
            "s3_bucket_name: bucket `kiln-ami-missing` does not exist in us-west-1: create it"
        ),
        "{err}"
    );
    // Nothing was uploaded or imported.
    assert!(
        !aws.requests()
            .iter()
            .any(|r| r["method"] == "PUT" || r["action"] == "ImportImage"),
        "{:#?}",
        aws.requests()
    );
}

#[test]
fn a_failed_import_task_reports_aws_reason_and_cleans_the_bucket() {
    let aws = Scope::new("us-west-2", "kiln-ami-failed");
    aws.make_bucket();
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.raw");
    raw_disk(&disk, 1, false);
    let chains = import_chain(dir.path(), aws.bucket, "");
    let (ctx, _) = recording_ctx(dir.path(), &aws.env());
    let err = run_post_processors(&chains, disk_artifact(&disk, ImageFormat::Raw), &ctx)
        .expect_err("an unbootable disk fails to import");
    assert!(
        err.contains("ended `deleted`: ClientError: Unknown OS / Missing OS files."),
        "{err}"
    );
    assert!(err.contains("role `vmimport`"), "{err}");
    assert_eq!(aws.inspect(&["objects", aws.bucket]), serde_json::json!([]));
    assert_eq!(aws.inspect(&["images"]), serde_json::json!([]));
}

#[test]
fn an_interrupted_upload_resumes_without_resending_finished_parts() {
    // 20 MiB in 8 MiB parts: 3 parts; the first attempt at part 2 hangs.
    let aws = Scope::new("eu-west-1", "kiln-ami-resumed");
    aws.make_bucket();
    aws.inspect(&["hold", aws.bucket, "2"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("disk.raw");
    raw_disk(&disk, 20, true);
    let chains = import_chain(dir.path(), aws.bucket, "");

    let (ctx, _) = recording_ctx(dir.path(), &aws.env());
    let cancel = ctx.cancel.clone();
    let first = {
        let chains = chains.clone();
        let artifact = disk_artifact(&disk, ImageFormat::Raw);
        std::thread::spawn(move || run_post_processors(&chains, artifact, &ctx))
    };
    aws.wait_for_request(|r| r["held"] == 2);
    cancel.cancel();
    let err = first
        .join()
        .expect("first run ends")
        .expect_err("the interrupted run fails");
    assert!(err.ends_with("interrupted"), "{err}");
    let state = dir.path().join("disk.raw.s3-upload.json");
    assert!(state.exists(), "the upload state is kept for the rerun");
    assert!(disk.exists(), "the input is kept after a failure");
    assert_eq!(
        aws.inspect(&["uploads", aws.bucket]),
        serde_json::json!(["imports/disk.raw"])
    );

    let (ctx, reporter) = recording_ctx(dir.path(), &aws.env());
    run_post_processors(&chains, disk_artifact(&disk, ImageFormat::Raw), &ctx)
        .unwrap_or_else(|e| panic!("{e}\n{:#?}", reporter.events()));
    let parts = |n: &str| {
        aws.requests()
            .iter()
            .filter(|r| r["method"] == "PUT" && r["query"]["partNumber"] == n)
            .count()
    };
    assert_eq!(parts("1"), 1, "part 1 was sent once");
    assert_eq!(parts("2"), 2, "part 2: the held attempt and the resent one");
    assert_eq!(parts("3"), 1, "part 3 was sent once");
    let creates = aws
        .requests()
        .iter()
        .filter(|r| r["method"] == "POST" && r["query"].get("uploads").is_some())
        .count();
    assert_eq!(creates, 1, "the rerun used the first multipart upload");
    let info = format!("{:?}", reporter.events());
    assert!(
        info.contains("Resumed the upload: 1 of 3 parts were already in S3"),
        "{info}"
    );
    assert!(!state.exists());
    assert_eq!(aws.inspect(&["images"]).as_array().map(Vec::len), Some(1));
}

/// A one-sector "operating system" for the end-to-end build: it enables
/// the ACPI power-button event, waits for it (QEMU's PM1 registers at
/// 0x600, where SeaBIOS puts them) and powers off with SLP_EN, so the
/// qemu builder's ACPI power-down stops it within a second of TCG boot.
/// It ends with the MBR boot signature VM Import looks for.
pub(crate) fn power_button_boot_disk(path: &Path) {
    #[rustfmt::skip]
    let code: [u8; 26] = [
        0xBA, 0x02, 0x06,       // mov dx, 0x602    PM1a_EN
        0xB8, 0x00, 0x01,       // mov ax, 0x100    PWRBTN_EN
        0xEF,                   // out dx, ax
        0xBA, 0x00, 0x06,       // mov dx, 0x600    PM1a_STS
        0xED,                   // poll: in ax, dx
        0xA9, 0x00, 0x01,       // test ax, 0x100   PWRBTN_STS
        0x74, 0xFA,             // jz poll
        0xBA, 0x04, 0x06,       // mov dx, 0x604    PM1a_CNT
        0xB8, 0x00, 0x20,       // mov ax, 0x2000   SLP_EN, S5
        0xEF,                   // out dx, ax
        0xF4,                   // halt: hlt
        0xEB, 0xFD,             // jmp halt
    ];
    let mut disk = vec![0u8; 1024 * 1024];
    disk[..code.len()].copy_from_slice(&code);
    disk[510] = 0x55;
    disk[511] = 0xaa;
    std::fs::write(path, disk).expect("writes the boot disk");
}

/// `kiln build` end to end: a real QEMU build (TCG) whose qcow2 disk the
/// post-processor converts to raw, uploads to moto's S3 and imports.
#[test]
fn vm_kiln_build_imports_its_disk_as_an_ami() {
    let _vm = crate::vm::vm_lock();
    let aws = Scope::new("eu-west-2", "kiln-ami-build");
    aws.make_bucket();
    let dir = tempfile::tempdir().expect("tempdir");
    let boot = dir.path().join("boot.raw");
    power_button_boot_disk(&boot);
    let template = serde_json::json!({
        "builders": [{
            "type": "qemu", "vm_name": "boot", "disk_image": true,
            "iso_url": "boot.raw", "iso_checksum": "none", "disk_size": "8M",
            "accelerator": "tcg", "memory": 64, "headless": true,
            "communicator": "none", "shutdown_timeout": "2m"
        }],
        "post-processors": [{
            "type": "amazon-import", "s3_bucket_name": aws.bucket, "format": "raw",
            "ami_name": "kiln-boot-{{timestamp}}", "tags": {"Built": "kiln"}
        }]
    });
    std::fs::write(dir.path().join("t.json"), template.to_string()).expect("template");
    let mut cmd = crate::vm::build_in(dir.path(), &[], Path::new("t.json"));
    for (k, v) in aws.env() {
        cmd.env(k, v);
    }
    cmd.env("HOME", dir.path()).env("NO_COLOR", "1");
    let out = cmd.output().expect("kiln runs");
    let text = crate::vm::text(&out);
    assert!(out.status.success(), "{text}");
    let images = aws.inspect(&["images"]);
    let image = &images[0];
    assert!(
        image["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("kiln-boot-")),
        "{images:#?}"
    );
    assert_eq!(image["tags"]["Built"], "kiln");
    let id = image["id"].as_str().expect("id");
    assert!(text.contains(&format!("eu-west-2: {id}")), "{text}");
    assert!(!text.contains(&aws.aws.secret));
}
