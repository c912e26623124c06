//! `onedoor certs`: a CA, adapters' server certificates and agencies' client certificates for
//! the gRPC TLS, for a ministry without a PKI of its own (docs/operations.md says what an
//! existing PKI's certificates need instead).
//!
//! Files (PEM): `ca.pem` + `ca-key.pem`, `server.pem` + `server-key.pem`, `CODE.pem` +
//! `CODE-key.pem`. Private keys are 0600 in 0700 directories; certificates are public.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use onedoor_case::AgencyCode;
use onedoor_grpc::devpki::{Ca, CertifiedKey, Validity};
use onedoor_grpc::tls::hex;

use super::common::{self, Existing};

const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca-key.pem";

#[derive(Debug, clap::Subcommand)]
pub enum CertsCommand {
    /// Make a CA: DIR/ca.pem (give it to every client and adapter) and DIR/ca-key.pem (keep
    /// it offline when not issuing).
    Ca(CaArgs),
    /// Make a server certificate for an adapter or the tracker, signed by the CA.
    Server(ServerArgs),
    /// Make an agency's client certificate, signed by the CA; prints its SHA-256 for the
    /// adapter's --client-cert-sha256.
    Client(ClientArgs),
}

#[derive(Debug, clap::Args)]
pub struct CaArgs {
    /// Where to write ca.pem and ca-key.pem (created 0700; must be owner-only).
    #[arg(long)]
    pub out: PathBuf,
    /// The CA's common name.
    #[arg(long, default_value = "onedoor CA")]
    pub name: String,
    /// Days the CA certificate is valid.
    #[arg(long, default_value_t = 3650)]
    pub days: u32,
}

/// What issuing a certificate needs: the CA, where to write, how long, and whether an
/// existing certificate may be replaced.
#[derive(Debug, clap::Args)]
pub struct IssueArgs {
    /// The directory holding ca.pem and ca-key.pem (from `onedoor certs ca`).
    #[arg(long)]
    pub ca: PathBuf,
    /// Where to write the certificate and its key (created 0700; must be owner-only).
    #[arg(long)]
    pub out: PathBuf,
    /// Days the certificate is valid.
    #[arg(long, default_value_t = 825)]
    pub days: u32,
    /// Replace an existing certificate and key of the same name (renewal).
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    #[command(flatten)]
    pub issue: IssueArgs,
    /// Every name clients use to reach the server: DNS names and IP addresses, repeated or
    /// separated by commas (e.g. `mof-adapter.gov.la,10.0.4.7`).
    #[arg(long, value_delimiter = ',', required = true)]
    pub name: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct ClientArgs {
    #[command(flatten)]
    pub issue: IssueArgs,
    /// The agency the certificate speaks for, e.g. MOF; it must be in the registry.
    #[arg(long)]
    pub agency: String,
    /// Registry file the agency must be in; by default the built-in 2025 registry.
    #[arg(long, env = "ONEDOOR_REGISTRY")]
    pub registry: Option<PathBuf>,
}

pub fn run(command: CertsCommand) -> anyhow::Result<ExitCode> {
    match command {
        CertsCommand::Ca(args) => ca(&args),
        CertsCommand::Server(args) => server(&args),
        CertsCommand::Client(args) => client(&args),
    }
}

fn ca(args: &CaArgs) -> anyhow::Result<ExitCode> {
    common::private_dir(&args.out, common::LooseDir::Refuse)?;
    let ca = Ca::generate(&args.name, Validity { days: args.days })?;
    let cert = args.out.join(CA_CERT);
    // The key first: a CA certificate without its key on disk would issue nothing.
    common::write_secret(&args.out.join(CA_KEY), &ca.key_pem, Existing::Refuse)?;
    write_public(&cert, &ca.cert_pem, Existing::Refuse)?;
    println!(
        "wrote {} (give it to every adapter and client) and {} (keep it private; offline when not issuing)",
        cert.display(),
        args.out.join(CA_KEY).display()
    );
    Ok(ExitCode::SUCCESS)
}

fn server(args: &ServerArgs) -> anyhow::Result<ExitCode> {
    let names: Vec<String> = args.name.iter().map(|n| n.trim().to_owned()).collect();
    for name in &names {
        check_name(name)?;
    }
    let ca = load_ca(&args.issue.ca)?;
    let certified = ca.server(
        &names,
        Validity {
            days: args.issue.days,
        },
    )?;
    let cert = write_pair(&args.issue, "server", &certified)?;
    println!(
        "wrote {} for {} (key beside it, owner-only); serve it with --tls-cert/--tls-key",
        cert.display(),
        names.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

fn client(args: &ClientArgs) -> anyhow::Result<ExitCode> {
    let (registry, name) = common::load_registry(args.registry.as_deref())?;
    let code =
        AgencyCode::parse(&args.agency).with_context(|| format!("agency {:?}", args.agency))?;
    if registry.agency(&code).is_none() {
        anyhow::bail!("agency {code} is not in the registry ({name})");
    }
    let ca = load_ca(&args.issue.ca)?;
    let certified = ca.client(
        code.as_str(),
        Validity {
            days: args.issue.days,
        },
    )?;
    let cert = write_pair(&args.issue, code.as_str(), &certified)?;
    let sha256 = hex(&certified.sha256);
    println!(
        "wrote {} (key beside it, owner-only)\nsha256: {sha256}\n\
         {code}'s adapter accepts it with: --client-ca {} --client-cert-sha256 {sha256}",
        cert.display(),
        args.issue.ca.join(CA_CERT).display()
    );
    Ok(ExitCode::SUCCESS)
}

fn load_ca(dir: &Path) -> anyhow::Result<Ca> {
    let read = |file: &str| {
        let path = dir.join(file);
        std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (make a CA with `onedoor certs ca`)",
                path.display()
            )
        })
    };
    let key = dir.join(CA_KEY);
    let mode = std::fs::metadata(&key)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
        .unwrap_or(0);
    // As ssh does with private keys: one others can read is one others may have copied.
    if mode & 0o077 != 0 {
        anyhow::bail!(
            "{} can be read by other users (mode {mode:03o}); run `chmod 600 {}`",
            key.display(),
            key.display()
        );
    }
    Ca::from_pem(&read(CA_CERT)?, &read(CA_KEY)?)
        .with_context(|| format!("the CA in {}", dir.display()))
}

/// Writes `STEM.pem` and `STEM-key.pem` into `args.out`; returns the certificate's path.
fn write_pair(args: &IssueArgs, stem: &str, certified: &CertifiedKey) -> anyhow::Result<PathBuf> {
    let existing = if args.force {
        Existing::Replace
    } else {
        Existing::Refuse
    };
    common::private_dir(&args.out, common::LooseDir::Refuse)?;
    let cert = args.out.join(format!("{stem}.pem"));
    if !args.force && cert.exists() {
        anyhow::bail!("{} exists; pass --force to replace it", cert.display());
    }
    common::write_secret(
        &args.out.join(format!("{stem}-key.pem")),
        &certified.key_pem,
        existing,
    )
    .context("pass --force to replace an existing certificate and key")?;
    write_public(&cert, &certified.cert_pem, existing)?;
    Ok(cert)
}

/// A certificate: public, so readable by all (0644 under the usual umask).
fn write_public(path: &Path, text: &str, existing: Existing) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    match existing {
        Existing::Replace => options.create(true).truncate(true),
        Existing::Refuse => options.create_new(true),
    };
    let mut file = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// A server name clients can match: an IP address, or a DNS name (a leading `*.` allowed).
fn check_name(name: &str) -> anyhow::Result<()> {
    if name.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let host = name.strip_prefix("*.").unwrap_or(name);
    let label_ok = |label: &str| {
        (1..=63).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if host.len() <= 253 && host.split('.').all(label_ok) {
        return Ok(());
    }
    anyhow::bail!(
        "--name {name:?} is neither an IP address nor a DNS name (letters, digits, '-' and \
         dots, e.g. mof-adapter.gov.la)"
    )
}
