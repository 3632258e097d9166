//! The log set-up of `sio` and `sio-node` (feature `logs`): stderr, an environment filter,
//! and either text (colour codes only for a terminal) or JSON lines.

use std::str::FromStr;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines; colour codes only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `target`, `message` and the event's
    /// fields at the top level (the cluster's lines carry `node`, `nsp` and `broker`).
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("unknown log format {other:?} (text or json)")),
        }
    }
}

/// What the default filter silences: lapin logs several ERROR lines of its own (the
/// broker's whole close frame, its recovery giving up) for what the AMQP transport
/// reports in one line (a refused login, a lost connection); an environment filter can
/// name `lapin` to see them.
const QUIET_BY_DEFAULT: &str = "lapin=off";

/// Installs the global subscriber: lines on stderr in `format`, filtered by the first of
/// `env_vars` that holds a valid filter (`RUST_LOG` syntax), else by `default_filter`
/// with `lapin=off` added (lapin logs several ERROR lines of its own for what the AMQP
/// transport reports in one; name `lapin` in the environment filter to see them). Does
/// nothing if a subscriber is already installed.
pub fn init_logs(format: LogFormat, env_vars: &[&str], default_filter: &str) {
    let filter = env_vars
        .iter()
        .find_map(|var| tracing_subscriber::EnvFilter::try_from_env(var).ok())
        .unwrap_or_else(|| format!("{default_filter},{QUIET_BY_DEFAULT}").into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).with_span_list(false).try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::LogFormat;

    #[test]
    fn formats_by_name() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Text));
        assert!("xml".parse::<LogFormat>().unwrap_err().contains("text or json"));
    }
}
