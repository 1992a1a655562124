//! Gatehouse: an SSO/OIDC identity provider and identity-aware reverse proxy in one binary.
//!
//! Folders follow the domain: `auth` (local sign-in, lockout, MFA, sessions, cross-host
//! sign-in), `proxy` (routing, access, forwarding, forward-auth), `directory` (people and their
//! rights), `admin` (CLI), `audit`, `revocation` (ending access everywhere), `ops` (health,
//! readiness, metrics, keys), `store` (all SQL), `crypto`, `config`. `core` is the shared state
//! at the bottom, `server` is the front door (workers, listeners, TLS, the HTTP/1.1 engine; it
//! reaches the rest only through `server::Dispatch`), `app` assembles the routers, implements
//! that dispatch as the gateway and serves, and `web` holds the little shared HTTP plumbing.

pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod core;
pub mod crypto;
pub mod directory;
pub mod error;
pub mod metrics;
pub mod ops;
pub mod proxy;
pub mod revocation;
pub mod server;
pub mod store;
pub mod web;
