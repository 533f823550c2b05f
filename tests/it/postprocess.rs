//! Post-processor chains, checked by the programs that read their output:
//! `sha256sum -c` and friends, `tar`, `gzip`, and the real `vagrant box
//! add` (with a throwaway `VAGRANT_HOME`). Configurations are decoded from
//! template JSON exactly as `kiln build` decodes them; the builder's
//! artifact is a file made here (qcow2 and streamOptimized VMDK via
//! `qemu-img`, OVAs packed by `tar` or by kiln's own OVA writer).
//!
//! Needs: coreutils, tar, gzip, qemu-img (qemu-utils), vagrant.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::SystemTime;

use kiln::artifact::{Artifact, Disk, Machine, Package};
use kiln::config::post_processor::PostProcessor;
use kiln::config::{PrepareInput, Selection, prepare};
use kiln::postprocess::{Manifest, PostProcessContext, run_chains};
use kiln::template::diagnostic::Diagnostics;
use kiln::template::render_env::{BuildNames, RenderEnv};
use kiln::template::source::SourceFile;
use kiln::template::variables::{self, Environment, VariableInputs};
use kiln::ui::{Progress, RecordingReporter, Reporter};
use kiln::vm::{Accelerator, ImageFormat};
use tokio_util::sync::CancellationToken;

/// Decodes `post_processors` (the template's `post-processors` value) for
/// a qemu build named `vm`, with relative paths resolved against `dir`.
pub(crate) fn chains(dir: &Path, post_processors: &str) -> Vec<Vec<PostProcessor>> {
    let text = format!(
        r#"{{"builders": [{{"type": "qemu", "name": "vm", "iso_url": "a.iso", "iso_checksum": "none", "ssh_username": "root"}}],
            "post-processors": {post_processors}}}"#
    );
    let mut diags = Diagnostics::new();
    let template =
        kiln::template::model::parse(SourceFile::new("t.json", text), dir.to_owned(), &mut diags)
            .expect("template loads");
    let env = |_: &str| None;
    let environment = Environment {
        env: &env,
        init_time: SystemTime::now(),
        pwd: dir,
    };
    let vars = variables::resolve(
        &template,
        &VariableInputs::default(),
        &environment,
        &mut diags,
    );
    let prepared = prepare(
        &PrepareInput {
            template: &template,
            vars: &vars,
            selection: &Selection::default(),
            pwd: dir,
            init_time: SystemTime::now(),
        },
        &mut diags,
    );
    assert!(!diags.has_errors(), "{}", diags.render());
    prepared.builds[0].post_processors.clone()
}

pub(crate) fn context(
    dir: &Path,
    run_uuid: &str,
    reporter: Arc<dyn Reporter>,
) -> PostProcessContext {
    PostProcessContext {
        build: "vm".into(),
        render: Arc::new(RenderEnv::new(
            BTreeMap::new(),
            dir.to_owned(),
            dir.to_owned(),
            SystemTime::now(),
            run_uuid.to_owned(),
        ))
        .for_build(BuildNames {
            full: "vm".into(),
            packer_build_name: "vm".into(),
            build_type: "qemu".into(),
        }),
        reporter,
        cancel: CancellationToken::new(),
        env: None,
    }
}

fn ctx(dir: &Path) -> PostProcessContext {
    context(dir, "run-1", Arc::new(RecordingReporter::new()))
}

/// A qemu-like artifact: `files` (name, contents) in `dir/output-vm`.
fn artifact(dir: &Path, files: &[(&str, &[u8])]) -> Artifact {
    let out = dir.join("output-vm");
    std::fs::create_dir_all(&out).expect("output dir");
    let files = files
        .iter()
        .map(|(name, data)| {
            let path = out.join(name);
            std::fs::write(&path, data).expect("writes the artifact file");
            path
        })
        .collect();
    Artifact::files_only("transcend.qemu", "vm", "qemu", "vm", files)
}

/// What the qemu builder hands on for a qcow2 disk it made under `accelerator`.
fn qcow2_artifact(disk: &Path, accelerator: Accelerator) -> Artifact {
    let mut a = Artifact::files_only("transcend.qemu", "vm", "qemu", "vm", vec![disk.to_owned()]);
    a.disks = vec![Disk {
        path: disk.to_owned(),
        format: ImageFormat::Qcow2,
        virtual_size: None,
    }];
    a.machine = Some(Machine {
        accelerator: Some(accelerator),
        cpus: 2,
        memory_mib: 512,
    });
    a
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("the program runs");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn qemu_img(args: &[&str]) {
    run(Command::new("qemu-img").args(args));
}

/// Files in `dir` (not recursive), sorted, for "nothing left behind" checks.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("reads the directory")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn checksum_files_are_read_by_the_sum_tools() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = artifact(
        dir.path(),
        &[("disk.qcow2", b"disk contents"), ("notes.txt", b"hello\n")],
    );
    let chains = chains(
        dir.path(),
        r#"[{"type": "checksum", "keep_input_artifact": false,
             "checksum_types": ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"],
             "output": "sums/{{.BuildName}}_{{.BuilderType}}.{{.ChecksumType}}"}]"#,
    );
    let out = run_chains(&chains, input.clone(), &ctx(dir.path()))
        .await
        .expect("checksum runs");
    // checksum forces keep: the builder's artifact stays, listed first.
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].files, input.files);
    assert!(input.files.iter().all(|f| f.exists()));
    assert_eq!(out[1].files.len(), 6);
    let sums = dir.path().join("sums");
    for kind in ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"] {
        let file = format!("vm_qemu.{kind}");
        let text = std::fs::read_to_string(sums.join(&file)).expect("checksum file");
        assert!(
            text.lines()
                .any(|l| l.ends_with("  ../output-vm/notes.txt")),
            "{text}"
        );
        // Names are relative to the checksum file's directory.
        let checked = run(Command::new(format!("{kind}sum"))
            .args(["-c", "--strict", &file])
            .current_dir(&sums));
        assert!(checked.contains("../output-vm/disk.qcow2: OK"), "{checked}");
    }
    let sha256 = std::fs::read_to_string(sums.join("vm_qemu.sha256")).expect("sha256 file");
    assert!(sha256.contains(
        // sha256("hello\n")
        "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03  ../output-vm/notes.txt"
    ));
}

#[tokio::test]
async fn manifest_appends_across_runs_with_packers_field_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = artifact(dir.path(), &[("disk.qcow2", b"0123456789")]);
    let chain = chains(
        dir.path(),
        r#"[{"type": "manifest", "output": "m/manifest.json", "strip_path": true,
             "custom_data": {"team": "infra"}}]"#,
    );
    let reporter: Arc<dyn Reporter> = Arc::new(RecordingReporter::new());
    for uuid in ["run-1", "run-2"] {
        let out = run_chains(
            &chain,
            input.clone(),
            &context(dir.path(), uuid, reporter.clone()),
        )
        .await
        .expect("manifest runs");
        // manifest passes its input on: one artifact, kept.
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].files, input.files);
    }
    let path = dir.path().join("m/manifest.json");
    let text = std::fs::read_to_string(&path).expect("manifest written");
    let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(value["last_run_uuid"], "run-2");
    let builds = value["builds"].as_array().expect("builds");
    assert_eq!(builds.len(), 2);
    let b = &builds[1];
    assert_eq!(b["name"], "vm");
    assert_eq!(b["builder_type"], "qemu");
    assert!(b["build_time"].as_i64().is_some_and(|t| t > 1_600_000_000));
    assert_eq!(
        b["files"],
        serde_json::json!([{"name": "disk.qcow2", "size": 10}])
    );
    assert_eq!(b["artifact_id"], "vm");
    assert_eq!(b["packer_run_uuid"], "run-2");
    assert_eq!(builds[0]["packer_run_uuid"], "run-1");
    assert_eq!(b["custom_data"], serde_json::json!({"team": "infra"}));
    // The typed form round-trips to the same JSON.
    let typed: Manifest = serde_json::from_str(&text).expect("typed manifest");
    assert_eq!(serde_json::to_value(&typed).expect("encodes"), value);
    // Packer's own output (strip_time, no custom_data) reads too.
    let packer = r#"{"builds":[{"name":"x","builder_type":"qemu","files":[{"name":"a","size":1}],
        "artifact_id":"","packer_run_uuid":"u","custom_data":null}],"last_run_uuid":"u"}"#;
    let typed: Manifest = serde_json::from_str(packer).expect("Packer's manifest");
    assert_eq!(typed.builds[0].build_time, 0);
    assert_eq!(typed.builds[0].custom_data, None);
    assert!(listing(&dir.path().join("m")) == ["manifest.json"]);
}

#[tokio::test]
async fn compress_then_checksum_deletes_only_what_packer_deletes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = artifact(
        dir.path(),
        &[("disk.qcow2", &[7u8; 300_000]), ("vm.txt", b"cfg\n")],
    );
    let chain = chains(
        dir.path(),
        r#"[[{"type": "compress", "output": "{{.BuildName}}.tar.gz"},
             {"type": "checksum", "checksum_types": ["sha256"], "output": "{{.BuildName}}.sha256"}]]"#,
    );
    let out = run_chains(&chain, input.clone(), &ctx(dir.path()))
        .await
        .expect("chain runs");
    // compress does not keep its input: the builder's files are gone (and
    // its emptied directory); checksum keeps the archive.
    assert!(input.files.iter().all(|f| !f.exists()));
    assert!(!dir.path().join("output-vm").exists());
    let tarball = dir.path().join("vm.tar.gz");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&tarball)
            .expect("archive")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o644,
            "an ordinary file, not a private temporary"
        );
    }
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].files, vec![tarball.clone()]);
    assert_eq!(out[1].files, vec![dir.path().join("vm.sha256")]);
    run(Command::new("sha256sum")
        .args(["-c", "vm.sha256"])
        .current_dir(dir.path()));
    let listed = run(Command::new("tar").arg("-tzvf").arg(&tarball));
    assert!(
        listed.contains("disk.qcow2") && listed.contains("vm.txt"),
        "{listed}"
    );
    run(Command::new("gzip").arg("-t").arg(&tarball));
}

#[tokio::test]
async fn keep_input_artifact_follows_packer() {
    let dir = tempfile::tempdir().expect("tempdir");
    // One chain keeps the builder's artifact: it stays for every chain.
    let input = artifact(dir.path(), &[("disk.qcow2", b"data")]);
    let chain = chains(
        dir.path(),
        r#"[{"type": "compress", "output": "a.gz", "keep_input_artifact": true},
            {"type": "compress", "output": "b.zst"}]"#,
    );
    let out = run_chains(&chain, input.clone(), &ctx(dir.path()))
        .await
        .expect("chains run");
    assert_eq!(out.len(), 3);
    assert_eq!(out[0].files, input.files);
    assert!(input.files[0].exists());
    let zst = run(Command::new("zstd")
        .args(["-dc", "b.zst"])
        .current_dir(dir.path()));
    assert_eq!(zst, "data");
    let gz = run(Command::new("gzip")
        .args(["-dc", "a.gz"])
        .current_dir(dir.path()));
    assert_eq!(gz, "data");

    // No post-processors: the builder's artifact is the result.
    let out = run_chains(&[], input.clone(), &ctx(dir.path()))
        .await
        .expect("nothing to run");
    assert_eq!(out.len(), 1);

    // Several files without an archive format fail as in Packer, and a
    // failure deletes nothing.
    let two = artifact(dir.path(), &[("x", b"1"), ("y", b"2")]);
    let chain = chains(dir.path(), r#"[{"type": "compress", "output": "two.gz"}]"#);
    let err = run_chains(&chain, two.clone(), &ctx(dir.path()))
        .await
        .expect_err("two files into .gz");
    assert!(
        format!("{err:?}").contains("can only compress 1 file"),
        "{err:?}"
    );
    assert!(two.files.iter().all(|f| f.exists()));
    assert!(!dir.path().join("two.gz").exists());

    // After a pass-through step (manifest forces keep) the next step's
    // input is still the builder's artifact, so it is kept, and listed once.
    let four = artifact(dir.path(), &[("w", b"4")]);
    let chain = chains(
        dir.path(),
        r#"[[{"type": "manifest", "output": "m.json"}, {"type": "compress", "output": "w.gz"}]]"#,
    );
    let out = run_chains(&chain, four.clone(), &ctx(dir.path()))
        .await
        .expect("chain runs");
    assert_eq!(out.len(), 2);
    assert_eq!(out[0].files, four.files);
    assert!(four.files[0].exists());

    // A not-kept intermediate is deleted: compress → compress.
    let three = artifact(dir.path(), &[("z", b"3")]);
    let chain = chains(
        dir.path(),
        r#"[[{"type": "compress", "output": "mid.tar"}, {"type": "compress", "output": "end.xz"}]]"#,
    );
    let out = run_chains(&chain, three.clone(), &ctx(dir.path()))
        .await
        .expect("chain runs");
    assert_eq!(out.len(), 1);
    assert!(!dir.path().join("mid.tar").exists());
    assert!(dir.path().join("end.xz").exists());
}

#[tokio::test]
async fn shell_local_sees_the_artifact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = artifact(dir.path(), &[("disk.qcow2", b"data")]);
    let seen = dir.path().join("seen.txt");
    let chain = chains(
        dir.path(),
        &format!(
            r#"[{{"type": "shell-local", "inline": [
            "echo \"$PACKER_BUILD_NAME $PACKER_BUILDER_TYPE $PACKER_ARTIFACT_ID $PACKER_ARTIFACT_BUILDER_ID $PACKER_ARTIFACT_FILES\" > '{}'"
        ]}}]"#,
            seen.display()
        ),
    );
    let out = run_chains(&chain, input.clone(), &ctx(dir.path()))
        .await
        .expect("shell-local runs");
    // shell-local passes its input on and keeps it.
    assert_eq!(out.len(), 1);
    assert!(input.files[0].exists());
    let seen = std::fs::read_to_string(&seen).expect("the script ran");
    assert_eq!(
        seen.trim(),
        format!("vm qemu vm transcend.qemu {}", input.files[0].display())
    );
}

/// A reporter whose progress cancels the build once `after` bytes passed.
struct CancelMidway {
    cancel: CancellationToken,
    after: u64,
}

struct CancelProgress {
    cancel: CancellationToken,
    after: u64,
}

impl Progress for CancelProgress {
    fn set_position(&self, position: u64) {
        if position >= self.after {
            self.cancel.cancel();
        }
    }
    fn set_total(&self, _total: u64) {}
    fn finish(&self, _message: &str) {}
}

impl Reporter for CancelMidway {
    fn step_started(&self, _: &str, _: &str) {}
    fn step_finished(&self, _: &str, _: &str, _: std::time::Duration, _: bool) {}
    fn warn(&self, _: &str, _: &str) {}
    fn info(&self, _: &str, _: &str) {}
    fn progress(&self, _: &str, _: &str, _: Option<u64>) -> Box<dyn Progress> {
        Box::new(CancelProgress {
            cancel: self.cancel.clone(),
            after: self.after,
        })
    }
}

/// Appends `mib` MiB of incompressible data to `path`.
fn append_incompressible(path: &Path, mib: usize) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("opens the file");
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for b in block.iter_mut() {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
        f.write_all(&block).expect("writes");
    }
}

/// A context whose build is cancelled once packing passed 8 MiB.
fn cancelled_midway(dir: &Path) -> PostProcessContext {
    let cancel = CancellationToken::new();
    let mut c = context(
        dir,
        "run",
        Arc::new(CancelMidway {
            cancel: cancel.clone(),
            after: 8 << 20,
        }),
    );
    c.cancel = cancel;
    c
}

#[tokio::test]
async fn vm_interrupted_packing_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("output-vm/disk.qcow2");
    std::fs::create_dir_all(disk.parent().expect("parent")).expect("dir");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        &disk.to_string_lossy(),
        "64M",
    ]);
    // After the header, so packing takes a while.
    append_incompressible(&disk, 48);
    let input = qcow2_artifact(&disk, Accelerator::Kvm);
    let boxes = dir.path().join("boxes");
    let chain = chains(
        dir.path(),
        r#"[{"type": "vagrant", "output": "boxes/vm.box"}]"#,
    );
    let err = run_chains(&chain, input.clone(), &cancelled_midway(dir.path()))
        .await
        .expect_err("cancelled");
    assert!(err.is_cancelled(), "{err:?}");
    assert!(!boxes.join("vm.box").exists());
    assert_eq!(listing(&boxes), Vec::<String>::new(), "no temporary files");
    // The builder's artifact is never deleted by a failed chain.
    assert!(disk.exists());
}

/// `include` is not checked at validation (a build may make what it
/// includes, as EFI vars in its output directory): a file still missing
/// when the box is packed fails the post-processor naming it, and leaves
/// no box.
#[tokio::test]
async fn an_include_missing_when_the_box_is_packed_is_named_and_leaves_no_box() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("output-vm/disk.qcow2");
    std::fs::create_dir_all(disk.parent().expect("parent")).expect("dir");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        &disk.to_string_lossy(),
        "16M",
    ]);
    let input = qcow2_artifact(&disk, Accelerator::Kvm);
    let chain = chains(
        dir.path(),
        r#"[{"type": "vagrant", "output": "boxes/vm.box", "include": ["output-vm/efivars.fd"]}]"#,
    );
    let err = run_chains(&chain, input, &ctx(dir.path()))
        .await
        .expect_err("the include is missing");
    let text = kiln::error_chain::error_chain(&err, ": ");
    assert!(
        text.contains("cannot read") && text.contains("output-vm/efivars.fd"),
        "{text}"
    );
    assert_eq!(listing(&dir.path().join("boxes")), Vec::<String>::new());
    assert!(disk.exists(), "the builder's disk is kept");
}

fn box_entries(file: &Path) -> Vec<String> {
    let mut names: Vec<String> = run(Command::new("tar").arg("-tzf").arg(file))
        .lines()
        .map(str::to_owned)
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn vm_libvirt_box_is_added_by_vagrant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let disk = dir.path().join("output-vm/packer-vm");
    std::fs::create_dir_all(disk.parent().expect("parent")).expect("dir");
    // No .qcow2 extension (as Packer's qemu builder names it): detected
    // from the header.
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        &disk.to_string_lossy(),
        "1536M",
    ]);
    // The virtual size is not given: it is read from the qcow2 header.
    let input = qcow2_artifact(&disk, Accelerator::Kvm);
    std::fs::write(
        dir.path().join("extra.Vagrantfile"),
        "# built by {{ .BuildName }} for {{ .Provider }}\n",
    )
    .expect("template");
    std::fs::write(dir.path().join("README"), "hi\n").expect("include");
    let chain = chains(
        dir.path(),
        r#"[{"type": "vagrant", "vagrantfile_template": "extra.Vagrantfile", "include": ["README"]}]"#,
    );
    let out = run_chains(&chain, input.clone(), &ctx(dir.path()))
        .await
        .expect("vagrant runs");
    let file = dir.path().join("packer_vm_libvirt.box");
    assert_eq!(out.len(), 1, "the disk is not kept by default");
    assert_eq!(out[0].files, vec![file.clone()]);
    assert_eq!(out[0].id, "libvirt");
    assert!(!disk.exists());
    assert_eq!(
        box_entries(&file),
        ["README", "Vagrantfile", "box.img", "metadata.json"]
    );
    let metadata = run(Command::new("tar")
        .arg("-xzOf")
        .arg(&file)
        .arg("metadata.json"));
    let metadata: serde_json::Value = serde_json::from_str(&metadata).expect("JSON");
    assert_eq!(
        metadata,
        serde_json::json!({"provider": "libvirt", "format": "qcow2", "virtual_size": 2})
    );
    let vagrantfile = run(Command::new("tar")
        .arg("-xzOf")
        .arg(&file)
        .arg("Vagrantfile"));
    for line in [
        "libvirt.driver = \"kvm\"",
        "libvirt.cpus = 2",
        "libvirt.memory = 512",
        "# built by vm for libvirt",
    ] {
        assert!(vagrantfile.contains(line), "{vagrantfile}");
    }
    let home = dir.path().join("vagrant-home");
    let list = crate::support::vagrant_box_add(&home, "kiln-test-libvirt", &file);
    assert!(list.contains("kiln-test-libvirt (libvirt"), "{list}");
    assert!(
        home.join("boxes/kiln-test-libvirt/0/libvirt/box.img")
            .exists()
            || std::fs::read_dir(home.join("boxes/kiln-test-libvirt/0"))
                .map(|d| d.count() > 0)
                .unwrap_or(false)
    );
}

const OVF: &str = r#"<?xml version="1.0"?>
<Envelope ovf:version="1.0" xml:lang="en-US" xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData" xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:vbox="http://www.virtualbox.org/ovf/machine">
  <References>
    <File ovf:id="file1" ovf:href="vm-disk001.vmdk"/>
  </References>
  <DiskSection>
    <Info>List of the virtual disks used in the package</Info>
    <Disk ovf:capacity="67108864" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>
  </DiskSection>
  <NetworkSection>
    <Info>Logical networks used in the package</Info>
    <Network ovf:name="NAT"><Description>Logical network used by this appliance.</Description></Network>
  </NetworkSection>
  <VirtualSystem ovf:id="vm">
    <Info>A virtual machine</Info>
    <VirtualHardwareSection>
      <Info>Virtual hardware requirements for a virtual machine</Info>
      <System><vssd:ElementName>Virtual Hardware Family</vssd:ElementName><vssd:InstanceID>0</vssd:InstanceID><vssd:VirtualSystemIdentifier>vm</vssd:VirtualSystemIdentifier><vssd:VirtualSystemType>virtualbox-2.2</vssd:VirtualSystemType></System>
      <Item><rasd:Caption>1 virtual CPU</rasd:Caption><rasd:ElementName>1 virtual CPU</rasd:ElementName><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType><rasd:VirtualQuantity>1</rasd:VirtualQuantity></Item>
      <Item><rasd:AllocationUnits>MegaBytes</rasd:AllocationUnits><rasd:ElementName>256 MB of memory</rasd:ElementName><rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType><rasd:VirtualQuantity>256</rasd:VirtualQuantity></Item>
      <Item><rasd:ElementName>disk1</rasd:ElementName><rasd:HostResource>/disk/vmdisk1</rasd:HostResource><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceType>17</rasd:ResourceType></Item>
    </VirtualHardwareSection>
    <vbox:Machine ovf:required="false" version="1.16-linux" uuid="{00000000-0000-4000-8000-000000000001}" name="vm">
      <Hardware><Network><Adapter slot="0" enabled="true" MACAddress="080027C0FFEE" type="82540EM"><NAT/></Adapter></Network></Hardware>
    </vbox:Machine>
  </VirtualSystem>
</Envelope>
"#;

/// A streamOptimized VMDK of a 64 MiB disk at `vmdk`, as VirtualBox and
/// kiln export it (`scratch` holds the raw source).
fn stream_optimized_vmdk(scratch: &Path, vmdk: &Path) {
    let raw = scratch.join("disk.raw");
    qemu_img(&["create", "-q", "-f", "raw", &raw.to_string_lossy(), "64M"]);
    qemu_img(&[
        "convert",
        "-q",
        "-O",
        "vmdk",
        "-o",
        "subformat=streamOptimized",
        &raw.to_string_lossy(),
        &vmdk.to_string_lossy(),
    ]);
}

#[tokio::test]
async fn vm_virtualbox_box_is_added_by_vagrant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("output-vm");
    std::fs::create_dir_all(&out_dir).expect("dir");
    let vmdk = out_dir.join("vm-disk001.vmdk");
    stream_optimized_vmdk(dir.path(), &vmdk);
    let ovf = out_dir.join("vm.ovf");
    std::fs::write(&ovf, OVF).expect("OVF");
    std::fs::write(out_dir.join("vm.mf"), "SHA1 (vm.ovf) = 00\n").expect("manifest");
    let mut input = Artifact::files_only(
        "mitchellh.virtualbox",
        "vm",
        "virtualbox-iso",
        "vm",
        vec![ovf.clone(), vmdk, out_dir.join("vm.mf")],
    );
    input.package = Some(Package::Ovf {
        descriptor: ovf,
        manifest: Some(out_dir.join("vm.mf")),
    });
    let chain = chains(
        dir.path(),
        r#"[{"type": "vagrant", "output": "boxes/{{.BuildName}}-{{.Provider}}.box", "keep_input_artifact": true, "compression_level": 1}]"#,
    );
    let out = run_chains(&chain, input.clone(), &ctx(dir.path()))
        .await
        .expect("vagrant runs");
    assert_eq!(out.len(), 2, "kept input, then the box");
    assert!(input.files.iter().all(|f| f.exists()));
    let file = dir.path().join("boxes/vm-virtualbox.box");
    assert_eq!(
        box_entries(&file),
        ["Vagrantfile", "box.ovf", "metadata.json", "vm-disk001.vmdk"]
    );
    let vagrantfile = run(Command::new("tar")
        .arg("-xzOf")
        .arg(&file)
        .arg("Vagrantfile"));
    assert!(
        vagrantfile.contains("config.vm.base_mac = \"080027C0FFEE\""),
        "{vagrantfile}"
    );
    let home = dir.path().join("vagrant-home");
    let list = crate::support::vagrant_box_add(&home, "kiln-test-virtualbox", &file);
    assert!(list.contains("kiln-test-virtualbox (virtualbox"), "{list}");
}

/// An OVA as VirtualBox exports one, at `dir/output-vm/vm.ova`: `vm.ovf`
/// first, the streamOptimized disk, and `vm.mf` with both SHA256 digests
/// (`sha256sum`), packed by `tar` as ustar. Returns the OVA and the disk
/// packed into it.
fn virtualbox_ova(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let package = dir.join("package");
    std::fs::create_dir_all(&package).expect("dir");
    std::fs::write(package.join("vm.ovf"), OVF).expect("OVF");
    let vmdk = package.join("vm-disk001.vmdk");
    stream_optimized_vmdk(dir, &vmdk);
    let mut mf = String::new();
    for name in ["vm.ovf", "vm-disk001.vmdk"] {
        let sum = run(Command::new("sha256sum").arg(name).current_dir(&package));
        let hex = sum.split_whitespace().next().expect("a digest");
        mf.push_str(&format!("SHA256({name})= {hex}\n"));
    }
    std::fs::write(package.join("vm.mf"), mf).expect("manifest");
    let out_dir = dir.join("output-vm");
    std::fs::create_dir_all(&out_dir).expect("dir");
    let ova = out_dir.join("vm.ova");
    run(Command::new("tar")
        .args(["--format=ustar", "-cf"])
        .arg(&ova)
        .arg("-C")
        .arg(&package)
        .args(["vm.ovf", "vm-disk001.vmdk", "vm.mf"]));
    (ova, vmdk)
}

fn virtualbox_artifact(file: &Path) -> Artifact {
    let mut a = Artifact::files_only(
        "mitchellh.virtualbox",
        "vm",
        "virtualbox-iso",
        "vm",
        vec![file.to_owned()],
    );
    a.package = Some(Package::Ova(file.to_owned()));
    a
}

fn extract(file: &Path, member: &str) -> Vec<u8> {
    let out = Command::new("tar")
        .arg("-xzOf")
        .arg(file)
        .arg(member)
        .output()
        .expect("tar runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[tokio::test]
async fn vm_virtualbox_box_from_an_ova_is_added_by_vagrant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ova, vmdk) = virtualbox_ova(dir.path());
    let chain = chains(
        dir.path(),
        r#"[{"type": "vagrant", "output": "boxes/{{.BuildName}}-{{.Provider}}.box", "compression_level": 1}]"#,
    );
    let out = run_chains(&chain, virtualbox_artifact(&ova), &ctx(dir.path()))
        .await
        .expect("vagrant runs");
    let file = dir.path().join("boxes/vm-virtualbox.box");
    assert_eq!(out.len(), 1, "the OVA is not kept by default");
    assert_eq!(out[0].files, vec![file.clone()]);
    assert!(!ova.exists());
    // The manifest is left out, as from an OVF: it names `vm.ovf`.
    assert_eq!(
        box_entries(&file),
        ["Vagrantfile", "box.ovf", "metadata.json", "vm-disk001.vmdk"]
    );
    assert_eq!(extract(&file, "box.ovf"), OVF.as_bytes());
    let disk = std::fs::read(&vmdk).expect("the packed disk");
    assert!(
        extract(&file, "vm-disk001.vmdk") == disk,
        "the disk is copied as it is"
    );
    let metadata: serde_json::Value =
        serde_json::from_slice(&extract(&file, "metadata.json")).expect("JSON");
    assert_eq!(metadata, serde_json::json!({"provider": "virtualbox"}));
    let vagrantfile = String::from_utf8(extract(&file, "Vagrantfile")).expect("text");
    assert!(
        vagrantfile.contains("config.vm.base_mac = \"080027C0FFEE\""),
        "{vagrantfile}"
    );
    let home = dir.path().join("vagrant-home");
    let list = crate::support::vagrant_box_add(&home, "kiln-test-virtualbox-ova", &file);
    assert!(
        list.contains("kiln-test-virtualbox-ova (virtualbox"),
        "{list}"
    );
}

#[tokio::test]
async fn vm_a_corrupt_ova_makes_no_box() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ova, _) = virtualbox_ova(dir.path());
    // One byte of the disk flipped: ustar puts it after the descriptor's
    // header and data and its own header, all in 512-byte blocks.
    let disk_start = 512 + OVF.len().div_ceil(512) * 512 + 512;
    let mut bytes = std::fs::read(&ova).expect("the OVA");
    bytes[disk_start + 100] ^= 0xff;
    std::fs::write(&ova, bytes).expect("writes the OVA");
    let chain = chains(
        dir.path(),
        r#"[{"type": "vagrant", "output": "boxes/vm.box", "compression_level": 1}]"#,
    );
    let err = run_chains(&chain, virtualbox_artifact(&ova), &ctx(dir.path()))
        .await
        .expect_err("a corrupt OVA fails");
    let message = kiln::error_chain::error_chain(&err, ": ");
    assert!(
        message.contains(
            "vm.ova is corrupt: `vm-disk001.vmdk` does not match its SHA256 digest in `vm.mf`"
        ),
        "{message}"
    );
    let boxes = dir.path().join("boxes");
    assert_eq!(
        listing(&boxes),
        Vec::<String>::new(),
        "no box, no temporary file"
    );
    assert!(ova.exists(), "a failed chain keeps its input");
}

#[tokio::test]
async fn vm_interrupted_packing_from_an_ova_leaves_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let package = dir.path().join("package");
    std::fs::create_dir_all(&package).expect("dir");
    std::fs::write(package.join("vm.ovf"), OVF).expect("OVF");
    append_incompressible(&package.join("vm-disk001.vmdk"), 48);
    let ova = dir.path().join("vm.ova");
    run(Command::new("tar")
        .args(["--format=ustar", "-cf"])
        .arg(&ova)
        .arg("-C")
        .arg(&package)
        .args(["vm.ovf", "vm-disk001.vmdk"]));
    let chain = chains(
        dir.path(),
        r#"[{"type": "vagrant", "output": "boxes/vm.box"}]"#,
    );
    let err = run_chains(
        &chain,
        virtualbox_artifact(&ova),
        &cancelled_midway(dir.path()),
    )
    .await
    .expect_err("cancelled");
    assert!(err.is_cancelled(), "{err:?}");
    assert_eq!(listing(&dir.path().join("boxes")), Vec::<String>::new());
    assert!(ova.exists());
}

/// kiln's own OVA (the qemu builder's `format: "ova"`, whose artifact maps
/// to libvirt unless told otherwise) becomes a virtualbox box too.
#[tokio::test]
async fn vm_kilns_own_ova_becomes_a_virtualbox_box() {
    use kiln::artifact::ovf::{OsType, OvfSpec, export_ova};
    let dir = tempfile::tempdir().expect("tempdir");
    let qcow2 = dir.path().join("disk.qcow2");
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        &qcow2.to_string_lossy(),
        "64M",
    ]);
    let out_dir = dir.path().join("output-vm");
    std::fs::create_dir_all(&out_dir).expect("dir");
    let ova = out_dir.join("vm.ova");
    export_ova(
        &kiln::hypervisor::qemu::QemuImgCli::default(),
        &qcow2,
        &OvfSpec::new("vm", OsType::debian_64(), 64 << 20),
        &ova,
        &RecordingReporter::new(),
        "vm",
        &CancellationToken::new(),
    )
    .expect("exports the OVA");
    let mut input = artifact(dir.path(), &[]);
    input.files = vec![ova.clone()];
    input.package = Some(Package::Ova(ova));
    let chain = chains(
        dir.path(),
        r#"[{"type": "vagrant", "output": "vm.box", "compression_level": 1}]"#,
    );
    run_chains(&chain, input, &ctx(dir.path()))
        .await
        .expect("vagrant runs");
    let file = dir.path().join("vm.box");
    assert_eq!(
        box_entries(&file),
        ["Vagrantfile", "box.ovf", "metadata.json", "vm-disk1.vmdk"]
    );
    let vagrantfile = run(Command::new("tar")
        .arg("-xzOf")
        .arg(&file)
        .arg("Vagrantfile"));
    assert!(
        vagrantfile.contains("config.vm.base_mac = \"080027"),
        "a base MAC even though kiln's OVF names none: {vagrantfile}"
    );
    let home = dir.path().join("vagrant-home");
    let list = crate::support::vagrant_box_add(&home, "kiln-test-own-ova", &file);
    assert!(list.contains("kiln-test-own-ova (virtualbox"), "{list}");
}

/// One vagrant post-processor with an `override` for each provider: each
/// box is made with its provider's keys, and only those.
#[tokio::test]
async fn vm_vagrant_override_applies_to_its_own_provider_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("libvirt.Vagrantfile"),
        "# libvirt only, for {{ .Provider }}\n",
    )
    .expect("template");
    std::fs::write(dir.path().join("NOTES"), "virtualbox only\n").expect("include");
    let chain = chains(
        dir.path(),
        r#"[{"type": "vagrant", "output": "{{.Provider}}.box", "override": {
              "libvirt": {"output": "libvirt/stored.box", "compression_level": 0,
                          "vagrantfile_template": "libvirt.Vagrantfile"},
              "virtualbox": {"include": ["NOTES"]}}}]"#,
    );

    let disk = dir.path().join("output-vm/packer-vm");
    std::fs::create_dir_all(disk.parent().expect("parent")).expect("dir");
    qemu_img(&["create", "-q", "-f", "qcow2", &disk.to_string_lossy(), "1G"]);
    let disk_bytes = std::fs::metadata(&disk).expect("disk").len();
    let input = qcow2_artifact(&disk, Accelerator::Kvm);
    let out = run_chains(&chain, input, &ctx(dir.path()))
        .await
        .expect("vagrant runs");
    let libvirt = dir.path().join("libvirt/stored.box");
    assert_eq!(out[0].files, vec![libvirt.clone()], "the override's output");
    assert!(!dir.path().join("libvirt.box").exists());
    assert_eq!(
        box_entries(&libvirt),
        ["Vagrantfile", "box.img", "metadata.json"],
        "the virtualbox override's include is not in the libvirt box"
    );
    let vagrantfile = String::from_utf8(extract(&libvirt, "Vagrantfile")).expect("text");
    assert!(
        vagrantfile.contains("# libvirt only, for libvirt"),
        "{vagrantfile}"
    );
    assert!(
        std::fs::metadata(&libvirt).expect("box").len() > disk_bytes,
        "compression_level 0 stores the disk as it is"
    );

    let (ova, _) = virtualbox_ova(dir.path());
    let out = run_chains(&chain, virtualbox_artifact(&ova), &ctx(dir.path()))
        .await
        .expect("vagrant runs");
    let virtualbox = dir.path().join("virtualbox.box");
    assert_eq!(out[0].files, vec![virtualbox.clone()], "the shared output");
    let entries = box_entries(&virtualbox);
    assert!(entries.contains(&"NOTES".to_owned()), "{entries:?}");
    let vagrantfile = String::from_utf8(extract(&virtualbox, "Vagrantfile")).expect("text");
    assert!(!vagrantfile.contains("libvirt only"), "{vagrantfile}");
    assert!(vagrantfile.contains("config.vm.base_mac"), "{vagrantfile}");
}
