//! The OVA/OVF exporter, checked by the tools that read its output: GNU tar,
//! xmllint against the DMTF OVF envelope schema (vendored), qemu-img, and
//! SHA-256 recomputed here. Needs `qemu-img` and `xmllint` (libxml2-utils).

use std::path::{Path, PathBuf};
use std::process::Command;

use kiln::artifact::ovf::{
    DiskController, Nic, OsType, OvaError, OvfSpec, export_ova, export_ovf, parse_manifest,
};
use kiln::hypervisor::qemu::QemuImgCli;
use kiln::ui::{Event, Progress, RecordingReporter, Reporter};
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

const MIB: u64 = 1 << 20;
const DISK_SIZE: u64 = 64 * MIB;

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("could not run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A 64 MiB qcow2 whose first `data_mib` MiB (from 1 MiB on) hold
/// pseudo-random data, plus its raw twin for comparison.
fn make_disk(dir: &Path, data_mib: u64) -> (PathBuf, PathBuf) {
    let raw = dir.join("source.raw");
    let mut bytes = vec![0u8; DISK_SIZE as usize];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let data = &mut bytes[MIB as usize..(MIB * (1 + data_mib)) as usize];
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    // A recognisable marker near the end, so sparse tails are covered too.
    bytes[(DISK_SIZE - 4096) as usize..][..11].copy_from_slice(b"kiln-marker");
    std::fs::write(&raw, &bytes).expect("write raw disk");
    let qcow2 = dir.join("source.qcow2");
    run(Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&qcow2));
    (qcow2, raw)
}

fn spec() -> OvfSpec {
    let mut spec = OvfSpec::new("kiln-test", OsType::debian_64(), DISK_SIZE);
    spec.cpus = 2;
    spec.memory_mib = 256;
    spec.disk_controller = DiskController::Sata;
    spec.nic = Nic {
        model: "E1000".into(),
        network: "NAT".into(),
    };
    spec
}

fn schema() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("vendor/ovf-schema/dsp8023_1.1.1.xsd")
}

fn assert_schema_valid(ovf: &Path) {
    run(Command::new("xmllint")
        .args(["--noout", "--nonet", "--schema"])
        .arg(schema())
        .arg(ovf));
}

/// The schema really is enforced: the same descriptor with the CPU item's
/// required InstanceID removed, or two rasd elements out of order, fails.
fn assert_schema_rejects_a_broken_copy(ovf: &Path) {
    let text = std::fs::read_to_string(ovf).expect("read ovf");
    let broken = [
        text.replacen("<rasd:InstanceID>1</rasd:InstanceID>", "", 1),
        text.replacen(
            "<rasd:Description>Number of virtual CPUs</rasd:Description>",
            "<rasd:ResourceType>3</rasd:ResourceType>",
            1,
        ),
    ];
    for (i, doc) in broken.iter().enumerate() {
        assert_ne!(doc, &text);
        let path = ovf.with_file_name(format!("broken{i}.ovf"));
        std::fs::write(&path, doc).expect("write broken ovf");
        let out = Command::new("xmllint")
            .args(["--noout", "--nonet", "--schema"])
            .arg(schema())
            .arg(&path)
            .output()
            .expect("run xmllint");
        assert!(!out.status.success(), "xmllint accepted broken{i}.ovf");
    }
}

/// Every `SHA256(name)= hex` line matches the file next to the manifest,
/// and the manifest names exactly `expected`.
fn assert_manifest_matches(mf: &Path, expected: &[&str]) {
    let text = std::fs::read_to_string(mf).expect("read manifest");
    let entries = parse_manifest(&text);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, expected, "manifest:\n{text}");
    let dir = mf.parent().expect("manifest has a parent");
    for (name, hex) in entries {
        let bytes = std::fs::read(dir.join(&name)).expect("read packaged file");
        let digest: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(digest, hex, "digest of {name}");
    }
}

fn assert_vmdk_matches(vmdk: &Path, raw: &Path) {
    let info = run(Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(vmdk));
    let info: serde_json::Value = serde_json::from_slice(&info.stdout).expect("info is JSON");
    assert_eq!(info["format"], "vmdk");
    assert_eq!(info["virtual-size"], DISK_SIZE);
    assert_eq!(
        info["format-specific"]["data"]["create-type"],
        "streamOptimized"
    );
    run(Command::new("qemu-img")
        .args(["compare", "-f", "raw", "-F", "vmdk"])
        .arg(raw)
        .arg(vmdk));
}

/// Nothing but the given names in `dir` (no staging leftovers).
fn assert_dir_holds_only(dir: &Path, names: &[&str]) {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .expect("list dir")
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    found.sort();
    let mut want: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    want.sort();
    assert_eq!(found, want);
}

#[test]
fn ova_is_read_by_tar_xmllint_and_qemu_img() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (qcow2, raw) = make_disk(dir.path(), 8);
    let out = dir.path().join("kiln-test.ova");
    let reporter = RecordingReporter::new();

    let files = export_ova(
        &QemuImgCli::default(),
        &qcow2,
        &spec(),
        &out,
        &reporter,
        "qemu",
        &CancellationToken::new(),
    )
    .expect("export succeeds");
    assert_eq!(files, vec![out.clone()]);
    assert_dir_holds_only(dir.path(), &["source.raw", "source.qcow2", "kiln-test.ova"]);

    // The descriptor comes first, then the disk, then the manifest.
    let listing = run(Command::new("tar").arg("-tf").arg(&out));
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    assert_eq!(
        listing.lines().collect::<Vec<_>>(),
        ["kiln-test.ovf", "kiln-test-disk1.vmdk", "kiln-test.mf"]
    );
    // POSIX ustar, as the OVF spec requires.
    let head = std::fs::read(&out).expect("read ova");
    assert_eq!(&head[257..263], b"ustar\0");

    let extracted = dir.path().join("x");
    std::fs::create_dir(&extracted).expect("mkdir");
    run(Command::new("tar")
        .arg("-xf")
        .arg(&out)
        .arg("-C")
        .arg(&extracted));

    assert_schema_valid(&extracted.join("kiln-test.ovf"));
    assert_schema_rejects_a_broken_copy(&extracted.join("kiln-test.ovf"));
    assert_manifest_matches(
        &extracted.join("kiln-test.mf"),
        &["kiln-test.ovf", "kiln-test-disk1.vmdk"],
    );
    assert_vmdk_matches(&extracted.join("kiln-test-disk1.vmdk"), &raw);

    let ovf = std::fs::read_to_string(extracted.join("kiln-test.ovf")).expect("read ovf");
    let vmdk_size = std::fs::metadata(extracted.join("kiln-test-disk1.vmdk"))
        .expect("stat vmdk")
        .len();
    assert!(ovf.contains(&format!("ovf:size=\"{vmdk_size}\"")), "{ovf}");
    assert!(
        ovf.contains(&format!("ovf:capacity=\"{DISK_SIZE}\"")),
        "{ovf}"
    );

    // The pack reported its progress to the end.
    let finished = reporter.events().into_iter().find_map(|e| match e {
        Event::ProgressFinished {
            message, position, ..
        } => Some((message, position)),
        _ => None,
    });
    assert_eq!(
        finished,
        Some(("packed".to_owned(), ovf.len() as u64 + vmdk_size))
    );
}

#[test]
fn ovf_directory_form_is_valid_and_complete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (qcow2, raw) = make_disk(dir.path(), 2);
    let out = dir.path().join("package");
    let mut spec = spec();
    spec.disk_controller = DiskController::Ide;
    spec.os_type = OsType::other_64();

    let files = export_ovf(
        &QemuImgCli::default(),
        &qcow2,
        &spec,
        &out,
        &RecordingReporter::new(),
        "qemu",
        &CancellationToken::new(),
    )
    .expect("export succeeds");
    assert_eq!(
        files,
        ["kiln-test.ovf", "kiln-test-disk1.vmdk", "kiln-test.mf"].map(|n| out.join(n))
    );
    assert_dir_holds_only(dir.path(), &["source.raw", "source.qcow2", "package"]);
    assert_dir_holds_only(
        &out,
        &["kiln-test.ovf", "kiln-test-disk1.vmdk", "kiln-test.mf"],
    );
    assert_schema_valid(&out.join("kiln-test.ovf"));
    assert_manifest_matches(
        &out.join("kiln-test.mf"),
        &["kiln-test.ovf", "kiln-test-disk1.vmdk"],
    );
    assert_vmdk_matches(&out.join("kiln-test-disk1.vmdk"), &raw);
}

/// Cancels the build once the pack has copied `after` bytes.
struct CancelMidPack {
    inner: RecordingReporter,
    cancel: CancellationToken,
    after: u64,
}

struct CancellingProgress {
    inner: Box<dyn Progress>,
    cancel: CancellationToken,
    after: u64,
}

impl Progress for CancellingProgress {
    fn set_position(&self, position: u64) {
        if position >= self.after {
            self.cancel.cancel();
        }
        self.inner.set_position(position);
    }
    fn set_total(&self, total: u64) {
        self.inner.set_total(total);
    }
    fn finish(&self, message: &str) {
        self.inner.finish(message);
    }
}

impl Reporter for CancelMidPack {
    fn step_started(&self, build: &str, step: &str) {
        self.inner.step_started(build, step);
    }
    fn step_finished(&self, build: &str, step: &str, elapsed: std::time::Duration, ok: bool) {
        self.inner.step_finished(build, step, elapsed, ok);
    }
    fn warn(&self, build: &str, message: &str) {
        self.inner.warn(build, message);
    }
    fn info(&self, build: &str, message: &str) {
        self.inner.info(build, message);
    }
    fn progress(&self, build: &str, label: &str, total: Option<u64>) -> Box<dyn Progress> {
        Box::new(CancellingProgress {
            inner: self.inner.progress(build, label, total),
            cancel: self.cancel.clone(),
            after: self.after,
        })
    }
}

#[test]
fn cancelling_mid_pack_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (qcow2, _raw) = make_disk(dir.path(), 8);
    let out = dir.path().join("kiln-test.ova");
    let cancel = CancellationToken::new();
    let reporter = CancelMidPack {
        inner: RecordingReporter::new(),
        cancel: cancel.clone(),
        after: 2 * MIB,
    };

    let err = export_ova(
        &QemuImgCli::default(),
        &qcow2,
        &spec(),
        &out,
        &reporter,
        "qemu",
        &cancel,
    )
    .expect_err("the export is cancelled");
    assert!(matches!(err, OvaError::Cancelled { .. }), "{err:?}");
    assert_dir_holds_only(dir.path(), &["source.raw", "source.qcow2"]);

    // It stopped mid-disk, not after packing everything.
    let position = reporter.inner.events().into_iter().find_map(|e| match e {
        Event::ProgressFinished { position, .. } => Some(position),
        _ => None,
    });
    let position = position.expect("progress finished");
    assert!(
        (2 * MIB..4 * MIB).contains(&position),
        "stopped at {position}"
    );

    // The directory form cleans up the same way.
    let cancel = CancellationToken::new();
    let reporter = CancelMidPack {
        inner: RecordingReporter::new(),
        cancel: cancel.clone(),
        after: MIB,
    };
    let err = export_ovf(
        &QemuImgCli::default(),
        &qcow2,
        &spec(),
        &dir.path().join("package"),
        &reporter,
        "qemu",
        &cancel,
    )
    .expect_err("the export is cancelled");
    assert!(matches!(err, OvaError::Cancelled { .. }), "{err:?}");
    assert_dir_holds_only(dir.path(), &["source.raw", "source.qcow2"]);
}

#[test]
fn failed_conversion_leaves_nothing_behind() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("kiln-test.ova");
    let err = export_ova(
        &QemuImgCli::default(),
        &dir.path().join("missing.qcow2"),
        &spec(),
        &out,
        &RecordingReporter::new(),
        "qemu",
        &CancellationToken::new(),
    )
    .expect_err("conversion fails");
    assert!(matches!(err, OvaError::Convert { .. }), "{err:?}");
    assert!(err.to_string().contains("missing.qcow2"), "{err}");
    assert_dir_holds_only(dir.path(), &[]);
}

#[test]
fn names_a_ustar_header_cannot_hold_are_refused_before_any_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = spec();
    spec.disk_file_name = format!("{}.vmdk", "d".repeat(100));
    let err = export_ova(
        &QemuImgCli::default(),
        &dir.path().join("unused.qcow2"),
        &spec,
        &dir.path().join("x.ova"),
        &RecordingReporter::new(),
        "qemu",
        &CancellationToken::new(),
    )
    .expect_err("refused");
    assert!(matches!(err, OvaError::BadFileName { .. }), "{err:?}");
    assert_dir_holds_only(dir.path(), &[]);
}
