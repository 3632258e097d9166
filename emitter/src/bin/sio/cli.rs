//! The command line: global options, subcommands and the connect options they give.

use std::time::Duration;

use clap::{Args as ClapArgs, Parser, Subcommand};
use socketio_emitter::{ConnectOptions, DialectKind, LogFormat};

use crate::output::{Failure, usage};

const EXAMPLES: &str = "\
ARG is a JSON value ('42', '{\"a\":1}', '\"text\"'), =TEXT for a plain string, or @FILE for
binary read from a file (@- reads standard input).

examples:
  sio emit chat '{\"user\":\"ops\",\"text\":\"deploy done\"}'
  sio emit --to room1 --except muted alert =\"disk full\"
  sio emit upload @report.pdf
  sio emit --ack --timeout 3000 question =ready?
  sio --nsp /admin sockets --to ops
  printf '%s\\n' '{\"event\":\"tick\",\"args\":[1]}' | sio emit --stdin";

/// Emit into a Socket.IO cluster and inspect it.
#[derive(Parser, Debug)]
#[command(
    name = "sio",
    version,
    about = "Emit into a Socket.IO cluster (Node.js, Rust or Python servers) and inspect it: rooms, sockets, servers, traffic",
    after_help = EXAMPLES
)]
pub(crate) struct Cli {
    /// Broker URL: redis://, rediss://, kafka://, amqp://, amqps:// (with the servers' options).
    #[arg(long, env = "SIO_URL", default_value = "redis://127.0.0.1:6379", global = true)]
    pub(crate) url: String,
    /// Namespace.
    #[arg(long, default_value = "/", global = true)]
    pub(crate) nsp: String,
    /// Wire protocol (dialect) of the cluster's servers: auto (from the URL), node-redis
    /// (@socket.io/redis-adapter createAdapter), node-cluster (socket.io-adapter
    /// ClusterAdapter: sharded Redis, Kafka, AMQP), node-streams
    /// (@socket.io/redis-streams-adapter) or python (python-socketio, Flask-SocketIO).
    #[arg(long, default_value = "auto", global = true)]
    pub(crate) dialect: String,
    /// Channel prefix [default: socket.io, or the URL's prefix option].
    #[arg(long, global = true)]
    pub(crate) prefix: Option<String>,
    /// Message-queue channel of the python dialect [default: socketio, or the URL's
    /// channel option].
    #[arg(long, global = true)]
    pub(crate) channel: Option<String>,
    /// Timeout of requests and acks, in milliseconds. A command (but `tail` and `emit
    /// --stdin`) ends within --connect-timeout plus this, whatever the broker does.
    #[arg(long, default_value_t = 5000, global = true)]
    pub(crate) timeout: u64,
    /// Bound of connecting to the broker, in milliseconds.
    #[arg(long, default_value_t = 3000, global = true)]
    pub(crate) connect_timeout: u64,
    /// Log lines on stderr (filtered by SIO_LOG, else RUST_LOG): text, or json (one object
    /// per line).
    #[arg(long, default_value = "text", value_parser = parse_log_format, global = true)]
    pub(crate) log_format: LogFormat,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(ClapArgs, Debug, Default)]
pub(crate) struct Target {
    /// Only sockets in this room (repeatable; a socket id is a room).
    #[arg(long = "to", value_name = "ROOM")]
    pub(crate) to: Vec<String>,
    /// Leave out sockets in this room (repeatable).
    #[arg(long = "except", value_name = "ROOM")]
    pub(crate) except: Vec<String>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Send an event to clients.
    Emit {
        #[command(flatten)]
        target: Target,
        /// Drop the event for clients not ready to receive it.
        #[arg(long)]
        volatile: bool,
        /// Ask the servers not to compress the packet.
        #[arg(long)]
        no_compress: bool,
        /// Wait for the clients' acks and print them as JSON lines.
        #[arg(long, conflicts_with = "stdin")]
        ack: bool,
        /// Read newline-delimited JSON objects {"event", "args", "to", "except", "nsp",
        /// "volatile"} from standard input, one emit per line, pipelined.
        #[arg(long)]
        stdin: bool,
        /// Event name.
        #[arg(required_unless_present = "stdin")]
        event: Option<String>,
        /// Arguments (see below).
        #[arg(allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Make the targeted sockets join rooms.
    Join {
        /// Rooms to join.
        #[arg(required = true)]
        rooms: Vec<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Make the targeted sockets leave rooms.
    Leave {
        /// Rooms to leave.
        #[arg(required = true)]
        rooms: Vec<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Disconnect the targeted sockets.
    Disconnect {
        #[command(flatten)]
        target: Target,
        /// Also close the underlying connection.
        #[arg(long)]
        close: bool,
    },
    /// Send an event to the servers (serverSideEmit).
    ServerEmit {
        /// Wait for the servers' acks and print them as JSON lines.
        #[arg(long)]
        ack: bool,
        /// Event name.
        event: String,
        /// Arguments.
        #[arg(allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Print every room of the cluster, one per line.
    Rooms,
    /// Print id and rooms of the targeted sockets across the cluster, as JSON lines.
    Sockets {
        #[command(flatten)]
        target: Target,
    },
    /// Print the number of targeted sockets across the cluster.
    Count {
        #[command(flatten)]
        target: Target,
    },
    /// Print the number of servers.
    Servers,
    /// Print the broadcasts of the namespace as JSON lines until interrupted.
    Tail,
    /// Print the namespace's traffic per second (messages and bytes, by type, heard on its
    /// broadcast channels) and the cluster size: one sample, or one per interval with
    /// --watch until interrupted.
    Stats {
        /// A line per interval until interrupted.
        #[arg(long)]
        watch: bool,
        /// JSON lines instead of text.
        #[arg(long)]
        json: bool,
        /// Sampling interval in milliseconds.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..))]
        interval_ms: u64,
    },
    /// Check the cluster from outside: broker reachable, servers counted vs answering, a
    /// timed round trip through every server, foreign traffic on the prefix, the last
    /// heartbeat of each node. One verdict per check; exit status 1 if one failed.
    Doctor {
        /// How long to listen to the namespace's traffic and heartbeats before the round
        /// trip, in milliseconds (at least a heartbeat period to hear every node).
        #[arg(long, default_value_t = 6000)]
        window_ms: u64,
        /// The event of the round trip through every server's application: a server-side
        /// emit with an ack (`sio-node` answers `ping`; in Node.js,
        /// `io.on("ping", (ack) => ack())`).
        #[arg(long, default_value = "ping")]
        event: String,
        /// One JSON document instead of lines.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) fn connect_options(cli: &Cli) -> Result<ConnectOptions, Failure> {
    let mut opts = ConnectOptions::default().request_timeout(Duration::from_millis(cli.timeout));
    match cli.dialect.as_str() {
        "auto" => {}
        d => {
            let kind = d.parse::<DialectKind>().map_err(|e| usage(format!("--dialect: {e}; or auto, the default")))?;
            opts = opts.dialect(kind);
        }
    }
    if let Some(channel) = &cli.channel {
        opts = opts.channel(channel.clone());
    }
    if let Some(p) = &cli.prefix {
        opts = opts.prefix(p.clone());
    }
    Ok(opts)
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    s.parse()
}
