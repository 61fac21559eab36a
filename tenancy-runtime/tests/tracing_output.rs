//! What the runtime writes to `tracing`, against a real PostgreSQL: `SystemTx` logs its reason
//! at WARN on open and on commit; `authorize` and `begin` open spans carrying ids only.
//!
//! Needs only a reachable server where it may create a schema, as a superuser:
//! `TENANCY_RUNTIME_TEST_DATABASE_URL`, `TENANCY_TEST_DATABASE_URL` or `DATABASE_URL`, else
//! `postgres://postgres@127.0.0.1:5432/postgres`.
//! It fails (never skips) when none answers. The span test builds its own tiny schema under a
//! unique name (custom helper schema and a schema-qualified memberships table) and drops it.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tenancy_runtime::{Error, Scope, SystemTx, Tenancy, TenancyConfig, TenantId, UserId};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};
use uuid::Uuid;

/// One captured event: its level and its fields rendered as `name=value`.
#[derive(Debug, Clone)]
struct CapturedEvent {
    level: Level,
    fields: String,
}

/// One captured span: its name and its fields rendered as `name=value`.
#[derive(Debug, Clone)]
struct CapturedSpan {
    name: &'static str,
    field_names: Vec<&'static str>,
    fields: String,
}

/// A minimal subscriber that records every event and span into shared buffers.
#[derive(Clone, Default)]
struct CapturingSubscriber {
    events: Arc<Mutex<Vec<CapturedEvent>>>,
    spans: Arc<Mutex<Vec<CapturedSpan>>>,
    next_span_id: Arc<AtomicU64>,
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
    fn new_span(&self, attributes: &Attributes<'_>) -> Id {
        let mut fields = String::new();
        attributes.record(&mut FieldWriter(&mut fields));
        self.spans
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(CapturedSpan {
                name: attributes.metadata().name(),
                field_names: attributes.fields().iter().map(|f| f.name()).collect(),
                fields,
            });
        Id::from_u64(self.next_span_id.fetch_add(1, Ordering::Relaxed) + 1)
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
    fn spans_named(&self, name: &str) -> Vec<CapturedSpan> {
        self.spans
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .filter(|span| span.name == name)
            .cloned()
            .collect()
    }

    /// Whether any span or event (any level, sqlx's statement log included) contains `needle`.
    fn anything_contains(&self, needle: &str) -> bool {
        let in_events = self
            .events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .any(|e| e.fields.contains(needle));
        let in_spans = self
            .spans
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .any(|s| s.fields.contains(needle));
        in_events || in_spans
    }

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
    let url = [
        "TENANCY_RUNTIME_TEST_DATABASE_URL",
        "TENANCY_TEST_DATABASE_URL",
        "DATABASE_URL",
    ]
    .iter()
    .find_map(|var| std::env::var(var).ok().filter(|url| !url.is_empty()))
    .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
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

#[tokio::test(flavor = "current_thread")]
async fn authorize_and_begin_open_spans_with_ids_only() {
    let subscriber = CapturingSubscriber::default();
    let _guard = tracing::subscriber::set_default(subscriber.clone());
    let pool = maintenance_pool().await;

    // A stand-in for the generated core: the role enum and a memberships table, in a schema of
    // its own. The superuser pool is not subject to row-level security; this test is about
    // what the runtime sends and logs, the policies are tested in the root package.
    let schema = format!("rt_spans_{}", Uuid::new_v4().simple());
    let tenant = TenantId::new(Uuid::new_v4());
    let user = UserId::new(Uuid::new_v4());
    let project = Uuid::new_v4();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "CREATE SCHEMA {schema};
         CREATE TYPE {schema}.project_role AS ENUM ('viewer', 'editor', 'admin', 'owner');
         CREATE TABLE {schema}.members (tenant_id uuid, project_id uuid, user_id uuid,
                                       role {schema}.project_role);
         INSERT INTO {schema}.members VALUES ('{tenant}', '{project}', '{user}', 'admin');
         CREATE FUNCTION {schema}.install_context(token text) RETURNS void LANGUAGE sql
           AS $$ SELECT set_config('{schema}.context', token, true) $$;"
    )))
    .execute(&pool)
    .await
    .unwrap();

    let tenancy = Tenancy::with_config(
        pool.clone(),
        TenancyConfig {
            helper_schema: schema.clone(),
            memberships_table: format!("{schema}.members"),
            ..TenancyConfig::default()
        },
    );
    let outcome = async {
        let ctx = tenancy.authorize(user, tenant).await.unwrap();
        assert_eq!(
            ctx.memberships().collect::<Vec<_>>(),
            vec![(tenancy_runtime::ProjectId::new(project), "admin")]
        );
        let scope = ctx
            .project(tenancy_runtime::ProjectId::new(project))
            .unwrap()
            .require::<Editor>()
            .unwrap();
        let mut tx = tenancy.begin(&scope).await.unwrap();
        // The stand-in installer keeps the token it was sent: the claims are signed for any
        // backend; an admin (rank 2) of the project is listed at ranks 0, 1 and 2 and the
        // owner field is left out.
        let token: String = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT current_setting('{schema}.context')"
        )))
        .fetch_one(tx.connection())
        .await
        .unwrap();
        assert!(
            token.ends_with(&format!(
                ";*;{tenant};{user};{{{project}}};{{{project}}};{{{project}}}"
            )),
            "{token}"
        );
        let mac = token.split('.').next().unwrap_or_default().to_owned();
        assert_eq!(mac.len(), 64, "{token}");
        TOKEN_MAC.with(|cell| *cell.borrow_mut() = mac);
        tx.commit().await.unwrap();
        scope.project_ids()
    }
    .await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&pool)
        .await
        .unwrap();

    let authorize = subscriber.spans_named("authorize");
    assert_eq!(authorize.len(), 1, "{authorize:?}");
    assert_eq!(authorize[0].field_names, ["tenant_id", "user_id"]);
    assert_eq!(
        authorize[0].fields,
        format!("tenant_id={tenant} user_id={user} ")
    );

    let begin = subscriber.spans_named("begin");
    assert_eq!(begin.len(), 1, "{begin:?}");
    assert_eq!(
        begin[0].field_names,
        ["tenant_id", "user_id", "project_ids"]
    );
    assert_eq!(
        begin[0].fields,
        format!("tenant_id={tenant} user_id={user} project_ids={outcome:?} ")
    );
    assert!(!begin[0].fields.contains("admin"), "no roles in spans");
    // No span and no event carries the token.
    let mac = TOKEN_MAC.with(|cell| cell.borrow().clone());
    assert!(
        !subscriber.anything_contains(&mac),
        "the token reached the logs"
    );
}

thread_local! {
    /// The MAC of the token the authorize-and-begin test saw, to look for in the logs.
    static TOKEN_MAC: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

tenancy_runtime::roles! { Viewer = "viewer", Editor = "editor", Admin = "admin", Owner = "owner" }
