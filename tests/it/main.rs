//! One integration test binary (links once): each module starts the real `gatehouse` binary on
//! a free loopback port with its own database (SQLite file, or a fresh PostgreSQL database when
//! `GATEHOUSE_TEST_DATABASE_URL` is set) and talks HTTP to it; `schema` compares the two
//! backends' migrations without a server.

mod harness;
mod raw;
mod upstream;

mod attack_proxy;
mod attack_signin;
mod cli;
mod config;
mod forward_auth;
mod h1;
mod listen;
mod metrics;
mod orgs;
mod proxy;
mod schema;
mod seats;
mod signin;
mod tls;
