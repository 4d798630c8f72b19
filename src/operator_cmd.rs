//! `splai operator`: the Kubernetes side — run the SPLAIJob reconciler, print the CRDs, render a
//! SPLAIPolicy as a policy file.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use splai_config::Settings;
use splai_operator::crd::SplaiPolicy;
use splai_operator::gateway::HttpGateway;
use splai_operator::run::OperatorOptions;

#[derive(Debug, Subcommand)]
pub enum OperatorAction {
    /// Reconcile SPLAIJob objects: submit each to the gateway once, mirror its state into status.
    /// The gateway URL and token come from `client.url` / `client.token` (SPLAI_CLIENT__TOKEN).
    Run {
        /// Only this namespace (default: every namespace the service account may list).
        #[arg(long)]
        namespace: Option<String>,
        /// Seconds between passes.
        #[arg(long, default_value_t = 2.0)]
        interval_s: f64,
    },
    /// Write the CRD YAML generated from the Rust types (to DIR, or stdout).
    Crds {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the `policy.file` (TOML) that a SPLAIPolicy YAML file stands for.
    Policy { file: PathBuf },
}

pub fn run(settings: &Settings, action: &OperatorAction) -> anyhow::Result<()> {
    match action {
        OperatorAction::Run { namespace, interval_s } => {
            let token = Some(settings.client.token.clone()).filter(|t| !t.is_empty());
            let gateway = HttpGateway::new(&settings.client.url, token)?;
            let opts = OperatorOptions {
                namespace: namespace.clone(),
                interval: Duration::from_secs_f64(interval_s.max(0.1)),
            };
            tokio::runtime::Runtime::new()?.block_on(async {
                let client = kube::Client::try_default().await.context("connecting to the Kubernetes API")?;
                let (tx, rx) = tokio::sync::watch::channel(false);
                tokio::spawn(async move {
                    crate::scheduler_cmd::shutdown_signal().await;
                    tx.send(true).ok();
                });
                tracing::info!(gateway = %settings.client.url, "operator started");
                splai_operator::run::run(client, &gateway, opts, rx).await?;
                Ok(())
            })
        }
        OperatorAction::Crds { out } => {
            for (name, yaml) in splai_operator::generate::crds()? {
                match out {
                    Some(dir) => {
                        std::fs::create_dir_all(dir)?;
                        std::fs::write(dir.join(&name), yaml)?;
                        println!("wrote {}", dir.join(&name).display());
                    }
                    None => print!("---\n{yaml}"),
                }
            }
            Ok(())
        }
        OperatorAction::Policy { file } => {
            let text =
                std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
            let policy: SplaiPolicy = serde_yaml_ng::from_str(&text)
                .with_context(|| format!("{} is not a SPLAIPolicy", file.display()))?;
            let toml = splai_operator::generate::policy_file(&policy.spec)?;
            splai_ingest::policy::PolicySet::parse(&toml).context("the rendered policy is invalid")?;
            print!("{toml}");
            Ok(())
        }
    }
}
