//! Issue 24, live: what `tenancy check` accepts, `generate` turns into SQL that PostgreSQL
//! applies. A fixed-seed sample of accepted random models (the generators of
//! `tenancy-core/tests/hostile/mod.rs`, ordinary and hostile) is generated and every migration
//! applied to a fresh database, which is then dropped. Needs the test server
//! (`TENANCY_TEST_DATABASE_URL` or `scripts/pg-up`).

#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../tenancy-core/tests/hostile/mod.rs"]
mod hostile;

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use tenancy_core::sql::{generate_migrations, Target};
use tenancy_tests::TestDb;

/// Accepted models applied per run (plain, hostile): small, so the test stays a few seconds.
const SAMPLE: (usize, usize) = (6, 4);

/// The first `n` accepted models of `strategy` under a fixed seed, as policy text.
fn accepted(strategy: impl Strategy<Value = hostile::ModelGen>, n: usize, seed: u8) -> Vec<String> {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[seed; 32]),
    );
    let mut out = Vec::new();
    for _ in 0..2000 {
        if out.len() == n {
            break;
        }
        let text = strategy.new_tree(&mut runner).unwrap().current().render();
        // Models with tables: the core alone is applied by every other live test.
        if text.matches(" table ").count() > 3 && hostile::compile_text(&text).0.is_some() {
            out.push(text);
        }
    }
    assert_eq!(out.len(), n, "the generator found too few accepted models");
    out
}

#[tokio::test]
async fn accepted_random_models_migrate_on_postgresql() {
    let mut texts = accepted(hostile::plain_model(), SAMPLE.0, 11);
    texts.extend(accepted(hostile::model(), SAMPLE.1, 23));
    for (i, text) in texts.iter().enumerate() {
        let model = hostile::compile_text(text).0.expect("accepted");
        let dir = std::env::temp_dir().join(format!(
            "tenancy-hostile-{}-{i}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        for file in generate_migrations(&model, Target::Postgres) {
            let name = file.path.file_name().expect("file name");
            std::fs::write(dir.join(name), &file.contents).expect("write");
        }
        let db = TestDb::empty().await;
        let applied = tenancy_tests::apply_migrations(db.url(), &dir).await;
        db.drop_db().await;
        let _ = std::fs::remove_dir_all(&dir);
        if let Err(e) = applied {
            panic!("PostgreSQL refused the migrations: {e:#}\n--- input ---\n{text}");
        }
    }
}
