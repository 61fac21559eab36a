//! Seed files without a database: every kind of mistake is refused with `file:line`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use tenancy_seed::{SeedError, SeedFile};
use tenancy_tests::repo_root;

fn error_of(text: &str) -> String {
    SeedFile::parse("seed.toml", text)
        .expect_err("refused")
        .to_string()
}

const VALID: &str = r#"[[tenant]]
slug = "acme"
name = "Acme"

  [[tenant.project]]
  slug = "docs"
  name = "Docs"

    [[tenant.project.member]]
    user = "11111111-1111-4111-8111-111111111111"
    role = "owner"
    email = "alice@acme.example"
"#;

#[test]
fn the_sample_and_a_small_file_parse_with_lines() {
    let dev = SeedFile::read(&repo_root().join("examples/rag/seeds/dev.toml")).expect("dev.toml");
    assert_eq!(
        dev.counts().to_string(),
        "2 tenants, 3 projects, 5 memberships"
    );

    let seed = SeedFile::parse("seed.toml", VALID).expect("valid");
    let tenant = &seed.tenants[0];
    assert_eq!(
        (tenant.slug.as_str(), tenant.name.as_str()),
        ("acme", "Acme")
    );
    let member = &tenant.projects[0].members[0];
    assert_eq!(member.role, "owner");
    assert_eq!(member.role_line, 11);
    assert_eq!(member.email.as_deref(), Some("alice@acme.example"));
    assert_eq!(
        member.user.to_string(),
        "11111111-1111-4111-8111-111111111111"
    );
}

#[test]
fn syntax_errors_name_the_line() {
    let text = VALID.replace("name = \"Docs\"", "name = \"Docs");
    let message = error_of(&text);
    assert!(message.starts_with("seed.toml:7: "), "{message}");
}

#[test]
fn unknown_keys_name_the_line() {
    let text = VALID.replace("role = \"owner\"", "rol = \"owner\"");
    assert_eq!(
        error_of(&text),
        "seed.toml:11: unknown field `rol`, expected one of `user`, `role`, `email` (column 5)"
    );
    let text = VALID.replace("slug = \"acme\"", "slug = 5");
    assert_eq!(
        error_of(&text),
        "seed.toml:2: invalid type: integer `5`, expected a string (column 8)"
    );
}

#[test]
fn values_are_checked_at_their_line() {
    assert_eq!(
        error_of(&VALID.replace("11111111-1111-4111-8111-111111111111", "alice")),
        "seed.toml:10: user \"alice\" is not a UUID (user ids come from the identity provider)"
    );
    assert_eq!(
        error_of(&VALID.replace("slug = \"docs\"", "slug = \"Docs!\"")),
        "seed.toml:6: project slug \"Docs!\" must be 1-63 characters of a-z, 0-9 and inner '-'"
    );
    assert_eq!(
        error_of(&VALID.replace("name = \"Acme\"", "name = \"  \"")),
        "seed.toml:3: tenant name must not be empty"
    );
    assert_eq!(
        error_of(&VALID.replace("role = \"owner\"", "role = \"Owner; drop\"")),
        "seed.toml:11: role \"Owner; drop\" is not a role name"
    );
}

#[test]
fn duplicates_name_the_second_occurrence() {
    let text = format!("{VALID}\n[[tenant]]\nslug = \"acme\"\nname = \"Again\"\n");
    assert_eq!(error_of(&text), "seed.toml:15: tenant `acme` appears twice");

    let member = "\n    [[tenant.project.member]]\n    user = \"11111111-1111-4111-8111-111111111111\"\n    role = \"viewer\"\n";
    let text = format!("{VALID}{member}");
    assert_eq!(
        error_of(&text),
        "seed.toml:15: user 11111111-1111-4111-8111-111111111111 appears twice in project `acme/docs`"
    );
}

#[test]
fn an_unreadable_file_is_named() {
    let error =
        SeedFile::read(std::path::Path::new("/nonexistent/seed.toml")).expect_err("missing");
    assert!(matches!(error, SeedError::File { .. }));
    assert!(
        error
            .to_string()
            .starts_with("/nonexistent/seed.toml: cannot read it: "),
        "{error}"
    );
}
