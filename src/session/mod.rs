//! Sessions: the server-side record behind the opaque cookie, its cache and idle time
//! (`cache`), and what a session may do per app, prepared once and kept with it (`access`).
//! Sign-in (`auth`) makes them; the proxy reads them; invalidations end them.

pub mod access;
pub mod cache;

pub use access::{AppAccess, KeptAssertions};
pub use cache::{AppsOfSession, NewSession, PENDING_TTL, Session, Sessions, Stage, Upstream};
