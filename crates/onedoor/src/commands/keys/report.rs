//! What `keys new` and `keys rotate` print: where the secrets went, the token (its only
//! appearance anywhere), the registry lines to paste, the NATS public key for the operator and
//! the adapter's settings.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use onedoor_bus::Signer;
use onedoor_case::AgencyCode;
use onedoor_natsauth::PublicKey;

use super::What;

/// A bearer token just made: the secret, and what the registry gets instead.
pub(super) struct NewToken {
    pub secret: String,
    pub label: String,
    pub sha256: String,
}

/// What one run made.
pub(super) struct Made {
    pub code: AgencyCode,
    pub dir: PathBuf,
    pub registry: String,
    /// `CODE-YYYY-MM-DD-xxxx`: the signing key's id and the stem of every file of this run.
    pub key_id: String,
    pub today: time::Date,
    pub signing: Option<(PathBuf, Signer)>,
    pub nats: Option<(PathBuf, PublicKey)>,
    pub token: Option<NewToken>,
}

impl Made {
    pub fn new(code: AgencyCode, dir: &Path, registry: String) -> Self {
        let today = time::OffsetDateTime::now_utc().date();
        let mut suffix = [0u8; 2];
        rand::fill(&mut suffix);
        // The date orders a directory listing; the random part keeps two keys of one day apart.
        let key_id = format!("{code}-{today}-{:02x}{:02x}", suffix[0], suffix[1]);
        Made {
            code,
            dir: dir.to_path_buf(),
            registry,
            key_id,
            today,
            signing: None,
            nats: None,
            token: None,
        }
    }
}

/// A TOML string (quoted and escaped), for lines meant to be pasted into TOML files.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

fn files(made: &Made) -> String {
    let mut out = format!(
        "Made for {} (in registry {}), in {}:\n",
        made.code,
        made.registry,
        made.dir.display()
    );
    if let Some((path, signer)) = &made.signing {
        let _ = writeln!(
            out,
            "  signing key  {} (key id {})",
            path.display(),
            signer.key_id()
        );
    }
    if let Some((path, _)) = &made.nats {
        let _ = writeln!(out, "  NATS nkey    {}", path.display());
    }
    out
}

fn token_section(token: &NewToken, code: &AgencyCode) -> String {
    format!(
        "\nBearer token for the systems that call {code}'s adapter. It is shown this once and \
         stored nowhere: put it in those systems' secret store now.\n  {}\n",
        token.secret
    )
}

/// The `[[agency.key]]` / `[[agency.token]]` lines; TOML appends them to the `[[agency]]` table
/// above them, hence where they must go.
fn registry_section(made: &Made) -> String {
    let mut out = format!(
        "\nRegistry: paste these lines under {}'s [[agency]] entry (after its other lines, before \
         the next [[agency]] or [[service]]), then run `onedoor registry check FILE`:\n",
        made.code
    );
    if let Some((_, signer)) = &made.signing {
        let _ = write!(
            out,
            "\n[[agency.key]]\nid = {}\npublic_key = {}\nvalid_from = {}\n",
            quoted(signer.key_id()),
            quoted(&signer.public_key_base64()),
            made.today
        );
    }
    if let Some(token) = &made.token {
        let _ = write!(
            out,
            "\n[[agency.token]]\nlabel = {}\nsha256 = {}\n",
            quoted(&token.label),
            quoted(&token.sha256)
        );
    }
    out
}

fn nats_section(code: &AgencyCode, public: &PublicKey) -> String {
    format!(
        "\nNATS: the operator lists this public key as user {code}:\n  {public}\n  \
         onedoor keys nats-import --agency {code} --public-key {public} --out NATS_AUTH_DIR\n"
    )
}

fn adapter_section(made: &Made) -> String {
    let mut out = String::from(
        "\nAdapter settings (a file for `onedoor adapter --config`, or the flags of the same names):\n",
    );
    let _ = writeln!(out, "agency = {}", quoted(made.code.as_str()));
    if let Some((path, signer)) = &made.signing {
        let _ = writeln!(out, "signing_key = {}", quoted(&path.display().to_string()));
        let _ = writeln!(out, "key_id = {}", quoted(signer.key_id()));
    }
    if let Some((path, _)) = &made.nats {
        let _ = writeln!(out, "nats_seed = {}", quoted(&path.display().to_string()));
    }
    out
}

fn body(made: &Made) -> String {
    let mut out = files(made);
    if let Some(token) = &made.token {
        out.push_str(&token_section(token, &made.code));
    }
    if made.signing.is_some() || made.token.is_some() {
        out.push_str(&registry_section(made));
    }
    if let Some((_, public)) = &made.nats {
        out.push_str(&nats_section(&made.code, public));
    }
    if made.signing.is_some() || made.nats.is_some() {
        out.push_str(&adapter_section(made));
    }
    out
}

pub(super) fn print_new(made: &Made) {
    print!("{}", body(made));
}

pub(super) fn print_rotation(made: &Made, what: What, older: &[String]) {
    let mut out = body(made);
    out.push_str("\nRetiring the old one:\n");
    let listed = if older.is_empty() {
        "(none found in this directory)".to_owned()
    } else {
        older.join(", ")
    };
    let _ = match what {
        What::Signing => writeln!(
            out,
            "  1. Add the new [[agency.key]] beside the old ones and roll out the registry.\n  \
             2. Restart {code}'s adapters with the new signing_key and key_id.\n  \
             3. Then set `valid_until = {today}` on each old [[agency.key]] ({listed}).\n  \
             Never delete an old [[agency.key]] or its seed: events it signed are verified \
             against it for as long as cases are kept.",
            code = made.code,
            today = made.today,
        ),
        What::Token => writeln!(
            out,
            "  1. Add the new [[agency.token]] and roll out the registry; both tokens now work.\n  \
             2. Give the new token to the systems that call {code}'s adapter.\n  \
             3. Then set `revoked = true` on the old [[agency.token]] (keep the entry: a revoked \
             token is refused with a clear message).",
            code = made.code,
        ),
        What::Nats => writeln!(
            out,
            "  1. Point {code}'s adapter's nats_seed at the new file (old: {listed}).\n  \
             2. The operator imports the new public key (command above) and reloads every \
             nats-server (`nats-server --signal reload`): the old seed stops working then.\n  \
             3. Restart the adapter; it retries NATS until its connect timeout.",
            code = made.code,
        ),
    };
    print!("{out}");
}
