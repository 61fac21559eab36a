//! PostgreSQL migration and row-level security emitter.
