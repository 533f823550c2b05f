//! Small neutral helpers about the host kiln runs on.

pub mod scratch;
