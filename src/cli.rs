//! The `gatehouse` command line: `serve`, `check-config`, `migrate`, `admin …`, `dev-cert`.

use crate::config::{Config, DEFAULT_PATH};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "SSO/OIDC identity provider and identity-aware reverse proxy"
)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, global = true, default_value = DEFAULT_PATH, env = "GATEHOUSE_CONFIG")]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server (migrations are applied at start).
    Serve,
    /// Validate the configuration; report every problem; exit non-zero if any.
    CheckConfig(CheckConfigArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Administration against the server's database.
    Admin(AdminArgs),
    /// Write a self-signed certificate and key for local HTTPS (`[server.tls]`).
    DevCert(DevCertArgs),
    /// Print a new master key (32 random bytes, base64), or write it to a file readable by
    /// the owner only (`secrets.master_key_file`).
    MasterKey(MasterKeyArgs),
}

#[derive(Args)]
pub struct MasterKeyArgs {
    /// Write the key to this new file (mode 0600) instead of printing it.
    #[arg(long)]
    pub file: Option<PathBuf>,
}

#[derive(Args)]
pub struct CheckConfigArgs {
    /// Check everything but the secrets' values: their files and environment variables are not
    /// read (for CI, where the secrets are not available).
    #[arg(long)]
    pub no_secrets: bool,
}

#[derive(Args)]
pub struct DevCertArgs {
    /// Certificate file (PEM).
    #[arg(long, default_value = "certs/gatehouse.pem")]
    pub cert: PathBuf,
    /// Private key file (PEM, written readable by its owner only).
    #[arg(long, default_value = "certs/gatehouse.key")]
    pub key: PathBuf,
    /// Names and addresses the certificate is valid for (repeatable).
    #[arg(long = "host", default_values = ["localhost", "127.0.0.1", "::1"])]
    pub hosts: Vec<String>,
    /// Replace existing files.
    #[arg(long)]
    pub force: bool,
}

#[derive(Args)]
pub struct AdminArgs {
    /// Print one JSON document instead of a human summary.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: crate::admin::cli::AdminCommand,
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.log.level));
    // Colour only for a person at a terminal: escape codes in a log file or a pipe would make
    // lines such as the setup link hard to copy.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_writer(std::io::stdout);
    match config.log.format {
        crate::config::LogFormat::Json => builder.json().flatten_event(true).init(),
        crate::config::LogFormat::Text => builder.init(),
    }
}

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::CheckConfig(args) => match Config::load_with(&cli.config, args.no_secrets) {
            Ok(c) => {
                if args.no_secrets {
                    println!(
                        "{}: configuration is valid (secrets' values not checked)",
                        c.file.display()
                    );
                } else {
                    println!("{}: configuration is valid", c.file.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Serve => {
            let config = match load(&cli.config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            init_logging(&config);
            crate::server::limit_allocator_arenas(config.server.workers);
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            match rt.block_on(crate::app::serve(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "gatehouse stopped");
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Migrate => {
            let config = match load(&cli.config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            match rt.block_on(crate::core::Base::open(config, Default::default())) {
                Ok(_) => {
                    println!("migrations applied");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::MasterKey(a) => {
            let key = base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                crate::crypto::random_bytes::<32>(),
            );
            match a.file {
                None => {
                    println!("{key}");
                    ExitCode::SUCCESS
                }
                Some(path) => {
                    let mut opts = std::fs::OpenOptions::new();
                    opts.write(true).create_new(true);
                    #[cfg(unix)]
                    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                    match opts
                        .open(&path)
                        .and_then(|mut f| std::io::Write::write_all(&mut f, key.as_bytes()))
                    {
                        Ok(()) => {
                            println!(
                                "wrote a new master key to {} (owner-only); use it with\n[secrets]\nmaster_key_file = \"{}\"",
                                path.display(),
                                path.display()
                            );
                            ExitCode::SUCCESS
                        }
                        Err(e) => {
                            eprintln!(
                                "error: cannot create {}: {e} (an existing key file is never replaced)",
                                path.display()
                            );
                            ExitCode::from(2)
                        }
                    }
                }
            }
        }
        Command::DevCert(a) => {
            match crate::server::tls::dev_cert(&a.cert, &a.key, &a.hosts, a.force) {
                Ok(()) => {
                    println!(
                        "wrote {} and {} (self-signed, valid 1 year for {}); for development only.\n\
                     Use them with:\n[server.tls]\ncert = \"{}\"\nkey = \"{}\"",
                        a.cert.display(),
                        a.key.display(),
                        a.hosts.join(", "),
                        a.cert.display(),
                        a.key.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Admin(args) => {
            let config = match load(&cli.config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
            rt.block_on(crate::admin::cli::run(config, args.json, args.command))
        }
    }
}
