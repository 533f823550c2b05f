//! Small neutral helpers about the host kiln runs on, shared by drivers
//! and builders of every kind: free ports, command lines for messages,
//! scratch directories, name globs, running a program with its output
//! captured, Go's duration syntax.

pub mod command_line;
pub mod glob;
pub mod go_duration;
pub mod port;
pub mod program;
pub mod scratch;
