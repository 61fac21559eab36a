//! `SystemTx` against a real PostgreSQL: the reason is logged at WARN on open and on commit.
//!
//! Needs only a reachable server (no tenancy schema): `TENANCY_SYSTEM_TX_DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1:5432/postgres`. It fails (never skips) when none answers.

use std::fmt::{self, Write as _};
use std::sync::{Arc, Mutex};

use tenancy_runtime::{Error, SystemTx};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One captured event: its level and its fields rendered as `name=value`.
#[derive(Debug, Clone)]
struct CapturedEvent {
    level: Level,
    fields: String,
}

/// A minimal subscriber that records every event into a shared buffer.
#[derive(Clone, Default)]
struct CapturingSubscriber {
    events: Arc<Mutex<Vec<CapturedEvent>>>,
}

struct FieldWriter<'a>(&'a mut String);

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        let _ = write!(self.0, "{}={} ", field.name(), value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl Subscriber for CapturingSubscriber {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = String::new();
        event.record(&mut FieldWriter(&mut fields));
        self.events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(CapturedEvent {
                level: *event.metadata().level(),
                fields,
            });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl CapturingSubscriber {
    fn warnings_with(&self, needle: &str) -> Vec<CapturedEvent> {
        self.events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .filter(|e| e.level == Level::WARN && e.fields.contains(needle))
            .cloned()
            .collect()
    }
}

async fn maintenance_pool() -> sqlx::PgPool {
    let url = std::env::var("TENANCY_SYSTEM_TX_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} is required for this test: {e}"))
}

#[tokio::test(flavor = "current_thread")]
async fn system_tx_logs_its_reason_when_opened_and_committed() {
    let subscriber = CapturingSubscriber::default();
    let _guard = tracing::subscriber::set_default(subscriber.clone());
    let pool = maintenance_pool().await;

    let mut tx = SystemTx::begin(&pool, "seed: system tx logging test")
        .await
        .unwrap();
    assert_eq!(tx.reason(), "seed: system tx logging test");
    let opened = subscriber.warnings_with("reason=seed: system tx logging test");
    assert_eq!(opened.len(), 1, "one WARN on open: {opened:?}");
    assert!(opened[0].fields.contains("opened"), "{opened:?}");

    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(tx.connection())
        .await
        .unwrap();
    assert_eq!(one, 1);

    tx.commit().await.unwrap();
    let logged = subscriber.warnings_with("reason=seed: system tx logging test");
    assert_eq!(logged.len(), 2, "WARN on open and on commit: {logged:?}");
    assert!(logged[1].fields.contains("committed"), "{logged:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn system_tx_without_reason_is_refused_and_not_opened() {
    let subscriber = CapturingSubscriber::default();
    let _guard = tracing::subscriber::set_default(subscriber.clone());
    let pool = maintenance_pool().await;

    let refused = SystemTx::begin(&pool, "  ").await;
    assert!(matches!(refused, Err(Error::Misconfigured(_))));
    assert!(subscriber.warnings_with("opened").is_empty());
    // The one pooled connection was never taken: a new transaction starts at once.
    let mut tx = SystemTx::begin(&pool, "check pool is free").await.unwrap();
    sqlx::query("SELECT 1")
        .execute(tx.connection())
        .await
        .unwrap();
    tx.rollback().await.unwrap();
}
