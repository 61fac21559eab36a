//! Opening a scoped transaction so that cancelling the caller cannot leak its context.
//!
//! sqlx queues a `ROLLBACK` for a dropped transaction only once `begin` has completed. A caller
//! cancelled while `BEGIN; SET LOCAL ...` is in flight (a request timeout, a dropped future)
//! would hand the connection back to the pool inside an open transaction that still carries the
//! context, and the next user of that connection would inherit it (seen under PgBouncer by
//! `tests/concurrency_isolation.rs`, made deterministic by `tests/cancelled_begin.rs`).
//!
//! [`FinishOnDrop`] polls the begin in the caller's task, so the usual path costs no task
//! switch. Only when it is dropped with the begin still in flight does it hand the begin to a
//! new task, which finishes it and drops the transaction: the rollback is queued and runs
//! before the connection is reused.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use sqlx::pool::MaybePoolConnection;
use sqlx::{PgPool, Postgres, SqlSafeStr, Transaction};

/// What `begin_with` returns.
type Begun = Result<Transaction<'static, Postgres>, sqlx::Error>;

/// The boxed begin: boxed so it can move into a task after being polled.
type Begin = Pin<Box<dyn Future<Output = Begun> + Send>>;

/// Takes a connection from `pool`, then builds the statement (`BEGIN` plus the context) with
/// `statement` and sends it, finishing it in a task of its own if the returned future is
/// dropped before the begin completed.
///
/// The statement is built only once a connection is in hand: it carries a signed token that
/// expires (`TenancyConfig::token_lifetime`), and a wait for a busy pool must not eat into it.
pub(crate) fn begin_cancel_safe<F>(pool: &PgPool, statement: F) -> FinishOnDrop
where
    F: FnOnce() -> Result<String, sqlx::Error> + Send + 'static,
{
    let pool = pool.clone();
    FinishOnDrop {
        begin: Some(Box::pin(async move {
            let connection = pool.acquire().await?;
            let statement = sqlx::AssertSqlSafe(statement()?).into_sql_str();
            // What `Pool::begin_with` does, with the statement built after the acquire.
            Transaction::begin(
                MaybePoolConnection::PoolConnection(connection),
                Some(statement),
            )
            .await
        })),
        polled: false,
    }
}

/// A begin that is finished elsewhere rather than abandoned mid-flight (see the module docs).
pub(crate) struct FinishOnDrop {
    /// The begin, until it completes.
    begin: Option<Begin>,
    /// Whether the begin was polled: one never polled has sent nothing and is just dropped.
    polled: bool,
}

impl Future for FinishOnDrop {
    type Output = Begun;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Begun> {
        let this = &mut *self;
        let Some(begin) = this.begin.as_mut() else {
            return Poll::Ready(Err(sqlx::Error::Protocol(
                "the transaction-opening future was polled after it completed".into(),
            )));
        };
        this.polled = true;
        let begun = std::task::ready!(begin.as_mut().poll(cx));
        this.begin = None;
        Poll::Ready(begun)
    }
}

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        let Some(begin) = self.begin.take() else {
            return;
        };
        if !self.polled {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                // Finishing the begin and dropping the transaction queues its rollback.
                runtime.spawn(async move { drop(begin.await) });
            }
            Err(_) => tracing::warn!(
                "a scoped transaction's begin was cancelled outside a tokio runtime; \
                 its connection is dropped mid-flight"
            ),
        }
    }
}
