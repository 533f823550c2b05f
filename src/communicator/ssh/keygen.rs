//! The temporary key pair a build makes when the template gives no way to
//! log in (no `ssh_password`, `ssh_private_key_file` or `ssh_agent_auth`),
//! as Packer does: the public half is offered to the boot command and the
//! answer files as `{{ .SSHPublicKey }}`, the private half logs in. It lives
//! in memory only; it is never printed or written by kiln.

use std::sync::Arc;

use russh::keys::ssh_key::LineEnding;
use russh::keys::ssh_key::private::{EcdsaKeypair, KeypairData, RsaKeypair};
use russh::keys::{EcdsaCurve, PrivateKey};

/// `temporary_key_pair_type`: the key a build makes when the template
/// gives no way to log in. DSA (deprecated, and refused by modern servers)
/// is not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPairType {
    Rsa,
    Ecdsa,
    Ed25519,
}

impl KeyPairType {
    pub fn name(self) -> &'static str {
        match self {
            Self::Rsa => "rsa",
            Self::Ecdsa => "ecdsa",
            Self::Ed25519 => "ed25519",
        }
    }
}

/// `temporary_key_pair_type` and `temporary_key_pair_bits`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemporaryKeyPair {
    pub kind: KeyPairType,
    /// As given; `bits()` applies Packer's defaults.
    pub bits: Option<u32>,
}

impl TemporaryKeyPair {
    /// Packer's defaults: RSA 4096 bits, ECDSA on P-521; Ed25519 has one size.
    pub fn bits(&self) -> u32 {
        match (self.kind, self.bits) {
            (KeyPairType::Ed25519, _) => 256,
            (_, Some(b)) => b,
            (KeyPairType::Rsa, None) => 4096,
            (KeyPairType::Ecdsa, None) => 521,
        }
    }
}

/// A key made for one build.
#[derive(Clone)]
pub struct TemporaryKey {
    pub private: Arc<PrivateKey>,
    /// One `authorized_keys` line: `ssh-ed25519 AAAA… comment`, no newline.
    pub public_line: String,
    /// The private key in OpenSSH's PEM format (`{{ .SSHPrivateKey }}`).
    pub private_pem: String,
    /// The comment ending `public_line`, unique to the run: how
    /// `ssh_clear_authorized_keys` finds the line again in the guest.
    pub comment: String,
}

// The private half must never reach a log through `{:?}`.
impl std::fmt::Debug for TemporaryKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TemporaryKey")
            .field("public_line", &self.public_line)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot make the temporary {kind} SSH key pair (temporary_key_pair_type)")]
pub struct KeygenError {
    kind: &'static str,
    #[source]
    source: russh::keys::ssh_key::Error,
}

/// Makes a key of the type and size `spec` asks for, labelled `comment`.
pub fn generate(spec: &TemporaryKeyPair, comment: &str) -> Result<TemporaryKey, KeygenError> {
    let kind = spec.kind.name();
    let err = |source| KeygenError { kind, source };
    let mut rng = rand::rng();
    let data = match spec.kind {
        KeyPairType::Ed25519 => KeypairData::from(
            russh::keys::ssh_key::private::Ed25519Keypair::random(&mut rng),
        ),
        KeyPairType::Rsa => {
            KeypairData::from(RsaKeypair::random(&mut rng, spec.bits() as usize).map_err(err)?)
        }
        KeyPairType::Ecdsa => {
            let curve = match spec.bits() {
                256 => EcdsaCurve::NistP256,
                384 => EcdsaCurve::NistP384,
                _ => EcdsaCurve::NistP521,
            };
            KeypairData::from(EcdsaKeypair::random(&mut rng, curve).map_err(err)?)
        }
    };
    let private = PrivateKey::new(data, comment).map_err(err)?;
    let public_line = private.public_key().to_openssh().map_err(err)?;
    let private_pem = private.to_openssh(LineEnding::LF).map_err(err)?.to_string();
    Ok(TemporaryKey {
        private: Arc::new(private),
        public_line,
        private_pem,
        comment: comment.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: KeyPairType, bits: Option<u32>) -> TemporaryKeyPair {
        TemporaryKeyPair { kind, bits }
    }

    #[test]
    fn each_type_makes_an_authorized_keys_line_and_a_pem_that_reads_back() {
        for (kind, bits, prefix) in [
            (KeyPairType::Ed25519, None, "ssh-ed25519 "),
            (KeyPairType::Ecdsa, Some(256), "ecdsa-sha2-nistp256 "),
            (KeyPairType::Ecdsa, None, "ecdsa-sha2-nistp521 "),
            (KeyPairType::Rsa, Some(1024), "ssh-rsa "),
        ] {
            let key = generate(&spec(kind, bits), "kiln_test").expect("generate");
            assert!(key.public_line.starts_with(prefix), "{}", key.public_line);
            assert!(
                key.public_line.ends_with(" kiln_test"),
                "{}",
                key.public_line
            );
            assert!(!key.public_line.contains('\n'));
            assert!(
                key.private_pem
                    .starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n")
            );
            let back = russh::keys::decode_secret_key(&key.private_pem, None).expect("decode");
            assert_eq!(back.public_key(), key.private.public_key());
            assert!(!format!("{key:?}").contains("PRIVATE"));
        }
    }
}
