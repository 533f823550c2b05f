//! `qemu-img`: create, convert, resize and inspect disk images.
//!
//! The argv of each subcommand is built by a pure function (golden-tested);
//! [`QemuImgCli`] runs it. Steps take a `&dyn QemuImg` so they can be tested
//! with a fake, without the program.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::host::command_line::display_command;
use crate::host::program::run_captured;
use crate::vm::ImageFormat;

/// A backing file for a copy-on-write image (`use_backing_file`).
#[derive(Debug, Clone, Copy)]
pub struct Backing<'a> {
    pub path: &'a Path,
    pub format: ImageFormat,
}

/// How `convert` writes its output, beyond the format.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConvertOptions {
    /// `-c`: compress the output (qcow2 and vmdk only).
    pub compress: bool,
    /// `-f`: the source format; qemu-img guesses when absent.
    pub src_format: Option<ImageFormat>,
    /// `-o` options of the output format, such as `subformat=streamOptimized`.
    pub format_options: Vec<String>,
    /// `-U`: read a source that a running QEMU holds open (its image lock
    /// refuses others); only safe while that VM is paused and flushed.
    pub force_share: bool,
}

impl ConvertOptions {
    /// What an OVF/OVA or a Vagrant box expects of a vmdk: one compressed
    /// stream that needs no sparse-file support to copy.
    pub fn vmdk_stream_optimized() -> Self {
        Self {
            format_options: vec!["subformat=streamOptimized".into()],
            ..Self::default()
        }
    }
}

/// What `qemu-img info --output=json` says about an image.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct ImageInfo {
    /// Size the guest sees, in bytes.
    pub virtual_size: u64,
    /// The format qemu-img detected (`qcow2`, `raw`, …).
    pub format: String,
    /// Bytes allocated on the host, when the file system tells.
    #[serde(default)]
    pub actual_size: Option<u64>,
    /// The backing file, as recorded in the image.
    #[serde(default, rename = "backing-filename")]
    pub backing: Option<PathBuf>,
    #[serde(default, rename = "backing-filename-format")]
    pub backing_format: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum QemuImgError {
    #[error("could not run `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        stderr: String,
    },
    #[error("could not understand the output of `{command}`")]
    BadInfo {
        command: String,
        #[source]
        source: serde_json::Error,
    },
}

/// The disk operations the qemu builder needs.
pub trait QemuImg: Send + Sync {
    fn create(
        &self,
        path: &Path,
        format: ImageFormat,
        size_mib: u64,
        backing: Option<Backing<'_>>,
        extra_args: &[String],
    ) -> Result<(), QemuImgError>;

    fn convert(
        &self,
        src: &Path,
        dst: &Path,
        out_format: ImageFormat,
        options: &ConvertOptions,
        extra_args: &[String],
    ) -> Result<(), QemuImgError>;

    fn resize(
        &self,
        path: &Path,
        format: ImageFormat,
        size_mib: u64,
        extra_args: &[String],
    ) -> Result<(), QemuImgError>;

    fn info(&self, path: &Path) -> Result<ImageInfo, QemuImgError>;
}

/// The conversion OVF/OVA export needs, for every `qemu-img` (the real one
/// and test fakes).
impl<T: QemuImg> crate::artifact::VmdkConverter for T {
    fn to_stream_optimized_vmdk(
        &self,
        src: &Path,
        dst: &Path,
    ) -> Result<(), crate::artifact::ConvertError> {
        self.convert(
            src,
            dst,
            ImageFormat::Vmdk,
            &ConvertOptions::vmdk_stream_optimized(),
            &[],
        )
        .map_err(Into::into)
    }
}

/// `qemu-img create -f FMT [-b BACKING -F FMT] [extra…] PATH SIZEM`
/// (user arguments before the operands, where Packer puts them).
pub fn create_args(
    path: &Path,
    format: ImageFormat,
    size_mib: u64,
    backing: Option<Backing<'_>>,
    extra_args: &[String],
) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["create".into(), "-f".into(), format.as_str().into()];
    if let Some(b) = backing {
        // -F is mandatory since qemu 6.1: probing a backing file's format is unsafe.
        a.extend([
            "-b".into(),
            b.path.into(),
            "-F".into(),
            b.format.as_str().into(),
        ]);
    }
    a.extend(extra_args.iter().map(OsString::from));
    a.push(path.into());
    a.push(format!("{size_mib}M").into());
    a
}

/// `qemu-img convert [-c] [-f SRCFMT] [extra…] -O FMT [-o OPTS] SRC DST`
pub fn convert_args(
    src: &Path,
    dst: &Path,
    out_format: ImageFormat,
    options: &ConvertOptions,
    extra_args: &[String],
) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["convert".into()];
    if options.compress {
        a.push("-c".into());
    }
    if let Some(f) = options.src_format {
        a.extend(["-f".into(), f.as_str().into()]);
    }
    if options.force_share {
        a.push("-U".into());
    }
    a.extend(extra_args.iter().map(OsString::from));
    a.extend(["-O".into(), out_format.as_str().into()]);
    if !options.format_options.is_empty() {
        a.extend(["-o".into(), options.format_options.join(",").into()]);
    }
    a.push(src.into());
    a.push(dst.into());
    a
}

/// `qemu-img resize -f FMT [extra…] PATH SIZEM`
pub fn resize_args(
    path: &Path,
    format: ImageFormat,
    size_mib: u64,
    extra_args: &[String],
) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec!["resize".into(), "-f".into(), format.as_str().into()];
    a.extend(extra_args.iter().map(OsString::from));
    a.push(path.into());
    a.push(format!("{size_mib}M").into());
    a
}

/// `qemu-img info --output=json PATH`
pub fn info_args(path: &Path) -> Vec<OsString> {
    vec!["info".into(), "--output=json".into(), path.into()]
}

/// Runs the real `qemu-img`.
#[derive(Debug, Clone)]
pub struct QemuImgCli {
    program: PathBuf,
}

impl Default for QemuImgCli {
    fn default() -> Self {
        Self::new("qemu-img")
    }
}

impl QemuImgCli {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
        }
    }

    /// Runs `qemu-img ARGS`, returning stdout; stdout and stderr are small
    /// for every subcommand kiln uses, so both are buffered.
    fn run(&self, args: &[OsString]) -> Result<Vec<u8>, QemuImgError> {
        let out =
            run_captured(self.program.as_os_str(), args).map_err(|e| QemuImgError::Spawn {
                command: e.command,
                source: e.source,
            })?;
        if !out.status.success() {
            return Err(QemuImgError::Failed {
                command: out.command,
                status: out.status,
                stderr: out.stderr,
            });
        }
        Ok(out.stdout)
    }
}

impl QemuImg for QemuImgCli {
    fn create(
        &self,
        path: &Path,
        format: ImageFormat,
        size_mib: u64,
        backing: Option<Backing<'_>>,
        extra_args: &[String],
    ) -> Result<(), QemuImgError> {
        self.run(&create_args(path, format, size_mib, backing, extra_args))
            .map(drop)
    }

    fn convert(
        &self,
        src: &Path,
        dst: &Path,
        out_format: ImageFormat,
        options: &ConvertOptions,
        extra_args: &[String],
    ) -> Result<(), QemuImgError> {
        self.run(&convert_args(src, dst, out_format, options, extra_args))
            .map(drop)
    }

    fn resize(
        &self,
        path: &Path,
        format: ImageFormat,
        size_mib: u64,
        extra_args: &[String],
    ) -> Result<(), QemuImgError> {
        self.run(&resize_args(path, format, size_mib, extra_args))
            .map(drop)
    }

    fn info(&self, path: &Path) -> Result<ImageInfo, QemuImgError> {
        let args = info_args(path);
        let stdout = self.run(&args)?;
        serde_json::from_slice(&stdout).map_err(|source| QemuImgError::BadInfo {
            command: display_command(self.program.as_os_str(), &args),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: Vec<OsString>) -> Vec<String> {
        v.into_iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn create_argv() {
        let argv = create_args(Path::new("out/disk"), ImageFormat::Qcow2, 40960, None, &[]);
        assert_eq!(strs(argv), ["create", "-f", "qcow2", "out/disk", "40960M"]);
    }

    #[test]
    fn create_argv_with_backing_file_and_user_args() {
        let argv = create_args(
            Path::new("out/disk"),
            ImageFormat::Qcow2,
            1024,
            Some(Backing {
                path: Path::new("/cache/base.qcow2"),
                format: ImageFormat::Qcow2,
            }),
            &["-o".into(), "preallocation=metadata".into()],
        );
        assert_eq!(
            strs(argv),
            [
                "create",
                "-f",
                "qcow2",
                "-b",
                "/cache/base.qcow2",
                "-F",
                "qcow2",
                "-o",
                "preallocation=metadata",
                "out/disk",
                "1024M"
            ]
        );
    }

    #[test]
    fn convert_argv_compressed() {
        let opts = ConvertOptions {
            compress: true,
            ..ConvertOptions::default()
        };
        let argv = convert_args(
            Path::new("d"),
            Path::new("d.convert"),
            ImageFormat::Qcow2,
            &opts,
            &["-m".into(), "4".into()],
        );
        assert_eq!(
            strs(argv),
            ["convert", "-c", "-m", "4", "-O", "qcow2", "d", "d.convert"]
        );
    }

    #[test]
    fn convert_argv_stream_optimized_vmdk() {
        let opts = ConvertOptions {
            src_format: Some(ImageFormat::Qcow2),
            ..ConvertOptions::vmdk_stream_optimized()
        };
        let argv = convert_args(
            Path::new("d"),
            Path::new("box.vmdk"),
            ImageFormat::Vmdk,
            &opts,
            &[],
        );
        assert_eq!(
            strs(argv),
            [
                "convert",
                "-f",
                "qcow2",
                "-O",
                "vmdk",
                "-o",
                "subformat=streamOptimized",
                "d",
                "box.vmdk"
            ]
        );
    }

    #[test]
    fn resize_and_info_argv() {
        let argv = resize_args(Path::new("d"), ImageFormat::Raw, 2048, &["--shrink".into()]);
        assert_eq!(
            strs(argv),
            ["resize", "-f", "raw", "--shrink", "d", "2048M"]
        );
        assert_eq!(
            strs(info_args(Path::new("d"))),
            ["info", "--output=json", "d"]
        );
    }

    #[test]
    fn info_json_parses() {
        // As printed by qemu-img 10.0 for a qcow2 overlay.
        let json = r#"{
            "children": [],
            "virtual-size": 1073741824,
            "filename": "overlay.qcow2",
            "cluster-size": 65536,
            "format": "qcow2",
            "actual-size": 200704,
            "format-specific": {"type": "qcow2", "data": {"compat": "1.1"}},
            "backing-filename": "base.qcow2",
            "backing-filename-format": "qcow2",
            "dirty-flag": false
        }"#;
        let info: ImageInfo = serde_json::from_str(json).expect("parses");
        assert_eq!(info.virtual_size, 1 << 30);
        assert_eq!(info.format, "qcow2");
        assert_eq!(info.actual_size, Some(200_704));
        assert_eq!(info.backing.as_deref(), Some(Path::new("base.qcow2")));
        assert_eq!(info.backing_format.as_deref(), Some("qcow2"));
    }
}
