//! Shared helpers for integration tests (each test file pulls them in with `mod support;`).
pub mod postgres;
