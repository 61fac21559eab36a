//! Misuse of `#[derive(TenantScoped)]` and its `#[tenancy(...)]` attributes fails to compile
//! with an error pointing at the offending tokens (one misuse per file in tests/ui/derive,
//! the expected compiler output next to it).

#[test]
fn derive_misuse_is_reported_at_the_offending_tokens() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/derive/*.rs");
}
