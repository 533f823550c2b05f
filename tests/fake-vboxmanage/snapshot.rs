//! `snapshot VM take|delete`: a snapshot freezes each hard disk and sends
//! the VM's writes to a differencing image in the VM's `Snapshots/`
//! folder, as VirtualBox does. Here the differencing image is a qcow2
//! overlay: made live with QMP `blockdev-snapshot-sync` while the VM runs
//! (`qemu-img create -b` when it does not), and deleting the snapshot
//! merges it back into its parent (QMP `block-commit` of the active layer,
//! or `qemu-img commit`), as VirtualBox merges on `snapshot delete`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::machine::{self, Fail, Medium, Registry, Snapshot, SnapshotDisk};
use crate::vm::{self, Qmp};

/// How long a live merge may take before the simulator gives up (a
/// differencing image written for seconds merges in well under this).
const MERGE_LIMIT: Duration = Duration::from_secs(600);
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, PartialEq, Eq)]
pub enum SnapshotCommand {
    Take {
        name: String,
        description: String,
        live: bool,
    },
    Delete {
        snapshot: String,
    },
}

/// `snapshot VM take NAME [--description D] [--live] [--uniquename F]`,
/// `snapshot VM delete NAME|UUID`.
pub fn parse(rest: &[String]) -> Result<(String, SnapshotCommand), Fail> {
    let (Some(vm), Some(sub)) = (rest.first(), rest.get(1)) else {
        return Err(Fail::syntax("Not enough parameters"));
    };
    let args = &rest[2..];
    let command = match sub.as_str() {
        "take" => {
            let Some(name) = args.first().filter(|a| !a.starts_with('-')) else {
                return Err(Fail::syntax("Missing snapshot name"));
            };
            let (mut description, mut live) = (String::new(), false);
            let mut opts = machine::Opts::new(&args[1..]);
            while let Some(opt) = opts.next_opt()? {
                match opt.as_str() {
                    "--description" | "-description" | "-d" => description = opts.value(&opt)?,
                    "--live" | "-live" => live = true,
                    "--uniquename" => {
                        opts.value(&opt)?;
                    }
                    _ => return Err(Fail::unknown_option(&opt)),
                }
            }
            SnapshotCommand::Take {
                name: name.clone(),
                description,
                live,
            }
        }
        "delete" => match args {
            [snapshot] => SnapshotCommand::Delete {
                snapshot: snapshot.clone(),
            },
            [] => return Err(Fail::syntax("Missing snapshot name")),
            [_, extra, ..] => {
                return Err(Fail::syntax(&format!("Invalid parameter '{extra}'")));
            }
        },
        "restore" | "restorecurrent" | "edit" | "list" | "showvminfo" => {
            return Err(Fail::new(&[&format!(
                "'snapshot {sub}' is not simulated by kiln's VBoxManage"
            )]));
        }
        other => return Err(Fail::syntax(&format!("Invalid parameter '{other}'"))),
    };
    Ok((vm.clone(), command))
}

pub fn snapshot(home: &Path, rest: &[String]) -> Result<(), Fail> {
    let (name, command) = parse(rest)?;
    let mut reg = Registry::load(home)?;
    let i = reg.find(&name)?;
    vm::refresh_state(&mut reg.vms[i]);
    match command {
        SnapshotCommand::Take {
            name, description, ..
        } => take(home, &mut reg, i, name, description),
        SnapshotCommand::Delete { snapshot } => delete(home, &mut reg, i, &snapshot),
    }
}

fn take(
    home: &Path,
    reg: &mut Registry,
    i: usize,
    name: String,
    description: String,
) -> Result<(), Fail> {
    let uuid = uuid::Uuid::new_v4().to_string();
    let running = vm::is_running(&reg.vms[i]);
    let folder = reg.vms[i].dir.join("Snapshots");
    std::fs::create_dir_all(&folder).map_err(|e| Fail::io("create the snapshot folder", &e))?;
    let mut qmp = if running {
        Some(Qmp::connect(&reg.vms[i])?)
    } else {
        None
    };
    let mut disks = Vec::new();
    let hard_disks: Vec<(usize, PathBuf)> = reg.vms[i]
        .attachments
        .iter()
        .enumerate()
        .filter(|(_, a)| a.kind == "hdd")
        .filter_map(|(n, a)| a.medium.clone().map(|p| (n, p)))
        .collect();
    for (n, parent) in hard_disks {
        let parent_uuid = reg.medium(&parent.to_string_lossy()).map(|m| {
            let m = &reg.media[m];
            (m.uuid.clone(), m.size_mib, m.qcow2)
        });
        let (parent_uuid, size_mib, qcow2) =
            parent_uuid.unwrap_or_else(|| (String::new(), 0, true));
        let diff_uuid = uuid::Uuid::new_v4().to_string();
        let diff = folder.join(format!("{{{diff_uuid}}}.vdi"));
        match qmp.as_mut() {
            Some(qmp) => {
                let device = device_of(qmp, &parent)?;
                qmp.execute(
                    "blockdev-snapshot-sync",
                    &json!({"device": device, "snapshot-file": diff.to_string_lossy(),
                            "format": "qcow2"}),
                )?;
            }
            None => qemu_img(&[
                "create",
                "-q",
                "-f",
                "qcow2",
                "-F",
                if qcow2 { "qcow2" } else { "raw" },
                "-b",
                &parent.to_string_lossy(),
                &diff.to_string_lossy(),
            ])?,
        }
        reg.media.push(Medium {
            uuid: diff_uuid,
            path: diff.clone(),
            size_mib,
            qcow2: true,
            parent: Some(parent_uuid),
        });
        reg.vms[i].attachments[n].medium = Some(diff.clone());
        disks.push(SnapshotDisk { diff, parent });
    }
    reg.vms[i].snapshots.push(Snapshot {
        name,
        uuid: uuid.clone(),
        description,
        disks,
    });
    reg.save(home)?;
    eprintln!("0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%");
    println!("Snapshot taken. UUID: {uuid}");
    Ok(())
}

fn delete(home: &Path, reg: &mut Registry, i: usize, target: &str) -> Result<(), Fail> {
    let bare = target.trim_matches(|c| c == '{' || c == '}');
    let Some(pos) = reg.vms[i]
        .snapshots
        .iter()
        .position(|s| s.uuid == bare || s.name == target)
    else {
        return Err(Fail::new(&[
            &format!("Could not find a snapshot named '{target}'"),
            "Details: code VBOX_E_OBJECT_NOT_FOUND (0x80bb0001), component MachineWrap, interface IMachine, callee nsISupports",
        ]));
    };
    if pos + 1 != reg.vms[i].snapshots.len() {
        return Err(Fail::new(&[
            "deleting a snapshot that is not the current one is not simulated by kiln's VBoxManage",
        ]));
    }
    let snap = reg.vms[i].snapshots[pos].clone();
    let running = vm::is_running(&reg.vms[i]);
    let mut qmp = if running {
        Some(Qmp::connect(&reg.vms[i])?)
    } else {
        None
    };
    for disk in &snap.disks {
        match qmp.as_mut() {
            Some(qmp) => merge_live(qmp, &disk.diff)?,
            None => qemu_img(&["commit", "-q", &disk.diff.to_string_lossy()])?,
        }
        for a in &mut reg.vms[i].attachments {
            if a.medium.as_deref() == Some(disk.diff.as_path()) {
                a.medium = Some(disk.parent.clone());
            }
        }
        reg.media.retain(|m| m.path != disk.diff);
        let _ = std::fs::remove_file(&disk.diff);
    }
    reg.vms[i].snapshots.remove(pos);
    reg.save(home)?;
    eprintln!("0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%");
    Ok(())
}

/// The QEMU drive whose active image is `file`.
fn device_of(qmp: &mut Qmp, file: &Path) -> Result<String, Fail> {
    let blocks = qmp.execute("query-block", &json!({}))?;
    blocks
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| {
            b.pointer("/inserted/file").and_then(Value::as_str)
                == Some(file.to_string_lossy().as_ref())
        })
        .and_then(|b| b.get("device").and_then(Value::as_str))
        .map(str::to_owned)
        .ok_or_else(|| {
            Fail::new(&[&format!(
                "the running VM has no drive on '{}'",
                file.display()
            )])
        })
}

/// Merges the running VM's active layer `diff` into its backing file:
/// an active `block-commit`, completed once QEMU says it is ready.
fn merge_live(qmp: &mut Qmp, diff: &Path) -> Result<(), Fail> {
    let device = device_of(qmp, diff)?;
    let job = format!("merge-{device}");
    qmp.execute("block-commit", &json!({"job-id": job, "device": device}))?;
    let deadline = Instant::now() + MERGE_LIMIT;
    let mut completing = false;
    loop {
        let jobs = qmp.execute("query-block-jobs", &json!({}))?;
        let this = jobs
            .as_array()
            .into_iter()
            .flatten()
            .find(|j| j.get("device").and_then(Value::as_str) == Some(job.as_str()))
            .cloned();
        match this {
            None if completing => return Ok(()),
            None => {
                return Err(Fail::new(&[&format!(
                    "the merge of '{}' ended before it was ready",
                    diff.display()
                )]));
            }
            Some(j) if !completing && j.get("ready").and_then(Value::as_bool) == Some(true) => {
                qmp.execute("block-job-complete", &json!({"device": job}))?;
                completing = true;
            }
            Some(_) => {}
        }
        if Instant::now() >= deadline {
            return Err(Fail::new(&[&format!(
                "the merge of '{}' did not finish in {MERGE_LIMIT:?}",
                diff.display()
            )]));
        }
        std::thread::sleep(POLL);
    }
}

pub fn qemu_img(args: &[&str]) -> Result<(), Fail> {
    let out = std::process::Command::new("qemu-img")
        .args(args)
        .output()
        .map_err(|e| Fail::io("run qemu-img", &e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Fail::new(&[&format!(
            "qemu-img {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn take_and_delete_parse_as_vboxmanage_spells_them() {
        let (vm, c) = parse(&args(&[
            "vm",
            "take",
            "installed",
            "--description",
            "after the install",
            "--live",
        ]))
        .expect("parses");
        assert_eq!(vm, "vm");
        assert_eq!(
            c,
            SnapshotCommand::Take {
                name: "installed".into(),
                description: "after the install".into(),
                live: true
            }
        );
        let (_, c) = parse(&args(&["vm", "delete", "installed"])).expect("parses");
        assert_eq!(
            c,
            SnapshotCommand::Delete {
                snapshot: "installed".into()
            }
        );
    }

    #[test]
    fn bad_snapshot_commands_are_refused() {
        let text = |a: &[&str]| format!("{:?}", parse(&args(a)).expect_err("refused"));
        assert!(text(&["vm"]).contains("Not enough parameters"));
        assert!(text(&["vm", "take"]).contains("Missing snapshot name"));
        assert!(text(&["vm", "take", "--live"]).contains("Missing snapshot name"));
        assert!(text(&["vm", "take", "s", "--bogus"]).contains("Unknown option: --bogus"));
        assert!(text(&["vm", "delete"]).contains("Missing snapshot name"));
        assert!(text(&["vm", "delete", "a", "b"]).contains("Invalid parameter 'b'"));
        assert!(text(&["vm", "frobnicate"]).contains("Invalid parameter 'frobnicate'"));
    }
}
