//! Cloud drivers: each owns one provider's API and takes only its own typed
//! specs (never a builder's config), like the hypervisor drivers.

pub mod gce;
