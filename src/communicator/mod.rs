//! Talking to the guest once it is up: waiting for its remote shell,
//! running commands with their output streamed, and moving files.
//!
//! Only SSH exists so far; WinRM would sit beside it.

pub mod ssh;
