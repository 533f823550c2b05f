//! The Go-template subset Packer's JSON templates use (placeholder).
