//! ISO acquisition (placeholder).
