//! Unit tests.
// Tests may unwrap: a panic is the failure report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::result_large_err // figment::Jail's own closure signature
)]

use super::*;

#[test]
fn defaults_load_works() {
    let c = Config::from_toml("").unwrap();
    assert_eq!(c.listen.port(), 7443);
    assert!(c.listen.ip().is_loopback());
    assert_eq!(c.jobs.max_concurrent, 4);
    assert_eq!(c.jobs.run_as_ids(), Some((65534, 65534)));
}

/// The job-spec crate's default limits are the `[jobs]` defaults.
#[test]
fn spec_limits_defaults_works() {
    assert_eq!(
        JobsConfig::default().spec_limits(),
        sigil_job_spec::SpecLimits::default()
    );
    let c = Config::from_toml(
        "[jobs]\nmax_wall_time_ms = 5000\ndefault_wall_time_ms = 5\nallow_process = false",
    )
    .unwrap();
    let l = c.jobs.spec_limits();
    assert_eq!(
        (l.default_wall_time_ms, l.max_wall_time_ms, l.allow_process),
        (5, 5000, false)
    );
}

#[test]
fn plaintext_on_public_address_rejects() {
    let e = Config::from_toml("listen = \"0.0.0.0:7443\"").unwrap_err();
    assert!(matches!(e, ConfigError::PlaintextNotAllowed { .. }), "{e}");
    let ok = Config::from_toml("listen = \"0.0.0.0:7443\"\nallow_plaintext = true").unwrap();
    assert!(ok.allow_plaintext);
}

#[test]
fn half_tls_rejects() {
    let e = Config::from_toml("[tls]\ncert = \"/x.pem\"").unwrap_err();
    assert!(matches!(e, ConfigError::TlsIncomplete), "{e}");
}

#[test]
fn unknown_key_rejects() {
    assert!(Config::from_toml("[jobs]\nmax_concurent = 3").is_err());
}

#[test]
fn bad_values_reject() {
    for doc in [
        "[jobs]\nmax_concurrent = 0",
        "[jobs]\nrun_as = \"nobody\"",
        "[evidence]\ndefault_mode = \"sometimes\"",
        "[log]\nformat = \"xml\"",
        "[auth]\nbuyer_keys = [\"abcd\"]",
        "[jobs]\ndefault_wall_time_ms = 10\nmax_wall_time_ms = 5",
        "[collateral]\nsnp_product = \"Naples\"",
        "[isolation]\nids = \"10-5\"",
        "[isolation]\nids = \"0-100\"",
        "[isolation]\nids = \"nobody\"",
        "[isolation]\nids = \"100-101\"\n[jobs]\nmax_concurrent = 3",
        "[isolation]\nmode = \"sometimes\"",
        "[isolation]\nnamespace = \"maybe\"",
        "[jobs]\nmax_memory_bytes = 0",
        "[jobs]\nmax_pids = 0",
        "[evidence]\nazure_tdquote_url = \"\"",
        "[evidence]\nazure_tdquote_url = \"169.254.169.254/acc/tdquote\"",
    ] {
        assert!(Config::from_toml(doc).is_err(), "{doc}");
    }
}

#[test]
fn snp_vcek_source_works() {
    use attestation_verifier::evidence::snp::Product;
    let c = Config::from_toml("[collateral]\nsnp_product = \"genoa\"").unwrap();
    assert_eq!(c.collateral.snp_product(), Some(Product::Genoa));
    assert!(crate::collateral::snp_vcek_from_config(&c.collateral, &c.state_dir).is_some());
    let off = Config::from_toml("[collateral]\namd_kds_url = \"\"").unwrap();
    assert!(crate::collateral::snp_vcek_from_config(&off.collateral, &off.state_dir).is_none());
    let file =
        Config::from_toml("[collateral]\namd_kds_url = \"\"\nsnp_vcek_file = \"/v.pem\"").unwrap();
    assert!(crate::collateral::snp_vcek_from_config(&file.collateral, &file.state_dir).is_some());
}

#[test]
fn env_overrides_work() {
    figment::Jail::expect_with(|jail| {
        jail.create_file(
            "agent.toml",
            "state_dir = \"/tmp/a\"\n[jobs]\nmax_concurrent = 2\n",
        )?;
        jail.set_env("SIGIL_AGENT_JOBS__MAX_CONCURRENT", "7");
        jail.set_env("SIGIL_AGENT_AUTH__TOKEN", "s3cret");
        jail.set_env("SIGIL_AGENT_LISTEN", "127.0.0.1:9000");
        let c = Config::load(Some(Path::new("agent.toml"))).unwrap();
        assert_eq!(c.jobs.max_concurrent, 7);
        assert_eq!(c.state_dir, PathBuf::from("/tmp/a"));
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.auth.token.expose(), "s3cret");
        Ok(())
    });
}

#[test]
fn secrets_never_print_works() {
    let c = Config::from_toml("[auth]\ntoken = \"hunter2\"").unwrap();
    let dbg = format!("{c:?}");
    assert!(!dbg.contains("hunter2"));
    assert!(dbg.contains("[redacted]"));
}

#[test]
fn token_file_works() {
    let dir = std::env::temp_dir().join(format!("sigil-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("token");
    std::fs::write(&f, "from-file\n").unwrap();
    let c = Config::from_toml(&format!("[auth]\ntoken_file = {:?}", f.to_str().unwrap())).unwrap();
    assert_eq!(c.auth.token.expose(), "from-file");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn api_and_access_defaults_works() {
    let c = Config::from_toml("").unwrap();
    assert_eq!(c.api.max_queued_jobs, 1_024);
    assert_eq!(c.api.request_timeout_secs, 30);
    assert!(!c.access.allow_off_chain);
    assert!(!c.access.operator_reads_outputs);
    assert!(!c.access.public_status);
    let c = Config::from_toml(
        "[api]\nmax_queued_jobs = 8\npeer_rate = 0\n[access]\nallow_off_chain = true",
    )
    .unwrap();
    assert_eq!(c.api.max_queued_jobs, 8);
    assert_eq!(c.api.peer_rate, 0);
    assert!(c.access.allow_off_chain);
}

#[test]
fn api_zero_limits_reject() {
    for doc in [
        "[api]\npeer_burst = 0",
        "[api]\nmax_open_streams = 0",
        "[api]\nrequest_timeout_secs = 0",
        "[access]\nunknown = true",
    ] {
        assert!(Config::from_toml(doc).is_err(), "{doc}");
    }
}

#[test]
fn isolation_defaults_works() {
    use crate::config::{IsolationMode, NamespaceMode};
    let c = Config::from_toml("").unwrap();
    assert_eq!(c.isolation.mode, IsolationMode::Required);
    assert_eq!(c.isolation.namespace, NamespaceMode::Auto);
    assert_eq!(c.isolation.id_range(), Some((3_000_000, 3_065_535)));
    // Isolation off may drop the ceilings (as before); a range as small as the jobs is fine.
    let off = Config::from_toml(
        "[isolation]\nmode = \"off\"\nids = \"100-102\"\n[jobs]\nmax_memory_bytes = 0\nmax_concurrent = 3",
    )
    .unwrap();
    assert_eq!(off.isolation.mode, IsolationMode::Off);
    assert_eq!(off.jobs.max_memory_bytes, 0);
}
