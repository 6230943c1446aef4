//! `keel`: an etcd-compatible key-value store. Takes etcd's flags and
//! `ETCD_*` variables; with none it starts a single-member cluster named
//! `default` with data in `./default.keel`, clients on
//! `http://localhost:2379` and peers on `http://localhost:2380`, as etcd does.
//! Stops cleanly on SIGINT or SIGTERM. On Linux it first starts itself
//! again with glibc's malloc on transparent huge pages (see
//! `keel_server::huge_pages`; `KEEL_HUGE_PAGES=0` keeps 4 KiB pages).

use std::process::ExitCode;

use keel_server::api::ApiLimits;
use keel_server::api::jwt::JwtTokens;
use keel_server::config::{AuthTokenSpec, Config, ConfigError, LogLevel};
use keel_server::node::serve::{Listeners, Member};
use keel_server::node::{NodeSettings, NodeStorage};
use keel_server::tls::MemberTls;
use keel_server::transport::TransportLimits;

fn main() -> ExitCode {
    let huge_pages_error = keel_server::huge_pages::reexec_with_huge_pages();
    let config = match Config::from_args(std::env::args_os()) {
        Ok(config) => config,
        Err(ConfigError::Flags(err)) => err.exit(),
        Err(err) => {
            eprintln!("keel: {err}");
            return ExitCode::from(2);
        }
    };
    init_tracing(config.log_level);
    for key in &config.config_file_ignored {
        tracing::warn!(%key, "--config-file: keel does not know this setting; ignored");
    }
    if let Some(err) = huge_pages_error {
        tracing::warn!(%err, "running without huge pages: cannot re-execute keel");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("keel: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("{message}");
            eprintln!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(level: LogLevel) {
    let level = match level {
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Error | LogLevel::Panic | LogLevel::Fatal => tracing::Level::ERROR,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

async fn run(config: Config) -> Result<(), String> {
    let client_addrs = config.client_bind_addrs().map_err(|e| e.to_string())?;
    let peer_addrs = config.peer_bind_addrs().map_err(|e| e.to_string())?;
    let metrics_addrs = config.metrics_bind_addrs().map_err(|e| e.to_string())?;
    // Key files first: a bad one stops keel before it touches the data.
    let mut settings = NodeSettings::from_config(&config);
    if let AuthTokenSpec::Jwt(spec) = &config.operations.auth_token {
        let jwt = JwtTokens::load(spec).map_err(|e| format!("keel: --auth-token: {e}"))?;
        settings.jwt = Some(std::sync::Arc::new(jwt));
    }
    let storage = NodeStorage::on_disk(&config.data_dir).map_err(|e| {
        format!(
            "keel: cannot use data directory {}: {e}",
            config.data_dir.display()
        )
    })?;
    // After the data dir exists: auto TLS keeps its certificates there.
    let tls = MemberTls::load(&config).map_err(|e| e.to_string())?;
    let listeners = Listeners {
        client_addrs,
        peer_addrs,
        api_limits: ApiLimits {
            request: config.limits(),
            ..ApiLimits::default()
        },
        transport_limits: TransportLimits::default(),
    };
    tracing::info!(
        name = %config.name,
        data_dir = %config.data_dir.display(),
        "starting keel"
    );
    settings.peer_dialer = tls.dialer.with_loopback_sources(&listeners.peer_addrs);
    let mut member = Member::start_tls(settings, storage, listeners, tls.serve)
        .await
        .map_err(|e| e.to_string())?;
    if let Err(err) = member.serve_metrics(&metrics_addrs).await {
        member.stop().await;
        return Err(err.to_string());
    }
    let removed = member.removed();
    let failed = member.failed();
    let outcome = tokio::select! {
        signal = shutdown_signal() => {
            tracing::info!(signal, "received signal; shutting down");
            Ok(())
        }
        error = member.server_error() => Err(error),
        () = removed => {
            tracing::info!("removed from the cluster; shutting down");
            Ok(())
        }
        why = failed => Err(why),
    };
    member.stop().await;
    outcome
}

/// Waits for SIGINT or SIGTERM; returns its name.
async fn shutdown_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut terminate) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}
