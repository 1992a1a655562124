//! Gatehouse: an SSO/OIDC identity provider and identity-aware reverse proxy in one binary.
//!
//! Folders follow the domain: `auth` (the sign-in pages and flows, cross-host sign-in),
//! `credentials` (passwords, policy, TOTP, lockout), `session` (sessions and what each may do per
//! app), `proxy` (routing, access, forwarding, forward-auth), `directory` (people and their
//! rights), `admin` (CLI), `audit`, `mail` (the outgoing queue), `revocation` (ending access
//! everywhere), `ops` (health, readiness, metrics, keys), `store` (all SQL), `crypto`, `config`.
//! `core` is the shared state below every feature (naming none of them), `server` is the front door
//! (workers, listeners, TLS, the HTTP/1.1 engine; it reaches the rest only through
//! `server::Dispatch`), `app` assembles the routers, implements that dispatch as the gateway and
//! serves, and `web` holds the little shared HTTP plumbing.

pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod core;
pub mod credentials;
pub mod crypto;
pub mod directory;
pub mod error;
pub mod mail;
pub mod metrics;
pub mod ops;
pub mod proxy;
pub mod revocation;
pub mod scim;
pub mod server;
pub mod session;
pub mod sso;
pub mod store;
pub mod web;
