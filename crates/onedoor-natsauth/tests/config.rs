//! The generated configuration and the credentials on disk, without a running server (except
//! `nats-server -t`, which only parses): valid for the pinned server, public keys only, seeds
//! in private files, never printed.

use std::path::{Path, PathBuf};
use std::process::Command;

use onedoor_case::{AgencyCode, Registry};
use onedoor_natsauth::{CredentialSet, Identity, MANIFEST_FILE, NatsAuthError, render_config};

fn registry(name: &str) -> Registry {
    Registry::load(&deploy().join("registry").join(name)).expect("shipped registry loads")
}

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

/// Runs `nats-server -t -c <file>` (parse and exit) and returns its verdict.
fn nats_server_accepts(config: &Path) -> anyhow::Result<()> {
    let binary = onedoor_testkit::binary::nats_server()?;
    let output = Command::new(&binary.path)
        .arg("-t")
        .arg("-c")
        .arg(config)
        .output()?;
    let text = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success() && text.contains("is valid"),
        "{}: {text}",
        config.display()
    );
    Ok(())
}

#[test]
fn the_generated_configuration_is_valid_included_from_the_dev_config() -> anyhow::Result<()> {
    let registry = registry("lao-2025.toml");
    let dir = tempfile::tempdir()?;
    let credentials = CredentialSet::generate(&dir.path().join("credentials"), &registry)?;
    let fragment = render_config(&registry, &credentials)?;

    // As deploy/nats/README.md says to use it: the checked-in files with the generated file
    // included where they mark it.
    let conf = dir.path().join("conf");
    std::fs::create_dir_all(conf.join("generated"))?;
    std::fs::write(conf.join("generated/accounts.conf"), &fragment)?;
    let include = "\ninclude \"./generated/accounts.conf\"\n";
    let dev = std::fs::read_to_string(deploy().join("nats/dev.conf"))? + include;
    std::fs::write(conf.join("dev.conf"), dev)?;
    nats_server_accepts(&conf.join("dev.conf"))?;

    // The cluster files take their host values from the environment and include the fragment
    // themselves; `onedoor_testkit::DeployCluster::check_configs` runs `nats-server -t` on
    // them with this fragment (crates/onedoor-testkit/tests/deploy_cluster.rs).
    Ok(())
}

#[test]
fn the_configuration_declares_every_agency_with_its_public_key_and_no_seed() -> anyhow::Result<()> {
    let registry = registry("lao-2025.toml");
    let dir = tempfile::tempdir()?;
    let credentials = CredentialSet::generate(dir.path(), &registry)?;
    let config = render_config(&registry, &credentials)?;

    let identities = Identity::all_for(&registry);
    assert_eq!(identities.len(), registry.agencies.len() + 5);
    assert!(
        config.contains("allow_responses: true"),
        "the case reader answers requests"
    );
    for identity in &identities {
        let key = credentials.public_key(identity).expect("generated");
        assert!(config.contains(key.as_str()), "{identity} missing");
        let seed = credentials.seed(identity)?;
        assert!(!config.contains(seed.expose_secret()), "{identity}'s seed");
    }
    // A merged-away agency keeps its user (it finishes the tasks it holds).
    assert!(config.contains("# MPI: ministry"), "{config}");
    assert!(config.contains("\"onedoor.v1.case.*.MPI.*\""));
    // Seeds start with S; no such token at all.
    assert!(!config.contains("\"SU"));
    assert!(config.contains("system_account: SYS"));
    Ok(())
}

#[test]
fn seeds_never_appear_in_debug_output_or_errors() -> anyhow::Result<()> {
    let registry = registry("lao-2025.toml");
    let dir = tempfile::tempdir()?;
    let credentials = CredentialSet::generate(dir.path(), &registry)?;
    let mof = Identity::Agency(AgencyCode::parse("MOF")?);
    let seed = credentials.seed(&mof)?;
    let secret = seed.expose_secret().to_owned();

    let printed = [
        format!("{seed:?}"),
        format!("{credentials:?}"),
        format!("{:?}", credentials.entry(&mof)),
        format!("{:?}", credentials.connect_options(&mof)?),
    ];
    for text in &printed {
        assert!(!text.contains(&secret), "{text}");
    }

    // A seed file that is not the manifest's: the error names keys and files, not the seed.
    let path = credentials.seed_file(&mof).expect("listed").to_path_buf();
    let other = onedoor_natsauth::Seed::generate()?;
    std::fs::write(&path, other.expose_secret())?;
    let err = credentials.seed(&mof).expect_err("mismatch");
    assert!(matches!(err, NatsAuthError::SeedMismatch { .. }), "{err}");
    for text in [err.to_string(), format!("{err:?}")] {
        assert!(!text.contains(other.expose_secret()), "{text}");
    }
    Ok(())
}

#[cfg(unix)]
#[test]
fn seed_files_are_private_and_a_readable_one_is_refused() -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;

    let registry = registry("lao-2025.toml");
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("nats-credentials");
    let credentials = CredentialSet::generate(&root, &registry)?;
    assert_eq!(
        std::fs::metadata(&root)?.permissions().mode() & 0o777,
        0o700
    );
    for identity in credentials.identities() {
        let file = credentials.seed_file(identity).expect("listed");
        assert_eq!(
            std::fs::metadata(file)?.permissions().mode() & 0o777,
            0o600,
            "{identity}"
        );
    }

    let auditor = credentials.seed_file(&Identity::Auditor).expect("listed");
    std::fs::set_permissions(auditor, std::fs::Permissions::from_mode(0o644))?;
    let err = credentials.seed(&Identity::Auditor).expect_err("readable");
    assert!(
        matches!(err, NatsAuthError::InsecureSeedFile { mode: 0o644, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("chmod 600"), "{err}");
    Ok(())
}

#[test]
fn the_manifest_lists_public_keys_files_and_inbox_prefixes() -> anyhow::Result<()> {
    let registry = registry("lao-2025.toml");
    let dir = tempfile::tempdir()?;
    let credentials = CredentialSet::generate(dir.path(), &registry)?;
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(MANIFEST_FILE))?)?;
    let mof = &manifest["identities"]["MOF"];
    assert_eq!(mof["kind"], "agency");
    assert_eq!(mof["account"], "ONEDOOR");
    assert_eq!(mof["seed_file"], "MOF.nk");
    assert_eq!(mof["inbox_prefix"], "_INBOX_MOF");
    let key = credentials
        .public_key(&Identity::Agency(AgencyCode::parse("MOF")?))
        .expect("generated");
    assert_eq!(mof["public_key"], key.as_str());
    assert_eq!(manifest["identities"]["system"]["account"], "SYS");

    // Loading gives the same set back.
    let loaded = CredentialSet::load(dir.path())?;
    assert_eq!(
        loaded.identities().collect::<Vec<_>>(),
        credentials.identities().collect::<Vec<_>>()
    );
    loaded.verify()?;
    Ok(())
}

#[test]
fn load_or_generate_keeps_existing_keys_and_adds_new_agencies() -> anyhow::Result<()> {
    let (old, new) = (registry("lao-2021.toml"), registry("lao-2025.toml"));
    let dir = tempfile::tempdir()?;
    let before = CredentialSet::load_or_generate(dir.path(), &old)?;
    let after = CredentialSet::load_or_generate(dir.path(), &new)?;

    for identity in before.identities() {
        assert_eq!(
            before.public_key(identity),
            after.public_key(identity),
            "{identity} was rotated"
        );
    }
    let added: Vec<_> = after
        .identities()
        .filter(|identity| before.public_key(identity).is_none())
        .collect();
    assert!(!added.is_empty(), "2025 has agencies 2021 did not");
    for identity in Identity::all_for(&new) {
        assert!(after.public_key(&identity).is_some(), "{identity}");
    }
    // The configuration for the new registry renders from what is on disk.
    render_config(&new, &CredentialSet::load(dir.path())?)?;
    Ok(())
}

#[test]
fn a_registry_identity_without_credentials_cannot_be_rendered() -> anyhow::Result<()> {
    let (old, new) = (registry("lao-2021.toml"), registry("lao-2025.toml"));
    let dir = tempfile::tempdir()?;
    let credentials = CredentialSet::generate(dir.path(), &old)?;
    let err = render_config(&new, &credentials).expect_err("2025 agencies lack keys");
    assert!(
        matches!(err, NatsAuthError::MissingIdentity { .. }),
        "{err}"
    );
    Ok(())
}

#[test]
fn rotating_replaces_one_key_and_keeps_the_others() -> anyhow::Result<()> {
    let registry = registry("lao-2025.toml");
    let dir = tempfile::tempdir()?;
    let mut credentials = CredentialSet::generate(dir.path(), &registry)?;
    let mof = Identity::Agency(AgencyCode::parse("MOF")?);
    let (old_mof, old_moic) = (
        credentials.public_key(&mof).cloned(),
        credentials
            .public_key(&Identity::Agency(AgencyCode::parse("MOIC")?))
            .cloned(),
    );
    credentials.rotate(&mof)?;

    let reloaded = CredentialSet::load(dir.path())?;
    reloaded.verify()?;
    assert_ne!(reloaded.public_key(&mof).cloned(), old_mof);
    assert_eq!(reloaded.public_key(&mof), credentials.public_key(&mof));
    assert_eq!(
        reloaded
            .public_key(&Identity::Agency(AgencyCode::parse("MOIC")?))
            .cloned(),
        old_moic
    );
    Ok(())
}

#[test]
fn an_imported_public_key_is_rendered_and_its_seed_stays_with_its_owner() -> anyhow::Result<()> {
    let registry = registry("lao-2025.toml");
    let dir = tempfile::tempdir()?;
    let mut credentials = CredentialSet::generate(dir.path(), &registry)?;
    let mof = Identity::Agency(AgencyCode::parse("MOF")?);
    let held_by_mof = onedoor_natsauth::Seed::generate()?;
    credentials.import_public_key(mof.clone(), held_by_mof.public_key().clone())?;

    // A restart (load_or_generate verifies every seed it lists) keeps the imported key.
    let reloaded = CredentialSet::load_or_generate(dir.path(), &registry)?;
    assert_eq!(reloaded.public_key(&mof), Some(held_by_mof.public_key()));
    assert_eq!(reloaded.seed_file(&mof), None);
    let err = reloaded.seed(&mof).expect_err("the seed is not here");
    assert!(
        matches!(err, NatsAuthError::SeedHeldElsewhere { .. }),
        "{err}"
    );
    let config = render_config(&registry, &reloaded)?;
    assert!(config.contains(held_by_mof.public_key().as_str()));
    assert!(!config.contains(held_by_mof.expose_secret()));
    Ok(())
}

/// The configuration for a registry's ended agencies once their inboxes are drained: no user
/// for them, every other identity kept, and a code the registry does not know changes nothing.
/// nats-server still accepts the text.
#[test]
fn revoked_agencies_get_no_user_and_the_rest_stay() -> anyhow::Result<()> {
    let registry = registry("lao-2025.toml");
    let dir = tempfile::tempdir()?;
    let credentials = CredentialSet::generate(&dir.path().join("credentials"), &registry)?;
    let code = |text: &str| AgencyCode::parse(text).expect("valid");
    let full = render_config(&registry, &credentials)?;
    let revoked =
        onedoor_natsauth::render_config_revoking(&registry, &credentials, &[code("MPI")])?;
    let mpi_key = credentials
        .public_key(&Identity::Agency(code("MPI")))
        .expect("MPI listed");
    assert!(full.contains(mpi_key.as_str()));
    assert!(!revoked.contains(mpi_key.as_str()), "{revoked}");
    assert!(revoked.contains("# No user (revoked): MPI."));
    for identity in Identity::all_for(&registry) {
        let key = credentials.public_key(&identity).expect("generated");
        if identity != Identity::Agency(code("MPI")) {
            assert!(revoked.contains(key.as_str()), "{identity} kept");
        }
    }
    let unknown =
        onedoor_natsauth::render_config_revoking(&registry, &credentials, &[code("MOXX")])?;
    assert_eq!(
        unknown.replace("# No user (revoked): MOXX.\n", ""),
        full,
        "an unknown code removes nobody"
    );
    let conf = dir.path().join("revoked.conf");
    let dev = std::fs::read_to_string(deploy().join("nats/dev.conf"))?;
    std::fs::write(&conf, format!("{dev}\n{revoked}"))?;
    nats_server_accepts(&conf)
}
