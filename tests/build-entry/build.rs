//! Compiles the repository's policies (the RAG model, so the test databases of
//! `tenancy_tests::TestDb` have the matching tables) into `OUT_DIR/tenancy.rs`.

fn main() -> Result<(), tenancy_build::Error> {
    tenancy_build::Builder::new()
        .policies("../../examples/rag/policies")
        .compile()?;
    Ok(())
}
