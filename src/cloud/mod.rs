//! Cloud drivers: each owns one provider's API (its signing, endpoints and
//! error bodies, with no SDK underneath) and takes only its own typed specs,
//! never a builder's or post-processor's config, like the hypervisor drivers.

pub mod aws;
pub mod gce;
