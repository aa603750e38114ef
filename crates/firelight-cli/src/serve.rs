//! `firelight serve`: host this machine's device for other machines' firelight (Burn's remote
//! backend over WebSocket), so a laptop or a CPU node explains on a GPU box.

use firelight::prelude::*;

use crate::args::{DeviceSpec, parse_device};

/// `firelight serve`'s options.
#[derive(clap::Args, Debug)]
pub(crate) struct ServeArgs {
    /// The port to listen on (0: any free one, printed).
    #[arg(long, default_value_t = 3000)]
    pub(crate) port: u16,
    /// The address to listen on: this machine only unless given; 0.0.0.0 lets other machines in
    /// (on a trusted network: WebSocket is unencrypted).
    #[arg(long, default_value = "127.0.0.1")]
    pub(crate) host: String,
    /// The device to host: flex, wgpu or cuda (as this build has them).
    #[arg(long, value_parser = parse_device, default_value = "flex")]
    pub(crate) device: DeviceSpec,
    /// Admit only clients that present this token (`--token` or FIRELIGHT_TOKEN on their side).
    #[arg(long, env = "FIRELIGHT_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
}

pub(crate) fn run(args: ServeArgs) -> Result<()> {
    if let DeviceSpec::Remote(url) = &args.device {
        return Err(Error::parameter(
            "device",
            url,
            "a server hosts a device of its own machine: flex, wgpu or cuda",
        ));
    }
    serve(args)
}

#[cfg(feature = "remote")]
fn serve(args: ServeArgs) -> Result<()> {
    use std::io::Write;
    use std::net::TcpListener;

    let device = args.device.open(None)?;
    let listener = TcpListener::bind((args.host.as_str(), args.port))
        .map_err(|e| Error::io(format!("{}:{}", args.host, args.port), e))?;
    let address = listener
        .local_addr()
        .map_err(|e| Error::io(format!("{}:{}", args.host, args.port), e))?;
    let mut server = firelight::core::remote::DeviceServer::new([device]);
    if let Some(token) = &args.token {
        server = server.token(token);
    }
    // The URL is the first line, flushed, so a script (or a test) can read it and connect.
    println!(
        "serving {} on ws://{address} (clients: --device ws://{address}; Ctrl-C stops)",
        args.device
    );
    let _ = std::io::stdout().flush();
    server.serve(listener)
}

#[cfg(not(feature = "remote"))]
fn serve(args: ServeArgs) -> Result<()> {
    Err(Error::parameter(
        "device",
        &args.device,
        "this build cannot serve devices; rebuild with the default features (or --features remote)",
    ))
}
