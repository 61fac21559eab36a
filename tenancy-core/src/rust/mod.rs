//! Rust repository emitter.
