//! Small neutral helpers about the host kiln runs on, shared by drivers
//! and builders of every kind: free ports, command lines for messages,
//! scratch directories, name globs.

pub mod command_line;
pub mod glob;
pub mod port;
pub mod scratch;
