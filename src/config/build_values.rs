//! The names of the values a build knows only once its machine is up:
//! decoding renders them to placeholders, provisioners fill them in.

/// Values a build knows once its machine is up, usable through
/// `{{ build `Host` }}` and, in execute_command, as `{{ .Host }}`.
pub const BUILD_VALUES: &[&str] = &[
    "ID",
    "Host",
    "Port",
    "User",
    "Password",
    "ConnType",
    "PackerRunUUID",
    "PackerHTTPAddr",
    "PackerHTTPIP",
    "PackerHTTPPort",
    "SSHPublicKey",
    "SSHPrivateKey",
    "WinRMPassword",
];
