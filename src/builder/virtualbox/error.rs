//! Why a virtualbox-iso step failed, each variant with its cause and the
//! class the CLI maps to an exit status.

use std::path::PathBuf;
use std::time::Duration;

use crate::communicator::ssh::SshError;
use crate::host::port::PortError;
use crate::hypervisor::virtualbox::VBoxError;
use crate::run::runner::{FailureClass, StepFailure};

#[derive(Debug, thiserror::Error)]
pub enum VBoxStepError {
    #[error("cannot use VirtualBox")]
    Unusable(#[source] VBoxError),
    #[error("VBoxManage was not found")]
    NotFound,
    #[error("the VirtualBox version is not known")]
    UnknownVersion,
    #[error("VBoxManage failed")]
    Command(#[source] VBoxError),
    /// A blocking VBoxManage call that panicked or was dropped.
    #[error("a VBoxManage task failed")]
    Task(#[source] tokio::task::JoinError),
    #[error("cannot ask VBoxManage for its guest additions ISO")]
    AdditionsIso(#[source] VBoxError),
    #[error(
        "offline: this VirtualBox has no guest additions ISO of its own, and its \
         checksum list is online. Download {url} elsewhere, then either set \
         guest_additions_url to that file, or `kiln cache add FILE --checksum \
         sha256:<hex>` and set guest_additions_sha256 to the same <hex>; or set \
         guest_additions_mode \"disable\""
    )]
    OfflineAdditions { url: String },
    #[error("an ISO to attach was not fetched")]
    NoIso,
    #[error("vrdp_bind_address {address:?} is not an IP address")]
    VrdpAddress {
        address: String,
        #[source]
        source: std::net::AddrParseError,
    },
    #[error(
        "no free port for VRDP on {address} between {min} and {max} (vrdp_port_min..vrdp_port_max)"
    )]
    NoVrdpPort {
        address: std::net::IpAddr,
        min: u16,
        max: u16,
    },
    #[error("cannot find a free port for SSH")]
    NoSshPort(#[source] PortError),
    #[error("cannot read {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot upload {target}")]
    Upload {
        target: String,
        #[source]
        source: SshError,
    },
    #[error("cannot list {}", .dir.display())]
    ListOutput {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("VBoxManage export wrote nothing to {}", .dir.display())]
    NothingExported { dir: PathBuf },
    #[error(
        "the guest did not stop within shutdown_timeout ({timeout:?}); it will be powered off. Check shutdown_command (or that the guest acts on the ACPI power button), or raise shutdown_timeout{serial_note}"
    )]
    ShutdownTimeout {
        timeout: Duration,
        serial_note: String,
    },
}

impl StepFailure for VBoxStepError {
    fn class(&self) -> FailureClass {
        match self {
            // The guest's side: it would not take a file or stop.
            Self::Upload { .. } | Self::ShutdownTimeout { .. } => FailureClass::Guest,
            // The template asks for what cannot be done here.
            Self::OfflineAdditions { .. } | Self::VrdpAddress { .. } => FailureClass::Input,
            Self::Unusable(_)
            | Self::NotFound
            | Self::UnknownVersion
            | Self::Command(_)
            | Self::Task(_)
            | Self::AdditionsIso(_)
            | Self::NoIso
            | Self::NoVrdpPort { .. }
            | Self::NoSshPort(_)
            | Self::Read { .. }
            | Self::ListOutput { .. }
            | Self::NothingExported { .. } => FailureClass::Host,
        }
    }
}
