//! Packing an OVF package: convert the disk to a streamOptimized VMDK
//! (through a [`VmdkConverter`], qemu-img in kiln), describe it, and either tar the three files into an `.ova` or
//! leave them as a directory.
//!
//! Everything is staged in a hidden directory next to the output and moved
//! into place by one rename when complete, so a failed or cancelled export
//! leaves neither a partial package nor staging files behind (the staging
//! directory is a `TempDir`, removed on every early return).
//!
//! These functions block (qemu-img and file copies): call them from
//! `spawn_blocking`. Cancellation is checked between stages and between
//! chunks while packing; a running qemu-img convert is not interrupted.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};
use tempfile::TempDir;
use tokio_util::sync::CancellationToken;

use super::descriptor::write_ovf;
use super::manifest::manifest_line;
use super::{DiskRef, OvaError, OvfSpec};
use crate::artifact::VmdkConverter;
use crate::ui::{Progress, Reporter};

/// Read size while packing: large enough that syscalls do not matter next
/// to hashing and copying.
const CHUNK: usize = 1 << 20;

/// Longest name a POSIX ustar header holds without a prefix split.
const USTAR_NAME_MAX: usize = 100;

/// Exports `source_disk` (any format qemu-img reads) as a single `.ova` at
/// `out`: a ustar archive of `NAME.ovf` (first, as the OVF spec requires),
/// the disk, and `NAME.mf` (SHA256 of both, computed while they are
/// packed). Returns the files written (just `out`).
pub fn export_ova(
    img: &dyn VmdkConverter,
    source_disk: &Path,
    spec: &OvfSpec,
    out: &Path,
    reporter: &dyn Reporter,
    build: &str,
    cancel: &CancellationToken,
) -> Result<Vec<PathBuf>, OvaError> {
    let names = PackageNames::new(spec)?;
    let out_name = output_name(out)?;
    let staging = staging_dir(out, &out_name)?;
    reporter.info(
        build,
        &format!(
            "converting {} to a streamOptimized VMDK",
            source_disk.display()
        ),
    );
    let vmdk = convert_disk(img, source_disk, staging.path(), &names.disk, out, cancel)?;
    let disk = disk_ref(&vmdk, &names.disk, spec)?;
    let ovf = write_ovf(spec, &disk);

    let tar_path = staging.path().join(&out_name);
    let progress = reporter.progress(
        build,
        &format!("packing {out_name}"),
        Some(ovf.len() as u64 + disk.file_size),
    );
    let packed = pack_ova(
        &tar_path,
        &names,
        &ovf,
        &vmdk,
        disk.file_size,
        &*progress,
        cancel,
    )
    .map_err(|e| {
        if cancel.is_cancelled() {
            cancelled(out)
        } else {
            e
        }
    });
    progress.finish(if packed.is_ok() { "packed" } else { "failed" });
    packed?;
    if cancel.is_cancelled() {
        return Err(cancelled(out));
    }
    rename(&tar_path, out)?;
    Ok(vec![out.to_path_buf()])
}

/// Exports `source_disk` as an OVF directory at `out_dir`: `NAME.ovf`, the
/// disk (`spec.disk_file_name`) and `NAME.mf`. `out_dir` must not exist, or
/// be empty. Returns the three files.
pub fn export_ovf(
    img: &dyn VmdkConverter,
    source_disk: &Path,
    spec: &OvfSpec,
    out_dir: &Path,
    reporter: &dyn Reporter,
    build: &str,
    cancel: &CancellationToken,
) -> Result<Vec<PathBuf>, OvaError> {
    let names = PackageNames::new(spec)?;
    let out_name = output_name(out_dir)?;
    let staging = staging_dir(out_dir, &out_name)?;
    reporter.info(
        build,
        &format!(
            "converting {} to a streamOptimized VMDK",
            source_disk.display()
        ),
    );
    let vmdk = convert_disk(
        img,
        source_disk,
        staging.path(),
        &names.disk,
        out_dir,
        cancel,
    )?;
    let disk = disk_ref(&vmdk, &names.disk, spec)?;
    let ovf = write_ovf(spec, &disk);
    let ovf_path = staging.path().join(&names.ovf);
    std::fs::write(&ovf_path, &ovf).map_err(|source| OvaError::Write {
        path: ovf_path.clone(),
        source,
    })?;

    // The disk was written by qemu-img, so here it takes one read to hash.
    let progress = reporter.progress(
        build,
        &format!("hashing {}", names.disk),
        Some(disk.file_size),
    );
    let hashed = hash_file(&vmdk, disk.file_size, &*progress, cancel).map_err(|e| {
        if cancel.is_cancelled() {
            cancelled(out_dir)
        } else {
            e
        }
    });
    progress.finish(if hashed.is_ok() { "hashed" } else { "failed" });
    let disk_digest = hashed?;

    let mut mf = manifest_line(&names.ovf, &Sha256::digest(ovf.as_bytes()));
    mf.push_str(&manifest_line(&names.disk, &disk_digest));
    let mf_path = staging.path().join(&names.mf);
    std::fs::write(&mf_path, mf).map_err(|source| OvaError::Write {
        path: mf_path.clone(),
        source,
    })?;
    if cancel.is_cancelled() {
        return Err(cancelled(out_dir));
    }

    // The staging directory is private (0700); the package should not be.
    set_dir_mode(staging.path())?;
    let staged = staging.keep();
    if let Err(e) = rename(&staged, out_dir) {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(e);
    }
    Ok([&names.ovf, &names.disk, &names.mf]
        .into_iter()
        .map(|n| out_dir.join(n))
        .collect())
}

/// The three file names inside a package, checked to be plain names that
/// fit a ustar header.
struct PackageNames {
    ovf: String,
    disk: String,
    mf: String,
}

impl PackageNames {
    fn new(spec: &OvfSpec) -> Result<Self, OvaError> {
        let names = Self {
            ovf: format!("{}.ovf", spec.vm_name),
            disk: spec.disk_file_name.clone(),
            mf: format!("{}.mf", spec.vm_name),
        };
        for name in [&names.ovf, &names.disk, &names.mf] {
            check_file_name(name)?;
        }
        if names.disk == names.ovf || names.disk == names.mf {
            return Err(OvaError::BadFileName {
                name: names.disk,
                reason: "the disk would overwrite the descriptor or manifest",
            });
        }
        Ok(names)
    }
}

fn check_file_name(name: &str) -> Result<(), OvaError> {
    let reason = if name.contains('/') || name.contains('\0') {
        Some("it must be a plain file name")
    } else if name.starts_with('.') {
        Some("it must not start with a dot")
    } else if name.len() > USTAR_NAME_MAX {
        Some("a ustar archive holds names of at most 100 bytes")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(OvaError::BadFileName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

fn output_name(out: &Path) -> Result<String, OvaError> {
    out.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| OvaError::BadOutput {
            path: out.to_path_buf(),
        })
}

/// `.OUTNAME.kiln-tmp-XXXXXX` beside `out`: on the same file system, so
/// the final move is a rename, and hidden from globs over the output dir.
fn staging_dir(out: &Path, out_name: &str) -> Result<TempDir, OvaError> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    tempfile::Builder::new()
        .prefix(&format!(".{out_name}.kiln-tmp-"))
        .tempdir_in(&dir)
        .map_err(|source| OvaError::Staging { dir, source })
}

fn convert_disk(
    img: &dyn VmdkConverter,
    source_disk: &Path,
    staging: &Path,
    disk_name: &str,
    out: &Path,
    cancel: &CancellationToken,
) -> Result<PathBuf, OvaError> {
    if cancel.is_cancelled() {
        return Err(cancelled(out));
    }
    let vmdk = staging.join(disk_name);
    img.to_stream_optimized_vmdk(source_disk, &vmdk)
        .map_err(|source| OvaError::Convert {
            source_disk: source_disk.to_path_buf(),
            source,
        })?;
    if cancel.is_cancelled() {
        return Err(cancelled(out));
    }
    Ok(vmdk)
}

fn disk_ref(vmdk: &Path, name: &str, spec: &OvfSpec) -> Result<DiskRef, OvaError> {
    let meta = std::fs::metadata(vmdk).map_err(|source| OvaError::Read {
        path: vmdk.to_path_buf(),
        source,
    })?;
    Ok(DiskRef {
        file_name: name.to_owned(),
        file_size: meta.len(),
        capacity: spec.disk_capacity_bytes,
    })
}

fn pack_ova(
    tar_path: &Path,
    names: &PackageNames,
    ovf: &str,
    vmdk: &Path,
    vmdk_size: u64,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<(), OvaError> {
    let write_err = |source| OvaError::Write {
        path: tar_path.to_path_buf(),
        source,
    };
    let file = File::create(tar_path).map_err(write_err)?;
    let mut tar = tar::Builder::new(BufWriter::with_capacity(CHUNK, file));
    let mtime = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());

    // The descriptor first: importers read it without scanning the archive.
    let ovf_header = ustar_header(&names.ovf, ovf.len() as u64, mtime)?;
    tar.append(&ovf_header, ovf.as_bytes()).map_err(write_err)?;
    let ovf_digest = Sha256::digest(ovf.as_bytes());
    let ovf_len = ovf.len() as u64;
    progress.set_position(ovf_len);

    // The disk, hashed as it is copied.
    let source = File::open(vmdk).map_err(|source| OvaError::Read {
        path: vmdk.to_path_buf(),
        source,
    })?;
    let mut reader = HashingReader {
        inner: BufReader::with_capacity(CHUNK, source).take(vmdk_size),
        hasher: Sha256::new(),
        count: 0,
        failed_reading: false,
        base: ovf_len,
        progress,
        cancel,
    };
    let disk_header = ustar_header(&names.disk, vmdk_size, mtime)?;
    tar.append(&disk_header, &mut reader).map_err(|source| {
        if reader.failed_reading {
            OvaError::Read {
                path: vmdk.to_path_buf(),
                source,
            }
        } else {
            write_err(source)
        }
    })?;
    if reader.count != vmdk_size {
        return Err(OvaError::SizeChanged {
            path: vmdk.to_path_buf(),
            expected: vmdk_size,
            actual: reader.count,
        });
    }
    let disk_digest = reader.hasher.finalize();

    let mut mf = manifest_line(&names.ovf, &ovf_digest);
    mf.push_str(&manifest_line(&names.disk, &disk_digest));
    let mf_header = ustar_header(&names.mf, mf.len() as u64, mtime)?;
    tar.append(&mf_header, mf.as_bytes()).map_err(write_err)?;

    let buffered = tar.into_inner().map_err(write_err)?;
    let file = buffered
        .into_inner()
        .map_err(|e| write_err(e.into_error()))?;
    // Durable before it is renamed into place: a crash must not leave a
    // complete-looking name over incomplete data.
    file.sync_all().map_err(write_err)
}

fn ustar_header(name: &str, size: u64, mtime: u64) -> Result<tar::Header, OvaError> {
    let mut header = tar::Header::new_ustar();
    header.set_path(name).map_err(|_| OvaError::BadFileName {
        name: name.to_owned(),
        reason: "a ustar archive cannot hold it",
    })?;
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(mtime);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    Ok(header)
}

/// Hashes and counts what passes through, reports progress, and stops with
/// an error once the build is cancelled.
struct HashingReader<'a, R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    /// Set when the error came from the file (not the cancellation).
    failed_reading: bool,
    /// Progress position before this file.
    base: u64,
    progress: &'a dyn Progress,
    cancel: &'a CancellationToken,
}

impl<R: Read> Read for HashingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.is_cancelled() {
            // Not ErrorKind::Interrupted: io::copy would retry it.
            return Err(io::Error::other("cancelled"));
        }
        let n = self
            .inner
            .read(buf)
            .inspect_err(|_| self.failed_reading = true)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        self.progress.set_position(self.base + self.count);
        Ok(n)
    }
}

/// SHA256 of a file of `size` bytes, with progress and cancellation.
fn hash_file(
    path: &Path,
    size: u64,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<Vec<u8>, OvaError> {
    let read_err = |source| OvaError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_err)?;
    let mut reader = HashingReader {
        inner: file,
        hasher: Sha256::new(),
        count: 0,
        failed_reading: false,
        base: 0,
        progress,
        cancel,
    };
    let mut buf = vec![0; CHUNK];
    while reader.read(&mut buf).map_err(read_err)? != 0 {}
    if reader.count != size {
        return Err(OvaError::SizeChanged {
            path: path.to_path_buf(),
            expected: size,
            actual: reader.count,
        });
    }
    Ok(reader.hasher.finalize().to_vec())
}

fn rename(from: &Path, to: &Path) -> Result<(), OvaError> {
    std::fs::rename(from, to).map_err(|source| OvaError::Rename {
        from: from.to_path_buf(),
        to: to.to_path_buf(),
        source,
    })
}

fn set_dir_mode(dir: &Path) -> Result<(), OvaError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).map_err(|source| {
        OvaError::Write {
            path: dir.to_path_buf(),
            source,
        }
    })
}

fn cancelled(out: &Path) -> OvaError {
    OvaError::Cancelled {
        out: out.to_path_buf(),
    }
}
