//! `ssh_agent_auth`: the keys of the running SSH agent (`SSH_AUTH_SOCK`),
//! asked for once before kiln starts waiting for the guest, so a missing or
//! empty agent is reported at once instead of as a login timeout.

use std::path::Path;

use russh::keys::PublicKey;
use russh::keys::agent::AgentIdentity;
use russh::keys::agent::client::AgentClient;

use super::SshError;

/// A connection to the agent and the plain keys it holds.
pub(crate) struct Agent {
    pub client: AgentClient<tokio::net::UnixStream>,
    /// Certificates are left out: kiln offers plain public keys.
    pub keys: Vec<PublicKey>,
}

fn agent_error(why: impl Into<String>, source: Option<russh::keys::Error>) -> SshError {
    SshError::Agent {
        why: why.into(),
        source,
    }
}

/// Connects to the agent listening on `socket` (`SSH_AUTH_SOCK`) and
/// lists its keys.
pub(crate) async fn connect(socket: Option<&Path>) -> Result<Agent, SshError> {
    let Some(socket) = socket else {
        return Err(agent_error(
            "SSH_AUTH_SOCK is not set: start an agent (eval $(ssh-agent)) and ssh-add a key, or set ssh_password or ssh_private_key_file",
            None,
        ));
    };
    let shown = socket.display();
    let stream = tokio::net::UnixStream::connect(socket).await.map_err(|e| {
        agent_error(
            format!("cannot reach the SSH agent at {shown} (SSH_AUTH_SOCK): {e}"),
            None,
        )
    })?;
    let mut client = AgentClient::connect(stream);
    let identities = client.request_identities().await.map_err(|e| {
        agent_error(
            format!("the SSH agent at {shown} did not list its keys"),
            Some(e),
        )
    })?;
    let keys: Vec<PublicKey> = identities
        .into_iter()
        .filter_map(|identity| match identity {
            AgentIdentity::PublicKey { key, .. } => Some(key),
            AgentIdentity::Certificate { .. } => None,
        })
        .collect();
    if keys.is_empty() {
        return Err(agent_error(
            format!("the SSH agent at {shown} holds no keys: add one with ssh-add"),
            None,
        ));
    }
    Ok(Agent { client, keys })
}
