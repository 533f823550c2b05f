//! Packer JSON templates: loading with source spans, the model, variables,
//! and the Go-template function engine (`interp`).

pub mod interp;
pub mod json;
pub mod source;
pub mod diagnostic;
pub mod fix;
pub mod model;
pub mod variables;
