//! The Go-template subset Packer's JSON templates use (in progress): so far
//! the Go pieces it is built on — literal escapes, reference-time layouts —
//! plus its error type and values.
#![allow(dead_code)] // used by the parser and evaluator that follow

mod error;
mod go_quote;
mod go_time;
mod value;

pub use error::{DidYouMean, InterpError, InterpErrorKind};
