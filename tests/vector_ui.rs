//! The vector gateway has no unscoped method and checks roles at compile time: searching with a
//! pool, or writing with a read (viewer) or several-project scope, does not compile
//! (tests/ui/vector/*.rs, one misuse per file); the correct shapes do (tests/ui/vector/pass).

#[test]
fn vector_gateway_misuse_fails_to_compile_and_correct_use_compiles() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/vector/*.rs");
    cases.pass("tests/ui/vector/pass/*.rs");
}
