//! Packer JSON templates: loading with source spans, the model, variables,
//! and the Go-template function engine (`interp`).

pub mod compat;
pub mod diagnostic;
pub mod fix;
pub mod input;
pub mod interp;
pub mod json;
pub mod model;
pub mod render_env;
pub mod source;
pub mod variables;
