//! Small neutral helpers about the host kiln runs on, shared by drivers
//! and builders of every kind: free ports, command lines for messages,
//! scratch directories.

pub mod command_line;
pub mod port;
pub mod scratch;
