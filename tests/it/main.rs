//! One integration test binary (links once): each module starts the real `gatehouse` binary on
//! a free loopback port with its own database (SQLite file, or a fresh PostgreSQL database when
//! `GATEHOUSE_TEST_DATABASE_URL` is set) and talks HTTP to it; `schema` compares the two
//! backends' migrations without a server. `peers` runs real software nobody here wrote as the
//! other side of a protocol (an upstream OpenID provider); `peer_oidc` checks that peer alone.

mod harness;
mod idp;
mod peers;
mod pyvenv;
mod raw;
mod smtp_peer;
mod upstream;

mod attack_proxy;
mod attack_signin;
mod cli;
mod config;
mod first_hour;
mod forward_auth;
mod h1;
mod listen;
mod mail;
mod metrics;
mod orgs;
mod peer_oidc;
mod proxy;
mod realm;
mod schema;
mod scim;
mod scim_bench;
mod seats;
mod signin;
mod sso;
mod sso_bench;
mod sso_microsoft;
mod sso_orgs;
mod sso_peer;
mod tls;
