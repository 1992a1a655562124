//! One integration test binary (links once): each module starts the real `gatehouse` binary on
//! a free loopback port with its own database (SQLite file, or a fresh PostgreSQL database when
//! `GATEHOUSE_TEST_DATABASE_URL` is set) and talks HTTP to it; `schema` compares the two
//! backends' migrations without a server. `peers` runs real software nobody here wrote as the
//! other side of a protocol (an upstream OpenID provider); `peer_oidc` checks that peer alone.

mod harness;
mod idp;
mod peers;
mod pg_cluster;
mod pyvenv;
mod raw;
mod smtp_peer;
mod upstream;

mod attack_proxy;
mod attack_signin;
mod backchannel;
mod backchannel_peer;
mod browser_pages;
mod browser_sso;
mod cli;
mod config;
mod first_hour;
mod forward_auth;
mod h1;
mod instances;
mod invite;
mod listen;
mod mail;
mod metrics;
mod orgs;
mod page_items;
mod peer_oidc;
mod proxy;
mod realm;
mod revalidate;
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
