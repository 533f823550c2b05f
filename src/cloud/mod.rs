//! Cloud drivers: the few APIs of cloud providers kiln calls, each owning
//! its own signing, endpoints and error bodies, with no SDK underneath.

pub mod aws;
