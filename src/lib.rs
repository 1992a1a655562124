//! Gatehouse: an SSO/OIDC identity provider and identity-aware reverse proxy in one binary.
//!
//! Folders follow the domain: `auth` (local sign-in, lockout, MFA, sessions), `directory`
//! (people and their rights), `admin` (CLI), `audit`, `revocation` (ending access everywhere),
//! `store` (all SQL), `crypto`, `config`; `app` assembles the server and `web` holds the little
//! shared HTTP plumbing.

pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod directory;
pub mod error;
pub mod metrics;
pub mod proxy;
pub mod revocation;
pub mod store;
pub mod web;
