//! Running builds: the step runner with guaranteed cleanup, `-on-error`
//! policies and cancellation on signals.

pub mod artifact;
pub mod runner;
pub mod signals;
