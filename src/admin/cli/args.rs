//! The arguments of `gatehouse admin …` (clap).

use clap::{ArgGroup, Subcommand, ValueEnum};

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Users: create, list, show, block, unblock, unlock, reset-mfa, set-temp-password, anonymize, delete.
    #[command(subcommand)]
    User(UserCommand),
    /// Roles.
    #[command(subcommand)]
    Role(RoleCommand),
    /// Grant a role to a user (on one app, or every app).
    Grant(GrantArgs),
    /// Revoke a role from a user.
    Revoke(GrantArgs),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Sessions.
    #[command(subcommand)]
    Session(SessionCommand),
    /// The audit trail.
    Audit(AuditArgs),
    /// Modify seats (an app's licensed concurrent modify users).
    #[command(subcommand)]
    Seats(SeatsCommand),
    /// Outgoing mail: send a test message, list what waits to be sent.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Invitations: `invite --email E [--role R[@APP]]... [--provider ID]` creates one and
    /// prints its link; `invite list`, `invite revoke --email E`.
    Invite(InviteArgs),
}

#[derive(Subcommand)]
pub enum MailCommand {
    /// Queues a test message and tries to deliver it now (checks `[mail]`).
    Test {
        #[arg(long)]
        to: String,
    },
    /// Messages not delivered yet, with their attempts and last error.
    Queue,
}

#[derive(Subcommand)]
pub enum SeatsCommand {
    /// Who holds a seat now.
    List {
        #[arg(long)]
        app: String,
    },
    /// Frees a user's seat at once.
    Release {
        #[arg(long)]
        app: String,
        #[arg(long)]
        email: String,
    },
    /// Per day: peak concurrent modify users, licensed seats, minutes over the licence.
    Report {
        #[arg(long)]
        app: String,
        /// A duration ("30d") or a date ("2026-11-01"); default: 30 days.
        #[arg(long)]
        since: Option<String>,
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        name: String,
        /// R or R@APP; repeatable.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Read the initial password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    List,
    Show(EmailArg),
    Block(EmailArg),
    Unblock(EmailArg),
    Unlock(EmailArg),
    ResetMfa(EmailArg),
    /// Sets a temporary password (generated, or from stdin) that must be changed at next sign-in.
    SetTempPassword {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password_stdin: bool,
    },
    Anonymize(EmailArg),
    Delete(EmailArg),
}

#[derive(clap::Args)]
pub struct EmailArg {
    #[arg(long)]
    pub email: String,
}

#[derive(Subcommand)]
pub enum RoleCommand {
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["limited", "modify"])]
        seat: String,
        #[arg(long, default_value = "")]
        description: String,
    },
    List,
}

#[derive(clap::Args)]
pub struct GrantArgs {
    /// The user's email.
    #[arg(long)]
    pub user: String,
    #[arg(long)]
    pub role: String,
    /// The app id; omitted = every app.
    #[arg(long, default_value = "*")]
    pub app: String,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Creates an API token and prints it once.
    Create {
        #[arg(long)]
        name: String,
    },
    List,
}

#[derive(Subcommand)]
pub enum SessionCommand {
    List {
        #[arg(long)]
        email: Option<String>,
    },
    #[command(group(ArgGroup::new("which").required(true).args(["email", "id"])))]
    Revoke {
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        id: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

#[derive(clap::Args)]
pub struct AuditArgs {
    /// A duration ("24h") or a time ("2026-11-01", RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
    /// Show the trail as this person would see it (an organization member's address is shown
    /// to full access administrators only); default: as a full access administrator.
    #[arg(long = "as", value_name = "VIEWER_EMAIL")]
    pub viewer: Option<String>,
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct InviteArgs {
    #[command(subcommand)]
    pub command: Option<InviteCommand>,
    /// The person's email (a user with status `invited` is created when none exists).
    #[arg(long)]
    pub email: Option<String>,
    /// R or R@APP; repeatable.
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// An identity provider id: the person may link that provider's identity of this address.
    #[arg(long)]
    pub provider: Option<String>,
}

#[derive(Subcommand)]
pub enum InviteCommand {
    /// Pending invitations.
    List,
    /// Revokes a person's pending invitation.
    Revoke(EmailArg),
}
