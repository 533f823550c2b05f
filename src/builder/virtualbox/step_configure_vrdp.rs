//! `StepConfigureVrdp`, one of the virtualbox-iso builder's steps (their order is
//! in `mod.rs`).

use super::VBoxState;
use super::calls::run_all;
use super::error::VBoxStepError;
use crate::host::port::find_free_port_on;
use crate::hypervisor::virtualbox::command::vrde_on;
use crate::run::runner::{Step, StepContext, StepFuture};

/// Turns on VirtualBox's remote display (VRDP) on `vrdp_bind_address`
/// (loopback by default) at a free port of `vrdp_port_min..=max`, without a
/// password, as Packer does: the way to watch a headless build.
pub struct StepConfigureVrdp;

impl Step<VBoxState> for StepConfigureVrdp {
    fn name(&self) -> &'static str {
        "Configuring VRDP"
    }

    fn run<'a>(&'a mut self, state: &'a mut VBoxState, _ctx: &'a StepContext) -> StepFuture<'a> {
        Box::pin(async move {
            let c = &state.config;
            let address: std::net::IpAddr =
                c.vrdp_bind_address
                    .parse()
                    .map_err(|source| VBoxStepError::VrdpAddress {
                        address: c.vrdp_bind_address.clone(),
                        source,
                    })?;
            let port = find_free_port_on(address, c.vrdp_port_min, c.vrdp_port_max).ok_or(
                VBoxStepError::NoVrdpPort {
                    address,
                    min: c.vrdp_port_min,
                    max: c.vrdp_port_max,
                },
            )?;
            let command = vrde_on(&c.vm_name, &c.vrdp_bind_address, port);
            run_all(state.vbox()?, vec![command]).await?;
            state.vrdp = Some((c.vrdp_bind_address.clone(), port));
            Ok(())
        })
    }
}
