//! Devices on other machines, through Burn's remote backend over WebSocket.
//!
//! A server ([`DeviceServer`], `firelight serve`) hosts its devices (a GPU, or flex on a big CPU);
//! a client [`connect`]s one and gets an ordinary [`Device`]: every method runs on it unchanged,
//! gradients included. The autodiff graph stays on the client, which sends the forward and
//! backward operations; only what the client reads (an attribution, a prediction) crosses the wire
//! back, and inputs cross once.
//!
//! ```no_run
//! use firelight_core::remote::{DeviceServer, connect};
//! use firelight_core::Device;
//!
//! // On the machine with the device (blocks until Ctrl+C):
//! // DeviceServer::new([Device::flex()]).serve(std::net::TcpListener::bind("0.0.0.0:3000")?)?;
//! let device = connect("ws://gpu-box:3000", None)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! WebSocket is unencrypted: use it on a trusted network (a cluster, a VPN, a container network,
//! loopback). A token keeps stray clients out; it does not hide the traffic.

use std::net::TcpListener;

use burn::remote::RemoteHost;
use burn::server::{RemoteServer, TokenAuthorizer, WebSocketTransport};

use crate::{Device, Error, Result};

/// Whether `spec` names a remote device (`ws://host:port`) rather than a local backend.
pub fn is_remote(spec: &str) -> bool {
    spec.starts_with("ws://")
}

/// Checks that `url` is `ws://HOST:PORT` (with an optional path), naming what is wrong.
pub fn check_url(url: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::parameter(
            "device",
            url,
            format!("{reason}; a remote device is ws://HOST:PORT, as `firelight serve` prints it"),
        ))
    };
    let Some(rest) = url.strip_prefix("ws://") else {
        return if url.starts_with("wss://") {
            bad("TLS WebSocket (wss://) is not supported by Burn's remote backend")
        } else {
            bad("not a ws:// URL")
        };
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let Some((host, port)) = authority.rsplit_once(':') else {
        return bad("no port");
    };
    if host.is_empty() {
        return bad("no host");
    }
    if port.parse::<u16>().map_or(true, |p| p == 0) {
        return bad(&format!("port `{port}` is not a number from 1 to 65535"));
    }
    Ok(())
}

/// Connects device 0 of the server at `url` (`ws://host:port`), presenting `token` if the server
/// asks for one. Fails with [`Error::Device`] when the server cannot be reached or refuses.
pub fn connect(url: &str, token: Option<&str>) -> Result<Device> {
    check_url(url)?;
    let mut host = RemoteHost::websocket(url);
    if let Some(token) = token {
        host = host.with_credential(token);
    }
    Device::remote_options(&host)
        .init()
        .map_err(|e| Error::Device {
            device: url.to_string(),
            reason: format!("cannot open a session: {e} (is `firelight serve` running there?)"),
        })
}

/// A server hosting this machine's devices to remote clients over WebSocket.
///
/// The devices must share one backend (several GPUs of one kind, or flex). A client picks device 0
/// unless it asks for another; each client session runs its operations in order.
#[derive(Clone)]
pub struct DeviceServer {
    devices: Vec<Device>,
    token: Option<String>,
}

impl DeviceServer {
    /// Hosts `devices`.
    pub fn new(devices: impl IntoIterator<Item = Device>) -> Self {
        Self {
            devices: devices.into_iter().collect(),
            token: None,
        }
    }

    /// Opens sessions only for clients presenting `token`.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    fn server(&self) -> Result<RemoteServer> {
        if self.devices.is_empty() {
            return Err(Error::parameter(
                "device",
                "none",
                "a server needs a device to host",
            ));
        }
        let server = RemoteServer::new(self.devices.clone());
        Ok(match &self.token {
            Some(token) => server.with_authorizer(
                TokenAuthorizer::new(token.as_str())
                    .map_err(|e| Error::parameter("token", "\"\"", e.to_string()))?,
            ),
            None => server,
        })
    }

    /// Serves on `listener` until the process gets Ctrl+C or `SIGTERM`.
    pub fn serve(&self, listener: TcpListener) -> Result<()> {
        let address = listener
            .local_addr()
            .map_or_else(|_| "the listener".to_string(), |a| a.to_string());
        self.server()?
            .serve(WebSocketTransport::from_listener(listener))
            .map_err(|e| Error::Device {
                device: format!("ws://{address}"),
                reason: format!("the server stopped: {e}"),
            })
    }

    /// Serves on a free loopback port from a background thread for the rest of the process,
    /// returning the URL to [`connect`] to: a server for tests and benchmarks.
    pub fn spawn_local(self) -> Result<String> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| Error::Device {
            device: "ws://127.0.0.1:0".into(),
            reason: format!("cannot listen: {e}"),
        })?;
        let address = listener.local_addr().map_err(|e| Error::Device {
            device: "ws://127.0.0.1:0".into(),
            reason: e.to_string(),
        })?;
        let server = self.server()?;
        std::thread::spawn(move || {
            let _ = server.serve(WebSocketTransport::from_listener(listener));
        });
        Ok(format!("ws://{address}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_without_a_port_or_scheme_are_refused() {
        assert!(check_url("ws://127.0.0.1:3000").is_ok());
        assert!(check_url("ws://gpu-box:3000/").is_ok());
        assert!(check_url("ws://[::1]:3000").is_ok());
        for (bad, says) in [
            ("http://gpu:3000", "not a ws://"),
            ("wss://gpu:3000", "wss://"),
            ("ws://gpu", "no port"),
            ("ws://:3000", "no host"),
            ("ws://gpu:0", "not a number"),
            ("ws://gpu:http", "not a number"),
        ] {
            let err = check_url(bad).unwrap_err().to_string();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn a_server_that_is_not_there_is_a_device_error() {
        // A port just freed: nothing listens there.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("ws://127.0.0.1:{port}");
        let err = connect(&url, None).unwrap_err();
        assert!(matches!(err, Error::Device { .. }), "{err}");
        assert!(err.to_string().contains(&url), "{err}");
    }

    #[test]
    fn a_token_is_required_when_the_server_sets_one() {
        let url = DeviceServer::new([Device::flex()])
            .token("sesame")
            .spawn_local()
            .unwrap();
        let refused = connect(&url, Some("wrong")).unwrap_err();
        assert!(
            refused.to_string().contains("cannot open a session"),
            "{refused}"
        );
        let device = connect(&url, Some("sesame")).unwrap();
        let doubled = (crate::Tensor::<1>::from_floats([1.0, 2.0], &device) * 2.0)
            .into_data()
            .try_into_vec::<f32>()
            .unwrap();
        assert_eq!(doubled, vec![2.0, 4.0]);
    }
}
