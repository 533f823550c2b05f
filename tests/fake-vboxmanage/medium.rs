//! `clonemedium` and `closemedium`. A clone is a new, registered medium
//! with its own UUID holding the source's whole chain flattened (cloning a
//! differencing image gives a standalone disk); the source must not be
//! written by a running VM (VirtualBox locks an attached disk for writing,
//! and a clone needs a read lock: take a snapshot first, then clone the
//! frozen parent). `closemedium` forgets a medium (`--delete`: and its file).

use std::path::{Path, PathBuf};

use crate::machine::{self, Fail, Medium, Registry};
use crate::snapshot::qemu_img;
use crate::vm;

#[derive(Debug, PartialEq, Eq)]
pub struct CloneArgs {
    pub source: String,
    pub target: String,
    pub format: Option<String>,
    pub existing: bool,
}

/// `clonemedium [disk|dvd|floppy] SOURCE TARGET [--format F] [--variant V]
/// [--existing]` (`clonehd`/`clonevdi`: the old names).
pub fn parse_clone(rest: &[String]) -> Result<CloneArgs, Fail> {
    let (mut source, mut target, mut format) = (None, None, None);
    let (mut existing, mut variant) = (false, false);
    let mut it = rest.iter().enumerate();
    while let Some((i, a)) = it.next() {
        let mut value = |opt: &str| {
            it.next()
                .map(|(_, v)| v.clone())
                .ok_or_else(|| Fail::syntax(&format!("Option {opt} requires an argument")))
        };
        match a.as_str() {
            "disk" | "dvd" | "floppy" if i == 0 => {}
            "--format" | "-format" | "-o" => format = Some(value(a)?.to_uppercase()),
            "--variant" | "-variant" | "-m" => {
                let v = value(a)?;
                if !v.split(',').all(|p| {
                    matches!(
                        p.trim(),
                        "Standard" | "Fixed" | "Split2G" | "Stream" | "ESX" | "Formatted"
                    )
                }) {
                    return Err(Fail::new(&[&format!("Invalid medium variant '{v}'")]));
                }
                variant = v != "Standard";
            }
            "--static" | "-static" => variant = true,
            "--existing" | "-existing" => existing = true,
            opt if opt.starts_with('-') => {
                return Err(Fail::syntax(&format!("unknown option: {opt}")));
            }
            positional if source.is_none() => source = Some(positional.to_owned()),
            positional if target.is_none() => target = Some(positional.to_owned()),
            extra => return Err(Fail::syntax(&format!("Invalid parameter '{extra}'"))),
        }
    }
    let Some(source) = source else {
        return Err(Fail::syntax(
            "Mandatory UUID or input file parameter missing",
        ));
    };
    let Some(target) = target else {
        return Err(Fail::syntax("Mandatory output file parameter missing"));
    };
    if existing && (format.is_some() || variant) {
        return Err(Fail::syntax(
            "Specified options which cannot be used with --existing",
        ));
    }
    if let Some(f) = &format
        && !matches!(f.as_str(), "VDI" | "VMDK" | "VHD" | "RAW")
    {
        return Err(Fail::new(&[&format!("Invalid medium format '{f}'")]));
    }
    Ok(CloneArgs {
        source,
        target,
        format,
        existing,
    })
}

/// Finds a medium by UUID or path, registering a file that is not yet
/// registered (as VBoxManage opens one named by path).
fn open(reg: &mut Registry, uuid_or_path: &str) -> Result<usize, Fail> {
    if let Some(i) = reg.medium(uuid_or_path) {
        return Ok(i);
    }
    let path = machine::absolute(uuid_or_path);
    if !path.is_file() {
        return Err(Fail::new(&[&format!(
            "Could not find file for the medium '{}' (VERR_FILE_NOT_FOUND)",
            path.display()
        )]));
    }
    reg.ensure_medium(&path);
    reg.medium(&path.to_string_lossy())
        .ok_or_else(|| Fail::new(&["the medium could not be registered"]))
}

/// A running VM writing to `path` (it is some VM's current hard disk).
fn writer_of<'a>(reg: &'a Registry, path: &Path) -> Option<&'a str> {
    reg.vms
        .iter()
        .filter(|v| vm::is_running(v))
        .find(|v| {
            v.attachments
                .iter()
                .any(|a| a.kind == "hdd" && a.medium.as_deref() == Some(path))
        })
        .map(|v| v.name.as_str())
}

pub fn clonemedium(home: &Path, rest: &[String]) -> Result<(), Fail> {
    let args = parse_clone(rest)?;
    let mut reg = Registry::load(home)?;
    let src = open(&mut reg, &args.source)?;
    let (src_path, src_qcow2, size_mib) = {
        let m = &reg.media[src];
        (m.path.clone(), m.qcow2, m.size_mib)
    };
    if writer_of(&reg, &src_path).is_some() {
        return Err(Fail::new(&[
            &format!(
                "Medium '{}' is locked for writing by another task",
                src_path.display()
            ),
            "Details: code VBOX_E_INVALID_OBJECT_STATE (0x80bb0007), component MediumWrap, interface IMedium, callee nsISupports",
        ]));
    }
    let target: PathBuf = match (args.existing, reg.medium(&args.target)) {
        (true, Some(t)) => reg.media[t].path.clone(),
        (true, None) => {
            let t = open(&mut reg, &args.target)?;
            reg.media[t].path.clone()
        }
        (false, _) => machine::absolute(&args.target),
    };
    if !args.existing && target.exists() {
        return Err(Fail::new(&[
            "Failed to clone medium",
            &format!(
                "Could not create the clone medium '{}' (VERR_ALREADY_EXISTS)",
                target.display()
            ),
        ]));
    }
    // The contents are qcow2 whatever the format says, as createmedium's.
    let src_format = if src_qcow2 { "qcow2" } else { "raw" };
    qemu_img(&[
        "convert",
        "-q",
        "-U",
        "-f",
        src_format,
        "-O",
        "qcow2",
        &src_path.to_string_lossy(),
        &target.to_string_lossy(),
    ])?;
    let format = args.format.unwrap_or_else(|| "VDI".to_owned());
    let uuid = match reg.medium(&target.to_string_lossy()) {
        Some(t) => {
            reg.media[t].qcow2 = true;
            reg.media[t].uuid.clone()
        }
        None => {
            let uuid = uuid::Uuid::new_v4().to_string();
            reg.media.push(Medium {
                uuid: uuid.clone(),
                path: target,
                size_mib,
                qcow2: true,
                parent: None,
            });
            uuid
        }
    };
    reg.save(home)?;
    eprintln!("0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%");
    println!("Clone medium created in format '{format}'. UUID: {uuid}");
    Ok(())
}

/// `closemedium [disk|dvd|floppy] UUID|FILE [--delete]`.
pub fn closemedium(home: &Path, rest: &[String]) -> Result<(), Fail> {
    let mut rest: Vec<&String> = rest.iter().collect();
    if matches!(
        rest.first().map(|s| s.as_str()),
        Some("disk" | "dvd" | "floppy")
    ) {
        rest.remove(0);
    }
    let (mut target, mut delete) = (None, false);
    for a in rest {
        match a.as_str() {
            "--delete" | "-delete" => delete = true,
            opt if opt.starts_with('-') => return Err(Fail::unknown_option(opt)),
            t if target.is_none() => target = Some(t.to_owned()),
            extra => return Err(Fail::syntax(&format!("Invalid parameter '{extra}'"))),
        }
    }
    let Some(target) = target else {
        return Err(Fail::syntax(
            "Mandatory UUID or input file parameter missing",
        ));
    };
    let mut reg = Registry::load(home)?;
    let i = open(&mut reg, &target)?;
    let path = reg.media[i].path.clone();
    let users = reg
        .vms
        .iter()
        .filter(|v| {
            v.attachments
                .iter()
                .any(|a| a.medium.as_deref() == Some(path.as_path()))
        })
        .count();
    if users > 0 {
        return Err(Fail::new(&[
            &format!(
                "Cannot close medium '{}' because it is still attached to {users} virtual machines",
                path.display()
            ),
            "Details: code VBOX_E_OBJECT_IN_USE (0x80bb000c), component MediumWrap, interface IMedium, callee nsISupports",
        ]));
    }
    let uuid = reg.media[i].uuid.clone();
    let children = reg
        .media
        .iter()
        .filter(|m| m.parent.as_deref() == Some(uuid.as_str()))
        .count();
    if children > 0 {
        return Err(Fail::new(&[
            &format!(
                "Cannot close medium '{}' because it has {children} child media",
                path.display()
            ),
            "Details: code VBOX_E_OBJECT_IN_USE (0x80bb000c), component MediumWrap, interface IMedium, callee nsISupports",
        ]));
    }
    reg.media.remove(i);
    reg.save(home)?;
    if delete {
        std::fs::remove_file(&path).map_err(|e| Fail::io("delete the medium", &e))?;
        eprintln!("0%...10%...20%...30%...40%...50%...60%...70%...80%...90%...100%");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn clonemedium_takes_vboxmanage_arguments() {
        let a = parse_clone(&args(&[
            "disk",
            "a.vdi",
            "b.vdi",
            "--format",
            "vdi",
            "--variant",
            "Standard",
        ]))
        .expect("parses");
        assert_eq!(
            a,
            CloneArgs {
                source: "a.vdi".into(),
                target: "b.vdi".into(),
                format: Some("VDI".into()),
                existing: false
            }
        );
        let a = parse_clone(&args(&["{1234}", "b.vdi", "--existing"])).expect("parses");
        assert!(a.existing);
    }

    #[test]
    fn bad_clonemedium_arguments_say_what_vboxmanage_says() {
        let text = |a: &[&str]| format!("{:?}", parse_clone(&args(a)).expect_err("refused"));
        assert!(text(&["disk"]).contains("Mandatory UUID or input file parameter missing"));
        assert!(text(&["a.vdi"]).contains("Mandatory output file parameter missing"));
        assert!(text(&["a", "b", "c"]).contains("Invalid parameter 'c'"));
        assert!(text(&["a", "b", "--format", "QED"]).contains("Invalid medium format 'QED'"));
        assert!(text(&["a", "b", "--variant", "Huge"]).contains("Invalid medium variant 'Huge'"));
        assert!(
            text(&["a", "b", "--existing", "--format", "VDI"])
                .contains("Specified options which cannot be used with --existing")
        );
        assert!(text(&["a", "b", "--bogus"]).contains("unknown option: --bogus"));
    }
}
