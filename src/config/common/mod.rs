//! Configuration blocks shared by several builders, decoded once, one
//! file per section: the ISO, the HTTP server, the boot command, the
//! communicator, shutdown, the extra media, the output directory and the
//! host side of the SSH forward.

mod boot;
mod host_port;
mod http;
mod iso;
mod media;
mod output;
mod shutdown;
mod ssh;

pub use boot::{BOOT_COMMAND_FIELDS, BootConfig};
pub use host_port::HostPortConfig;
pub use http::{HTTP_CONTENT_FIELDS, HttpConfig};
pub use iso::IsoConfig;
pub use media::MediaConfig;
pub use output::output_directory;
pub use shutdown::ShutdownConfig;
pub use ssh::{Communicator, SshConfig};

/// Decodes sections the way a template does: through one qemu builder.
#[cfg(test)]
pub(crate) mod test_support {
    use crate::config::qemu::QemuConfig;
    use crate::config::{BuilderConfig, Selection, prepare_text};

    /// The qemu builder with `fields` (JSON members, none if empty) after
    /// the ones every qemu build needs; the rendered diagnostics beside it.
    pub fn qemu_with(fields: &str) -> (Option<QemuConfig>, String) {
        let sep = if fields.is_empty() { "" } else { ", " };
        let text = format!(
            r#"{{"builders": [{{"type": "qemu", "iso_url": "a.iso", "iso_checksum": "none", "ssh_username": "root"{sep}{fields}}}]}}"#
        );
        qemu_template(&text)
    }

    /// The qemu builder of a whole template `text`.
    pub fn qemu_template(text: &str) -> (Option<QemuConfig>, String) {
        let (prepared, diags) = prepare_text(text, &Selection::default());
        let config = prepared.builds.into_iter().next().map(|b| match b.builder {
            BuilderConfig::Qemu(q) => *q,
            other => panic!("not qemu: {other:?}"),
        });
        (config, diags.render())
    }
}
