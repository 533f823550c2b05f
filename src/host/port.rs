//! Choosing a free host port: the one that forwards to the guest's SSH
//! server (and, for VirtualBox, the VRDP and VNC ports), and the order in
//! which every port range is searched (the HTTP server's too, which keeps
//! the listener it binds).
//!
//! A port is free if kiln can bind it on 127.0.0.1 now. The listener is
//! closed before QEMU binds the port itself, so another program can take it
//! in between; QEMU then fails to start with "could not set up host
//! forwarding rule", which the builder reports. Packer has the same race.
//! The search starts at a random port so parallel builds rarely collide.

use std::hash::{BuildHasher, RandomState};
use std::net::{Ipv4Addr, TcpListener};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PortError {
    #[error("host_port_min ({min}) is greater than host_port_max ({max})")]
    EmptyRange { min: u16, max: u16 },
    #[error("no free port on 127.0.0.1 between {min} and {max} (host_port_min..host_port_max)")]
    NoneFree { min: u16, max: u16 },
}

/// A port in `min..=max` that is free on loopback right now.
pub fn find_free_port(min: u16, max: u16) -> Result<u16, PortError> {
    find_port_where(min, max, random_u64(), |port| {
        TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
    })
}

/// A port in `min..=max` that is free on `addr` right now (VRDP binds
/// there rather than on loopback); the caller names the range in its error.
pub fn find_free_port_on(addr: std::net::IpAddr, min: u16, max: u16) -> Option<u16> {
    find_port_where(min, max, random_u64(), |port| {
        TcpListener::bind((addr, port)).is_ok()
    })
    .ok()
}

/// Every port of `min..=max` once, from a random start and wrapping
/// around, so parallel builds rarely try the same port first; nothing when
/// `min > max`.
pub fn ports_from_random_start(min: u16, max: u16) -> impl Iterator<Item = u16> {
    ports_from(min, max, random_u64())
}

/// Every port of `min..=max` once, starting at `seed` within the range.
fn ports_from(min: u16, max: u16, seed: u64) -> impl Iterator<Item = u16> {
    let span = if min > max {
        0
    } else {
        u64::from(max - min) + 1
    };
    let start = if span == 0 { 0 } else { seed % span };
    (0..span).map(move |i| min + ((start + i) % span) as u16)
}

/// Tries every port of the range once, starting at `seed` within it.
fn find_port_where(
    min: u16,
    max: u16,
    seed: u64,
    mut is_free: impl FnMut(u16) -> bool,
) -> Result<u16, PortError> {
    if min > max {
        return Err(PortError::EmptyRange { min, max });
    }
    ports_from(min, max, seed)
        .find(|&port| port != 0 && is_free(port))
        .ok_or(PortError::NoneFree { min, max })
}

/// A random number from the standard library's per-process hash keys, which
/// is plenty for spreading start points and needs no extra crate.
fn random_u64() -> u64 {
    RandomState::new().hash_one(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_around_from_the_random_start() {
        let mut tried = Vec::new();
        let port = find_port_where(2222, 2225, 2, |p| {
            tried.push(p);
            p == 2223
        });
        assert_eq!(port, Ok(2223));
        assert_eq!(tried, [2224, 2225, 2222, 2223]);
    }

    #[test]
    fn every_port_of_the_range_comes_once() {
        let mut ports: Vec<u16> = ports_from_random_start(65530, 65535).collect();
        ports.sort_unstable();
        assert_eq!(ports, [65530, 65531, 65532, 65533, 65534, 65535]);
        assert_eq!(ports_from(0, 0, 9).collect::<Vec<_>>(), [0]);
        assert_eq!(ports_from(5, 4, 0).count(), 0);
    }

    #[test]
    fn reports_a_full_or_empty_range() {
        assert_eq!(
            find_port_where(10, 12, 0, |_| false),
            Err(PortError::NoneFree { min: 10, max: 12 })
        );
        assert_eq!(
            find_port_where(12, 10, 0, |_| true),
            Err(PortError::EmptyRange { min: 12, max: 10 })
        );
        assert_eq!(find_port_where(65535, 65535, 7, |_| true), Ok(65535));
    }

    #[test]
    fn skips_a_port_in_use() {
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binds");
        let busy = held.local_addr().expect("addr").port();
        assert_eq!(
            find_free_port(busy, busy),
            Err(PortError::NoneFree {
                min: busy,
                max: busy
            })
        );
        let free = find_free_port(busy.saturating_sub(50).max(1024), busy).expect("a free port");
        assert_ne!(free, busy);
    }
}
