//! Engine errors. Each variant maps to one gRPC status code in the server.
use thiserror::Error;

#[derive(Debug, Error)]
pub enum EngineError {
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    ResourceExhausted(String),
    /// Refused for now (the start queue is full): RESOURCE_EXHAUSTED, with
    /// when to try again.
    #[error("{message}")]
    Busy {
        message: String,
        retry_after: std::time::Duration,
    },
    #[error("{0}")]
    Unavailable(String),
    /// The container runs on another node of the cluster: the call is
    /// that node's to serve (the gRPC server forwards it there).
    #[error(
        "container {id} runs on node {node}: send the call to that node (quilt's gRPC API forwards it)"
    )]
    Elsewhere { id: String, node: String },
    #[error("{0}")]
    DeadlineExceeded(String),
    /// Credentials missing or refused (by a registry).
    #[error("{0}")]
    PermissionDenied(String),
    /// Content that does not match its digest (a registry's blob).
    #[error("{0}")]
    DataLoss(String),
    /// A write that conflicted with the stored rows (a unique or foreign
    /// key constraint no refusal of ours caught first): the statement that
    /// broke it was undone, and the caller may try again.
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

impl From<sqlx::Error> for EngineError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            // Overloaded or shutting down: the client may retry.
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
                EngineError::Unavailable(format!("database: {e}"))
            }
            // A statement that broke a unique or foreign key constraint:
            // the database undid it alone, the connection is sound.
            sqlx::Error::Database(db)
                if matches!(
                    db.kind(),
                    sqlx::error::ErrorKind::UniqueViolation
                        | sqlx::error::ErrorKind::ForeignKeyViolation
                ) =>
            {
                EngineError::Aborted(format!("database: {db}"))
            }
            e if disk_full(&e) => EngineError::ResourceExhausted(format!(
                "the disk holding quiltd's database is full ({e}): free space, then retry"
            )),
            // The database server is unreachable, restarting or refusing
            // connections (PostgreSQL): nothing was acknowledged; retry.
            e if unreachable(&e) => EngineError::Unavailable(format!("database unavailable: {e}")),
            e => EngineError::Internal(format!("database: {e}")),
        }
    }
}

/// A database server that cannot be reached or is going away (a broken
/// connection, PostgreSQL's connection exceptions, class 08), or a
/// transaction it rolled back that a retry may pass: nothing was
/// committed, the client may try again.
fn unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => true,
        sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            c.starts_with("08")
                || matches!(
                    c.as_ref(),
                    // Shutdown, crash recovery, too many connections; a
                    // serialization failure or deadlock (the transaction
                    // was rolled back), a lock or statement timeout.
                    "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01" | "55P03" | "57014"
                )
        }),
        _ => false,
    }
}

/// SQLITE_FULL (13, also as the primary code of an extended one), ENOSPC
/// from the file system, or PostgreSQL's disk_full (53100).
fn disk_full(e: &sqlx::Error) -> bool {
    const SQLITE_FULL: i64 = 13;
    match e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("53100") => true,
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i64>().ok())
            .is_some_and(|c| c & 0xff == SQLITE_FULL),
        sqlx::Error::Io(io) => io.kind() == std::io::ErrorKind::StorageFull,
        _ => false,
    }
}

impl From<quilt_runtime::image::ImageError> for EngineError {
    fn from(e: quilt_runtime::image::ImageError) -> Self {
        use quilt_runtime::image::ImageError as E;
        match e {
            E::NotFound(..) => EngineError::NotFound(e.to_string()),
            E::Invalid(..) => EngineError::InvalidArgument(e.to_string()),
            E::Io(..) => EngineError::Internal(e.to_string()),
        }
    }
}

impl From<tokio::task::JoinError> for EngineError {
    fn from(e: tokio::task::JoinError) -> Self {
        EngineError::Internal(format!("background task: {e}"))
    }
}

impl EngineError {
    pub fn internal(context: &str, e: impl std::fmt::Display) -> Self {
        EngineError::Internal(format!("{context}: {e}"))
    }

    pub fn no_such_container(id: &str) -> Self {
        EngineError::NotFound(format!("no such container: {}", crate::validate::cut(id)))
    }
}
